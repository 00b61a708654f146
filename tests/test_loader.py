"""mmu_core.loader: map-style and streaming datasets read straight from the stored files.

The main dataset has 13 files (a prime: no world size 2-7 divides it, nor any world size x
worker count used), of uneven sizes, one pixel split into three files.
"""

from __future__ import annotations

import json
import multiprocessing
import pickle
import shutil

import healpy
import numpy as np
import pyarrow.parquet as pq
import pytest
from stored import build_toy_pair

import mmu_core
from mmu_core.crossmatch import cross_match
from mmu_core.loader import (
    LoaderError,
    MapDataset,
    MatchedPairs,
    RowBatch,
    StreamDataset,
    collate,
)
from mmu_core.storage.columns import schema_of
from mmu_core.storage.derived import finalize_dataset
from mmu_core.storage.reader import Dataset
from mmu_core.storage.writer import write_rows

PIXEL_ROWS = {100: 37, 230: 81, 420: 12, 777: 140, 901: 55, 1203: 400, 1500: 23, 1777: 96,
              2048: 64, 2500: 9, 3001: 118}  # 10 pixels of one file, one (1203) of three
N_FILES = 13


def make_rows(pixel_rows: dict[int, int], id0: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ras, decs = [], []
    for pix, n in pixel_rows.items():
        ra0, dec0 = healpy.pix2ang(16, pix, nest=True, lonlat=True)
        ras.append((ra0 + rng.uniform(-0.2, 0.2, n)) % 360)
        decs.append(np.clip(dec0 + rng.uniform(-0.2, 0.2, n), -89.9, 89.9))
    ra, dec = np.concatenate(ras), np.concatenate(decs)
    n = len(ra)
    ids = id0 + rng.permutation(n).astype(np.int64) * 3  # < 2**24: exact in float32
    return {
        "object_id": ids, "ra": ra, "dec": dec,
        "flux": np.repeat(ids.astype(np.float32)[:, None], 8, axis=1)
        + np.arange(8, dtype=np.float32),
        "mjd": 59000.0 + ids * 1e-7,  # float64 that float32 would round
        "label": np.array([f"obj{i}".encode() for i in ids]),
        "Z": rng.random(n).astype(np.float32),
    }


def store(path, cols, survey, max_file_bytes=None):
    path.mkdir(parents=True)
    kw = {} if max_file_bytes is None else {"max_file_bytes": max_file_bytes}
    write_rows(path, [cols], {"survey": survey, "config": "test"}, key="rows", **kw)
    finalize_dataset(path, survey=survey, config="test", modality=None,
                     columns=schema_of(cols), aliases={"Z": "z"})
    return path


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader")
    cols = make_rows(PIXEL_ROWS, id0=1000, seed=1)
    row_bytes = sum(v[:1].nbytes for v in cols.values()) + 8  # + healpix
    path = store(root / "many" / "test", cols, "many", max_file_bytes=row_bytes * 150)
    ds = mmu_core.open_dataset(path)
    assert len(ds.files) == N_FILES and len(ds) == sum(PIXEL_ROWS.values())
    return path


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader_other")
    cols = make_rows({5: 150, 600: 211, 2900: 140}, id0=10_000_000, seed=2)
    return store(root / "other" / "test", cols, "other")


def file_order_ids(path) -> np.ndarray:
    ds = mmu_core.open_dataset(path)
    return np.concatenate([b["object_id"] for b in ds.iter_batches(columns=["object_id"])])


def share_ids(stream: StreamDataset) -> list[np.ndarray]:
    return [b["object_id"] for b in stream]


def check_rows(batch):
    """The stored columns of one batch belong together (flux and mjd derive from the id)."""
    ids = batch["object_id"]
    np.testing.assert_array_equal(batch["flux"][:, 0], ids.astype(np.float32))
    np.testing.assert_array_equal(batch["mjd"], 59000.0 + ids * 1e-7)


# ---- MapDataset -------------------------------------------------------------------------
def test_map_dataset_rows_are_the_stored_rows_in_file_order(many):
    ds = mmu_core.open_dataset(many)
    m = MapDataset(many, columns=["object_id", "ra", "dec", "mjd", "flux", "label", "z"])
    assert len(m) == len(ds)
    np.testing.assert_array_equal(m.get_batch(np.arange(len(m)))["object_id"],
                                  file_order_ids(many))
    order = np.random.default_rng(0).permutation(len(m))[:300]
    got = m.get_batch(order)
    want = ds.get(got["object_id"], columns=m.columns)
    np.testing.assert_array_equal(got["object_id"], file_order_ids(many)[order])
    for k in m.columns:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        assert got[k].dtype == want[k].dtype, k
    assert got["mjd"].dtype == np.float64 and got["ra"].dtype == np.float64
    # __getitems__: rows in the order asked, plus the stacked arrays
    items = m.__getitems__(order[:50].tolist())
    assert isinstance(items, RowBatch) and len(items) == 50
    for j, row in enumerate(items):
        for k in m.columns:
            np.testing.assert_array_equal(row[k], want[k][j])
    assert collate(items) is items.arrays
    stacked = collate(list(items))  # a plain list of rows is stacked
    for k in m.columns:
        np.testing.assert_array_equal(stacked[k], want[k][:50])
    # one row, negative indices, errors
    row = m[int(order[0])]
    assert row["object_id"] == got["object_id"][0] and row["flux"].shape == (8,)
    assert m[-1]["object_id"] == file_order_ids(many)[-1]
    with pytest.raises(IndexError):
        m[len(m)]
    with pytest.raises(TypeError):
        m["0"]
    with pytest.raises(KeyError, match="nope"):
        MapDataset(many, columns=["nope"])


def test_map_dataset_transforms_and_reads_only_the_columns_asked(many, monkeypatch):
    asked = []
    real = Dataset.read_rows

    def spy(self, file_idx, row_idx, columns=None):
        asked.append(list(columns))
        return real(self, file_idx, row_idx, columns)

    monkeypatch.setattr(Dataset, "read_rows", spy)
    m = MapDataset(many, columns=["flux", "z"], transform=lambda r: r["flux"].sum() + r["z"],
                   batch_transform=lambda b: b["flux"].shape)
    assert m.get_batch([0, 1, 2]) == (3, 8)
    rows = m.__getitems__([4, 2])
    assert rows.arrays is None and len(rows) == 2 and np.isscalar(rows[0])
    assert m[2] == pytest.approx(rows[1])
    assert asked and all(a == ["flux", "z"] for a in asked)


def test_map_dataset_pickles_without_open_files(many):
    m = MapDataset(many, columns=["object_id", "flux"])
    first = m.get_batch([3, 700])
    clone = pickle.loads(pickle.dumps(m))
    assert clone.table.opener._ds is None  # reopened lazily where it is read
    np.testing.assert_array_equal(clone.get_batch([3, 700])["flux"], first["flux"])


def _read_share(args):
    ds, rows = args
    if isinstance(ds, MapDataset):
        return ds.get_batch(rows)["object_id"]
    return np.concatenate(share_ids(ds)) if ds.num_batches() else np.empty(0, np.int64)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_datasets_read_in_forked_and_spawned_processes(many, method):
    m = MapDataset(many, columns=["object_id"])
    m[0]  # files open in the parent before the workers start
    n = len(m)
    halves = [np.arange(0, n // 2), np.arange(n // 2, n)]
    streams = [StreamDataset(many, columns=["object_id"], batch_size=32, rank=r, world_size=2)
               for r in range(2)]
    for s in streams:
        next(iter(s))
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2 if method == "fork" else 1) as pool:  # spawning costs imports: one
        got_map = pool.map(_read_share, [(m, h) for h in halves])
        got_stream = pool.map(_read_share, [(s, None) for s in streams])
    np.testing.assert_array_equal(np.concatenate(got_map), file_order_ids(many))
    ids = np.concatenate(got_stream)
    assert len(ids) == n and set(ids.tolist()) == set(file_order_ids(many).tolist())


# ---- StreamDataset: sharding ------------------------------------------------------------
@pytest.mark.parametrize("drop_last", [False, True])
def test_every_rank_and_worker_gets_a_disjoint_share_covering_the_epoch(many, drop_last):
    all_ids = file_order_ids(many)
    n, batch = len(all_ids), 16
    for world in range(1, 8):
        for workers in range(0, 4):
            w = max(1, workers)
            shares = []
            for rank in range(world):
                for k in range(w):
                    s = StreamDataset(many, columns=["object_id"], batch_size=batch, seed=3,
                                      rank=rank, world_size=world, worker_id=k,
                                      num_workers=workers or None, drop_last=drop_last,
                                      block_rows=10, buffer_rows=40)
                    shares.append(share_ids(s))
            counts = [len(b) for b in shares]
            ids = np.concatenate([np.concatenate(b) for b in shares if b])
            where = f"world {world}, workers {workers}"
            assert len(np.unique(ids)) == len(ids), where  # each row at most once
            if drop_last:
                assert len(set(counts)) == 1, where
                assert all(len(x) == batch for b in shares for x in b), where
                assert n - len(ids) < (world * w + 1) * batch, where
            else:
                assert max(counts) - min(counts) <= 1, where
                assert np.array_equal(np.sort(ids), np.sort(all_ids)), where
                assert sum(len(x) < batch for b in shares for x in b) <= 1, where


def test_rank_iteration_is_the_workers_round_robin(many):
    kw = dict(columns=["object_id"], batch_size=16, seed=5, rank=1, world_size=2,
              block_rows=10, buffer_rows=48)
    workers = [share_ids(StreamDataset(many, worker_id=k, num_workers=3, **kw))
               for k in range(3)]
    expected = []
    for j in range(max(len(b) for b in workers)):
        expected += [b[j] for b in workers if j < len(b)]
    rank = StreamDataset(many, num_workers=3, **kw)
    got = share_ids(rank)
    assert len(got) == len(expected) == rank.num_batches()
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_batches_hold_whole_rows_and_keep_dtypes(many):
    s = StreamDataset(many, columns=["object_id", "flux", "mjd", "label", "z", "ra"],
                      batch_size=50, seed=1)
    batches = list(s)
    ds = mmu_core.open_dataset(many)
    for b in batches[:5]:
        check_rows(b)
        want = ds.get(b["object_id"], columns=["label", "Z", "ra"])
        np.testing.assert_array_equal(b["label"], want["label"])
        np.testing.assert_array_equal(b["z"], want["Z"])
        assert b["mjd"].dtype == np.float64 and b["ra"].dtype == np.float64
        assert b["z"].dtype == np.float32 and b["label"].dtype.kind == "S"
    sizes = list(StreamDataset(many, columns=["object_id"], batch_size=50,
                               transform=lambda b: len(b["object_id"])))  # per batch
    assert sum(sizes) == len(ds) and max(sizes) == 50
    with pytest.raises(LoaderError, match="seed"):
        StreamDataset(many, seed=-1)


# ---- StreamDataset: order -----------------------------------------------------------------
def test_same_seed_and_epoch_same_order_other_epoch_other_order(many):
    def run(seed, epoch, **kw):
        s = StreamDataset(many, columns=["object_id"], batch_size=16, seed=seed,
                          block_rows=8, buffer_rows=64, **kw)
        s.set_epoch(epoch)
        return np.concatenate(share_ids(s))

    a = run(7, 0)
    assert np.array_equal(a, run(7, 0))
    assert not np.array_equal(a, run(7, 1)) and not np.array_equal(a, run(8, 0))
    assert np.array_equal(np.sort(a), np.sort(run(7, 1)))
    assert not np.array_equal(a, file_order_ids(many))
    np.testing.assert_array_equal(run(7, 0, shuffle=False), file_order_ids(many))
    # the epoch's order does not depend on how it is sharded: shares are cuts of one sequence
    parts = [np.concatenate(share_ids(StreamDataset(
        many, columns=["object_id"], batch_size=16, seed=7, block_rows=8, buffer_rows=64,
        rank=r, world_size=3))) for r in range(3)]
    np.testing.assert_array_equal(np.concatenate(parts), a)


def test_batches_are_made_of_contiguous_blocks(many):
    """With a window of one batch, a batch's rows are a few runs of consecutive stored rows."""
    s = StreamDataset(many, columns=["object_id"], batch_size=10, seed=2, block_rows=10,
                      buffer_rows=1)
    pos = {v: i for i, v in enumerate(file_order_ids(many).tolist())}
    runs = []
    for ids in share_ids(s):
        rows = np.sort([pos[v] for v in ids.tolist()])
        runs.append(1 + np.count_nonzero(np.diff(rows) != 1))
    assert max(runs) <= 4 and np.mean(runs) < 2.5


# ---- StreamDataset: resume ----------------------------------------------------------------
@pytest.mark.parametrize("mixture", [False, True])
def test_resume_after_k_batches_gives_exactly_the_remaining_batches(many, other, mixture,
                                                                    monkeypatch):
    paths = [many, other] if mixture else many
    kw = dict(columns=["object_id", "flux"], batch_size=16, seed=11, rank=1, world_size=2,
              worker_id=0, num_workers=2, block_rows=10, buffer_rows=64)
    s = StreamDataset(paths, **kw)
    s.set_epoch(4)
    full = list(s)
    k = len(full) // 2 + 1
    s.set_epoch(4)
    it = iter(s)
    for _ in range(k):
        next(it)
    state = json.loads(json.dumps(s.state_dict()))  # JSON-able
    assert state["epoch"] == 4 and state["batches"] == k and state["scope"] == "share"

    from mmu_core import loader

    read_rows = []
    real = loader._StoredTable.read

    def spy(self, rows, columns):
        read_rows.append(len(rows))
        return real(self, rows, columns)

    monkeypatch.setattr(loader._StoredTable, "read", spy)
    resumed = StreamDataset(paths, **kw)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == len(full) - k
    for a, b in zip(rest, full[k:], strict=True):
        np.testing.assert_array_equal(a["object_id"], b["object_id"])
        np.testing.assert_array_equal(a["flux"], b["flux"])
    # nothing before batch k is read again (at most the rest of the windows it falls in)
    remaining = sum(len(b["object_id"]) for b in rest)
    assert sum(read_rows) <= remaining + 64 * (2 if mixture else 1)
    with pytest.raises(LoaderError, match="seed"):
        StreamDataset(paths, **{**kw, "seed": 12}).load_state_dict(state)


def test_rank_state_resumes_a_round_robin_of_workers(many):
    """A rank-level state ({"epoch", "batches"}: what a DataLoader has yielded) resumes both
    the in-process rank iteration and each worker so that the round-robin continues."""
    kw = dict(columns=["object_id"], batch_size=16, seed=2, rank=0, world_size=3,
              block_rows=10, buffer_rows=32)
    whole = StreamDataset(many, num_workers=3, **kw)
    full = share_ids(whole)
    for n in (0, 1, 5, 7, len(full) - 1, len(full)):
        s = StreamDataset(many, num_workers=3, **kw)
        s.load_state_dict({"epoch": 0, "batches": n})
        rest = share_ids(s)
        assert len(rest) == len(full) - n
        assert all(np.array_equal(a, b) for a, b in zip(rest, full[n:], strict=True))
        assert s.state_dict()["batches"] == len(full)
        # the same state in each of 3 workers, their batches taken round-robin
        per_worker = []
        for k in range(3):
            w = StreamDataset(many, worker_id=k, num_workers=3, **kw)
            w.load_state_dict({"epoch": 0, "batches": n})
            per_worker.append(share_ids(w))
        merged = []
        for j in range(max(len(b) for b in per_worker)):
            merged += [b[j] for b in per_worker if j < len(b)]
        assert len(merged) == len(rest)
        assert all(np.array_equal(a, b) for a, b in zip(merged, rest, strict=True))
    s = StreamDataset(many, num_workers=3, **kw)
    s.load_state_dict({"epoch": 0, "batches": 3})
    s.set_epoch(1)  # another epoch: the state is dropped
    assert len(share_ids(s)) == len(full)
    with pytest.raises(LoaderError, match="num_workers|workers"):
        s = StreamDataset(many, num_workers=2, **kw)
        s.load_state_dict(whole.state_dict())
        list(s)


# ---- StreamDataset: mixtures ----------------------------------------------------------------
@pytest.mark.parametrize("weights", [None, [0.5, 0.5], [0.8, 0.2], [1.0, 0.0]])
def test_mixture_weights_and_epoch(many, other, weights):
    n1, n2 = len(file_order_ids(many)), len(file_order_ids(other))
    batch, world, workers = 16, 3, 2
    shares, ids_of = [], [set(file_order_ids(many).tolist()), set(file_order_ids(other).tolist())]
    for rank in range(world):
        for k in range(workers):
            s = StreamDataset([many, other], columns=["object_id", "z"], batch_size=batch,
                              weights=weights, seed=4, rank=rank, world_size=world,
                              worker_id=k, num_workers=workers, block_rows=10, buffer_rows=64,
                              source_column="source")
            shares.append(list(s))
    lengths = {len(b) for b in shares}
    assert len(lengths) == 1  # every share yields the same number of batches
    T = lengths.pop()
    w = np.array([n1, n2], float) if weights is None else np.array(weights, float)
    w = w / w.sum()
    seen = []
    for share in shares:
        src = np.array([b["source"][0] for b in share])
        for s_idx in (0, 1):
            # each source supplies round(w * T) batches: within one batch of w * T
            assert abs((src == s_idx).sum() - w[s_idx] * T) < 1
        for b in share:
            assert len(b["object_id"]) == batch
            assert set(b["object_id"].tolist()) <= ids_of[int(b["source"][0])]
            seen.append(b["object_id"])
    seen = np.concatenate(seen)
    assert len(np.unique(seen)) == len(seen)  # no row twice in an epoch
    # the epoch ends when the limiting source runs out: it is (almost) read whole
    limit = min((n / P for n, P in zip((n1, n2), w, strict=True) if P > 0))
    assert T * batch * world * workers > 0.8 * limit
    if weights == [1.0, 0.0]:
        assert not set(seen.tolist()) & ids_of[1]


def test_mixture_columns_must_exist_in_every_source(many, other, tmp_path):
    cols = make_rows({50: 30}, id0=5, seed=9)
    del cols["flux"]
    third = store(tmp_path / "third" / "test", cols, "third")
    with pytest.raises(KeyError, match="flux"):
        StreamDataset([many, third], columns=["object_id", "flux"])
    s = StreamDataset([many, other, third], batch_size=8)  # None: the common columns
    assert "flux" not in s.columns and {"object_id", "mjd", "Z"} <= set(s.columns)
    with pytest.raises(LoaderError, match="weights"):
        StreamDataset([many, other], weights=[1, -1])


# ---- cross-match outputs -------------------------------------------------------------------
@pytest.fixture(scope="module")
def xmatch(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader_pairs")
    img, spec = build_toy_pair(root, spec_units=3)
    cross_match(img, spec, root / "xm", radius_arcsec=1.0, how="nearest")
    cross_match(img, spec, root / "xm_cat", radius_arcsec=1.0, how="all", catalog_only=True)
    return root, img, spec


PAIR_COLUMNS = ["match_id", "separation_arcsec", "ra", "dec", "toyimg.image_array",
                "toyimg.object_id", "toyspec.spectrum_flux", "toyspec.z", "toyspec.object_id"]


def check_pairs(batch, cat, img, spec):
    rows = batch["match_id"]
    l_ids, r_ids = cat["left_object_id"][rows], cat["right_object_id"][rows]
    want_l = img.get(l_ids, columns=["image_array", "object_id"])
    want_r = spec.get(r_ids, columns=["spectrum_flux", "Z", "object_id"])
    np.testing.assert_array_equal(batch["toyimg.image_array"], want_l["image_array"])
    np.testing.assert_array_equal(batch["toyimg.object_id"], l_ids)
    np.testing.assert_array_equal(batch["toyspec.spectrum_flux"], want_r["spectrum_flux"])
    np.testing.assert_array_equal(batch["toyspec.z"], want_r["Z"])
    np.testing.assert_array_equal(batch["toyspec.object_id"], r_ids)
    np.testing.assert_array_equal(batch["separation_arcsec"], cat["separation_arcsec"][rows])
    np.testing.assert_array_equal(batch["ra"], cat["ra"][rows])
    assert batch["ra"].dtype == np.float64


def test_pairs_are_read_from_the_sources(xmatch):
    root, img_path, spec_path = xmatch
    img, spec = mmu_core.open_dataset(img_path), mmu_core.open_dataset(spec_path)
    cat = {k: np.asarray(v) for k, v in
           pq.read_table(root / "xm" / "catalog.parquet").to_pydict().items()}
    m = MapDataset(root / "xm", columns=PAIR_COLUMNS)
    assert isinstance(m.table, MatchedPairs) and len(m) == len(cat["match_id"]) == 180
    assert str(m.table.sides["toyimg"][1].path) == str(img.path.resolve())
    order = np.random.default_rng(1).permutation(len(m))
    batch = m.get_batch(order)
    np.testing.assert_array_equal(batch["match_id"], cat["match_id"][order])
    check_pairs(batch, cat, img, spec)
    # the same rows as the matched dataset's copy
    copy = mmu_core.open_dataset(root / "xm" / "toyimg_x_toyspec" / "matched")
    want = copy.get(batch["match_id"], columns=["toyimg.image_array", "toyspec.z", "ra"])
    np.testing.assert_array_equal(batch["toyimg.image_array"], want["toyimg.image_array"])
    np.testing.assert_array_equal(batch["toyspec.z"], want["toyspec.z"])
    np.testing.assert_array_equal(batch["ra"], want["ra"])
    row = m[5]
    assert row["toyimg.image_array"].shape == (5, 16, 16) and row["match_id"] == 5
    assert MapDataset(root / "xm", columns=["object_id"])[7]["object_id"] == 7
    # streamed, sharded: every pair once
    seen = []
    for rank in range(3):
        for b in StreamDataset(root / "xm", columns=PAIR_COLUMNS, batch_size=32, rank=rank,
                               world_size=3, block_rows=16, buffer_rows=64):
            check_pairs(b, cat, img, spec)
            seen.append(b["match_id"])
    assert np.array_equal(np.sort(np.concatenate(seen)), cat["match_id"])
    with pytest.raises(KeyError, match="toyimg.<column>"):
        MapDataset(root / "xm", columns=["nope.flux"])


def test_catalog_only_outputs_find_their_sources(xmatch, tmp_path):
    root, img_path, spec_path = xmatch
    img, spec = mmu_core.open_dataset(img_path), mmu_core.open_dataset(spec_path)
    table = pq.read_table(root / "xm_cat" / "catalog.parquet")
    cat = {k: np.asarray(v) for k, v in table.to_pydict().items()}
    assert not (root / "xm_cat" / "toyimg_x_toyspec").exists()
    m = MapDataset(root / "xm_cat", columns=PAIR_COLUMNS)  # from the catalog's metadata
    check_pairs(m.get_batch(np.arange(len(m))[::-1]), cat, img, spec)
    # a catalog that records no sources needs left= and right=
    bare = tmp_path / "bare"
    bare.mkdir()
    pq.write_table(table.replace_schema_metadata(None), bare / "catalog.parquet")
    with pytest.raises(LoaderError, match="left="):
        MapDataset(bare)
    m = MapDataset(bare, columns=PAIR_COLUMNS, left=img_path, right=spec_path)
    check_pairs(m.get_batch(np.arange(len(m))), cat, img, spec)
    # moved sources: left=/right= override what the output records
    moved = tmp_path / "moved" / "toyspec"
    shutil.copytree(spec_path, moved)
    m = MapDataset(root / "xm", columns=["toyspec.z"], right=moved)
    assert str(m.table.sides["toyspec"][1].path) == str(moved)


# ---- torch ----------------------------------------------------------------------------------
def test_torch_is_optional():
    import mmu_core.loader as loader

    base = StreamDataset.__mro__[1]
    assert (loader._torch_data is None) == (base is object)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_torch_dataloader_workers_read_every_row_once(many, method):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, IterableDataset

    all_ids = np.sort(file_order_ids(many))
    m = MapDataset(many, columns=["object_id", "flux", "mjd"])
    m[0]
    got = []
    loader = DataLoader(m, batch_size=50, shuffle=True, num_workers=2,
                        multiprocessing_context=method)
    for b in loader:  # default collate over __getitems__'s rows
        assert isinstance(b["flux"], torch.Tensor) and b["mjd"].dtype == torch.float64
        got.append(b["object_id"].numpy())
    assert np.array_equal(np.sort(np.concatenate(got)), all_ids)

    s = StreamDataset(many, columns=["object_id", "flux"], batch_size=40, seed=1)
    assert isinstance(s, IterableDataset)
    loader = DataLoader(s, batch_size=None, num_workers=2, multiprocessing_context=method)
    batches = list(loader)
    assert len(batches) == s.num_batches(num_workers=2)
    ids = np.concatenate([b["object_id"].numpy() for b in batches])
    assert len(ids) == len(all_ids) and np.array_equal(np.sort(ids), all_ids)
    if method == "fork":
        # a resume from the DataLoader's count continues its exact sequence
        n = 7
        s.load_state_dict({"epoch": 0, "batches": n})
        rest = list(DataLoader(s, batch_size=None, num_workers=2,
                               multiprocessing_context=method))
        assert len(rest) == len(batches) - n
        for a, b in zip(rest, batches[n:], strict=True):
            assert torch.equal(a["object_id"], b["object_id"])
        # dict-of-arrays batches straight from __getitems__, and torch tensors in-process
        loader = DataLoader(m, batch_size=64, num_workers=2, collate_fn=collate,
                            multiprocessing_context=method)
        assert np.array_equal(np.concatenate([b["object_id"] for b in loader]),
                              file_order_ids(many))
        first = next(iter(StreamDataset(many, columns=["mjd"], batch_size=8, format="torch")))
        assert first["mjd"].dtype == torch.float64
