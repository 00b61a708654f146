"""Published MMU v1 folders (third-party files, no manifest) hold any subset of a modality's
columns: absent is not corrupt. Such folders validate; real corruption is still caught."""

from __future__ import annotations

import h5py
import healpy
import numpy as np
import pytest
from typer.testing import CliRunner

import mmu_core
from mmu_core.cli import app
from mmu_core.validate import validate

PIXEL = 1234
N = 30
L = 200


def v1_folder(root, columns: dict[str, np.ndarray]):
    """A v1-style folder: ``healpix=N/001-of-001.hdf5`` written by plain h5py."""
    rng = np.random.default_rng(5)
    folder = root / "v1" / "cfg"
    (folder / f"healpix={PIXEL}").mkdir(parents=True)
    ra0, dec0 = healpy.pix2ang(16, PIXEL, nest=True, lonlat=True)
    base = {"object_id": np.arange(N, dtype=np.int64) * 3,
            "ra": ra0 + rng.uniform(-0.2, 0.2, N), "dec": dec0 + rng.uniform(-0.2, 0.2, N)}
    base["healpix"] = healpy.ang2pix(16, base["ra"], base["dec"], nest=True, lonlat=True)
    assert np.all(base["healpix"] == PIXEL)
    with h5py.File(folder / f"healpix={PIXEL}" / "001-of-001.hdf5", "w") as h:
        for name, value in {**base, **columns}.items():
            h[name] = value
    return folder


def spectra(*names: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    out = {"spectrum_flux": rng.normal(1, 0.1, (N, L)).astype(np.float32),
           "spectrum_ivar": rng.random((N, L)).astype(np.float32),
           "spectrum_lambda": np.tile(np.linspace(3600, 9800, L, dtype=np.float32), (N, 1)),
           "spectrum_lsf_sigma": np.full((N, L), 1.1, np.float32)}
    return {k: out[k] for k in names}


@pytest.mark.parametrize("columns", [
    spectra("spectrum_flux", "spectrum_ivar", "spectrum_lambda", "spectrum_lsf_sigma"),
    {**spectra("spectrum_flux"),
     "image_array": np.random.default_rng(2).normal(0, 1, (N, 3, 16, 16)).astype(np.float32)},
], ids=["desi-style, no mask", "image and flux only"])
def test_clean_v1_folders_validate(tmp_path, columns):
    folder = v1_folder(tmp_path, columns)
    report = validate(folder, full=True)
    assert report.ok, report.text()
    assert report.examples_checked == N
    ds = mmu_core.open_dataset(folder)
    assert ds.modality == "spectrum"
    example = ds.example(3)
    np.testing.assert_array_equal(example["spectrum"]["flux"], columns["spectrum_flux"][1])
    assert "spectrum_mask" in ds.info()["absent_columns"]
    shown = CliRunner().invoke(app, ["info", str(folder)], terminal_width=200)
    assert shown.exit_code == 0 and "absent spectrum columns (allowed):" in shown.output


def _rewrite(folder, name, change):
    path = next(folder.glob("healpix=*/*.hdf5"))
    with h5py.File(path, "r+") as h:
        value = change(h[name][...])
        del h[name]
        h[name] = value


@pytest.mark.parametrize("name, change, expect", [
    ("healpix", lambda v: v + 1, "healpix"),
    ("spectrum_flux", lambda v: v[:-1], "truncated"),
    ("object_id", lambda v: v[::-1].copy(), "not sorted"),
    ("spectrum_lambda", lambda v: v[:, ::-1].copy(), "lambda must increase"),
    ("spectrum_ivar", lambda v: v[:, :-5], "same length"),
])
def test_planted_corruption_in_a_v1_folder_is_caught(tmp_path, name, change, expect):
    folder = v1_folder(tmp_path, spectra("spectrum_flux", "spectrum_ivar", "spectrum_lambda"))
    _rewrite(folder, name, change)
    report = validate(folder, full=True)
    assert not report.ok
    assert any(expect in p.message for p in report.problems), report.text()
