"""stein_et_al: stored rows are the source HDF5 rows, read in blocks."""

from __future__ import annotations

import h5py
import numpy as np

from mmu_legacysurvey import stein

PER_BAND = ("flux", "fiberflux", "psfdepth", "psfsize", "nobs", "transmission", "fracin")


def _source_rows(raw):
    """Every row of every file, read here with h5py: {inds: (file, row, datasets)}."""
    rows = {}
    for path in sorted((raw / "images" / "south").glob("images_npix152_*.h5")):
        with h5py.File(path, "r") as f:
            data = {k: f[k][...] for k in f}
        for r, ind in enumerate(data["inds"]):
            rows[int(ind)] = {k: v[r] for k, v in data.items()}
    return rows


def test_rows_equal_the_source_rows(raw, ls):
    out, ctx = ls.convert_all(raw, "stein_et_al")
    source = _source_rows(raw)
    assert sorted(out["object_id"].tolist()) == sorted(source) and not ctx.skipped
    assert out["image_array"].shape[1:] == (3, 152, 152)
    for r, oid in enumerate(out["object_id"]):
        src = source[int(oid)]
        np.testing.assert_array_equal(out["image_array"][r], src["images"])
        for name in ("inds", "ra", "dec", "release", "brickid", "objid", "z_spec", "ebv",
                     "maskbits", "source_type", "z_phot_mean", "z_phot_u95"):
            assert out[name][r] == src[name], name
        for name in PER_BAND:
            for k, b in enumerate("grz"):
                assert out[f"{name}_{b}"][r] == src[name][k], (name, b)
        np.testing.assert_array_equal(out["image_psf_fwhm"][r], src["psfsize"])
        np.testing.assert_allclose(out["image_extinction"][r],
                                   -2.5 * np.log10(src["transmission"].astype(float)), rtol=1e-5)
        assert out["region"][r] == b"south"
    assert out["image_band"].tolist()[0] == [b"des-g", b"des-r", b"des-z"]
    np.testing.assert_allclose(out["image_scale"], 0.262, rtol=1e-6)
    np.testing.assert_allclose(out["model_mag_r"], 22.5 - 2.5 * np.log10(out["flux_r"]), rtol=1e-6)


def test_files_are_read_in_blocks(raw, ls, monkeypatch):
    whole, _ = ls.convert_all(raw, "stein_et_al")
    row_bytes = 4 * 3 * 152 * 152
    monkeypatch.setattr(stein, "BATCH_BYTES", 5 * row_bytes)  # five rows per block
    registry = ls.registry()
    from mmu_core.models import ConvertContext
    units = registry.discover("legacysurvey", "stein_et_al", raw, {"rows_per_unit": 7})
    assert all(u.meta["stop"] - u.meta["start"] <= 7 for u in units)
    context = ConvertContext(raw_dir=raw, options={})
    batches = [b for u in units for b in registry.convert(u, context)]
    assert max(len(b["object_id"]) for b in batches) == 5
    ids = np.concatenate([b["object_id"] for b in batches])
    np.testing.assert_array_equal(ids, whole["object_id"])


def test_missing_optional_datasets_are_filled_with_a_warning(raw_copy, ls):
    for path in (raw_copy / "images" / "south").glob("*.h5"):
        with h5py.File(path, "a") as f:
            del f["transmission"], f["source_type"]
    out, ctx = ls.convert_all(raw_copy, "stein_et_al")
    assert np.isnan(out["transmission_g"]).all() and (out["source_type"] == b"").all()
    assert np.isnan(out["image_extinction"]).all()
    assert any("transmission" in w and "source_type" in w for w in ctx.warnings)


def test_north_ids_are_offset(raw_copy, ls):
    south = raw_copy / "images" / "south"
    north = raw_copy / "images" / "north"
    north.mkdir()
    first = sorted(south.glob("*.h5"))[0]
    (north / first.name).write_bytes(first.read_bytes())
    out, _ = ls.convert_all(raw_copy, "stein_et_al")
    with h5py.File(first, "r") as f:
        inds = f["inds"][...]
    north_rows = out["region"] == b"north"
    assert sorted(out["object_id"][north_rows] - (1 << 40)) == sorted(inds)
    assert len(set(out["object_id"].tolist())) == len(out["object_id"])
