"""Stored bytes are checked on every read: a corrupted row raises an error naming the file and
column (never returns garbage), the default `mmu validate` finds it, and files stored without
checksums (MMU v1) are read and reported as unchecked, not corrupt."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

import mmu_core
from mmu_core.storage.integrity import CorruptDataError
from mmu_core.storage.reader import DatasetError
from mmu_core.validate import validate


@pytest.fixture
def dataset(toy_image_dataset, tmp_path):
    src, _ = toy_image_dataset
    dst = tmp_path / "toyimg" / "default"
    shutil.copytree(src, dst)
    return dst


def _flip(path, offset: int, nbytes: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        data = bytearray(f.read(nbytes))
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


def _largest_file(ds):
    return max(range(len(ds.files)), key=lambda i: ds.file_rows[i])


def test_a_flipped_block_of_a_contiguous_column_is_caught_by_get_and_validate(dataset):
    ds = mmu_core.open_dataset(dataset)
    fi = _largest_file(ds)
    path = ds.files[fi]
    with h5py.File(path) as h:
        column = h["image_array"]
        offset, row_bytes = column.id.get_offset(), 5 * 16 * 16 * 4
        ids = h["object_id"][...]
    n = len(ids)
    bad_row = n // 2
    _flip(path, offset + bad_row * row_bytes + 100, 4_000)  # inside one row's bytes
    ds = mmu_core.open_dataset(dataset)
    with pytest.raises(CorruptDataError) as err:
        ds.get([ids[bad_row]], columns=["image_array"])
    assert str(path) in str(err.value) and "'image_array'" in str(err.value)
    assert "checksum mismatch" in str(err.value)
    # a shuffled batch (rows read straight into their places, take_scattered) is checked too
    with pytest.raises(CorruptDataError, match="checksum mismatch"):
        ds.get([ids[bad_row + 1], ids[0], ids[bad_row]], columns=["image_array"])
    # the same read through h5py instead of a memory map is checked the same way
    with pytest.raises(CorruptDataError):
        mmu_core.open_dataset(dataset, memory_map=False).get([ids[bad_row]],
                                                             columns=["image_array"])
    with pytest.raises(CorruptDataError):
        for _ in ds.iter_batches(batch_size=64, columns=["image_array"]):
            pass
    # rows in other checksum blocks of the file still read, and other columns of that row
    fine = ds.get([ids[0], ids[-1]], columns=["image_array"])
    assert fine["image_array"].shape == (2, 5, 16, 16)
    flipped = ds.get([ids[-1], ids[0]], columns=["image_array"])["image_array"]  # scattered
    assert flipped[::-1].tobytes() == fine["image_array"].tobytes()
    assert ds.get([ids[bad_row]], columns=["mag"])["mag"].shape == (1,)

    report = validate(dataset)
    assert not report.ok
    hits = [p for p in report.problems if p.column == "image_array"]
    assert hits and hits[0].file == ds.relpaths[fi] and "checksum mismatch" in hits[0].message


def test_a_flipped_chunk_of_a_compressed_column_is_caught(dataset):
    ds = mmu_core.open_dataset(dataset)
    fi = _largest_file(ds)
    path = ds.files[fi]
    with h5py.File(path) as h:
        column = h["image_mask"]
        assert column.fletcher32
        info = column.id.get_chunk_info(column.id.get_num_chunks() // 2)
        ids = h["object_id"][...]
        first_row = info.chunk_offset[0]
    _flip(path, info.byte_offset + info.size // 2, 8)
    ds = mmu_core.open_dataset(dataset)
    with pytest.raises(CorruptDataError) as err:
        ds.get([ids[first_row]], columns=["image_mask"])
    assert str(path) in str(err.value) and "'image_mask'" in str(err.value)
    report = validate(dataset)
    assert any(p.column == "image_mask" and p.file == ds.relpaths[fi] for p in report.problems)


def test_a_corrupt_header_names_the_file(dataset):
    ds = mmu_core.open_dataset(dataset)
    path = ds.files[0]
    ids = ds.read_rows([0], [0], ["object_id"])["object_id"]
    ds.close()
    _flip(path, 0, 64)  # the HDF5 superblock
    with pytest.raises(DatasetError, match=str(path)):
        mmu_core.open_dataset(dataset).get(ids)
    report = validate(dataset)
    assert any(p.file == ds.relpaths[0] and "cannot be opened" in p.message
               for p in report.problems)


def test_files_without_checksums_read_and_are_reported_unchecked(tmp_path):
    # an MMU v1-style folder written by plain h5py: no manifest, no digests, no Fletcher32
    rng = np.random.default_rng(3)
    folder = tmp_path / "v1" / "cfg" / "healpix=100"
    folder.mkdir(parents=True)
    import healpy

    ra, dec = healpy.pix2ang(16, 100, nest=True, lonlat=True)
    n = 20
    with h5py.File(folder / "001-of-001.hdf5", "w") as h:
        h["object_id"] = np.arange(n, dtype=np.int64)
        h["ra"] = np.full(n, ra)
        h["dec"] = np.full(n, dec)
        h["healpix"] = np.full(n, 100)
        h["spectrum_flux"] = flux = rng.random((n, 50), np.float32)
    ds = mmu_core.open_dataset(tmp_path / "v1" / "cfg")
    np.testing.assert_array_equal(ds.get([7, 3])["spectrum_flux"], flux[[7, 3]])
    report = validate(tmp_path / "v1" / "cfg")
    assert report.columns_unchecked == 5 and report.columns_verified == 0
    assert "5 unchecked (no checksums)" in report.text()


# ---- files that point outside their folder ---------------------------------------------------
SECRET = b"root:x:0:0:planted secret line\n" * 40


def _replace_column(path, name, make) -> None:
    with h5py.File(path, "r+") as h:
        n = h[name].shape[0]
        del h[name]
        make(h, name, n)


@pytest.mark.parametrize("kind", ["external_storage", "external_link", "virtual"])
def test_a_column_stored_outside_the_file_is_refused(dataset, tmp_path, kind):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    ds = mmu_core.open_dataset(dataset)
    fi = _largest_file(ds)
    path, rel = ds.files[fi], ds.relpaths[fi]
    ids = ds.read_rows([fi, fi], [0, 1], ["object_id"])["object_id"]
    ds.close()

    def make(h, name, n):
        if kind == "external_storage":  # the planted file's bytes as the column's values
            h.create_dataset(name, shape=(n,), dtype="f4", external=[(str(secret), 0, 4 * n)])
        elif kind == "external_link":
            other = tmp_path / "other.h5"
            with h5py.File(other, "w") as o:
                o["mag"] = np.frombuffer(SECRET[: 4 * n], "f4")
            h[name] = h5py.ExternalLink(str(other), "mag")
        else:
            other = tmp_path / "virtual_src.h5"
            with h5py.File(other, "w") as o:
                o["mag"] = np.frombuffer(SECRET[: 4 * n], "f4")
            layout = h5py.VirtualLayout(shape=(n,), dtype="f4")
            layout[:] = h5py.VirtualSource(str(other), "mag", shape=(n,))
            h.create_virtual_dataset(name, layout)

    _replace_column(path, "mag", make)
    with pytest.raises(DatasetError, match=r"column 'mag'.*refused"):
        mmu_core.open_dataset(dataset).get(ids, columns=["mag"])
    with pytest.raises(DatasetError, match=str(path)):
        mmu_core.open_dataset(dataset).get(ids, columns=["image_array"])  # the file, any column
    report = validate(dataset)
    hits = [p for p in report.problems if p.file == rel and p.column == "mag"]
    assert hits and "refused" in hits[0].message


def test_manifest_paths_and_symlinks_stay_inside_the_folder(dataset, tmp_path):
    import json

    manifest = json.loads((dataset / "manifest.json").read_text())
    good = manifest["files"][0]["path"]
    manifest["files"][0]["path"] = "../../x.hdf5"
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"'\.\./\.\./x\.hdf5'.*refused"):
        mmu_core.open_dataset(dataset)
    report = validate(dataset)
    assert any(p.file == "../../x.hdf5" and "refused" in p.message for p in report.problems)

    manifest["files"][0]["path"] = good
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    outside = tmp_path / "elsewhere.hdf5"
    (dataset / good).rename(outside)
    (dataset / good).symlink_to(outside)
    ds = mmu_core.open_dataset(dataset)
    with pytest.raises(DatasetError, match="outside the dataset folder"):
        ds.read_rows([0], [0], ["object_id"])
    assert any(p.file == good and "outside the dataset folder" in p.message
               for p in validate(dataset).problems)


@pytest.mark.parametrize("kind,says", [("external_link", "an HDF5 external link"),
                                        ("external_storage", "stored in external raw files"),
                                        ("virtual", "a virtual dataset")])
def test_a_v1_folder_with_a_column_stored_elsewhere_is_refused_when_opened(tmp_path, kind, says):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as o:
        o["mag"] = np.frombuffer(SECRET[:80], "f4")
    raw = tmp_path / "secret.bin"
    raw.write_bytes(SECRET[:80])
    folder = tmp_path / "v1" / "cfg" / "healpix=7"
    folder.mkdir(parents=True)
    with h5py.File(folder / "001-of-001.hdf5", "w") as h:
        h["object_id"] = np.arange(20, dtype=np.int64)
        h["ra"], h["dec"] = np.full(20, 10.0), np.full(20, 10.0)
        if kind == "external_link":
            h["mag"] = h5py.ExternalLink(str(secret), "mag")
        elif kind == "external_storage":
            h.create_dataset("mag", shape=(20,), dtype="f4", external=[(str(raw), 0, 80)])
        else:
            layout = h5py.VirtualLayout(shape=(20,), dtype="f4")
            layout[:] = h5py.VirtualSource(str(secret), "mag", shape=(20,))
            h.create_virtual_dataset("mag", layout)
    with pytest.raises(DatasetError, match=rf"001-of-001\.hdf5: column 'mag' is {says}.*refused"):
        mmu_core.open_dataset(tmp_path / "v1" / "cfg")
    assert any(p.column == "mag" and "refused" in p.message
               for p in validate(tmp_path / "v1" / "cfg").problems)
