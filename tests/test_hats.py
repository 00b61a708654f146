"""HATS both ways, with the real ``hats`` and ``lsdb`` packages: exports LSDB opens (and whose
cone searches and cross-matches give mmu's own rows and pairs), catalogs LSDB writes opened
and imported, the MMU v1.5 layout, the command line."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("hats")
lsdb = pytest.importorskip("lsdb")

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from stored import offset, store  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import mmu_core  # noqa: E402
from mmu_core.cli import app  # noqa: E402
from mmu_core.crossmatch import cross_match  # noqa: E402
from mmu_core.hats import export_hats, import_hats  # noqa: E402
from mmu_core.loader import MapDataset, StreamDataset  # noqa: E402
from mmu_core.storage import layout  # noqa: E402
from mmu_core.storage.hats import HatsDataset, HatsError, is_hats_catalog  # noqa: E402
from mmu_core.storage.reader import open_dataset  # noqa: E402
from mmu_core.validate import validate  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::FutureWarning")


def _quiet() -> None:
    warnings.simplefilter("ignore")


def lsdb_frame(catalog) -> pd.DataFrame:
    """An LSDB catalog's rows (computed), ``_healpix_29`` a column, sorted by object_id (or the
    left object_id of a cross-match)."""
    df = catalog.compute(progress_bar=False).reset_index()
    key = "object_id" if "object_id" in df.columns else "object_id_l"
    return df.sort_values(key).reset_index(drop=True)


def to_numpy(series: pd.Series, dtype, shape) -> np.ndarray:
    """A pandas column of (nested) fixed-size lists, as LSDB loads it, as one numpy array."""
    arr = pa.array(series)  # an Arrow-backed column: its Arrow data
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    for _ in shape:
        arr = arr.flatten()
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype).reshape(
        (len(series), *shape))


# ---- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_export(toy_image_dataset, tmp_path_factory):
    """The toy image dataset (1,800 rows around a pixel corner, pixels in several files)
    exported with its arrays."""
    path, _ = toy_image_dataset
    out = tmp_path_factory.mktemp("hats_img") / "toyimg"
    result = export_hats(path, out, arrays=True)
    return path, out, result


@pytest.fixture(scope="module")
def corner_pair(tmp_path_factory):
    """Two plain catalogs around the pixel corner (45, 0): the right one holds most left
    objects moved by 0.1-0.9" plus unrelated ones; exported split into small partitions
    (higher orders) with 3" margins."""
    root = tmp_path_factory.mktemp("hats_pair")
    rng = np.random.default_rng(7)
    n = 2500
    ra = 45.0 + rng.uniform(-0.06, 0.06, n)
    dec = rng.uniform(-0.06, 0.06, n)
    left = {"object_id": np.arange(n, dtype=np.int64) * 3 + 11, "ra": ra, "dec": dec,
            "mag": rng.normal(21, 1, n).astype(np.float32)}
    moved = rng.random(n) < 0.8
    r_ra, r_dec = offset(ra[moved], dec[moved], rng.uniform(0.1, 0.9, moved.sum()),
                         rng.uniform(0, 360, moved.sum()))
    extra = 800
    right = {"object_id": np.arange(moved.sum() + extra, dtype=np.int64) + 5_000_000,
             "ra": np.r_[r_ra, 45.0 + rng.uniform(-0.06, 0.06, extra)],
             "dec": np.r_[r_dec, rng.uniform(-0.06, 0.06, extra)],
             "flag": rng.integers(0, 3, moved.sum() + extra).astype(np.int16)}
    lds = store(root / "left", left, "lefty")
    rds = store(root / "right", right, "righty")
    lx = export_hats(lds, root / "left_hats", max_rows=150, margin_arcsec=3.0)
    rx = export_hats(rds, root / "right_hats", max_rows=150, margin_arcsec=3.0)
    return lds, rds, lx, rx


@pytest.fixture(scope="module")
def lsdb_catalog(tmp_path_factory):
    """A catalog LSDB writes from a DataFrame (partitions of low orders, a margin)."""
    root = tmp_path_factory.mktemp("hats_lsdb")
    rng = np.random.default_rng(3)
    n = 800
    df = pd.DataFrame({
        "object_id": rng.permutation(n).astype(np.int64) * 10 + 1,
        "ra": rng.uniform(38.0, 52.0, n), "dec": rng.uniform(-7.0, 7.0, n),
        "mag": rng.normal(20, 1, n).astype(np.float32),
        "flux": rng.normal(0, 1, n),
        "name": [f"star-{i}" for i in range(n)],
        "good": rng.random(n) > 0.5,
    })
    _quiet()
    lsdb.from_dataframe(df, catalog_name="stars", lowest_order=2,
                        partition_rows=250).to_hats(root / "stars")
    return df, root / "stars"


# ---- exports LSDB opens -----------------------------------------------------------------------
def test_lsdb_opens_an_export_with_its_margin_and_reads_every_value(image_export):
    from hats.io.validation import is_valid_catalog

    path, out, result = image_export
    ds = open_dataset(path)
    assert is_hats_catalog(out) and is_valid_catalog(result.catalog_path, strict=True)
    assert (out / "collection.properties").is_file() and result.margin_path.is_dir()
    # our NSIDE-16 pixels are the HATS order-4 partitions, unchanged
    assert result.orders == [4] and sorted(p for _, p in result.partitions) == ds.pixels
    _quiet()
    cat = lsdb.open_catalog(out, columns="all")
    assert cat.margin is not None and cat.margin.hc_structure.catalog_info.margin_threshold == 10
    df = lsdb_frame(cat)
    want = ds.get(np.sort(np.asarray(ds.index().ids)))
    assert len(df) == len(ds) == result.rows
    for col in ("object_id", "ra", "dec", "healpix", "mag"):
        np.testing.assert_array_equal(df[col].to_numpy(), want[col])
    assert df["name"].tolist() == [v.decode() for v in want["name"]]
    np.testing.assert_array_equal(to_numpy(df["image_array"], np.float32, (5, 16, 16)),
                                  want["image_array"])
    np.testing.assert_array_equal(to_numpy(df["image_mask"], bool, (5, 16, 16)),
                                  want["image_mask"])
    # the spatial index is HATS's own, and every row lies in its partition
    from hats.pixel_math.spatial_index import compute_spatial_index

    np.testing.assert_array_equal(df["_healpix_29"].to_numpy(),
                                  compute_spatial_index(want["ra"], want["dec"]))
    # by default LSDB loads the catalog columns only (hats_cols_default)
    assert "image_array" not in lsdb.open_catalog(out).columns


def test_lsdb_cone_search_gives_the_rows_of_dataset_cone(image_export):
    path, out, _ = image_export
    ds, back = open_dataset(path), open_dataset(out)
    cat = lsdb.open_catalog(out)
    for ra, dec, radius in ((45.0, 0.0, 1.5), (46.3, 2.1, 0.7), (44.0, -3.9, 2.5)):
        ours = np.sort(ds.cone(ra, dec, radius, columns=["object_id"])["object_id"])
        theirs = np.sort(lsdb_frame(cat.cone_search(ra, dec, radius * 3600))["object_id"])
        again = np.sort(back.cone(ra, dec, radius, columns=["object_id"])["object_id"])
        assert len(ours) > 20
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(ours, again)


def test_lsdb_crossmatch_gives_the_pairs_of_cross_match(corner_pair):
    lds, rds, lx, rx = corner_pair
    assert max(lx.orders) > 4 and max(rx.orders) > 4  # split under the budget
    left, right = lsdb.open_catalog(lx.path), lsdb.open_catalog(rx.path)
    everything = lsdb_frame(left.crossmatch(right, radius_arcsec=1.0, n_neighbors=64,
                                            suffixes=("_l", "_r")))
    theirs = set(zip(everything["object_id_l"], everything["object_id_r"], strict=True))
    ours_all = cross_match(lds, rds, radius_arcsec=1.0, how="all").catalog
    ours = set(zip(ours_all["left_object_id"].to_pylist(),
                   ours_all["right_object_id"].to_pylist(), strict=True))
    assert len(ours) > 1500 and ours == theirs
    # pairs straddling a partition border are found (LSDB through the margin catalog)
    l_part, r_part = open_dataset(lx.path), open_dataset(rx.path)
    assert _partition_of(l_part, ours_all["ra"], ours_all["dec"]) != \
        _partition_of(r_part, ours_all["right_ra"], ours_all["right_dec"])
    # nearest: LSDB's nearest right object of each left one, then our one-to-one rule on those
    near = lsdb_frame(left.crossmatch(right, radius_arcsec=1.0, n_neighbors=1,
                                      suffixes=("_l", "_r")))
    best = near.sort_values(["object_id_r", "_dist_arcsec", "object_id_l"]).drop_duplicates(
        "object_id_r")
    ours_near = cross_match(lds, rds, radius_arcsec=1.0, how="nearest").catalog
    assert len(best) < len(near)  # the one-to-one rule had work to do
    assert set(zip(best["object_id_l"], best["object_id_r"], strict=True)) == set(zip(
        ours_near["left_object_id"].to_pylist(), ours_near["right_object_id"].to_pylist(),
        strict=True))


def _partition_of(ds: HatsDataset, ra, dec) -> list[tuple[int, int]]:
    """The partition (order, pixel) of each position in a HATS catalog."""
    from hats.pixel_math.spatial_index import compute_spatial_index

    hpx = compute_spatial_index(np.asarray(ra), np.asarray(dec))
    found = []
    for h in hpx:
        found.append(next((o, p) for o, p in ds.partitions if h >> (2 * (29 - o)) == p))
    return found


def test_export_splits_pixels_over_the_budget_into_higher_orders(corner_pair):
    from hats.io.validation import is_valid_catalog

    lds, _, lx, _ = corner_pair
    ds, lds = open_dataset(lx.path), open_dataset(lds)
    assert is_valid_catalog(lx.catalog_path, strict=True)
    counts = np.bincount([ds.partitions.index(p) for p in ds.file_partitions],
                         weights=ds.file_rows).astype(int)
    assert counts.max() <= 150 and len(ds) == len(lds)
    # each file holds exactly the rows of its partition's pixel (so none overlap)
    from hats.pixel_math.spatial_index import compute_spatial_index

    for f, ((o, p), n) in enumerate(zip(ds.file_partitions, ds.file_rows, strict=True)):
        ra, dec = ds.column(f, "ra").slice(0, n), ds.column(f, "dec").slice(0, n)
        assert np.all(compute_spatial_index(ra, dec) >> (2 * (29 - o)) == p)
    assert sorted(np.asarray(ds.index().ids)) == sorted(np.asarray(lds.index().ids))


def test_export_is_atomic_refuses_an_existing_folder_and_overwrites(corner_pair, tmp_path):
    lds = corner_pair[0]
    out = tmp_path / "x"
    with pytest.raises(HatsError, match="margin of 10.0 arcsec needs margin pixels"):
        export_hats(lds, out, max_rows=1, margin_arcsec=10.0)  # checked before any write
    # a failure in the middle of writing (a value that is not UTF-8 text) leaves nothing behind
    bad = {"object_id": np.arange(4, dtype=np.int64), "ra": np.array([10.0, 11, 100, 200]),
           "dec": np.zeros(4), "label": np.array([b"ok", b"ok", b"ok", b"\xff\xfe"])}
    with pytest.raises(HatsError, match=r"column 'label': a value is not UTF-8"):
        export_hats(store(tmp_path / "bad", bad, "bad"), out)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad"]
    export_hats(lds, out, margin_arcsec=None, columns=["mag"])
    assert sorted(p.name for p in out.iterdir()) == ["collection.properties", "lefty_test"]
    with pytest.raises(HatsError, match="already exists"):
        export_hats(lds, out)
    again = export_hats(lds, out, overwrite=True)
    assert again.margin_path.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == [
        "bad", "x"]
    assert open_dataset(out).columns == ["object_id", "ra", "dec", "healpix", "mag"]


# ---- catalogs LSDB writes, and the MMU v1.5 layout --------------------------------------------
def test_an_lsdb_catalog_opens_reads_and_imports(lsdb_catalog, tmp_path):
    df, path = lsdb_catalog
    ds = open_dataset(path)
    assert isinstance(ds, HatsDataset) and len(ds) == len(df) and ds.modality is None
    assert ds.columns == ["object_id", "ra", "dec", "mag", "flux", "name", "good", "healpix"]
    assert ds.schema["name"].dtype == "|S8" and ds.margin_path is not None  # "star-799"
    pick = df.sample(25, random_state=1)
    got = ds.get(pick["object_id"].to_numpy())
    for col in ("object_id", "ra", "dec", "mag", "flux", "good"):
        np.testing.assert_array_equal(got[col], pick[col].to_numpy())
    assert got["name"].tolist() == [s.encode() for s in pick["name"]]
    np.testing.assert_array_equal(got["healpix"], layout.healpix_of(pick["ra"], pick["dec"]))
    with pytest.raises(KeyError, match="not in"):
        ds.get([2])
    # cone: the dataframe's rows inside, with the test Dataset.cone applies
    import healpy

    vec = healpy.ang2vec(44.0, 3.0, lonlat=True)
    inside = healpy.ang2vec(df["ra"].to_numpy(), df["dec"].to_numpy(), lonlat=True) @ vec \
        >= np.cos(np.radians(4.0))
    cone = ds.cone(44.0, 3.0, 4.0)
    np.testing.assert_array_equal(np.sort(cone["object_id"]),
                                  np.sort(df["object_id"].to_numpy()[inside]))
    assert len(ds.last_cone_partitions) < len(ds.partitions)
    # rows by NSIDE-16 pixel, from partitions of lower orders (filtered) and higher ones
    assert min(o for o, _ in ds.partitions) < 4
    pixel_of = layout.healpix_of(df["ra"].to_numpy(), df["dec"].to_numpy())
    for pixel in ds.pixels[:3]:
        np.testing.assert_array_equal(np.sort(ds.read_pixel(pixel)["object_id"]),
                                      np.sort(df["object_id"].to_numpy()[pixel_of == pixel]))
    batches = list(ds.iter_batches(100, columns=["object_id"], pixels=ds.pixels[:2]))
    assert sum(len(b["object_id"]) for b in batches) == np.isin(pixel_of, ds.pixels[:2]).sum()
    # a catalog opened from HATS exports again, LSDB reading the same rows
    again_hats = export_hats(ds, tmp_path / "re", margin_arcsec=None)
    np.testing.assert_array_equal(lsdb_frame(lsdb.open_catalog(again_hats.path))["flux"],
                                  df.sort_values("object_id")["flux"])
    # import: an HDF5 dataset that validates, with the same rows
    result = import_hats(path, tmp_path / "data", survey="stars", config="lsdb")
    report = validate(result.path)
    assert report.ok, report.text()
    back = open_dataset(result.path)
    rows = back.get(pick["object_id"].to_numpy())
    for col in got:
        np.testing.assert_array_equal(rows[col], got[col])
    assert back.manifest.provenance["hats"]["catalog_name"] == "stars"
    assert import_hats(path, tmp_path / "data", survey="stars", config="lsdb").noop
    # another catalog into the same place: refused, or swapped in whole with overwrite
    other = tmp_path / "other"
    export_hats(result.path, other, columns=["mag"], margin_arcsec=None)
    with pytest.raises(HatsError, match="made from other input"):
        import_hats(other, tmp_path / "data", survey="stars", config="lsdb")
    again = import_hats(other, tmp_path / "data", survey="stars", config="lsdb", overwrite=True)
    assert not again.noop and again.units_converted == again.units and validate(again.path).ok
    assert sorted(open_dataset(again.path).columns) == ["dec", "healpix", "mag", "object_id",
                                                        "ra"]
    assert not [p for p in again.path.parent.iterdir() if layout.TMP_MARK in p.name]


def test_the_mmu_v15_layout_opens_by_string_id_and_imports_as_spectra(tmp_path):
    """A catalog laid out as the MMU v1.5 converter writes it: a collection
    ``mmu_sdss_sdss/`` around the catalog ``mmu_sdss_sdss/mmu_sdss_sdss/``, a modality's
    arrays nested in one struct column of lists, string object ids. Written here by LSDB;
    the v1.5 collections also hold a 10" margin catalog, which reading does not use (our
    exports, read above, have one)."""
    rng = np.random.default_rng(5)
    n, length = 240, 48
    ra, dec = rng.uniform(149.0, 151.0, n), rng.uniform(1.0, 3.0, n)
    arrays = {"flux": rng.normal(1, 0.1, (n, length)).astype(np.float32),
              "ivar": rng.random((n, length)).astype(np.float32),
              "lsf_sigma": np.full((n, length), 1.2, np.float32),
              "lambda": np.tile(np.linspace(3600, 9800, length, dtype=np.float32), (n, 1)),
              "mask": rng.random((n, length)) > 0.9}

    def lists(a):
        return pa.ListArray.from_arrays(pa.array(np.arange(0, a.size + 1, a.shape[1],
                                                           dtype=np.int32)),
                                        pa.array(a.reshape(-1)))

    spectrum = pa.StructArray.from_arrays([lists(v) for v in arrays.values()],
                                          names=list(arrays))
    table = pa.table({"spectrum": spectrum, "Z": rng.random(n).astype(np.float32),
                      "ra": ra, "dec": dec, "healpix": layout.healpix_of(ra, dec),
                      "object_id": pa.array([str(3_000_000 + i) for i in range(n)])})
    _quiet()
    root = tmp_path / "mmu_sdss_sdss"
    lsdb.from_dataframe(table.to_pandas(types_mapper=pd.ArrowDtype), catalog_name="mmu_sdss_sdss",
                        margin_threshold=None).to_hats(root)
    ds = open_dataset(root)
    assert ds.catalog_path == root / "mmu_sdss_sdss" and ds.collection is not None
    assert ds.modality == "spectrum" and ds.schema["spectrum_flux"].shape == (length,)
    assert ds.schema["object_id"].dtype == "|S7"
    got = ds.get(["3000007", "3000002"])
    np.testing.assert_array_equal(got["spectrum_flux"], arrays["flux"][[7, 2]])
    np.testing.assert_array_equal(got["spectrum_mask"], arrays["mask"][[7, 2]])
    example = ds.example("3000007")
    np.testing.assert_array_equal(example["spectrum"]["flux"], arrays["flux"][7])
    result = import_hats(root, tmp_path / "data", survey="sdss", config="sdss")
    report = validate(result.path, full=True)
    assert report.ok and report.examples_checked == n, report.text()
    assert open_dataset(result.path).get([b"3000002"])["Z"][0] == table["Z"][2].as_py()


def test_a_ragged_list_column_is_an_error_naming_file_column_and_row(tmp_path):
    values = [[1.0, 2.0]] * 5 + [[1.0, 2.0, 3.0]] + [[1.0, 2.0]] * 4
    df = pd.DataFrame({"object_id": np.arange(10), "ra": np.linspace(10, 11, 10),
                       "dec": np.zeros(10),
                       "v": pd.Series(values, dtype=pd.ArrowDtype(pa.list_(pa.float64())))})
    _quiet()
    lsdb.from_dataframe(df, margin_threshold=None).to_hats(tmp_path / "ragged")
    ds = open_dataset(tmp_path / "ragged")
    assert ds.schema["v"].shape == (2,)
    with pytest.raises(HatsError, match=r"Npix=\d+\.parquet: column 'v': row \d+ holds a list "
                                        r"of 3 values"):
        ds.get(np.arange(10), columns=["v"])


def test_a_collection_naming_a_catalog_outside_it_is_refused(image_export, tmp_path):
    _, out, result = image_export
    shutil.copytree(result.catalog_path, tmp_path / "elsewhere")
    (tmp_path / "coll").mkdir()
    (tmp_path / "coll" / "collection.properties").write_text(
        "obs_collection=coll\nhats_primary_table_url=../elsewhere\n")
    with pytest.raises(HatsError, match=r"main catalog '../elsewhere' is not a folder inside "
                                        r"the collection: refused"):
        open_dataset(tmp_path / "coll")
    assert len(open_dataset(tmp_path / "elsewhere")) == result.rows  # the catalog itself opens


# ---- round trip, resuming, loaders --------------------------------------------------------------
def test_export_then_import_gives_back_every_value_and_the_aliases(image_export, tmp_path):
    path, out, _ = image_export
    ds = open_dataset(path)
    result = import_hats(out, tmp_path / "data", survey="toyimg", config="back")
    back = open_dataset(result.path)
    assert back.schema == ds.schema and back.manifest.modality == "image"
    assert back.standard_names() == ds.standard_names() == {"mag": "magnitude"}
    ids = np.asarray(ds.index().ids)
    want, got = ds.get(ids), back.get(ids)
    for col in want:
        np.testing.assert_array_equal(got[col], want[col])
    report = validate(result.path)
    assert report.ok, report.text()
    assert import_hats(out, tmp_path / "data", survey="toyimg", config="back").noop


def test_an_interrupted_import_resumes_without_redoing_finished_parts(corner_pair, tmp_path):
    _, _, lx, _ = corner_pair
    src = tmp_path / "src"
    shutil.copytree(lx.path, src)
    ds = open_dataset(src)
    last = ds.files[-1]
    data, st = last.read_bytes(), last.stat()
    last.write_bytes(data[: len(data) // 2])  # a damaged partition file
    with pytest.raises(mmu_core.errors.BuildError, match=last.name):
        import_hats(src, tmp_path / "data", survey="lefty", config="test")
    dataset_dir = tmp_path / "data" / "lefty" / "test"
    staged = sorted(p.name for p in (dataset_dir / "_staging").iterdir() if p.is_dir())
    assert len(staged) == len(ds.files) - 1 and not (dataset_dir / "manifest.json").exists()
    last.write_bytes(data)  # repaired: the same bytes and times as before
    os.utime(last, ns=(st.st_atime_ns, st.st_mtime_ns))
    result = import_hats(src, tmp_path / "data", survey="lefty", config="test")
    assert result.units == len(ds.files) and result.units_converted == 1
    assert validate(dataset_dir).ok and result.rows == len(ds)


def test_hf_load_and_the_loaders_read_a_hats_catalog(image_export):
    path, out, _ = image_export
    ds = open_dataset(path)
    stream = mmu_core.hf.load(out, streaming=True)
    first = next(iter(stream))
    row = ds.get([first["object_id"]])
    np.testing.assert_array_equal(np.reshape(first["image"][2]["array"], (16, 16)),
                                  row["image_array"][0, 2])
    assert first["magnitude"] == pytest.approx(float(row["mag"][0]))
    maps = MapDataset(out, columns=["object_id", "image_array", "mag"])
    copy = pickle.loads(pickle.dumps(maps))  # what a DataLoader worker gets
    for i in (0, 17, len(maps) - 1):
        a, b = maps[i], copy[i]
        np.testing.assert_array_equal(a["image_array"], b["image_array"])
        np.testing.assert_array_equal(a["image_array"], ds.get([a["object_id"]])["image_array"][0])
    seen = np.concatenate([b["object_id"] for b in StreamDataset(out, columns=["object_id"],
                                                                 batch_size=256, seed=1)])
    assert len(seen) == len(ds) and np.array_equal(np.sort(seen), np.sort(ds.index().ids))


# ---- the command line ---------------------------------------------------------------------------
def test_the_cli_exports_and_imports(toy_image_dataset, tmp_path):
    path, _ = toy_image_dataset
    runner = CliRunner()
    res = runner.invoke(app, ["export-hats", str(path), str(tmp_path / "h"), "--columns",
                              "magnitude,name", "--margin-arcsec", "5"])
    assert res.exit_code == 0, res.output
    assert "1,800 rows in" in " ".join(res.output.split()) and (tmp_path / "h" / "toyimg_default_5arcs").is_dir()
    assert open_dataset(tmp_path / "h").columns == ["object_id", "ra", "dec", "healpix", "mag",
                                                    "name"]
    res = runner.invoke(app, ["export-hats", str(path), str(tmp_path / "h")])
    assert res.exit_code == 1 and "already exists" in " ".join(res.output.split())
    res = runner.invoke(app, ["import-hats", str(tmp_path / "h"), "--out", str(tmp_path / "d"),
                              "--survey", "toyimg", "--config", "cat"])
    assert res.exit_code == 0, res.output
    assert "1,800 rows" in " ".join(res.output.split()) and validate(tmp_path / "d" / "toyimg" / "cat").ok
    res = runner.invoke(app, ["import-hats", str(path), "--out", str(tmp_path / "d"),
                              "--survey", "toyimg", "--config", "bad"])
    assert res.exit_code == 1 and "not a HATS catalog" in " ".join(res.output.split())


def test_without_hats_the_core_imports_and_says_what_to_install(image_export):
    _, out, _ = image_export
    code = (
        "import sys\n"
        "sys.modules['hats'] = None; sys.modules['lsdb'] = None\n"
        "import mmu_core, mmu_core.loader, mmu_core.hf, mmu_core.hats\n"
        "from mmu_core.cli import app\n"
        "from mmu_core.storage.hats import HatsError\n"
        "try:\n"
        f"    mmu_core.open_dataset({str(out)!r})\n"
        "except HatsError as exc:\n"
        "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pip install 'mmu-core[hats]'" in done.stdout


def test_validate_says_a_hats_catalog_is_not_an_hdf5_dataset(image_export):
    _, out, _ = image_export
    report = validate(out)
    assert not report.ok
    assert any("a HATS catalog" in p.message and "import-hats" in p.message
               for p in report.problems)
