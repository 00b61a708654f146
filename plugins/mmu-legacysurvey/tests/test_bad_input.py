"""Bad input: an InputError naming the file, the object and what is wrong; ``--skip-bad``
skips and lists it (a brick's missing file: the brick's unit; a damaged tile: the objects
whose stamps touch it)."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from astropy.io import fits

from mmu_core.build import build
from mmu_core.errors import BuildError, InputError


def _first_selected(raw, ls):
    """The first brick with selected objects, its selected ids in catalog order."""
    for brick in ls.bricks(raw):
        cat = ls.catalog(raw, brick)
        ids = ls.object_ids(cat)[ls.selected(cat)]
        if len(ids):
            return brick, [i.decode() for i in ids]
    raise AssertionError("no selected object in the sample")


def _convert_error(raw, ls, config="dr10_south_21") -> InputError:
    with pytest.raises(InputError) as info:
        ls.convert_all(raw, config)
    return info.value


@pytest.mark.parametrize("kind, band", [("image", "i"), ("invvar", "z"), ("maskbits", None)])
def test_missing_coadd_file(raw_copy, ls, kind, band):
    brick, ids = _first_selected(raw_copy, ls)
    path = ls.coadd_path(raw_copy, brick, kind, band)
    path.unlink()
    err = _convert_error(raw_copy, ls)
    assert err.file == str(path)  # where it should be
    assert err.object == ids[0]
    assert f"brick {brick}" in err.message and path.name in err.message


def test_brick_without_its_tractor_catalog(raw_copy, ls):
    brick, _ = _first_selected(raw_copy, ls)
    path = ls.tractor_path(raw_copy, brick)
    path.unlink()
    err = _convert_error(raw_copy, ls)
    assert err.file == str(path) and err.object == f"brick {brick}"
    assert "no Tractor catalog" in err.message


def test_catalog_without_a_required_column(raw_copy, ls):
    brick, _ = _first_selected(raw_copy, ls)
    path = ls.tractor_path(raw_copy, brick)
    with fits.open(path) as hdul:
        table = fits.BinTableHDU.from_columns(
            [c for c in hdul[1].columns if c.name != "psfsize_r"])
        fits.HDUList([hdul[0].copy(), table]).writeto(path, overwrite=True)
    err = _convert_error(raw_copy, ls)
    assert err.file == str(path) and "psfsize_r" in err.message


def _damage_tile_under(path, x, y):
    """Overwrite the compressed bytes of the tile holding pixel (x, y): the table of a
    compressed HDU holds one (length, heap offset) descriptor per tile, row-major."""
    raw = bytearray(path.read_bytes())
    with fits.open(path, disable_image_compression=True) as hdul:
        h = hdul[1].header
        table_start = hdul[1]._data_offset
    per_row = -(-h["ZNAXIS1"] // h["ZTILE1"])
    tile = (y // h["ZTILE2"]) * per_row + x // h["ZTILE1"]
    table_bytes = h["NAXIS1"] * h["NAXIS2"]
    descriptors = np.frombuffer(bytes(raw[table_start:table_start + table_bytes]),
                                dtype=">i4").reshape(h["NAXIS2"], -1)
    start = table_start + h.get("THEAP", table_bytes) + int(descriptors[tile][1])
    raw[start + 8:start + 40] = bytes([0xAB]) * 32
    path.write_bytes(bytes(raw))


def test_damaged_tile_names_file_and_object(raw_copy, ls):
    out, _ = ls.convert_all(raw_copy)
    victim = int(np.flatnonzero((out["bx"] > 100) & (out["bx"] < 300))[0])
    oid = out["object_id"][victim].decode()
    brick = oid.split("-")[0]
    path = ls.coadd_path(raw_copy, brick, "image", "r")
    _damage_tile_under(path, int(round(float(out["bx"][victim]))),
                       int(round(float(out["by"][victim]))))
    err = _convert_error(raw_copy, ls)
    assert err.file == str(path) and err.object is not None
    assert "damaged compressed tile" in err.message
    # with --skip-bad the objects touching that tile are left out and listed, the rest kept
    again, ctx = ls.convert_all(raw_copy, skip_bad=True)
    skipped = {p.object for p in ctx.skipped}
    assert oid in skipped and all(p.file == str(path) for p in ctx.skipped)
    assert set(again["object_id"].tolist()) == set(out["object_id"].tolist()) - {
        s.encode() for s in skipped}


def test_truncated_coadd_file(raw_copy, ls):
    brick, ids = _first_selected(raw_copy, ls)
    path = ls.coadd_path(raw_copy, brick, "invvar", "g")
    path.write_bytes(path.read_bytes()[:5000])
    err = _convert_error(raw_copy, ls)
    assert err.file == str(path) and err.object == ids[0]


@pytest.mark.parametrize("broken", ["image-g", "invvar-z", "tractor"])
def test_build_stops_or_skips_and_lists_the_bad_brick(tmp_path, raw, ls, broken):
    """Through the core: the build names the unit, file and object; --skip-bad skips the
    brick, lists it with that reason, and builds the others."""
    work = tmp_path / "raw"
    shutil.copytree(raw, work)
    brick, ids = _first_selected(work, ls)
    if broken == "tractor":
        missing, named = ls.tractor_path(work, brick), f"brick {brick}"
    else:
        kind, band = broken.split("-")
        missing, named = ls.coadd_path(work, brick, kind, band), ids[0]
    missing.unlink()
    registry = ls.registry()
    with pytest.raises(BuildError, match=str(missing)):
        build("legacysurvey", work, tmp_path / "out1", registry=registry)
    summary = build("legacysurvey", work, tmp_path / "out2", options={"skip_bad": True},
                    registry=registry)
    assert [s["key"] for s in summary.skipped_units] == [brick]
    assert str(missing) in summary.skipped_units[0]["reason"]
    assert named in summary.skipped_units[0]["reason"]
    others = [b for b in ls.bricks(raw) if b != brick]
    assert summary.rows == sum(int(ls.selected(ls.catalog(raw, b)).sum()) for b in others)


def test_build_skips_and_lists_objects_on_a_damaged_tile(tmp_path, raw, ls):
    work = tmp_path / "raw"
    shutil.copytree(raw, work)
    out, _ = ls.convert_all(work)
    victim = int(np.flatnonzero((out["bx"] > 100) & (out["bx"] < 300))[0])
    oid = out["object_id"][victim].decode()
    path = ls.coadd_path(work, oid.split("-")[0], "maskbits")
    _damage_tile_under(path, int(round(float(out["bx"][victim]))),
                       int(round(float(out["by"][victim]))))
    with pytest.raises(BuildError, match="damaged compressed tile"):
        build("legacysurvey", work, tmp_path / "out1", registry=ls.registry())
    summary = build("legacysurvey", work, tmp_path / "out2", options={"skip_bad": True},
                    registry=ls.registry())
    listed = {s["object"] for s in summary.skipped_objects}
    assert oid in listed and {s["file"] for s in summary.skipped_objects} == {str(path)}
    assert summary.rows == len(out["object_id"]) - len(listed) and not summary.skipped_units


# ---- Stein et al. ----------------------------------------------------------------------------
def _stein_files(raw):
    return sorted((raw / "images" / "south").glob("images_npix152_*.h5"))


def test_stein_missing_dataset(raw_copy, ls):
    path = _stein_files(raw_copy)[0]
    with h5py.File(path, "a") as f:
        del f["psfsize"]
    err = _convert_error(raw_copy, ls, "stein_et_al")
    assert err.file == str(path) and "'psfsize'" in err.message


def test_stein_wrong_image_shape(raw_copy, ls):
    path = _stein_files(raw_copy)[0]
    with h5py.File(path, "a") as f:
        images = f["images"][...]
        del f["images"]
        f.create_dataset("images", data=np.moveaxis(images, 1, -1))  # channels last
    err = _convert_error(raw_copy, ls, "stein_et_al")
    assert err.file == str(path) and "(N, 3, 152, 152)" in err.message


def test_stein_file_outside_a_region_folder(raw_copy, ls):
    path = _stein_files(raw_copy)[0]
    moved = raw_copy / path.name
    path.rename(moved)
    err = _convert_error(raw_copy, ls, "stein_et_al")
    assert err.file == str(moved) and "south" in err.message


def test_stein_repeated_inds_are_kept_once_and_listed(raw_copy, ls):
    first, second = _stein_files(raw_copy)[:2]
    with h5py.File(first, "r") as f:
        repeated = int(f["inds"][3])
    with h5py.File(second, "a") as f:
        f["inds"][1] = repeated
    out, ctx = ls.convert_all(raw_copy, "stein_et_al")
    assert (out["object_id"] == repeated).sum() == 1
    (problem,) = ctx.skipped
    assert problem.file == str(second) and problem.object == str(repeated)
    assert str(first) in problem.message and "row 3" in problem.message
