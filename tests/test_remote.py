"""Reading a built dataset over HTTP, and downloading it (or a cone's pixels), from a loopback
server with byte ranges (``range_server.py``) that counts what it sends and fails on demand.

``hf://`` and ``s3://`` go through the same fsspec code path but need the internet: not
tested here."""

from __future__ import annotations

import hashlib
import re

import healpy
import numpy as np
import pytest
from range_server import RangeServer
from toy_plugin import ToyPlugin, write_units
from typer.testing import CliRunner

import mmu_core
from mmu_core import testing
from mmu_core.build import build
from mmu_core.cli import app
from mmu_core.download import DownloadError, download
from mmu_core.storage import layout
from mmu_core.storage.remote import RemoteError, RemoteNotFound, RemoteOptions
from mmu_core.validate import validate

FAST = RemoteOptions(retries=1, backoff=0.01, timeout=10)
CONE = (46.6, 1.2, 0.4)  # inside one pixel of the toy sky (a pixel corner at 45, 0)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A 2,000-row toy image dataset (about 21 MB in 4 pixel files) behind a loopback server."""
    root = tmp_path_factory.mktemp("remote")
    write_units(root / "raw", n_units=4, n=500, ra=45.0, dec=0.0, radius=2.0)
    path = build("toyimg", root / "raw", root / "out",
                 registry=testing.plugin_registry(ToyPlugin())).path
    with RangeServer(root / "out") as server:
        yield path, server, f"{server.url}/toyimg/default"


@pytest.fixture
def server(served):
    _, srv, _ = served
    srv.reset_counts()
    yield srv
    srv.cut.clear(), srv.short.clear(), srv.tamper.clear(), srv.cut_once.clear()
    srv.hidden.clear(), srv.delay.clear()


def same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k  # bit for bit


def rel(path) -> str:
    return f"toyimg/default/{path}"


def test_get_and_cone_over_http_equal_local(served, server, record_property):
    path, _, url = served
    local = mmu_core.open_dataset(path)
    total = sum(f.bytes for f in local.manifest.files)
    ds = mmu_core.open_dataset(url)
    assert ds.url == url and len(ds) == len(local) and ds.columns == local.columns
    opened = server.bytes_sent  # manifest + _index/, once

    ids = np.random.default_rng(3).choice(np.asarray(local.index().ids), 10, replace=False)
    server.reset_counts()
    got = ds.get(ids)
    served_bytes = server.bytes_sent
    same(got, local.get(ids))
    record_property("get_10_bytes_served", served_bytes)
    print(f"\nremote get of 10 ids: {served_bytes:,} bytes served of {total:,} "
          f"({served_bytes / total:.1%}); open: {opened:,} bytes")
    assert 0 < served_bytes < 0.05 * total

    server.reset_counts()
    near = ds.cone(*CONE)
    assert len(near["object_id"]) > 0
    same(near, local.cone(*CONE))
    assert ds.last_cone_pixels == local.last_cone_pixels

    # the manifest and _index/ are cached, keyed on the manifest: a second open fetches the
    # manifest only
    server.reset_counts()
    again = mmu_core.open_dataset(url)
    assert [r for r, _ in server.requests] == [rel("manifest.json")]
    same(again.get(ids[:3], columns=["image_array", "mag"]),
         local.get(ids[:3], columns=["image_array", "mag"]))
    assert ds.info()["bytes"] == total and ds.info()["path"] == url


def test_404_names_the_url(served, server):
    _, _, url = served
    with pytest.raises(RemoteNotFound, match=r"http://127\.0\.0\.1:\d+/nowhere/x/manifest\.json"
                       r": not found"):
        mmu_core.open_dataset(url.replace("toyimg/default", "nowhere/x"))
    ds = mmu_core.open_dataset(url)
    first = ds.relpaths[int(ds.index().file[0])]
    server.hidden.add(rel(first))
    with pytest.raises(RemoteNotFound, match=re.escape(f"{url}/{first}: ") + r".*not found"):
        ds.get([int(ds.index().ids[0])])


def test_truncated_responses_are_errors_never_data(served, server, monkeypatch):
    path, _, url = served
    monkeypatch.setenv("MMU_REMOTE_RETRIES", "1")
    monkeypatch.setenv("MMU_REMOTE_BACKOFF", "0.01")
    local = mmu_core.open_dataset(path)
    ds = mmu_core.open_dataset(url)
    f = local.index().file[0]
    ids = [int(i) for i in np.asarray(local.index().ids)[np.asarray(local.index().file) == f][:4]]
    name = rel(ds.relpaths[f])

    # a response cut mid-body (the connection closes before Content-Length bytes came)
    server.cut[name] = server.sent.get(name, 0)
    with pytest.raises(RemoteError, match=f"{url}/{ds.relpaths[f]}: .*(cut off|truncated)"):
        ds.get(ids, columns=["image_array"])
    server.cut.clear()
    # a well-formed 206 with fewer bytes than asked
    server.short.add(name)
    with pytest.raises(RemoteError, match=r"bytes \d+-\d+: the server sent \d+ of \d+ bytes"):
        ds.get(ids, columns=["image_ivar"])
    server.short.clear()
    # a compressed column, read by h5py through the block cache: the same error, and the
    # file is opened afresh afterwards (HDF5 never sees a failed read as data)
    server.cut[name] = server.sent.get(name, 0)
    with pytest.raises(RemoteError, match=f"{url}/{ds.relpaths[f]}: .*(cut off|truncated)"):
        ds.get(ids, columns=["image_mask"])
    server.cut.clear()
    same(ds.get(ids, columns=["image_mask", "name"]),
         local.get(ids, columns=["image_mask", "name"]))
    # a failure that passes is retried, and the data are the stored ones
    server.cut_once.add(name)
    server.reset_counts()
    same(ds.get(ids, columns=["image_array"]), local.get(ids, columns=["image_array"]))
    assert len(server.requests) >= 2


def test_a_server_that_hangs_is_a_timeout_naming_the_url(served, server, monkeypatch):
    _, _, url = served
    monkeypatch.setenv("MMU_REMOTE_TIMEOUT", "0.3")
    monkeypatch.setenv("MMU_REMOTE_RETRIES", "0")
    ds = mmu_core.open_dataset(url)
    f = int(ds.index().file[0])
    server.delay[rel(ds.relpaths[f])] = 1.5
    with pytest.raises(RemoteError, match=re.escape(f"{url}/{ds.relpaths[f]}: ")
                       + r".*no answer within 0\.3 s \(timed out\)"):
        ds.get([int(ds.index().ids[0])], columns=["image_array"])


def _source_bytes(path, relpath) -> bytes:
    return (path / relpath).read_bytes()


def test_download_cone_subset_validates(served, server, tmp_path):
    path, _, url = served
    local = mmu_core.open_dataset(path)
    disc = set(healpy.query_disc(16, healpy.ang2vec(CONE[0], CONE[1], lonlat=True),
                                 np.radians(CONE[2]), inclusive=True, nest=True).tolist())
    touched = sorted(disc & set(local.pixels))
    assert 0 < len(touched) < len(local.pixels)

    args = ["download", url, "--out", str(tmp_path), "--cone", str(CONE[0]), str(CONE[1]),
            f"{CONE[2] * 60}arcmin"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    copy = tmp_path / "toyimg" / "default"
    ds = mmu_core.open_dataset(copy)
    assert ds.pixels == touched
    assert ds.relpaths == [r for r, p in zip(local.relpaths, local.file_pixels, strict=True)
                           if p in touched]
    for r in ds.relpaths:
        assert (copy / r).read_bytes() == _source_bytes(path, r)
    report = validate(copy, strict=True)
    assert report.ok, report.text()
    assert ds.manifest.extra["download"]["source"] == url
    same(ds.cone(*CONE), local.cone(*CONE))
    # the same command again does nothing
    server.reset_counts()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "already downloaded" in again.output
    assert all(r == rel("manifest.json") for r, _ in server.requests)


def test_download_resumes_after_the_server_stops_mid_file(served, server, tmp_path):
    path, _, url = served
    local = mmu_core.open_dataset(path)
    f = max(local.manifest.files, key=lambda e: e.bytes)
    name = rel(f.path)
    server.cut[name] = f.bytes // 2  # the server stops half-way through this file
    with pytest.raises(RemoteError, match=f"{url}/{f.path}: .*(cut off|truncated)"):
        download(url, tmp_path, pixels=[f.pixel], options=FAST, chunk_bytes=256 * 1024)
    final = tmp_path / "toyimg" / "default" / f.path
    partial = layout.tmp_name(final, "download")
    have = partial.stat().st_size
    assert 0 < have < f.bytes and not final.exists()
    assert partial.read_bytes() == _source_bytes(path, f.path)[:have]

    server.cut.clear()
    server.reset_counts()
    result = download(url, tmp_path, pixels=[f.pixel], options=FAST, chunk_bytes=256 * 1024)
    asked = sorted(int(r.split("=")[1].split("-")[0]) for p, r in server.requests if p == name)
    assert asked[0] == have  # range requests from the bytes already there, none before
    assert result.resumed == 1 and result.downloaded == 1
    assert server.sent[name] == f.bytes - have  # nothing fetched twice
    assert final.read_bytes() == _source_bytes(path, f.path) and not partial.exists()
    assert validate(final.parent.parent, strict=True).ok


def test_download_refuses_a_file_that_does_not_match_the_manifest(served, server, tmp_path):
    path, _, url = served
    local = mmu_core.open_dataset(path)
    f = local.manifest.files[0]
    data = bytearray(_source_bytes(path, f.path))
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    server.tamper[rel(f.path)] = bytes(data)
    bad = hashlib.sha256(data).hexdigest()
    with pytest.raises(DownloadError) as err:
        download(url, tmp_path, pixels=[f.pixel], options=FAST)
    message = str(err.value)
    assert f.path in message and bad in message and f.sha256 in message
    final = tmp_path / "toyimg" / "default" / f.path
    assert not final.exists() and not layout.tmp_name(final, "download").exists()
    assert not (tmp_path / "toyimg" / "default" / "manifest.json").exists()


def test_download_some_columns(served, server, tmp_path):
    path, _, url = served
    local = mmu_core.open_dataset(path)
    result = download(url, tmp_path, columns=["magnitude"], options=FAST)  # a standard name
    copy = mmu_core.open_dataset(result.path)
    assert copy.columns == ["object_id", "ra", "dec", "mag", "healpix"]
    assert copy.modality is None  # no image column kept: not an image dataset any more
    assert validate(result.path, strict=True).ok
    ids = np.asarray(local.index().ids)[::97]
    same(copy.get(ids), local.get(ids, columns=copy.columns))
    assert server.bytes_sent < 0.05 * sum(f.bytes for f in local.manifest.files)
    with pytest.raises(DownloadError, match="missing column image_array"):
        download(url, tmp_path / "other", columns=["image_band"], options=FAST)


def test_hf_load_streams_a_dataset_over_http(served, server, tmp_path):
    """``hf.load(URL)`` (and ``hf.load(ROOT_URL, config_name)``, as for a published repository)
    reads the files remotely, and its rows equal the local dataset's."""
    from mmu_core import hf

    path, _, url = served
    local = hf.load(path, streaming=True, columns=["mag"])
    root = url.rsplit("/", 1)[0]
    for remote in (hf.load(url, streaming=True, columns=["mag"]),
                   hf.load(root, "default", streaming=True, columns=["mag"])):
        assert hf.source_of(remote) == url
        got = [(r["object_id"], r["magnitude"]) for r in remote.take(25)]
        want = [(r["object_id"], r["magnitude"]) for r in local.take(25)]
        assert got == want and len(got) == 25
