"""Cross-matching MMU v1 folders (plain h5py files, no manifest, no ``_index/``): the pairs of
our own builds of the same rows and of astropy, through a positions sidecar made once in the
cache (``MMU_CACHE``), used by later runs, remade when a file changes or the entry is bad."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import astropy.units as u
import h5py
import numpy as np
import pytest
from astropy.coordinates import SkyCoord, search_around_sky
from stored import offset, store
from test_crossmatch import make_catalogs

from mmu_core.crossmatch import cross_match
from mmu_core.crossmatch.positions import OPEN_IN_PROCESS_MIN_PIXELS
from mmu_core.storage import layout
from mmu_core.storage.index import POSITION_FILES
from mmu_core.storage.positions_cache import (
    ENTRY_FILE,
    Folder,
    cache_root,
    entry_path,
    process_pool,
    sidecar_folders,
)
from mmu_core.storage.reader import open_dataset

RADIUS = 1.0  # arcsec


def write_v1(folder: Path, cols: dict, seed: int = 0, split: bool = True) -> Path:
    """An MMU v1 folder: ``healpix=N/001-of-001.hdf5`` per pixel, written with plain h5py, rows
    in no particular order; the fullest pixel is split into two files."""
    rng = np.random.default_rng(seed)
    pix = layout.healpix_of(cols["ra"], cols["dec"])
    pixels, counts = np.unique(pix, return_counts=True)
    fullest = int(pixels[np.argmax(counts)]) if split else -1
    for p in pixels.tolist():
        rows = rng.permutation(np.flatnonzero(pix == p))
        parts = np.array_split(rows, 2) if p == fullest else [rows]
        (folder / f"healpix={p}").mkdir(parents=True, exist_ok=True)
        for i, part in enumerate(parts):
            path = folder / f"healpix={p}" / f"{i + 1:03d}-of-{len(parts):03d}.hdf5"
            with h5py.File(path, "w") as h:
                for name, values in cols.items():
                    h.create_dataset(name, data=values[part])
                h.create_dataset("healpix", data=pix[part])
    return folder


def file_positions(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as h:
        return {k: h[k][...] for k in ("object_id", "ra", "dec")}


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def astropy_pairs(left: dict, right: dict) -> set[tuple[int, int]]:
    lsky = SkyCoord(left["ra"] * u.deg, left["dec"] * u.deg)
    rsky = SkyCoord(right["ra"] * u.deg, right["dec"] * u.deg)
    li, ri, _, _ = search_around_sky(lsky, rsky, RADIUS * u.arcsec)
    return set(zip(left["object_id"][li].tolist(), right["object_id"][ri].tolist(), strict=True))


def pairs_of(catalog) -> set[tuple[int, int]]:
    return set(zip(catalog["left_object_id"].to_pylist(), catalog["right_object_id"].to_pylist(),
                   strict=True))


def entries() -> list[Path]:
    return sorted(p.parent for p in (cache_root() / "positions").glob(f"*/*/{ENTRY_FILE}"))


def folder_of(path: Path) -> Folder:
    ds = open_dataset(path)
    return Folder.of(ds.path, ds.relpaths, ds.file_rows, ds.schema["object_id"].dtype)


@pytest.fixture(scope="module")
def sky(tmp_path_factory):
    root = tmp_path_factory.mktemp("v1")
    left, right = make_catalogs(seed=11, scale=0.15)
    return {"left": left, "right": right,
            "lbuild": store(root / "build" / "lsurvey" / "test", left, "lsurvey"),
            "rbuild": store(root / "build" / "rsurvey" / "test", right, "rsurvey"),
            "astropy": astropy_pairs(left, right)}


@pytest.fixture
def v1(sky, tmp_path, monkeypatch):
    """Fresh v1 copies of both catalogs and an empty cache under this test's folder."""
    monkeypatch.setenv("MMU_CACHE", str(tmp_path / "cache"))
    return (write_v1(tmp_path / "lsurvey" / "v1", sky["left"], seed=1),
            write_v1(tmp_path / "rsurvey" / "v1", sky["right"], seed=2))


@pytest.mark.parametrize("how", ["all", "nearest"])
def test_v1_folders_give_the_pairs_of_our_builds_and_of_astropy(sky, v1, how):
    for folder in v1:  # read-only, as published folders may be
        for d in [*folder.glob("healpix=*"), folder]:
            d.chmod(0o555)
    before = [listing(f) for f in v1]
    built = cross_match(sky["lbuild"], sky["rbuild"], radius_arcsec=RADIUS, how=how).catalog
    got = cross_match(*v1, radius_arcsec=RADIUS, how=how).catalog
    assert got.num_rows > 5_000 and got.equals(built)
    if how == "all":
        assert pairs_of(got) == sky["astropy"]
    # one sidecar per folder, in the cache; nothing written inside the v1 folders
    assert [listing(f) for f in v1] == before
    made = entries()
    assert len(made) == 2 and all(str(e).startswith(os.environ["MMU_CACHE"]) for e in made)
    assert {json.loads((e / ENTRY_FILE).read_text())["folder"] for e in made} == {
        str(f.resolve()) for f in v1}


def test_a_second_run_reads_the_cache_and_opens_no_pixel_file(sky, v1, monkeypatch):
    lds, rds = open_dataset(v1[0]), open_dataset(v1[1])
    opened: list[str] = []
    real_open = h5py.h5f.open

    def counting_open(name, *args, **kwargs):
        opened.append(os.fsdecode(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(h5py.h5f, "open", counting_open)
    first = cross_match(lds, rds, radius_arcsec=RADIUS, how="all").catalog
    every_file = {str(f.resolve()) for ds in (lds, rds) for f in ds.files}
    assert every_file <= {str(Path(f).resolve()) for f in opened}  # the first run read them
    made = {f: (f.stat().st_ino, f.stat().st_mtime_ns) for e in entries() for f in e.iterdir()}
    assert len(made) == 2 * (len(POSITION_FILES) + 1)

    opened.clear()
    second = cross_match(lds, rds, radius_arcsec=RADIUS, how="all").catalog
    assert opened == []  # positions came from the cache alone
    assert {f: (f.stat().st_ino, f.stat().st_mtime_ns) for e in entries()
            for f in e.iterdir()} == made
    assert second.equals(first) and pairs_of(second) == sky["astropy"]


def test_a_changed_added_or_removed_file_invalidates_the_cache(sky, v1):
    left, right = v1
    assert pairs_of(cross_match(left, right, radius_arcsec=RADIUS, how="all").catalog) \
        == sky["astropy"]
    old = entry_path(folder_of(left))
    assert old.is_dir()

    # a new mtime alone: a new entry replaces the old one, same pairs
    f = sorted(left.glob("healpix=*/*.hdf5"))[0]
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert pairs_of(cross_match(left, right, radius_arcsec=RADIUS, how="all").catalog) \
        == sky["astropy"]
    assert not old.exists() and entry_path(folder_of(left)).is_dir()
    assert len(entries()) == 2

    # a rewritten file: its objects moved 10 arcsec north lose their pairs
    with h5py.File(f, "r+") as h:
        rows = {k: h[k][...] for k in h}
        h["dec"][...] = np.clip(rows["dec"] + 10 / 3600, -90, 90)
    moved = set(rows["object_id"].tolist())
    expected = {p for p in sky["astropy"] if p[0] not in moved}
    assert len(expected) < len(sky["astropy"])
    assert pairs_of(cross_match(left, right, radius_arcsec=RADIUS, how="all").catalog) == expected

    # a removed file, then an added one (its original rows): the pairs follow the files
    f.unlink()
    assert pairs_of(cross_match(left, right, radius_arcsec=RADIUS, how="all").catalog) == expected
    with h5py.File(f.parent / "009-of-009.hdf5", "w") as h:
        for k, values in rows.items():
            h.create_dataset(k, data=values)
    assert pairs_of(cross_match(left, right, radius_arcsec=RADIUS, how="all").catalog) \
        == sky["astropy"]
    assert len(entries()) == 2


def _flip_data(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-16:] = bytes(255 - b for b in raw[-16:])  # the last values, header intact
    path.write_bytes(bytes(raw))


CORRUPTIONS = {
    "flipped values": lambda e: _flip_data(e / "pos_ra.npy"),
    "truncated array": lambda e: (e / "pos_id.npy").write_bytes((e / "pos_id.npy").read_bytes()[:200]),
    "missing array": lambda e: (e / "pos_dec.npy").unlink(),
    "garbage record": lambda e: (e / ENTRY_FILE).write_text("{not json"),
    "wrong offsets": lambda e: np.save(e / "pos_offset.npy",
                                       np.load(e / "pos_offset.npy")[::-1].copy()),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupt_cache_entry_is_ignored_and_made_again(sky, v1, kind):
    first = cross_match(*v1, radius_arcsec=RADIUS, how="all").catalog
    entry = entry_path(folder_of(v1[0]))
    CORRUPTIONS[kind](entry)
    again = cross_match(*v1, radius_arcsec=RADIUS, how="all").catalog
    assert again.equals(first) and pairs_of(again) == sky["astropy"]
    # made again, whole: the folder's rows, as the files hold them
    lds = open_dataset(v1[0])
    files = [file_positions(f) for f in lds.files]
    stored = [np.load(entry / name) for name in POSITION_FILES]
    np.testing.assert_array_equal(stored[3], np.r_[0, np.cumsum(lds.file_rows)])
    for k, name in enumerate(("object_id", "ra", "dec")):
        np.testing.assert_array_equal(stored[k], np.concatenate([f[name] for f in files]))


def test_processes_and_many_pixels_give_the_same_sidecars_and_pairs(tmp_path, monkeypatch):
    """Two folders of 512+ pixels each, opened on two processes at once (what large folders
    get): astropy's pairs; and the sidecars those processes made equal those a process pool
    makes from runs of files."""
    monkeypatch.setenv("MMU_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(5)
    n = 6_000
    ra, dec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-0.2, 0.2, n)))
    left = {"object_id": rng.permutation(n).astype(np.int64), "ra": ra, "dec": dec}
    rra, rdec = offset(ra, dec, rng.uniform(0, 0.9, n), rng.uniform(0, 360, n))
    right = {"object_id": (rng.permutation(n) + 10**9).astype(np.int64), "ra": rra, "dec": rdec}
    lv1 = write_v1(tmp_path / "l" / "v1", left, split=False)
    rv1 = write_v1(tmp_path / "r" / "v1", right, split=False)
    assert min(len(list(f.glob("healpix=*"))) for f in (lv1, rv1)) >= OPEN_IN_PROCESS_MIN_PIXELS
    got = cross_match(lv1, rv1, radius_arcsec=RADIUS, how="all", workers=2).catalog
    assert got.num_rows >= n and pairs_of(got) == astropy_pairs(left, right)

    # each opening process made its folder's sidecar itself; made again from runs of files
    # spread over a pool of processes, they are the same
    made = [[np.load(e / name) for name in POSITION_FILES] for e in entries()]
    for e in entries():
        (e / ENTRY_FILE).unlink()  # no longer whole
    with process_pool(2) as pool:
        again = sidecar_folders([folder_of(lv1), folder_of(rv1)], workers=2, executor=pool)
    for arrays, e in zip(made, sorted(again), strict=True):
        for a, name in zip(arrays, POSITION_FILES, strict=True):
            np.testing.assert_array_equal(a, np.load(e / name))


def test_cache_location_and_an_unwritable_cache(sky, v1, tmp_path, monkeypatch):
    monkeypatch.delenv("MMU_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "mmu"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "mmu"

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("MMU_CACHE", str(blocker))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = cross_match(*v1, radius_arcsec=RADIUS, how="all").catalog
    assert pairs_of(got) == sky["astropy"]  # read from the files instead
    assert any("positions cache" in str(w.message) for w in caught)
