"""The design doc's data-architecture example, almost verbatim, on samples of one patch:

    hsc = load(ROOT_HSC, "pdr3_dud_22.5"); decals = load(ROOT_LS, "dr10_south_21")
    matched_catalog, matched_dset = cross_match_datasets(hsc, decals, match_radius=1.0)
    matched_dset.save_to_disk(...)

and ``mmu sample --like``: two samples made independently cross-match to about half their
objects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

import mmu_core
from mmu_core import hf, testing
from mmu_core.build import build
from mmu_core.models import SampleRequest
from mmu_core.sample_positions import like_request, positions_of

hsc_hooks = pytest.importorskip("mmu_hsc.hooks")
ls_hooks = pytest.importorskip("mmu_legacysurvey.hooks")
MMU = str(Path(sys.executable).with_name("mmu"))


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("designdoc")
    registry = testing.plugin_registry(hsc_hooks, ls_hooks)
    patch = {"ra": 150.0834, "dec": 2.25, "radius": 0.012}  # inside one small LS brick
    registry.sample("hsc", SampleRequest(out_dir=tmp / "raw_hsc", n=30, seed=3, **patch))
    hsc = build("hsc", tmp / "raw_hsc", tmp / "ROOT_HSC", registry=registry)
    request = like_request(SampleRequest(out_dir=tmp / "raw_ls", n=24, seed=4, **patch,
                                         options={"brick_size": 600, "layout": "bricks"}),
                           positions_of(hsc.path, registry))
    registry.sample("legacysurvey", request)
    ls = build("legacysurvey", tmp / "raw_ls", tmp / "ROOT_LS", registry=registry)
    return {"tmp": tmp, "hsc": hsc.path, "ls": ls.path, "shared": request.positions}


def test_the_design_docs_snippet(roots, tmp_path):
    ROOT_HSC, ROOT_LS = roots["hsc"].parent.parent, roots["ls"].parent.parent  # noqa: N806
    cache = tmp_path / "hf"
    hsc = hf.load(ROOT_HSC, "pdr3_dud_22.5", cache_dir=cache)
    decals = hf.load(ROOT_LS, "dr10_south_21", cache_dir=cache)
    matched_catalog, matched_dset = mmu_core.cross_match_datasets(
        hsc, decals, match_radius=1.0, out=tmp_path / "xm", cache_dir=cache)
    matched_dset.save_to_disk(str(tmp_path / "saved"))

    assert isinstance(matched_catalog, datasets.Dataset)
    assert isinstance(matched_dset, datasets.Dataset)
    # the pairs are the objects the LS sample placed on HSC objects (that passed LS's cuts)
    ls_ids = {i for b in mmu_core.open_dataset(roots["ls"]).iter_batches(columns=["object_id"])
              for i in b["object_id"].astype(str).tolist()}
    assert matched_catalog.num_rows > 0 and matched_catalog.num_rows == matched_dset.num_rows
    assert {"left_object_id", "right_object_id", "separation_arcsec"} <= set(
        matched_catalog.column_names)
    assert max(matched_catalog["separation_arcsec"]) <= 1.0
    assert {str(i) for i in matched_catalog["right_object_id"]} <= ls_ids

    # each matched row carries both surveys' images, equal to the stored stamps
    left, right = mmu_core.open_dataset(roots["hsc"]), mmu_core.open_dataset(roots["ls"])
    reloaded = datasets.load_from_disk(str(tmp_path / "saved"))
    pair = dict(zip(matched_catalog["match_id"], zip(matched_catalog["left_object_id"],
                                                      matched_catalog["right_object_id"],
                                                      strict=True), strict=True))
    for row in reloaded.select(range(min(3, reloaded.num_rows))):
        lid, rid = pair[row["object_id"]]
        want_l = left.get([lid], columns=["image_array"])["image_array"][0]
        want_r = right.get([rid], columns=["image_array"])["image_array"][0]
        got_l = np.stack([np.reshape(np.asarray(band["array"], np.float32), band["shape"])
                          for band in row["hsc"]["image"]])
        got_r = np.stack([np.reshape(np.asarray(band["array"], np.float32), band["shape"])
                          for band in row["legacysurvey"]["image"]])
        np.testing.assert_array_equal(got_l, want_l)
        np.testing.assert_array_equal(got_r, want_r)

    # the HF datasets name their source, so a path or a Dataset gives the same catalog
    again, _ = mmu_core.cross_match_datasets(roots["hsc"], mmu_core.open_dataset(roots["ls"]),
                                             match_radius=1.0, out=tmp_path / "xm2",
                                             cache_dir=cache)
    assert sorted(again["right_object_id"]) == sorted(matched_catalog["right_object_id"])


def test_config_names_select_a_dataset_below_a_root(roots, tmp_path):
    root = roots["hsc"].parent.parent
    for name in ("pdr3_dud_22.5", "hsc/pdr3_dud_22.5", "hsc_pdr3_dud_22.5"):
        assert hf.select_config(root, name) == roots["hsc"]
    with pytest.raises(FileNotFoundError, match="no dataset named 'dr1_main'.*hsc/pdr3_dud_22.5"):
        hf.select_config(root, "dr1_main")
    with pytest.raises(ValueError, match="was not made by mmu_core.hf.load"):
        hf.source_of(datasets.Dataset.from_dict({"a": [1]}))


def test_two_samples_made_with_like_cross_match_to_about_half(tmp_path):
    """``mmu sample B --like A``: about half of B's objects sit on A's objects."""
    env = dict(os.environ, MMU_LOAD_PLUGINS="hsc", COLUMNS="200")

    def run(*args):
        done = subprocess.run([MMU, *map(str, args)], capture_output=True, text=True, env=env,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    run("sample", "hsc", "--out", tmp_path / "a", "--n", 40, "--seed", 1, "--radius", "1arcmin")
    done = run("sample", "hsc", "--out", tmp_path / "b", "--n", 40, "--seed", 2, "--like",
               tmp_path / "a")
    assert "20 on objects of" in done.stdout
    run("build", "hsc", "--raw", tmp_path / "a", "--out", tmp_path / "A")
    run("build", "hsc", "--raw", tmp_path / "b", "--out", tmp_path / "B")
    a, b = (mmu_core.open_dataset(tmp_path / x / "hsc" / "pdr3_dud_22.5") for x in "AB")
    res = mmu_core.cross_match(a.path, b.path, radius="1arcsec", how="nearest")
    assert 0.35 * len(b) <= len(res) <= 0.65 * len(b) + 1, (len(res), len(a), len(b))
