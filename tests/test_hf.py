"""Loading stored datasets through HuggingFace ``datasets``: features, logical examples, aliases,
cache keyed on the manifest, streaming, save_to_disk / formats, the plain ``hdf5`` builder,
and matched datasets.

Every loaded row is compared with the reader's own ``Dataset.row_to_example`` of the same
stored row (an independent code path), for all five modalities.
"""

from __future__ import annotations

import glob
import json
import shutil

import datasets
import h5py
import numpy as np
import pytest
from stored import store
from toy_plugin import ToyPlugin, make_rows, write_units

import mmu_core
from mmu_core import hf, testing
from mmu_core.build import build
from mmu_core.crossmatch import cross_match
from mmu_core.validate import validate

datasets.disable_progress_bars()


def assert_same(got, want, where="example"):
    """HF output (lists, python scalars) equals the reader's example (numpy, bytes)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), where
        assert set(got) == set(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, (list, tuple)) and want and isinstance(want[0], dict):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, (np.ndarray, list, tuple)):
        w = np.asarray(want)
        if w.dtype.kind == "S":
            w = np.char.decode(w, "utf-8")
        g = np.asarray(got)
        assert g.shape == w.shape, f"{where}: shape {g.shape} != {w.shape}"
        np.testing.assert_array_equal(g, w, err_msg=where)
    elif isinstance(want, (bytes, np.bytes_)):
        assert got == want.decode(), where
    elif want is None:
        assert got is None, where
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def check_rows(hfds, ds: mmu_core.Dataset, **example_options) -> None:
    ids = [r["object_id"] for r in hfds]
    assert sorted(ids) == sorted(np.asarray(ds.index().ids).tolist())
    for row in hfds:
        stored = {k: v[0] for k, v in ds.get([row["object_id"]]).items()}
        assert_same(row, ds.row_to_example(stored, **example_options), f"id {row['object_id']}")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("hftoy")
    registry = testing.plugin_registry(ToyPlugin())
    units = write_units(root / "raw", n_units=3, n=40, ra=45.0, dec=0.0, radius=4.0)
    img = build("toyimg", root / "raw", root / "out", registry=registry).path
    spec = build("toyspec", root / "raw", root / "out", registry=registry).path
    return {"root": root, "img": img, "spec": spec, "units": units}


# ---- features and examples --------------------------------------------------------------
def test_image_rows_are_the_logical_examples(toy, tmp_path):
    ds = mmu_core.open_dataset(toy["img"])
    hfds = hf.load(toy["img"], cache_dir=tmp_path / "cache")
    assert isinstance(hfds, datasets.Dataset) and len(hfds) == len(ds) == 120
    image = hfds.features["image"]
    assert isinstance(image, datasets.List) and image.length == 5
    assert image.feature["array"] == datasets.Array2D((16, 16), "float32")
    assert image.feature["mask"] == datasets.Array2D((16, 16), "bool")
    assert hfds.features["magnitude"] == datasets.Value("float32")  # alias mag -> magnitude
    assert "mag" not in hfds.features
    check_rows(hfds, ds)
    band = hfds[0]["image"][2]
    assert band["filter"] == "i" and band["pixel_size"] == pytest.approx(0.168)


def test_spectrum_features_aliases_and_numpy_format(toy, tmp_path):
    ds = mmu_core.open_dataset(toy["spec"])
    hfds = hf.load(toy["spec"], cache_dir=tmp_path / "cache")
    spectrum = hfds.features["spectrum"]
    assert set(spectrum) == {"flux", "ivar", "lsf_sigma", "lambda", "mask"}
    assert spectrum["flux"] == datasets.List(datasets.Value("float32"), length=64)
    assert "z" in hfds.features and "Z" not in hfds.features
    check_rows(hfds, ds)
    row = hfds.with_format("numpy")[3]
    assert row["spectrum"]["flux"].shape == (64,) and row["spectrum"]["flux"].dtype == np.float32
    want = ds.get([row["object_id"]])
    np.testing.assert_array_equal(row["spectrum"]["flux"], want["spectrum_flux"][0])
    assert row["z"] == want["Z"][0]


def test_columns_keeps_the_modality_and_the_catalog_columns_asked_for(toy, tmp_path):
    hfds = hf.load(toy["spec"], columns=["z"], cache_dir=tmp_path / "cache")
    assert set(hfds.features) == {"object_id", "ra", "dec", "healpix", "spectrum", "provenance",
                                  "z"}


def _lightcurve(rng, n):
    b, length = 3, 12
    time = np.sort(rng.uniform(59000, 60000, (n, b, length)), axis=-1)
    mask = np.arange(length)[None, None, :] >= rng.integers(4, length + 1, (n, b, 1))
    return {"lightcurve_time": time, "lightcurve_flux": rng.normal(0, 1, (n, b, length)).astype(np.float32),
            "lightcurve_flux_err": rng.random((n, b, length), np.float32),
            "lightcurve_mask": mask, "lightcurve_band": np.tile(np.array([b"g", b"r", b"i"]), (n, 1)),
            "target": rng.integers(0, 100, n)}


def _ifu(rng, n):
    s, length, k = 6, 10, 2
    size = rng.choice([4, 6], n)
    offset = (s - size) // 2
    return {"ifu_flux": rng.random((n, s, s, length), np.float32),
            "ifu_ivar": rng.random((n, s, s, length), np.float32),
            "ifu_lsf_sigma": rng.random((n, s, s, length), np.float32),
            "ifu_mask": rng.integers(0, 3, (n, s, s, length)).astype(np.int32),
            "ifu_lambda": np.tile(np.linspace(3600, 10000, length, dtype=np.float32), (n, 1)),
            "ifu_spaxel_size": np.full(n, 0.5, np.float32),
            "ifu_offset": np.stack([offset, offset], 1).astype(np.int32),
            "ifu_size": np.stack([size, size], 1).astype(np.int32),
            "ifu_image_data": rng.random((n, k, s, s), np.float32),
            "ifu_image_ivar": rng.random((n, k, s, s), np.float32),
            "ifu_image_mask": np.zeros((n, k, s, s), np.int32),
            "ifu_image_label": np.tile(np.array([b"gimg", b"stellar_vel"]), (n, 1)),
            "ifu_image_filter": np.tile(np.array([b"g", b""]), (n, 1)),
            "ifu_image_units": np.tile(np.array([b"nanomaggies", b"km/s"]), (n, 1)),
            "nsa_z": rng.random(n)}


def _segmentation(rng, n):
    return {"segmentation_array": rng.integers(0, 30, (n, 4, 8, 8)).astype(np.float64),
            "segmentation_class": np.tile(np.array([b"center", b"star", b"spiral", b"bar"]), (n, 1)),
            "segmentation_vote_fraction": rng.random((n, 4), np.float32),
            "image_array": rng.integers(0, 255, (n, 3, 8, 8)).astype(np.uint8),
            "image_scale": np.full((n, 3), 0.099, np.float32),
            "total_classifications": rng.integers(0, 300, n).astype(np.int16)}


@pytest.mark.parametrize("modality, make", [("lightcurve", _lightcurve), ("ifu", _ifu),
                                            ("segmentation", _segmentation)])
def test_other_modalities_are_the_logical_examples(tmp_path, modality, make):
    rng = np.random.default_rng(1)
    n = 25
    cols = {"object_id": np.arange(n, dtype=np.int64) + 7, "ra": rng.uniform(10, 11, n),
            "dec": rng.uniform(-1, 1, n), **make(rng, n)}
    path = store(tmp_path / "s" / "test", cols, "s", modality)
    report = validate(path, full=True)
    assert report.ok, report.text()  # the synthetic columns follow the schema
    ds = mmu_core.open_dataset(path)
    hfds = hf.load(path, cache_dir=tmp_path / "cache")
    check_rows(hfds, ds)
    if modality == "ifu":
        assert len(hfds[0]["spaxels"]) == int(np.prod(cols["ifu_size"][
            np.flatnonzero(cols["object_id"] == hfds[0]["object_id"])[0]]))
        light = hf.load(path, cache_dir=tmp_path / "cache",
                        example_options={"with_spaxels": False})
        assert "spaxels" not in light.features
        check_rows(light, ds, with_spaxels=False)
    if modality == "segmentation":
        assert hfds.features["segmentation"]["array"] == datasets.Array3D((4, 8, 8), "float64")
        assert hfds.features["image"] == datasets.Array3D((8, 8, 3), "uint8")


# ---- caching, streaming, formats --------------------------------------------------------
def test_cache_is_keyed_on_the_manifest(tmp_path):
    registry = testing.plugin_registry(ToyPlugin())
    cache = tmp_path / "cache"
    write_units(tmp_path / "raw", n_units=2, n=20, ra=10.0, dec=10.0, radius=1.0, seed=1)
    path = build("toyspec", tmp_path / "raw", tmp_path / "out", registry=registry).path
    first = hf.load(path, cache_dir=cache)
    again = hf.load(path, cache_dir=cache)
    assert again.cache_files == first.cache_files  # unchanged dataset: the cache is reused
    old_z = sorted(first["z"])

    shutil.rmtree(path)  # rebuild the same path from other inputs
    units = write_units(tmp_path / "raw", n_units=2, n=20, ra=10.0, dec=10.0, radius=1.0, seed=2)
    build("toyspec", tmp_path / "raw", tmp_path / "out", registry=registry)
    rebuilt = hf.load(path, cache_dir=cache)
    assert rebuilt.cache_files != first.cache_files
    want = np.concatenate([make_rows(u, "spectrum")["Z"] for u in units])
    np.testing.assert_array_equal(np.sort(np.asarray(rebuilt["z"], np.float32)), np.sort(want))
    assert sorted(rebuilt["z"]) != old_z


def test_streaming_gives_the_same_examples(toy, tmp_path):
    stream = hf.load(toy["img"], streaming=True)
    assert isinstance(stream, datasets.IterableDataset)
    assert stream.features == hf.load(toy["img"], cache_dir=tmp_path / "c").features
    check_rows(list(stream), mmu_core.open_dataset(toy["img"]))


def test_save_to_disk_and_formats(toy, tmp_path):
    hfds = hf.load(toy["img"], cache_dir=tmp_path / "cache")
    hfds.save_to_disk(str(tmp_path / "saved"))
    back = datasets.load_from_disk(str(tmp_path / "saved"))
    assert back.features == hfds.features and back[5] == hfds[5]
    arr = back.with_format("numpy")[0:4]["object_id"]
    assert arr.shape == (4,)
    torch = pytest.importorskip("torch")
    t = hfds.with_format("torch")[0]["image"][0]["array"]
    assert isinstance(t, torch.Tensor) and tuple(t.shape) == (16, 16)


def test_stored_files_load_with_the_plain_hdf5_builder(toy, tmp_path):
    ds = mmu_core.open_dataset(toy["img"])
    files = sorted(str(f) for f in ds.files)
    plain = datasets.load_dataset("hdf5", data_files=files, split="train",
                                  cache_dir=str(tmp_path / "cache"))
    assert len(plain) == len(ds)
    assert plain.features["image_array"] == datasets.Array3D((5, 16, 16), "float32")
    # plain python rows: HF's numpy formatter would cast float64 (ra, dec) to float32
    flat = {k: np.asarray(v) for k, v in plain[:].items()}
    want = ds.get(flat["object_id"])
    for name in ("ra", "dec", "healpix", "image_array", "image_mask", "mag"):
        np.testing.assert_array_equal(flat[name], want[name], err_msg=name)


# ---- matched datasets -------------------------------------------------------------------
def test_matched_dataset_gives_both_sides(toy, tmp_path):
    out = tmp_path / "xm"
    result = cross_match(toy["img"], toy["spec"], out, radius_arcsec=1.0)
    img, spec = mmu_core.open_dataset(toy["img"]), mmu_core.open_dataset(toy["spec"])
    hfds = hf.load(out, cache_dir=tmp_path / "cache")  # the OUT folder of the cross-match
    assert len(hfds) == len(result) == 120
    assert hfds.features["toyimg"]["image"].feature["array"] == datasets.Array2D((16, 16), "float32")
    assert hfds.features["toyspec"]["spectrum"]["flux"].length == 64
    cat = result.catalog.to_pydict()
    by_match = dict(zip(cat["match_id"], zip(cat["left_object_id"], cat["right_object_id"],
                                             strict=True), strict=True))
    for row in hfds:
        left_id, right_id = by_match[row["object_id"]]
        want_img = img.row_to_example({k: v[0] for k, v in img.get([left_id]).items()})
        want_spec = spec.row_to_example({k: v[0] for k, v in spec.get([right_id]).items()})
        assert_same(row["toyimg"], want_img, "toyimg")
        assert_same(row["toyspec"], want_spec, "toyspec")
        assert row["ra"] == want_img["ra"] and row["separation_arcsec"] == 0.0
    matched = mmu_core.open_dataset(result.dataset_path)
    stored = {k: v[0] for k, v in matched.get([row["object_id"]]).items()}
    assert_same(row, matched.row_to_example(stored), "row_to_example")

    # the matched files themselves also load with the plain hdf5 builder
    files = sorted(glob.glob(str(result.dataset_path / "healpix=*" / "*.hdf5")))
    plain = datasets.load_dataset("hdf5", data_files=files, split="train",
                                  cache_dir=str(tmp_path / "cache2"))
    assert len(plain) == 120 and "toyspec.spectrum_flux" in plain.features
    with h5py.File(files[0], "r") as h:
        attrs = json.loads(h.attrs["namespaces"])
    assert attrs == {"toyimg": "image", "toyspec": "spectrum"}
