"""Bad input: an InputError naming the file and the problem; --skip-bad skips the file."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from desi_fitsmaker import fibermap_table, random_cameras, run_convert, write_coadd, write_zall

import mmu_desi.hooks as hooks
from mmu_core.build import build
from mmu_core.errors import BuildError, InputError


def good_coadd(raw, name="coadd-main-dark-42.fits", seed=0, tid=(1, 2, 3), **kw):
    rng = np.random.default_rng(seed)
    n = len(tid)
    return write_coadd(raw / name, fibermap_table(list(tid), rng.uniform(150, 150.2, n),
                                                  rng.uniform(2, 2.2, n)),
                       random_cameras(rng, n), **kw)


def convert_error(raw) -> InputError:
    with pytest.raises(InputError) as info:
        run_convert(raw)
    return info.value


@pytest.mark.parametrize("keep_fraction", [0.003, 0.01, 0.5, 0.999])
def test_truncated_file(tmp_path, keep_fraction):
    path = good_coadd(tmp_path / "raw")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    err = convert_error(tmp_path / "raw")
    assert err.file == str(path) and "truncated" in err.message


def test_corrupt_file(tmp_path):
    path = good_coadd(tmp_path / "raw")
    data = bytearray(path.read_bytes())
    data[:2880] = b"this is not a FITS header " * 110 + b"x" * 20
    path.write_bytes(bytes(data))
    err = convert_error(tmp_path / "raw")
    assert err.file == str(path) and "not a readable FITS file" in err.message


def test_missing_hdu(tmp_path):
    path = good_coadd(tmp_path / "raw", drop=("R_IVAR",))
    err = convert_error(tmp_path / "raw")
    assert err.file == str(path) and "missing HDU R_IVAR" in err.message


def test_camera_length_mismatch(tmp_path):
    raw = tmp_path / "raw"
    path = good_coadd(raw)
    with fits.open(path, mode="update") as h:
        h["R_FLUX"].data = h["R_FLUX"].data[:, :2300].copy()
    err = convert_error(raw)
    assert err.file == str(path)
    assert "camera R" in err.message and "R_FLUX" in err.message and "2326" in err.message


def test_resolution_rows_disagree_with_fibermap(tmp_path):
    raw = tmp_path / "raw"
    path = good_coadd(raw)
    with fits.open(path, mode="update") as h:
        h["Z_RESOLUTION"].data = h["Z_RESOLUTION"].data[:2].copy()
    err = convert_error(raw)
    assert err.file == str(path) and "Z_RESOLUTION" in err.message


def test_wavelengths_off_the_desi_grid(tmp_path):
    raw = tmp_path / "raw"
    path = good_coadd(raw)
    with fits.open(path, mode="update") as h:
        h["B_WAVELENGTH"].data = h["B_WAVELENGTH"].data + 0.3
    err = convert_error(raw)
    assert err.file == str(path) and "B_WAVELENGTH" in err.message and "grid" in err.message


def test_bad_redshift_catalog_is_named(tmp_path):
    raw = tmp_path / "raw"
    good_coadd(raw)
    bad = write_zall(raw / "zall-pix-iron.fits", {"TARGETID": np.array([1])}, {"TARGETID": "K"})
    with pytest.raises(InputError) as info:
        hooks.mmu_discover("desi", "dr1_main", raw, {})
    assert info.value.file == str(bad) and "SURVEY" in info.value.message


def test_empty_folder(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(InputError, match="no DESI coadd"):
        hooks.mmu_discover("desi", "dr1_main", tmp_path / "raw", {})


def test_skip_bad_build_goes_on_and_lists_the_file(tmp_path, desi_registry):
    raw = tmp_path / "raw"
    good_coadd(raw, "coadd-main-dark-42.fits")
    bad = good_coadd(raw, "coadd-main-dark-43.fits", seed=1, tid=(7, 8))
    bad.write_bytes(bad.read_bytes()[:100_000])
    with pytest.raises(BuildError, match="coadd-main-dark-43.*truncated"):
        build("desi", raw, tmp_path / "out1", registry=desi_registry)
    summary = build("desi", raw, tmp_path / "out2", options={"skip_bad": True},
                    registry=desi_registry)
    assert summary.rows == 3
    assert [s["key"] for s in summary.skipped_units] == ["coadd-main-dark-43"]
    assert str(bad) in summary.skipped_units[0]["reason"]
    assert "truncated" in summary.skipped_units[0]["reason"]
