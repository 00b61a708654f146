"""sample -> build -> validate through the core (Python API and the ``mmu`` command line), and
reading back: rows by id, one spaxel straight from HDF5, the logical IFU example."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits
from manga_testutil import SMALL, channel_index, expected_labels, find

import mmu_core
import mmu_manga.hooks
from mmu_core import testing
from mmu_manga import datamodel as dm

MMU = [sys.executable, "-c", "from mmu_core.cli import app; app()"]


def all_ids(ds) -> np.ndarray:
    return np.concatenate([b["object_id"] for b in ds.iter_batches(columns=["object_id"])])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    registry = testing.plugin_registry(mmu_manga.hooks)
    path = testing.sample_build_validate(
        "manga", work, n=3, seed=21, sample_options={**SMALL, "bundles": "19,37"},
        registry=registry)
    return path, work / "raw" / "manga"


def test_rows_read_back_equal_fits(built):
    path, raw = built
    ds = mmu_core.open_dataset(path)
    assert len(ds) == 3 and ds.modality == "ifu"
    for cube_path in find(raw, "manga-*-LOGCUBE.fits.gz"):
        plateifu = cube_path.name[6:-len("-LOGCUBE.fits.gz")]
        with fits.open(cube_path) as cube, \
                fits.open(find(raw, f"manga-{plateifu}-MAPS-*.fits.gz")[0]) as maps:
            mangaid = cube[0].header["MANGAID"]
            row = ds.get([mangaid], columns=["ifu_flux", "ifu_mask", "ifu_offset", "ifu_size",
                                             "ifu_image_data", "ifu_image_label", "z", "ra"])
            _, ny, nx = cube["FLUX"].data.shape
            y0, x0 = (96 - ny) // 2, (96 - nx) // 2
            assert row["ifu_offset"][0].tolist() == [y0, x0]
            y, x = ny // 2 + 1, nx // 2 - 2
            assert np.array_equal(row["ifu_flux"][0, y0 + y, x0 + x], cube["FLUX"].data[:, y, x])
            assert np.all(row["ifu_mask"][0, :y0] == dm.DRP_DONOTUSE)  # padding rows
            labels = [s.decode() for s in row["ifu_image_label"][0]]
            k = labels.index("emline_gflux_ha_6564")
            ha = maps["EMLINE_GFLUX"].data[channel_index(maps["EMLINE_GFLUX"].header, "Ha-6564")]
            assert np.array_equal(row["ifu_image_data"][0, k, y0 : y0 + ny, x0 : x0 + nx], ha)
            assert row["ra"][0] == cube[0].header["IFURA"]
            with fits.open(find(raw, "drpall-*.fits")[0]) as drp:
                t = drp["MANGA"].data
                assert row["z"][0] == t["nsa_z"][np.char.strip(t["mangaid"]) == mangaid][0]


def test_one_spaxel_from_hdf5_without_the_rest(built):
    path, raw = built
    ds = mmu_core.open_dataset(path)
    f = ds.files[0]
    with h5py.File(f, "r") as h:
        flux = h["ifu_flux"]
        # one galaxy per chunk row, a fraction of the spaxels per chunk, whole spectra
        assert flux.chunks[0] == 1 and flux.chunks[-1] == flux.shape[-1]
        assert flux.chunks[1] * flux.chunks[2] < 96 * 96
        mangaid = h["object_id"][0].decode()
        y0, x0 = h["ifu_offset"][0]
        spectrum = flux[0, y0 + 3, x0 + 4, :]
    cube = next(c for c in find(raw, "manga-*-LOGCUBE.fits.gz")
                if fits.getheader(c)["MANGAID"] == mangaid)
    with fits.open(cube) as c:
        assert np.array_equal(spectrum, c["FLUX"].data[:, 3, 4])


def test_logical_example(built):
    path, raw = built
    ds = mmu_core.open_dataset(path)
    mangaid = all_ids(ds)[0].decode()
    ex = ds.example(mangaid)
    ny, nx = (int(v) for v in ds.get([mangaid], columns=["ifu_size"])["ifu_size"][0])
    assert len(ex["spaxels"]) == ny * nx
    sp = ex["spaxels"][nx + 2]  # x = 2, y = 1
    assert (sp["x"], sp["y"]) == (2, 1)
    cube = next(c for c in find(raw, "manga-*-LOGCUBE.fits.gz")
                if fits.getheader(c)["MANGAID"] == mangaid)
    with fits.open(cube) as c:
        assert np.array_equal(sp["flux"], c["FLUX"].data[:, 1, 2])
        assert np.array_equal(sp["lsf_sigma"], c["LSFPOST"].data[:, 1, 2])
        assert np.array_equal(ex["images"][1]["data"], c["RIMG"].data)  # cropped to the cube
    assert [im["label"] for im in ex["images"]] == expected_labels(
        find(raw, "manga-*-MAPS-*.fits.gz")[0])
    assert ex["images"][0]["filter"] == "g"
    assert ex["spaxel_size"] == pytest.approx(0.5)
    assert ex["z"] > 0 and "observation_id" in ex


def _mmu(*args, check=True):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "1000"}  # rich: no wrapping
    res = subprocess.run([*MMU, *map(str, args)], capture_output=True, text=True, env=env)
    if check and res.returncode != 0:
        raise AssertionError(f"mmu {' '.join(map(str, args))} failed:\n{res.stdout}\n{res.stderr}")
    return res


def test_cli_sample_build_validate_with_bad_inputs(tmp_path):
    raw = tmp_path / "raw"
    _mmu("sample", "manga", "--out", raw, "--n", 4, "--seed", 5, "--ra", 150, "--dec", 2,
         "--radius", "0.3deg", "--nwave", 150, "--bundles", "19", "--layout", "flat")
    cubes = sorted(raw.glob("manga-*-LOGCUBE.fits.gz"))
    assert len(cubes) == 4
    data = cubes[0].read_bytes()
    cubes[0].write_bytes(data[: len(data) // 2])  # corrupt gzip
    no_maps = cubes[1].name.replace("LOGCUBE", f"MAPS-{dm.DAPTYPE}")
    (raw / no_maps).unlink()

    res = _mmu("build", "manga", "--raw", raw, "--out", tmp_path / "fail", check=False)
    assert res.returncode != 0
    assert cubes[0].name in res.stdout + res.stderr

    out = tmp_path / "out"
    res = _mmu("build", "manga", "--raw", raw, "--out", out, "--skip-bad")
    text = res.stdout + res.stderr
    assert "skipped 1 unit" in text and cubes[0].name in text
    assert "no MAPS" in text
    _mmu("validate", out / "manga" / "dr17")
    assert len(mmu_core.open_dataset(out / "manga" / "dr17")) == 3

    out2 = tmp_path / "out2"
    res = _mmu("build", "manga", "--raw", raw, "--out", out2, "--skip-bad", "--require-maps")
    text = res.stdout + res.stderr
    assert "--require-maps" in text and no_maps in text
    _mmu("validate", out2 / "manga" / "dr17")
    assert len(mmu_core.open_dataset(out2 / "manga" / "dr17")) == 2


def test_flat_and_sas_layouts_build_the_same(tmp_path, built):
    path, raw = built
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in raw.rglob("*.fits*"):
        shutil.copy(f, flat / f.name)
    from mmu_core.build import build

    summary = build("manga", flat, tmp_path / "out", registry=testing.plugin_registry(mmu_manga.hooks))
    a, b = mmu_core.open_dataset(path), mmu_core.open_dataset(summary.path)
    ids = sorted(all_ids(a).tolist())
    assert len(ids) == 3 and sorted(all_ids(b).tolist()) == ids
    ra = a.get(ids, columns=["ifu_flux", "ifu_image_data"])
    rb = b.get(ids, columns=["ifu_flux", "ifu_image_data"])
    assert all(np.array_equal(ra[k], rb[k], equal_nan=True) for k in ra)
    assert Path(summary.path).name == "dr17"


def test_huggingface_rows_are_the_ifu_example(built):
    pytest.importorskip("datasets")
    import mmu_core.hf

    path, raw = built
    ex = next(iter(mmu_core.hf.load(path, streaming=True)))
    cube = next(c for c in find(raw, "manga-*-LOGCUBE.fits.gz")
                if fits.getheader(c)["MANGAID"] == ex["object_id"])
    maps = find(raw, cube.name.replace("LOGCUBE", f"MAPS-{dm.DAPTYPE}"))[0]
    with fits.open(cube) as c, fits.open(maps) as m:
        _, ny, nx = c["FLUX"].data.shape
        assert len(ex["spaxels"]) == ny * nx
        sp = ex["spaxels"][3 * nx + 5]
        assert (sp["x"], sp["y"]) == (5, 3)
        for key, ext in (("flux", "FLUX"), ("ivar", "IVAR"), ("mask", "MASK"), ("lsf_sigma", "LSFPOST")):
            assert np.array_equal(np.asarray(sp[key]), c[ext].data[:, 3, 5]), key
        assert np.allclose(np.asarray(sp["lambda"]), c["WAVE"].data, rtol=1e-6)
        images = {im["label"]: im for im in ex["images"]}
        assert list(images) == expected_labels(maps)
        vel = images["stellar_vel"]
        assert vel["units"] == "km/s"
        assert np.array_equal(np.asarray(vel["data"]), m["STELLAR_VEL"].data)
        assert np.array_equal(np.asarray(vel["ivar"]), m["STELLAR_VEL_IVAR"].data)
        assert np.array_equal(np.asarray(vel["mask"]), m["STELLAR_VEL_MASK"].data)
        assert images["reconstructed_g"]["filter"] == "g"


def test_preview_draws_a_galaxy(built, tmp_path):
    from mmu_core.previews import preview

    path, _ = built
    png = preview(path, tmp_path / "manga.png")
    assert png.is_file() and png.stat().st_size > 10_000
