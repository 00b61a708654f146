"""sample -> build -> validate through the core (in-process and on the command line), the
validator's segmentation-vs-image check, and --skip-bad through a real build."""

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

import mmu_core
from mmu_core import schemas, testing
from mmu_core.build import build
from mmu_core.errors import BuildError
from mmu_core.models import SampleRequest
from mmu_core.validate import validate

MMU = str(Path(sys.executable).with_name("mmu"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A 3-galaxy sample built and strictly validated by the core."""
    import mmu_gz3d.hooks

    work = tmp_path_factory.mktemp("gz3d_e2e")
    registry = testing.plugin_registry(mmu_gz3d.hooks)
    path = testing.sample_build_validate("gz3d", work, n=3, seed=11, registry=registry)
    return path, work / "raw" / "gz3d"


def test_built_rows_equal_the_fits_arrays(built):
    path, raw = built
    ds = mmu_core.open_dataset(path)
    files = sorted(raw.glob("gz3d_1-*.fits.gz"))
    assert len(ds) == len(files) == 3
    for f in files:
        with fits.open(f) as hdul:
            mangaid = hdul[5].data["MANGAID"][0]
            row = ds.get([mangaid], columns=["image_array", "segmentation_array",
                                             "segmentation_vote_fraction", "ra", "dec"])
            np.testing.assert_array_equal(row["image_array"][0], np.moveaxis(hdul[0].data, -1, 0))
            masks = np.stack([hdul[k].data for k in range(1, 5)])
            assert row["segmentation_array"].dtype == np.int32
            assert np.array_equal(row["segmentation_array"][0].astype(np.float64), masks)
            meta = hdul[5].data[0]
            total = float(meta["GZ_total_classifications"])
            np.testing.assert_allclose(row["segmentation_vote_fraction"][0],
                                       [-1, -1, meta["GZ_spiral_votes"] / total,
                                        meta["GZ_bar_votes"] / total], rtol=1e-6)
            assert (row["ra"][0], row["dec"][0]) == (float(meta["ra"]), float(meta["dec"]))


def test_logical_example_is_the_design_docs(built):
    path, raw = built
    ds = mmu_core.open_dataset(path)
    f = sorted(raw.glob("gz3d_1-*.fits.gz"))[0]
    mangaid = fits.getdata(f, 5)["MANGAID"][0]
    example = ds.example(mangaid)
    assert example["object_id"] == mangaid
    assert example["segmentation"]["class"] == ["center", "star", "spiral", "bar"]
    np.testing.assert_array_equal(example["image"], fits.getdata(f, 0))  # (525, 525, 3)
    assert example["segmentation"]["array"].shape == (4, 525, 525)
    assert example["total_classifications"] == fits.getdata(f, 5)["GZ_total_classifications"][0]
    assert schemas.validate_example("segmentation", example) == []


def test_validator_checks_segmentation_against_image_shape(built, tmp_path):
    path, _ = built
    ds = mmu_core.open_dataset(path)
    shapes = {name: spec.shape for name, spec in ds.schema.items()}
    assert schemas.segmentation.check_columns(shapes) == []

    # Crop the stored source images by one column: the validator must say the masks no
    # longer match their image.
    damaged = tmp_path / "damaged"
    shutil.copytree(path, damaged)
    for shard in damaged.glob("healpix=*/*.hdf5"):
        with h5py.File(shard, "r+") as h:
            image = h["image_array"][...]
            del h["image_array"]
            h["image_array"] = image[..., :524]
    shapes["image_array"] = (3, 512, 512)
    assert any("image_array" in p for p in schemas.segmentation.check_columns(shapes))
    report = validate(damaged)
    assert not report.ok
    assert "must match its source image" in report.text()


def test_cli_sample_build_validate(tmp_path):
    env = {**os.environ, "MMU_LOAD_PLUGINS": "gz3d"}

    def mmu(*args):
        done = subprocess.run([MMU, *map(str, args)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    mmu("sample", "gz3d", "--out", tmp_path / "raw", "--n", 2, "--seed", 5, "--ra", 40,
        "--dec", -0.5, "--radius", "0.3deg")
    mmu("build", "gz3d", "--raw", tmp_path / "raw", "--out", tmp_path / "out",
        "--max-stars", 5)
    mmu("validate", tmp_path / "out" / "gz3d" / "dr17", "--strict")
    ds = mmu_core.open_dataset(tmp_path / "out" / "gz3d" / "dr17")
    assert len(ds) == 2 and ds.schema["star_x"].shape == (5,)


def test_build_skip_bad_lists_the_corrupt_galaxy(tmp_path, registry):
    raw = tmp_path / "raw"
    registry.sample("gz3d", SampleRequest(out_dir=raw, n=3, seed=2))
    bad = sorted(raw.glob("gz3d_1-*.fits.gz"))[1]
    bad.write_bytes(bad.read_bytes()[:5000])

    with pytest.raises(BuildError, match=bad.name):
        build("gz3d", raw, tmp_path / "out", registry=registry)
    summary = build("gz3d", raw, tmp_path / "out2", options={"skip_bad": True},
                    registry=registry)
    assert summary.rows == 2
    assert [s["file"] for s in summary.skipped_objects] == [str(bad)]
    assert validate(summary.path, strict=True).ok


def test_sample_from_the_manga_samplers_drpall_describes_the_same_galaxies(tmp_path):
    """`mmu sample manga` then `mmu sample gz3d --drpall` (the sibling plugin's real output):
    the built gz3d ids are the drpall's mangaids, at the drpall's objra/objdec."""
    mmu_manga_hooks = pytest.importorskip("mmu_manga.hooks")
    import mmu_gz3d.hooks

    registry = testing.plugin_registry(mmu_manga_hooks, mmu_gz3d.hooks)
    registry.sample("manga", SampleRequest(out_dir=tmp_path / "manga", n=1, seed=4))
    (drpall,) = sorted((tmp_path / "manga").rglob("drpall-*.fits"))
    registry.sample("gz3d", SampleRequest(out_dir=tmp_path / "gz3d", n=50, seed=4,
                                          options={"drpall": str(drpall)}))
    summary = build("gz3d", tmp_path / "gz3d", tmp_path / "out", registry=registry)
    assert validate(summary.path, strict=True).ok

    catalogue = fits.getdata(drpall, "MANGA")
    ids = [m.strip() for m in catalogue["mangaid"]]
    ds = mmu_core.open_dataset(summary.path)
    assert len(ds) == len(set(ids)) >= 1
    got = ds.get(ids, columns=["ra", "dec", "IFUDESIGNSIZE", "IAUNAME"])
    np.testing.assert_allclose(got["ra"], catalogue["objra"], atol=1e-5)  # float32 in HDU 5
    np.testing.assert_allclose(got["dec"], catalogue["objdec"], atol=1e-5)
    np.testing.assert_array_equal(got["IFUDESIGNSIZE"], catalogue["ifudesignsize"])
    if "nsa_iauname" in catalogue.columns.names:
        assert [n.decode() for n in got["IAUNAME"]] == [n.strip() for n in catalogue["nsa_iauname"]]


def test_crossmatch_with_manga_pairs_every_galaxy_with_itself(tmp_path):
    """Samples made from one MaNGA catalogue: gz3d x manga pairs each galaxy with itself, and
    the HF dataset of the match holds the IFU cube and the segmentation map together."""
    mmu_manga_hooks = pytest.importorskip("mmu_manga.hooks")
    import mmu_gz3d.hooks

    registry = testing.plugin_registry(mmu_manga_hooks, mmu_gz3d.hooks)
    registry.sample("manga", SampleRequest(out_dir=tmp_path / "manga", n=3, seed=5,
                                           options={"nwave": 120, "bundles": "19,37"}))
    (drpall,) = sorted((tmp_path / "manga").rglob("drpall-*.fits"))
    registry.sample("gz3d", SampleRequest(out_dir=tmp_path / "gz3d", n=3, seed=5,
                                          options={"drpall": str(drpall)}))
    manga = build("manga", tmp_path / "manga", tmp_path / "out", registry=registry).path
    gz3d = build("gz3d", tmp_path / "gz3d", tmp_path / "out", registry=registry).path

    result = mmu_core.cross_match(gz3d, manga, tmp_path / "xm", radius_arcsec=1.0)
    ids = [m.strip() for m in fits.getdata(drpall, "MANGA")["mangaid"]]
    left = [v.decode() if isinstance(v, bytes) else v
            for v in result.catalog.column("left_object_id").to_pylist()]
    right = [v.decode() if isinstance(v, bytes) else v
             for v in result.catalog.column("right_object_id").to_pylist()]
    assert sorted(left) == sorted(set(ids)) and left == right

    hfds = mmu_core.hf.load(tmp_path / "xm", cache_dir=tmp_path / "hf")
    assert hfds.num_rows == len(set(ids))
    manga_ds = mmu_core.open_dataset(manga)
    for row in hfds:
        seg = row["gz3d"]["segmentation"]
        assert seg["class"] == ["center", "star", "spiral", "bar"]
        assert np.asarray(seg["array"]).shape == (4, 525, 525)
        cube = row["manga"]
        assert cube["object_id"] == row["gz3d"]["object_id"]
        ny, nx = manga_ds.get([cube["object_id"]], columns=["ifu_size"])["ifu_size"][0]
        assert len(cube["spaxels"]) == ny * nx and len(cube["spaxels"][0]["flux"]) == 120
