"""Catalog columns as astropy Tables and pandas DataFrames, with a row filter
(mmu_core/storage/tables.py), on real built datasets: every filtered table is compared with a
brute-force filter of all rows read through ``iter_batches``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from stored import build_toy_pair, offset

import mmu_core
from mmu_core.storage import tables
from mmu_core.storage.columns import schema_of
from mmu_core.storage.derived import finalize_dataset
from mmu_core.storage.tables import FilterError, TableError
from mmu_core.storage.writer import write_rows

N = 4000
SPECTYPES = np.array([b"GALAXY", b"QSO", b"STAR"])
ALIASES = {"Z": "z", "ZWARN": "zwarn", "SPECTYPE": "spectype", "MAG_R": "mag_r",
           "desi.FLUX": "desi.flux"}


def _catalog(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Spectra with DESI-like catalog columns over several NSIDE-16 pixels: NaNs and infinities
    in MAG_R, UTF-8 names, a boolean, a dotted (namespaced) column."""
    sep = np.degrees(np.arccos(rng.uniform(np.cos(np.radians(6.0)), 1.0, N))) * 3600
    ra, dec = offset(np.full(N, 30.0), np.full(N, -20.0), sep, rng.uniform(0, 360, N))
    mag = rng.normal(20.5, 1.5, N).astype(np.float32)
    mag[rng.random(N) < 0.05] = np.nan
    mag[rng.random(N) < 0.01] = np.inf
    names = np.array([(f"café-{i}" if i % 97 == 0 else f"obj-{i}").encode() for i in range(N)])
    length = 16
    return {
        "object_id": 39627745863551018 + np.arange(N, dtype=np.int64) * 3,
        "ra": ra, "dec": dec,
        "Z": rng.random(N).astype(np.float32),
        "ZWARN": np.where(rng.random(N) < 0.2, 4, 0).astype(np.int64),
        "SPECTYPE": SPECTYPES[rng.integers(0, 3, N)],
        "MAG_R": mag,
        "GOOD": rng.random(N) > 0.3,
        "NAME": names,
        "desi.FLUX": rng.random(N),
        "spectrum_lambda": np.tile(np.linspace(3600, 9800, length, dtype=np.float32), (N, 1)),
        "spectrum_flux": rng.random((N, length), np.float32),
        "spectrum_ivar": rng.random((N, length), np.float32),
        "spectrum_mask": rng.random((N, length)) > 0.9,
    }


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """A stored spectrum dataset (several pixels, several files per pixel) whose manifest
    records a unit for MAG_R."""
    path = tmp_path_factory.mktemp("tables") / "desi" / "test"
    path.mkdir(parents=True)
    cols = _catalog(np.random.default_rng(11))
    write_rows(path, [cols], {"survey": "desi", "config": "test"}, max_file_bytes=120_000)
    finalize_dataset(path, survey="desi", config="test", modality="spectrum",
                     columns=schema_of(cols), aliases=ALIASES)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["columns"]["MAG_R"]["unit"] = "mag"
    (path / "manifest.json").write_text(json.dumps(manifest))
    ds = mmu_core.open_dataset(path)
    assert len(ds.pixels) > 2 and len(ds.files) > len(ds.pixels)
    return ds


def _everything(ds, stored):
    """Every row of the stored columns, read through iter_batches (file order)."""
    parts = list(ds.iter_batches(batch_size=1000, columns=stored))
    return {c: np.concatenate([p[c] for p in parts]) for c in stored}


def _same(table, expected: dict[str, np.ndarray], names: dict[str, str]) -> None:
    """The table holds exactly ``expected`` (stored name -> values), under ``names``."""
    assert table.colnames == [names.get(c, c) for c in expected]
    for stored, values in expected.items():
        got = np.asarray(table[names.get(stored, stored)])
        if values.dtype.kind == "S":
            assert got.dtype.kind == "U"
            values = np.char.decode(values, "utf-8")
        np.testing.assert_array_equal(got, values, err_msg=stored)


CATALOG = ["object_id", "ra", "dec", "healpix", "Z", "ZWARN", "SPECTYPE", "MAG_R", "GOOD",
           "NAME", "desi.FLUX"]
BRUTE = {
    "z > 0.5 and zwarn == 0": lambda r: (r["Z"] > 0.5) & (r["ZWARN"] == 0),
    "(mag_r < 20) | (spectype == 'QSO')":
        lambda r: (r["MAG_R"] < 20) | (r["SPECTYPE"] == b"QSO"),
    "not isnan(MAG_R) and 0.2 <= z < 0.7":
        lambda r: ~np.isnan(r["MAG_R"]) & (r["Z"] >= 0.2) & (r["Z"] < 0.7),
    "~GOOD | (abs(dec) < 19.5)": lambda r: ~r["GOOD"] | (np.abs(r["dec"]) < 19.5),
    "isfinite(mag_r) and NAME == 'café-97'":
        lambda r: np.isfinite(r["MAG_R"]) & (r["NAME"] == "café-97".encode()),
    "spectype != 'STAR' and -21 < dec and not (ZWARN != 0 or False)":
        lambda r: (r["SPECTYPE"] != b"STAR") & (r["dec"] > -21) & (r["ZWARN"] == 0),
    "desi.flux >= 0.25 and desi.FLUX < 0.5 or GOOD == False":
        lambda r: ((r["desi.FLUX"] >= 0.25) & (r["desi.FLUX"] < 0.5)) | ~r["GOOD"],
    "z > 2": lambda r: np.zeros(len(r["Z"]), bool),
    "True": lambda r: np.ones(len(r["Z"]), bool),
}


def test_the_dataset_methods_exist(catalog):
    assert hasattr(catalog, "to_table") and hasattr(catalog, "to_pandas")


@pytest.mark.parametrize("expression", list(BRUTE))
def test_where_equals_a_brute_force_filter_of_every_row(catalog, expression):
    rows = _everything(catalog, CATALOG)
    keep = BRUTE[expression](rows)
    expected = {c: v[keep] for c, v in rows.items()}
    names = catalog.standard_names()
    for batch_size in (tables.BLOCK_ROWS, 173):  # one block per file; blocks across files
        table = tables.to_table(catalog, where=expression, batch_size=batch_size)
        _same(table, expected, names)
    _same(catalog.to_table(where=expression), expected, names)
    assert 0 < keep.sum() < N or expression in ("z > 2", "True")


def test_a_filter_reads_its_own_columns_then_only_the_kept_rows(catalog):
    test = tables.compile_filter(catalog, "z > 0.5 and ((zwarn == 0) | (Z < 0.1))")
    assert test.columns == ["Z", "ZWARN"]
    rows = _everything(catalog, CATALOG)
    picked = tables.to_table(catalog, columns=["mag_r", "NAME"],
                             where="object_id == 39627745863551018 or object_id < 0")
    first = int(np.flatnonzero(rows["object_id"] == 39627745863551018)[0])
    assert len(picked) == 1 and picked["NAME"][0] == "café-0" == rows["NAME"][first].decode()
    assert picked["mag_r"][0] == rows["MAG_R"][first]


def test_toy_build_where_and_every_catalog_column(toy_image_dataset):
    path, _ = toy_image_dataset
    ds = mmu_core.open_dataset(path)
    stored = ["object_id", "ra", "dec", "healpix", "mag", "name"]
    rows = _everything(ds, stored)
    whole = ds.to_table()
    _same(whole, rows, ds.standard_names())
    keep = (rows["mag"] > 22.5) & (rows["name"] != b"obj-u000-3") & (rows["healpix"] != 4)
    table = tables.to_table(ds, where="magnitude > 22.5 and name != 'obj-u000-3' and "
                                      "healpix != 4", batch_size=64)
    _same(table, {c: v[keep] for c, v in rows.items()}, ds.standard_names())


def test_units_aliases_and_text(catalog):
    import astropy.units as u

    table = catalog.to_table()
    assert table.colnames == ["object_id", "ra", "dec", "healpix", "z", "zwarn", "spectype",
                              "mag_r", "GOOD", "NAME", "desi.flux"]
    assert table["ra"].unit == u.deg and table["dec"].unit == u.deg
    assert table["mag_r"].unit == u.mag  # recorded in the manifest's column entry
    assert all(table[c].unit is None for c in ("object_id", "healpix", "z", "zwarn", "NAME"))
    np.testing.assert_array_equal(table["ra"].quantity.to_value(u.deg), table["ra"])
    # the names get(..., aliases=True) gives
    got = catalog.get(table["object_id"][:2], columns=CATALOG, aliases=True)
    assert list(got) == table.colnames
    assert table["spectype"].dtype.kind == "U" and set(table["spectype"]) == {"GALAXY", "QSO",
                                                                              "STAR"}
    assert "café-97" in set(table["NAME"])
    native = catalog.to_table(aliases=False)
    assert native.colnames == CATALOG
    picked = catalog.to_table(columns=["z", "MAG_R", "ra"], aliases=False)
    assert picked.colnames == ["object_id", "ra", "dec", "healpix", "z", "MAG_R"]
    assert picked["MAG_R"].unit == u.mag
    assert catalog.to_table(columns=["Z", "z"]).colnames[-1:] == ["z"]
    assert catalog.to_table(columns=[]).colnames == CATALOG[:4]


def test_modality_arrays_are_refused_by_name(catalog):
    with pytest.raises(TableError, match=r"column 'spectrum_flux' is a modality array "
                                         r"\(per-row shape \(16,\)\)"):
        catalog.to_table(columns=["z", "spectrum_flux"])
    with pytest.raises(FilterError, match=r"'spectrum_mask > 0' at 'spectrum_mask': column "
                                          r"'spectrum_mask' is a modality array"):
        catalog.to_table(where="spectrum_mask > 0")
    with pytest.raises(KeyError, match="no column 'nope'"):
        catalog.to_table(columns=["nope"])


BAD = {
    "z >": r"where 'z >' is not a valid expression \(invalid syntax\)",
    "redshift > 1": r"at 'redshift': no column 'redshift'",
    "zz > 1": r"at 'zz': no column 'zz'; did you mean z\?",
    "z + 1 > 2": r"at 'z \+ 1': arithmetic \('\+'\) is not allowed",
    "z > 0.5 & zwarn == 0": r"at '0.5': '&' combines conditions, and this is a number \(& and "
                            r"\| bind tighter",
    "spectype > 3": r"at 'spectype': compares text with a number",
    "z": r"where 'z' gives a number, not a condition",
    "__import__('os').system('true')": r"the function \"__import__\('os'\).system\" is not "
                                       r"allowed",
    "(lambda: 1)() == 1": r"the function 'lambda: 1' is not allowed",
    "z in (1, 2)": r"the operator 'in' is not allowed",
    "z[0] > 1": r"at 'z\[0\]': indexing is not allowed",
    "isnan(spectype)": r"isnan\(\) takes a number, not a text",
    "abs(z, 1) > 0": r"abs\(\) takes one argument",
    "z == None": r"the constant None is not allowed",
    "": r"where must be a non-empty expression",
}


@pytest.mark.parametrize("expression", list(BAD))
def test_a_bad_expression_is_refused_naming_it_and_the_part(catalog, expression):
    with pytest.raises(FilterError, match=BAD[expression]) as info:
        catalog.to_table(where=expression)
    message = str(info.value)
    assert message.startswith(str(catalog.path))
    if expression:
        assert repr(expression) in message


def test_to_pandas_equals_the_table_converted(catalog):
    import pandas as pd

    for where in (None, "z > 0.5 and zwarn == 0", "z > 2"):
        frame = catalog.to_pandas(where=where)
        pd.testing.assert_frame_equal(frame, catalog.to_table(where=where).to_pandas())
        pd.testing.assert_frame_equal(frame, tables.to_pandas(catalog, where=where,
                                                              batch_size=211))
    frame = catalog.to_pandas(columns=["spectype"], where="spectype == 'QSO'")
    assert list(frame.columns) == ["object_id", "ra", "dec", "healpix", "spectype"]
    assert set(frame["spectype"]) == {"QSO"} and len(frame) > 0


def test_a_matched_dataset_by_namespaced_names(tmp_path):
    from mmu_core.crossmatch import cross_match

    img, spec = build_toy_pair(tmp_path, spec_units=2)
    cross_match(img, spec, tmp_path / "xm", radius_arcsec=1.0, how="nearest")
    m = mmu_core.open_dataset(tmp_path / "xm")
    stored = ["object_id", "ra", "dec", "healpix", "separation_arcsec", "toyspec.Z",
              "toyimg.ra", "toyspec.name"]
    rows = _everything(m, stored)
    keep = (rows["toyspec.Z"] > 0.5) & (rows["separation_arcsec"] < 0.5)
    table = m.to_table(columns=stored[4:], where="toyspec.z > 0.5 and separation_arcsec < 0.5")
    _same(table, {c: v[keep] for c, v in rows.items()}, m.standard_names())
    assert "toyspec.z" in table.colnames and table["toyimg.ra"].unit == "deg"
    assert not any(c.split(".")[-1].startswith("image_") for c in m.to_table().colnames)
    with pytest.raises(FilterError, match="'toyimg.image_array' is a modality array"):
        m.to_table(where="toyimg.image_array > 0")
