"""Loading stored datasets through HuggingFace ``datasets``: features, logical examples, aliases,
cache keyed on the manifest, streaming (Arrow batches, shards = files, split_dataset_by_node),
save_to_disk / formats, the plain ``hdf5`` builder, and matched datasets.

Every loaded row is compared with the reader's own ``Dataset.row_to_example`` of the same
stored row (an independent code path), for all five modalities; the vectorised Arrow tables
are also compared with those built row by row from ``logical_example``.
"""

from __future__ import annotations

import glob
import json
import logging
import shutil
import subprocess
import sys

import datasets
import h5py
import numpy as np
import pytest
from stored import store
from toy_plugin import ToyPlugin, make_rows, write_units

import mmu_core
from mmu_core import hf, schemas, testing
from mmu_core.build import build
from mmu_core.crossmatch import cross_match
from mmu_core.storage.examples import make_plan, plan_columns
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


def hf_view(example: dict) -> dict:
    """A logical example as HF rows hold it: image planes flattened, each band with its shape
    (a matched example's sides too)."""
    for part in [example, *(v for v in example.values() if isinstance(v, dict) and "provenance" in v)]:
        if isinstance(part.get("image"), list):
            for band in part["image"]:
                band["shape"] = list(band["array"].shape)
                for key in ("array", "ivar", "mask"):
                    if key in band:
                        band[key] = band[key].reshape(-1)
    return example


def check_rows(hfds, ds: mmu_core.Dataset, **example_options) -> None:
    ids = [r["object_id"] for r in hfds]
    assert sorted(ids) == sorted(np.asarray(ds.index().ids).tolist())
    for row in hfds:
        stored = {k: v[0] for k, v in ds.get([row["object_id"]]).items()}
        want = hf_view(ds.row_to_example(stored, **example_options))
        assert_same(row, want, f"id {row['object_id']}")


def check_row_path(path, **example_options) -> None:
    """The vectorised tables (the modality's ``example_columns``) equal those built row by row
    from ``logical_example`` (the path of modalities without ``example_columns``); image bands'
    ``shape`` exists only in the first."""
    ds = mmu_core.open_dataset(path)
    plan = make_plan(ds, None, example_options)
    features = datasets.Features(hf.plan_features(ds, plan))
    columns = plan_columns(plan)
    for fi, n in enumerate(ds.file_rows):
        block = {c: ds.column(fi, c).slice(0, n) for c in columns}
        fast = hf.block_table(block, plan, features)
        assert fast.schema == features.arrow_schema
        original = schemas.example_columns
        try:
            schemas.example_columns = lambda *a, **k: None
            slow = hf.block_table(block, plan, features)
        finally:
            schemas.example_columns = original
        assert drop_band_shapes(fast.to_pylist()) == drop_band_shapes(slow.to_pylist())


def drop_band_shapes(value):
    if isinstance(value, list):
        return [drop_band_shapes(v) for v in value]
    if isinstance(value, dict):
        band = "filter" in value and "array" in value
        return {k: drop_band_shapes(v) for k, v in value.items() if not (band and k == "shape")}
    return value


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
    # planes flat (H * W, row-major), the band's shape beside them
    assert image.feature["array"] == datasets.List(datasets.Value("float32"), length=256)
    assert image.feature["mask"] == datasets.List(datasets.Value("bool"), length=256)
    assert image.feature["shape"] == datasets.List(datasets.Value("int64"), length=2)
    assert hfds.features["magnitude"] == datasets.Value("float32")  # alias mag -> magnitude
    assert "mag" not in hfds.features
    check_rows(hfds, ds)
    check_row_path(toy["img"])
    band = hfds[0]["image"][2]
    assert band["filter"] == "i" and band["pixel_size"] == pytest.approx(0.168)
    assert band["shape"] == [16, 16]
    want = ds.get([hfds[0]["object_id"]])["image_array"][0, 2]
    np.testing.assert_array_equal(np.reshape(band["array"], band["shape"]), want)


def test_spectrum_features_aliases_and_numpy_format(toy, tmp_path):
    ds = mmu_core.open_dataset(toy["spec"])
    hfds = hf.load(toy["spec"], cache_dir=tmp_path / "cache")
    spectrum = hfds.features["spectrum"]
    assert set(spectrum) == {"flux", "ivar", "lsf_sigma", "lambda", "mask"}
    assert spectrum["flux"] == datasets.List(datasets.Value("float32"), length=64)
    assert "z" in hfds.features and "Z" not in hfds.features
    check_rows(hfds, ds)
    check_row_path(toy["spec"])
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
    check_row_path(path)
    if modality == "ifu":
        assert len(hfds[0]["spaxels"]) == int(np.prod(cols["ifu_size"][
            np.flatnonzero(cols["object_id"] == hfds[0]["object_id"])[0]]))
        light = hf.load(path, cache_dir=tmp_path / "cache",
                        example_options={"with_spaxels": False})
        assert "spaxels" not in light.features
        check_rows(light, ds, with_spaxels=False)
        check_row_path(path, with_spaxels=False)
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


def test_streaming_yields_arrow_batches_one_shard_per_file(toy, tmp_path, monkeypatch):
    """What the streamed dataset relies on in datasets: an ``ArrowBasedBuilder``'s
    ``as_streaming_dataset`` iterates the builder's Arrow tables (formatted a batch at a time,
    no Python rows), its shards are the ``files`` list of the gen_kwargs, and the builder's
    ``_generate_more_gen_kwargs`` (semi-private) is what ``reshard()`` calls."""
    ds = mmu_core.open_dataset(toy["img"])
    assert issubclass(hf.MMUBuilder, datasets.ArrowBasedBuilder)
    stream = hf.load(toy["img"], streaming=True)
    assert stream.num_shards == len(ds.files) == 8

    tables = []
    real = hf.block_table
    monkeypatch.setattr(hf, "block_table", lambda *a: tables.append(real(*a)) or tables[-1])
    monkeypatch.setattr(schemas, "logical_example", None)  # the row path is never taken
    batches = list(stream.with_format("numpy").iter(16))
    assert len(tables) == len(ds.files)  # one table per block (here: per file)
    assert sum(len(t) for t in tables) == len(ds) == sum(len(b["object_id"]) for b in batches)
    first = batches[0]
    assert first["object_id"].shape == (16,) and first["image"].shape == (16, 5)
    band = first["image"][0, 2]
    assert band["array"].shape == (256,) and band["array"].dtype == np.float32
    np.testing.assert_array_equal(
        band["array"].reshape(band["shape"]),
        ds.get([first["object_id"][0]])["image_array"][0, 2])

    # the prepared dataset formats the same batches
    prepared = hf.load(toy["img"], cache_dir=tmp_path / "cache").with_format("numpy")
    again = list(prepared.iter(16))
    np.testing.assert_array_equal(np.concatenate([b["object_id"] for b in again]),
                                  np.concatenate([b["object_id"] for b in batches]))
    np.testing.assert_array_equal(again[1]["image"][3, 4]["ivar"], batches[1]["image"][3, 4]["ivar"])

    # reshard: one shard per block of rows
    monkeypatch.setattr(hf, "BATCH_BYTES", 1)  # one row per block
    fine = stream.reshard()
    assert fine.num_shards == len(ds)
    assert sorted(b["object_id"] for b in fine.with_format("numpy")) == sorted(ds.index().ids.tolist())


def test_importing_the_module_does_not_import_datasets():
    code = "import sys, mmu_core.hf; assert 'datasets' not in sys.modules; mmu_core.hf.MMUBuilder"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_split_dataset_by_node(toy):
    """datasets' rule on the streamed dataset (8 files, 120 rows): a world size dividing the
    file count splits the files; any other world size makes every node read every file and
    keep one row in world_size (the "examples" strategy), and ``strategy="shards"`` deals
    whole files, unevenly."""
    from datasets.distributed import split_dataset_by_node

    ds = mmu_core.open_dataset(toy["img"])
    stream = hf.load(toy["img"], streaming=True, columns=[])
    all_ids = sorted(ds.index().ids.tolist())
    rows = ds.file_rows  # [26, 1, 2, 27, 1, 25, 5, 33]

    def shares(world_size, **kw):
        return [[int(b) for batch in split_dataset_by_node(stream, rank, world_size, **kw)
                 .with_format("numpy").iter(64) for b in batch["object_id"]]
                for rank in range(world_size)]

    # 4 divides 8: shards (every 4th file from the rank on), each node reads its own files
    four = shares(4)
    assert sorted(sum(four, [])) == all_ids
    assert [len(s) for s in four] == [rows[r] + rows[r + 4] for r in range(4)]

    # 3 does not divide 8: every node reads all 8 files and keeps rows r, r+3, r+6, ...
    three = shares(3)
    assert sorted(sum(three, [])) == all_ids and len(set(sum(three, []))) == 120
    assert [len(s) for s in three] == [40, 40, 40]
    order = [int(i) for b in stream.with_format("numpy").iter(64) for i in b["object_id"]]
    assert three[1] == order[1::3]

    # strategy="shards" with 3 nodes: whole files r, r+3, r+6: 58, 35 and 27 rows
    dealt = shares(3, strategy="shards")
    assert sorted(sum(dealt, [])) == all_ids
    assert [len(s) for s in dealt] == [sum(rows[r::3]) for r in range(3)] == [58, 35, 27]


def test_prepared_copy_is_logged(toy, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="mmu_core.hf"):
        hfds = hf.load(toy["spec"], cache_dir=tmp_path / "cache", num_proc=2)
    assert len(hfds) == 120
    message = next(r.getMessage() for r in caplog.records if "Arrow copy" in r.getMessage())
    assert "120 rows" in message and "MB" in message
    check_rows(hfds, mmu_core.open_dataset(toy["spec"]))  # num_proc=2: files split in two


def test_save_to_disk_and_formats(toy, tmp_path):
    hfds = hf.load(toy["img"], cache_dir=tmp_path / "cache")
    hfds.save_to_disk(str(tmp_path / "saved"))
    back = datasets.load_from_disk(str(tmp_path / "saved"))
    assert back.features == hfds.features and back[5] == hfds[5]
    arr = back.with_format("numpy")[0:4]["object_id"]
    assert arr.shape == (4,)
    torch = pytest.importorskip("torch")
    band = hfds.with_format("torch")[0]["image"][0]
    assert isinstance(band["array"], torch.Tensor) and tuple(band["array"].shape) == (256,)
    assert tuple(band["array"].reshape(tuple(band["shape"].tolist())).shape) == (16, 16)


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
    assert hfds.features["toyimg"]["image"].feature["array"].length == 256
    assert hfds.features["toyspec"]["spectrum"]["flux"].length == 64
    check_row_path(result.dataset_path)
    cat = result.catalog.to_pydict()
    by_match = dict(zip(cat["match_id"], zip(cat["left_object_id"], cat["right_object_id"],
                                             strict=True), strict=True))
    for row in hfds:
        left_id, right_id = by_match[row["object_id"]]
        want_img = img.row_to_example({k: v[0] for k, v in img.get([left_id]).items()})
        want_spec = spec.row_to_example({k: v[0] for k, v in spec.get([right_id]).items()})
        assert_same(row["toyimg"], hf_view(want_img), "toyimg")
        assert_same(row["toyspec"], want_spec, "toyspec")
        assert row["ra"] == want_img["ra"] and row["separation_arcsec"] == 0.0
    matched = mmu_core.open_dataset(result.dataset_path)
    stored = {k: v[0] for k, v in matched.get([row["object_id"]]).items()}
    assert_same(row, hf_view(matched.row_to_example(stored)), "row_to_example")
    stream = hf.load(out, streaming=True, columns=["toyspec.z"])
    assert "z" in stream.features["toyspec"] and "magnitude" not in stream.features["toyimg"]
    assert sorted(r["object_id"] for r in stream) == sorted(cat["match_id"])

    # the matched files themselves also load with the plain hdf5 builder
    files = sorted(glob.glob(str(result.dataset_path / "healpix=*" / "*.hdf5")))
    plain = datasets.load_dataset("hdf5", data_files=files, split="train",
                                  cache_dir=str(tmp_path / "cache2"))
    assert len(plain) == 120 and "toyspec.spectrum_flux" in plain.features
    with h5py.File(files[0], "r") as h:
        attrs = json.loads(h.attrs["namespaces"])
    assert attrs == {"toyimg": "image", "toyspec": "spectrum"}
