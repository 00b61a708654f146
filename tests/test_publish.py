"""``mmu publish``: a HuggingFace dataset repository folder that ``datasets.load_dataset`` reads
with its packaged hdf5 builder (no loading script) and mmu opens.

Everything runs offline (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE, a temporary HF_HOME and cache).
Every loaded row is compared with mmu's own reading of the source dataset (``iter_batches``,
file by file), column by column, in order.
"""

from __future__ import annotations

import os
import shutil
import sys

import datasets
import h5py
import huggingface_hub
import numpy as np
import pytest
from datasets.info import DatasetInfosDict
from stored import store
from test_hf import _ifu, _lightcurve, _segmentation
from toy_plugin import ToyPlugin, write_units
from typer.testing import CliRunner

import mmu_core
from mmu_core import hookimpl, testing
from mmu_core.build import build
from mmu_core.cli import app
from mmu_core.publish import PublishError, hub_features, hub_license
from mmu_core.storage.columns import ColumnSpec
from mmu_core.validate import validate

datasets.disable_progress_bars()

IMG_CITATION = "Toy et al. 2024, ApJ 1, 1 (toy images)"
SPEC_CITATION = "Spectra et al. 2025, MNRAS 2, 2"
SPEC_LICENSE = "Toy Survey data policy (https://example.org/policy)"


class CitedToy(ToyPlugin):
    """The toy surveys with a citation, a license and a homepage, as real plugins declare."""

    @hookimpl
    def mmu_describe(self):
        img, spec = ToyPlugin.mmu_describe(self)
        return [img.model_copy(update={"citation": IMG_CITATION, "license": "CC BY 4.0",
                                       "homepage": "https://example.org/toyimg"}),
                spec.model_copy(update={"citation": SPEC_CITATION, "license": SPEC_LICENSE})]


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory):
    """No network and no cache outside the test's folders (datasets reads some of these at
    import, so its config is set too)."""
    home = tmp_path_factory.mktemp("hf_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HOME", str(home))
        mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield home


@pytest.fixture(scope="module")
def registry():
    reg = testing.plugin_registry(CitedToy())
    with testing.use_registry(reg):
        yield reg


@pytest.fixture(scope="module")
def published(tmp_path_factory, registry):
    """A spectrum and an image dataset (pixels split into several files) built under one root
    and published."""
    root = tmp_path_factory.mktemp("pub")
    write_units(root / "raw", n_units=3, n=40, ra=45.0, dec=0.0, radius=4.0)
    img = build("toyimg", root / "raw", root / "data", registry=registry,
                max_file_bytes=300_000).path
    spec = build("toyspec", root / "raw", root / "data", registry=registry).path
    result = mmu_core.publish(root / "data", root / "hub", repo_id="me/toys", registry=registry)
    return {"root": root, "out": root / "hub", "result": result,
            "sources": {"toyimg_default": img, "toyspec_default": spec}}


def card_data(out):
    return huggingface_hub.DatasetCard.load(out / "README.md").data


def load(out, name, tmp_path):
    return datasets.load_dataset(str(out), name, split="train", cache_dir=str(tmp_path / "c"))


def assert_rows_equal(hfds, source):
    """Every column of the HF dataset equals mmu's reading of ``source``, row for row, in mmu's
    file order; byte strings as text."""
    ds = mmu_core.open_dataset(source)
    want = {}
    for batch in ds.iter_batches(batch_size=10_000):
        for k, v in batch.items():
            want.setdefault(k, []).append(v)
    rows = hfds[:]  # Python values: no float64 -> float32 cast of the numpy formatter
    assert len(hfds) == len(ds)
    for name, feature in hfds.features.items():
        w = np.concatenate(want[name])
        got = rows[name]
        if isinstance(feature, dict):  # complex numbers: {"real", "imag"}
            g = np.asarray(got_part(got, "real")) + 1j * np.asarray(got_part(got, "imag"))
        elif w.dtype.kind == "S":
            w = np.char.decode(w, "utf-8")
            g = np.asarray(got, dtype=str).reshape(w.shape)
        else:
            g = np.asarray(got, dtype=w.dtype).reshape(w.shape)
            assert np.asarray(got).shape == w.shape, name
        np.testing.assert_array_equal(g, w, err_msg=name)


def got_part(values, key):
    return [v[key] for v in values] if isinstance(values, list) else values[key]


# ---- datasets reads the folder ----------------------------------------------------------
@pytest.mark.parametrize("name", ["toyimg_default", "toyspec_default"])
def test_load_dataset_gives_each_configs_rows_and_declared_features(published, name, tmp_path):
    out = published["out"]
    hfds = load(out, name, tmp_path)
    info = DatasetInfosDict.from_dataset_card_data(card_data(out))[name]
    assert hfds.features == info.features  # the declared ones, not inferred from a file
    assert hfds.features["name"] == datasets.Value("string")  # inferred would be binary
    if name == "toyimg_default":
        assert hfds.features["image_array"] == datasets.Array3D((5, 16, 16), "float32")
        assert hfds.features["image_band"] == datasets.List(datasets.Value("string"), length=5)
        assert hfds[0]["image_band"] == ["g", "r", "i", "z", "y"]
    else:
        assert hfds.features["spectrum_flux"] == datasets.List(datasets.Value("float32"), 64)
    assert info.splits["train"].num_examples == len(hfds) == 120
    assert_rows_equal(hfds, published["sources"][name])


def test_the_data_files_globs_match_the_data_files_only(published):
    out = published["out"]
    for config in published["result"].configs:
        builder = datasets.load_dataset_builder(str(out), config.name)
        assert builder.name == "hdf5"  # datasets' packaged builder, chosen by the extension
        files = sorted(os.path.relpath(f, out) for f in builder.config.data_files["train"])
        manifest = mmu_core.open_dataset(out / config.name).manifest
        assert files == sorted(f"{config.name}/{f.path}" for f in manifest.files)
        assert config.files == len(files) and (config.name != "toyimg_default"
                                               or any("002-of-" in f for f in files))
        assert builder.config.batch_size == config.batch_size
        assert (out / config.name / "_index" / "ids.npy").is_file()  # beside, never matched


def test_the_card_declares_configs_license_and_citation(published):
    out = published["out"]
    data = card_data(out)
    assert [c["config_name"] for c in data["configs"]] == ["toyimg_default", "toyspec_default"]
    assert data["configs"][0]["data_files"] == [{"split": "train",
                                                 "path": "toyimg_default/healpix=*/*.hdf5"}]
    assert data["license"] == ["cc-by-4.0", "other"]
    assert data["license_name"] == "toy-survey-data-policy"
    assert data["license_link"] == "LICENSE.md"
    assert SPEC_LICENSE in (out / "LICENSE.md").read_text()
    body = (out / "README.md").read_text().split("\n---\n", 1)[1]
    assert IMG_CITATION in body and SPEC_CITATION in body
    assert "`toyimg_default` (toyimg/default): CC BY 4.0 (`cc-by-4.0`)" in body
    assert f"`toyspec_default` (toyspec/default): {SPEC_LICENSE} (`other`)" in body
    assert 'load_dataset("me/toys", "toyimg_default", split="train")' in body
    assert "`toyimg` / `default`: toy images." in body  # the plugin's description
    assert "| `mag` | float32 | float32 | magnitude | a magnitude |" in body  # alias, column doc
    assert "| `image_array` | float32 (5, 16, 16) | float32[5, 16, 16] (Array3D) |" in body
    assert "survey homepage: https://example.org/toyimg" in body
    assert "*.hdf5 filter=lfs" in (out / ".gitattributes").read_text()


@pytest.mark.parametrize("text, hub", [("CC BY 4.0", "cc-by-4.0"), ("cc0 1.0", "cc0-1.0"),
                                       ("MIT License", "mit"), ("Apache License 2.0", "apache-2.0"),
                                       ("", "unknown"),
                                       ("SDSS data policy (public)", "other")])
def test_licenses_map_to_hub_identifiers(text, hub):
    assert hub_license(text) == hub


def test_a_dtype_without_a_feature_is_left_out_with_the_reason():
    # mmu's writer stores none of these; a manifest naming one still publishes, without it
    features, unreadable = hub_features({"object_id": ColumnSpec("<i8", ()),
                                         "rec": ColumnSpec("|V8", (2,)),
                                         "when": ColumnSpec("<M8[s]", ()),
                                         "z": ColumnSpec("<f4", ())})
    assert list(features) == ["object_id", "z"]
    assert set(unreadable) == {"rec", "when"} and "|V8" in unreadable["rec"]


def test_the_published_folder_is_an_mmu_dataset(published):
    out, result = published["out"], published["result"]
    assert result.linked > 0 and result.copied == 0
    for config in result.configs:
        source = published["sources"][config.name]
        src, pub = mmu_core.open_dataset(source), mmu_core.open_dataset(out / config.name)
        assert (pub.survey, pub.config, len(pub)) == (src.survey, src.config, len(src))
        ids = src.index().ids[::7]
        for column in ("object_id", "ra", "mag", "name"):
            np.testing.assert_array_equal(pub.get(ids, columns=[column])[column],
                                          src.get(ids, columns=[column])[column])
        report = validate(out / config.name, strict=True)
        assert report.ok, report.text()
        assert all(os.path.samefile(a, b) for a, b in zip(src.files, pub.files, strict=True))


# ---- every modality and the column types the builder is given ----------------------------
def test_every_modality_loads_with_its_declared_features(tmp_path, registry):
    rng = np.random.default_rng(3)
    n = 12
    for survey, modality, make in [("lc", "lightcurve", _lightcurve), ("cube", "ifu", _ifu),
                                   ("seg", "segmentation", _segmentation)]:
        cols = {"object_id": np.arange(n, dtype=np.int64) + 7, "ra": rng.uniform(10, 11, n),
                "dec": rng.uniform(-1, 1, n), **make(rng, n)}
        if survey == "lc":  # what the hdf5 builder cannot infer, or infers as another type
            cols["odd_complex"] = (rng.normal(size=(n, 3))
                                   + 1j * rng.normal(size=(n, 3))).astype(np.complex64)
            cols["odd_rank6"] = rng.normal(size=(n, 1, 2, 1, 2, 1, 2)).astype(np.float32)
            cols["odd_empty"] = np.zeros((n, 0), np.float32)
            cols["odd_half"] = rng.normal(size=(n, 2)).astype(np.float16)
            cols["odd_text2d"] = np.tile(np.array([[b"a", b"bb"], [b"c", b""]]), (n, 1, 1))
        store(tmp_path / "data" / survey / "test", cols, survey, modality)
    result = mmu_core.publish(tmp_path / "data", tmp_path / "hub", registry=registry)
    assert [c.name for c in result.configs] == ["cube_test", "lc_test", "seg_test"]
    assert all(not c.unreadable for c in result.configs)  # every stored column is declared
    for config in result.configs:
        hfds = load(tmp_path / "hub", config.name, tmp_path)
        assert_rows_equal(hfds, tmp_path / "data" / config.survey / "test")
        f = hfds.features
        if config.name == "cube_test":
            assert f["ifu_flux"] == datasets.Array3D((6, 6, 10), "float32")
            assert f["ifu_image_label"] == datasets.List(datasets.Value("string"), length=2)
        if config.name == "seg_test":
            assert f["segmentation_array"] == datasets.Array3D((4, 8, 8), "float64")
            assert f["image_array"] == datasets.Array3D((3, 8, 8), "uint8")
        if config.name == "lc_test":
            assert f["lightcurve_time"] == datasets.Array2D((3, 12), "float64")
            assert set(f["odd_complex"]) == {"real", "imag"}
            assert f["odd_empty"] == datasets.List(datasets.Value("float32"))
            assert f["odd_text2d"] == datasets.List(datasets.List(datasets.Value("string"), 2), 2)
            assert isinstance(f["odd_rank6"], datasets.List)  # nested fixed-length lists
            # what the card's declared features spare us: the builder's own inference fails on
            # a per-row array of six axes and gives byte strings as binary
            files = sorted(str(p) for p in (tmp_path / "hub" / "lc_test").glob("healpix=*/*.hdf5"))
            with pytest.raises(TypeError, match="Array6D not supported"):
                datasets.load_dataset("hdf5", data_files=files, split="train",
                                      cache_dir=str(tmp_path / "plain"))
            with h5py.File(files[0]) as h5:  # the stored column has six per-row axes
                assert h5["odd_rank6"].ndim == 7


# ---- limits, atomicity, refusals, command line ------------------------------------------
@pytest.mark.parametrize("limit, value, expect", [
    ("max_files_per_folder", 3, "toyimg_default/ would hold"),
    ("max_file_bytes", 60_000, "toyimg_default/healpix="),
    ("max_files_per_repo", 10, "files, more than 10 per repository"),
    ("max_repo_bytes", 10_000, "bytes in all, more than 10,000"),
])
def test_a_dataset_breaking_a_hub_limit_stops_the_publish(published, tmp_path, limit, value,
                                                          expect, registry):
    out = tmp_path / "hub"
    with pytest.raises(PublishError, match="would break the Hub's limits") as info:
        mmu_core.publish(published["root"] / "data", out, registry=registry, **{limit: value})
    assert expect in str(info.value) and limit in str(info.value)
    assert not out.exists() and not list(tmp_path.glob(".hub.tmp-*"))


def test_a_pixel_with_too_many_files_is_named(published, tmp_path, registry):
    source = published["sources"]["toyimg_default"]
    crowded = max(mmu_core.open_dataset(source).pixels,
                  key=lambda p: len(list((source / f"healpix={p}").iterdir())))
    count = len(list((source / f"healpix={crowded}").iterdir()))
    assert count > 1
    with pytest.raises(PublishError) as info:
        mmu_core.publish(source, tmp_path / "hub", registry=registry,
                         max_files_per_folder=count - 1)
    assert (f"toyimg_default/healpix={crowded}/ would hold {count} entries" in str(info.value)
            and "larger --max-file-bytes" in str(info.value))


def test_overwrite_swaps_the_folder_in_and_a_failed_run_changes_nothing(published, tmp_path,
                                                                        registry, monkeypatch):
    data, out = published["root"] / "data", tmp_path / "hub"
    mmu_core.publish(data / "toyspec", out, registry=registry)
    with pytest.raises(PublishError, match="already exists"):
        mmu_core.publish(data, out, registry=registry)
    before = sorted(p.name for p in out.iterdir())
    module = sys.modules["mmu_core.publish"]  # the module (mmu_core.publish is the function)

    calls = []

    def failing_copy(src, dst):  # the disk fills up halfway through the data files
        calls.append(src)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        return shutil.copyfile(src, dst)

    monkeypatch.setattr(module.shutil, "copyfile", failing_copy)
    with pytest.raises(OSError, match="No space left"):
        mmu_core.publish(data, out, registry=registry, overwrite=True, link=False)
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == before  # the old folder, untouched
    assert not list(tmp_path.glob(".hub.tmp-*"))
    result = mmu_core.publish(data, out, registry=registry, overwrite=True, title="Two toys")
    assert [c.name for c in result.configs] == ["toyimg_default", "toyspec_default"]
    assert card_data(out)["pretty_name"] == "Two toys"
    assert not list(tmp_path.glob(".hub.*"))


def test_refusals_name_the_problem(published, tmp_path, registry):
    data = published["root"] / "data"
    with pytest.raises(PublishError, match="overlaps"):
        mmu_core.publish(data, data / "hub", registry=registry)
    with pytest.raises(PublishError, match="no dataset folder"):
        mmu_core.publish(tmp_path, tmp_path.parent / f"{tmp_path.name}-hub", registry=registry)
    source = published["sources"]["toyspec_default"]
    with pytest.raises(PublishError, match="would both be published as config 'toyspec_default'"):
        mmu_core.publish([source, source], tmp_path / "hub", registry=registry)
    v1 = tmp_path / "v1" / "old" / "cfg"
    shutil.copytree(source, v1, ignore=shutil.ignore_patterns("manifest.json", "_index"))
    with pytest.raises(PublishError, match="no manifest.json"):
        mmu_core.publish(v1, tmp_path / "hub", registry=registry)
    assert not (tmp_path / "hub").exists()


def test_the_command_line(published, tmp_path, registry):
    data, out = published["root"] / "data", tmp_path / "hub"
    res = CliRunner().invoke(app, ["publish", str(data), str(out), "--max-files-per-folder", "3"])
    assert res.exit_code == 1 and "would break the Hub's limits" in res.output
    res = CliRunner().invoke(app, ["publish", str(data), str(out), "--repo-id", "me/toys"])
    assert res.exit_code == 0, res.output
    assert "toyimg_default: 120 rows" in res.output
    assert "hf upload me/toys" in res.output
    assert card_data(out)["configs"][1]["config_name"] == "toyspec_default"
