"""Sharder, reader and resumable builds on real HDF5 files (toy plugin, in-process)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import healpy
import numpy as np
import pytest
from toy_plugin import ToyPlugin, make_rows, write_units
from typer.testing import CliRunner

import mmu_core
from mmu_core import testing
from mmu_core.build import build
from mmu_core.cli import app
from mmu_core.errors import BuildError
from mmu_core.storage import layout
from mmu_core.validate import validate

HERE = Path(__file__).parent


def _expected(units, modality="image"):
    rows = [make_rows(u, modality) for u in units]
    out = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    out["name"] = np.char.encode(out["name"])
    return out


def _all_rows(path):
    ds = mmu_core.open_dataset(path)
    parts = list(ds.iter_batches(batch_size=500))
    rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(rows["object_id"])
    return {k: v[order] for k, v in rows.items()}


def test_shipped_neighbour_table_is_healpys():
    pixels = np.arange(layout.NPIX)
    expected = healpy.get_all_neighbours(layout.NSIDE, pixels, nest=True).T
    np.testing.assert_array_equal(layout.neighbours(pixels), expected)
    assert layout.neighbours(np.array([5]))[0].tolist() == expected[5].tolist()


def test_layout_paths_round_trip():
    shard = layout.ShardFile(1234, 2, 3)
    assert shard.relpath == "healpix=1234/002-of-003.hdf5"
    assert layout.parse_relpath(shard.relpath) == shard
    assert layout.parse_relpath("healpix=12/.002-of-003.hdf5.tmp-1") is None


def test_get_round_trips_every_row_bit_exact(toy_image_dataset):
    path, units = toy_image_dataset
    ds = mmu_core.open_dataset(path)
    expected = _expected(units)
    assert len(ds) == len(expected["object_id"])
    # the data straddles several pixels, and pixels are split into several files
    assert len(ds.pixels) >= 4
    assert len(ds.files) > len(ds.pixels)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(expected["object_id"]))
    got = ds.get(expected["object_id"][order])
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values[order], err_msg=name)
    assert np.array_equal(
        got["healpix"],
        healpy.ang2pix(16, expected["ra"][order], expected["dec"][order], lonlat=True, nest=True),
    )


def test_files_are_sorted_by_id_contiguous_or_checked_chunks(toy_image_dataset):
    from mmu_core.storage.integrity import BLOCK_BYTES, digests, read_digests

    path, _ = toy_image_dataset
    for f in mmu_core.open_dataset(path).files:
        with h5py.File(f) as h:
            ids = h["object_id"][...]
            assert np.all(np.diff(ids) > 0)
            # "auto" compression: the bool mask shrinks a lot and is gzipped, in row chunks
            # (whole rows, grouped to ~64 KB) checked by Fletcher32
            mask = h["image_mask"]
            assert mask.compression == "gzip" and mask.fletcher32
            assert mask.chunks[1:] == (5, 16, 16) and mask.chunks[0] * 5 * 16 * 16 <= 64 * 1024
            # noise is not compressed: contiguous (memory-mapped on read), with a digest per
            # block of rows that equals the digest of the rows as written
            image = h["image_array"]
            assert image.compression is None and image.chunks is None
            per_block, sums = read_digests(image)
            assert per_block == 1  # a 5 kB row is a block: a read hashes exactly what it read
            per_block_ra, _ = read_digests(h["ra"])
            assert per_block_ra == BLOCK_BYTES // 8  # small rows: ~64 kB of them a block
            np.testing.assert_array_equal(sums, digests(image[...], per_block))
            assert h.attrs["survey"] == "toyimg" and h.attrs["nside"] == 16


def test_auto_compression_decides_on_rows_as_they_are_stored():
    from mmu_core.storage.columns import ColumnSpec, compression_for

    rng = np.random.default_rng(3)
    spec = ColumnSpec("<f4", (7781,))  # 31 kB rows: one row per chunk
    # rows that repeat one noisy template compress well together, not one (stored) chunk at a
    # time: they stay raw and contiguous
    template = rng.normal(size=7781).astype("<f4")
    repeated = np.repeat(template[None], 200, axis=0)
    assert compression_for(spec, "auto", repeated) == {}
    # a repeated wavelength grid compresses within each row: gzipped
    grid = np.repeat(np.linspace(3600, 9824, 7781, dtype="<f4")[None], 200, axis=0)
    grid = np.round(grid, 1)
    assert compression_for(spec, "auto", grid)["compression"] == "gzip"
    # the test looks through the whole block, not only its first rows
    mostly_noise = rng.normal(size=(200, 7781)).astype("<f4")
    mostly_noise[:20] = 0
    assert compression_for(spec, "auto", mostly_noise) == {}


def test_large_rows_get_one_row_per_chunk():
    from mmu_core.storage.columns import ColumnSpec, chunk_shape

    # a 5x160x160 float32 stamp (512 kB) is one chunk: one row read decompresses one row
    assert chunk_shape(ColumnSpec("<f4", (5, 160, 160)), 10_000) == (1, 5, 160, 160)
    assert chunk_shape(ColumnSpec("<f4", (7781,)), 10_000) == (1, 7781)
    # a 96x96x4563 cube row is split so a chunk stays near 1 MB, spectra kept whole
    c = chunk_shape(ColumnSpec("<f4", (96, 96, 4563)), 100)
    assert c[0] == 1 and c[-1] == 4563 and np.prod(c) * 4 <= 1024 * 1024


def test_get_missing_id_names_it(toy_image_dataset):
    ds = mmu_core.open_dataset(toy_image_dataset[0])
    with pytest.raises(KeyError, match="424242"):
        ds.get([424242], columns=["ra"])


def test_cone_matches_brute_force(toy_image_dataset):
    path, units = toy_image_dataset
    expected = _expected(units)
    ds = mmu_core.open_dataset(path)
    ra0, dec0, radius = 45.0, 0.0, 1.5
    got = ds.cone(ra0, dec0, radius, columns=["object_id", "image_array", "magnitude"])
    v0 = healpy.ang2vec(ra0, dec0, lonlat=True)
    v = healpy.ang2vec(expected["ra"], expected["dec"], lonlat=True)
    inside = v @ v0 >= np.cos(np.radians(radius))
    assert 0 < inside.sum() < len(inside)
    order = np.argsort(got["object_id"])
    np.testing.assert_array_equal(got["object_id"][order], np.sort(expected["object_id"][inside]))
    sel = np.argsort(expected["object_id"][inside])
    np.testing.assert_array_equal(got["image_array"][order], expected["image_array"][inside][sel])
    np.testing.assert_array_equal(got["magnitude"][order], expected["mag"][inside][sel])
    # only pixels intersecting the cone were opened
    disc = set(healpy.query_disc(16, v0, np.radians(radius), inclusive=True, nest=True).tolist())
    assert set(ds.last_cone_pixels) <= disc


def test_aliases_on_request(toy_image_dataset):
    path, units = toy_image_dataset
    ds = mmu_core.open_dataset(path)
    ids = make_rows(units[0], "image")["object_id"][:5]
    by_alias = ds.get(ids, columns=["magnitude"])
    native = ds.get(ids, columns=["mag"])
    np.testing.assert_array_equal(by_alias["magnitude"], native["mag"])
    renamed = ds.get(ids, columns=["mag", "ra"], aliases=True)
    assert set(renamed) == {"magnitude", "ra"}


def test_iterate_sees_every_row_once(toy_image_dataset):
    path, units = toy_image_dataset
    rows = _all_rows(path)
    np.testing.assert_array_equal(rows["object_id"], np.sort(_expected(units)["object_id"]))


def test_example_is_the_logical_structure(toy_image_dataset):
    path, units = toy_image_dataset
    ds = mmu_core.open_dataset(path)
    exp = make_rows(units[1], "image")
    ex = ds.example(exp["object_id"][7])
    assert [b["filter"] for b in ex["image"]] == ["g", "r", "i", "z", "y"]
    np.testing.assert_array_equal(ex["image"][2]["array"], exp["image_array"][7, 2])
    assert ex["image"][2]["psf_fwhm"] == float(exp["image_psf_fwhm"][7, 2])
    assert ex["magnitude"] == exp["mag"][7] and ex["provenance"]["survey"] == "toyimg"


def test_spectrum_round_trip_and_validate(tmp_path):
    units = write_units(tmp_path / "raw", n_units=3, n=120, ra=359.9, dec=-30.0, radius=2.0)
    registry = testing.plugin_registry(ToyPlugin())
    summary = build("toyspec", tmp_path / "raw", tmp_path / "out", registry=registry)
    expected = _expected(units, "spectrum")
    got = mmu_core.open_dataset(summary.path).get(expected["object_id"])
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)
    assert validate(summary.path, strict=True).ok


def test_rebuild_is_noop_and_other_inputs_refused(tmp_path):
    write_units(tmp_path / "raw", n_units=2, n=40, ra=10, dec=10, radius=1)
    registry = testing.plugin_registry(ToyPlugin())
    first = build("toyspec", tmp_path / "raw", tmp_path / "out", registry=registry)
    mtimes = {f: f.stat().st_mtime_ns for f in first.path.rglob("*.hdf5")}
    again = build("toyspec", tmp_path / "raw", tmp_path / "out", registry=registry)
    assert again.noop and again.rows == first.rows
    assert {f: f.stat().st_mtime_ns for f in first.path.rglob("*.hdf5")} == mtimes
    write_units(tmp_path / "raw", n_units=3, n=40, ra=10, dec=10, radius=1)
    with pytest.raises(BuildError, match=r"built from other inputs \(unit u002 is new; units\.json changed"):
        build("toyspec", tmp_path / "raw", tmp_path / "out", registry=registry)


def test_reads_plain_v1_folder_without_manifest(toy_image_dataset, tmp_path):
    path, units = toy_image_dataset
    v1 = tmp_path / "v1" / "toyimg" / "default"
    v1.mkdir(parents=True)
    for pixel_dir in path.glob("healpix=*"):
        shutil.copytree(pixel_dir, v1 / pixel_dir.name)
    ds = mmu_core.open_dataset(v1)
    assert ds.manifest is None and ds.modality == "image" and len(ds) == 1800
    exp = make_rows(units[4], "image")
    got = ds.get(exp["object_id"][::-1], columns=["image_array", "mag"])
    np.testing.assert_array_equal(got["image_array"], exp["image_array"][::-1])
    assert validate(v1).ok


@pytest.mark.parametrize("defect,needle", [
    ("nan_ra", "has ra=nan"),
    ("shape_change", "rows have shape"),
    ("missing_column", "columns differ"),
])
def test_bad_batches_stop_the_build_naming_unit_and_leave_nothing(tmp_path, defect, needle):
    write_units(tmp_path / "raw", n_units=3, n=120, ra=20, dec=20, radius=1)
    registry = testing.plugin_registry(ToyPlugin(corrupt=defect))
    with pytest.raises(BuildError, match=needle) as info:
        build("toyimg", tmp_path / "raw", tmp_path / "out", registry=registry)
    assert "unit u001" in str(info.value)
    assert "object" in str(info.value)  # every message names objects, not only a batch number
    out = tmp_path / "out" / "toyimg" / "default"
    assert not list(out.glob("healpix=*")) and not (out / "manifest.json").exists()
    finals = [p for p in out.rglob("*") if p.is_file() and ".tmp-" not in str(p)]
    assert all("_staging" in str(p) for p in finals)


def test_duplicate_ids_across_units_are_refused(tmp_path):
    units = write_units(tmp_path / "raw", n_units=2, n=50, ra=20, dec=20, radius=1)
    units[1]["id0"] = units[0]["id0"]
    units[1]["seed"] = units[0]["seed"]
    (tmp_path / "raw" / "units.json").write_text(json.dumps(units))
    registry = testing.plugin_registry(ToyPlugin())
    with pytest.raises(BuildError, match=r"object \d+ appears in both unit 'u000' and unit 'u001'"):
        build("toyimg", tmp_path / "raw", tmp_path / "out", registry=registry)
    assert not list((tmp_path / "out" / "toyimg" / "default").glob("healpix=*"))


def test_skip_bad_lists_the_unit(tmp_path):
    write_units(tmp_path / "raw", n_units=3, n=30, ra=20, dec=20, radius=1)
    registry = testing.plugin_registry(ToyPlugin(fail_unit="u002"))
    with pytest.raises(BuildError, match="unit u002: file units.json, object u002: bad bytes"):
        build("toyspec", tmp_path / "raw", tmp_path / "out", registry=registry)
    summary = build("toyspec", tmp_path / "raw", tmp_path / "out2", registry=registry,
                    options={"skip_bad": True})
    assert summary.rows == 60
    assert summary.skipped_units == [
        {"key": "u002", "reason": "file units.json, object u002: bad bytes in toy file"}]


def test_sigkill_mid_build_then_rerun_gives_same_rows(tmp_path):
    units = write_units(tmp_path / "raw", n_units=6, n=200, ra=45.0, dec=0.0, radius=5.0)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(HERE / "slow_build.py"), str(tmp_path / "raw"),
                             str(out), "0.05"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    staging = out / "toyimg" / "default" / "_staging"
    deadline = time.time() + 60
    while time.time() < deadline:
        done = [d for d in staging.glob("u*") if (d / "DONE.json").exists()] if staging.exists() else []
        if len(done) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    dataset = out / "toyimg" / "default"
    assert proc.returncode == -signal.SIGKILL
    assert not (dataset / "manifest.json").exists()
    assert 2 <= len([d for d in staging.glob("u*") if (d / "DONE.json").exists()]) < 6
    # nothing partial under a final name: every finished-looking file opens and is whole
    for f in dataset.rglob("*.hdf5"):
        if ".tmp-" in str(f):
            continue
        with h5py.File(f) as h:
            n = h["object_id"].shape[0]
            assert all(ds.shape[0] == n for ds in h.values())
    rerun = subprocess.run([sys.executable, str(HERE / "slow_build.py"), str(tmp_path / "raw"),
                            str(out), "0"], capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    rows, converted = map(int, rerun.stdout.split())
    assert rows == 1200 and converted < 6  # finished units were not redone
    assert not list(dataset.rglob("*.tmp-*")) and not (dataset / "_staging").exists()
    reference = build("toyimg", tmp_path / "raw", tmp_path / "ref",
                      registry=testing.plugin_registry(ToyPlugin()), max_file_bytes=300_000)
    a, b = _all_rows(dataset), _all_rows(reference.path)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    np.testing.assert_array_equal(a["object_id"], np.sort(_expected(units)["object_id"]))
    assert validate(dataset, strict=True).ok


# ---- validator catches planted corruption ------------------------------------------------
@pytest.fixture
def corrupt_copy(toy_image_dataset, tmp_path):
    src = toy_image_dataset[0]
    dst = tmp_path / "toyimg" / "default"
    shutil.copytree(src, dst)
    return dst


def _first_file(path):
    return sorted(path.glob("healpix=*/*.hdf5"))[0]


def test_validate_passes_clean(toy_image_dataset):
    report = validate(toy_image_dataset[0], strict=True)
    assert report.ok, report.text()
    assert report.files_checked == len(mmu_core.open_dataset(toy_image_dataset[0]).files)


def test_validate_catches_wrong_healpix(corrupt_copy):
    f = _first_file(corrupt_copy)
    with h5py.File(f, "r+") as h:
        h["healpix"][0] = h["healpix"][0] + 1
    report = validate(corrupt_copy)
    assert not report.ok
    assert any(p.column == "healpix" and p.row == 0 and "ang2pix" in p.message
               for p in report.problems)


def test_validate_catches_duplicate_id(corrupt_copy):
    files = sorted(corrupt_copy.glob("healpix=*/*.hdf5"))
    with h5py.File(files[0]) as h:
        victim = h["object_id"][0]
    with h5py.File(files[-1], "r+") as h:
        h["object_id"][0] = victim
    report = validate(corrupt_copy)
    assert any(f"object_id {victim} is not unique" in p.message for p in report.problems)


def test_validate_catches_truncated_column(corrupt_copy):
    f = _first_file(corrupt_copy)
    with h5py.File(f, "r+") as h:
        data = h["mag"][:-1]
        del h["mag"]
        h["mag"] = data
    report = validate(corrupt_copy)
    assert any(p.column == "mag" and "truncated" in p.message for p in report.problems)


def test_validate_catches_a_changed_value(corrupt_copy):
    f = _first_file(corrupt_copy)
    with h5py.File(f, "r+") as h:
        h["image_array"][0, 0, 0, 0] += 1.0
    # a plausible value, changed through HDF5 itself: only checksums can see it — the
    # column's block digests by default, the file's sha256 with --strict
    report = validate(corrupt_copy)
    assert [p.column for p in report.problems] == ["image_array"]
    assert "checksum mismatch in stored row 0 " in report.problems[0].message
    strict = validate(corrupt_copy, strict=True)
    assert any("checksum mismatch (file changed" in p.message for p in strict.problems)


def test_cli_build_validate_info(tmp_path, toy_registry):
    runner = CliRunner()
    write_units(tmp_path / "raw", n_units=2, n=40, ra=100, dec=-5, radius=1)
    res = runner.invoke(app, ["build", "toyspec", "--raw", str(tmp_path / "raw"), "--out",
                              str(tmp_path / "out")], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "80" in res.output and "dataset:" in res.output
    path = tmp_path / "out" / "toyspec" / "default"
    res = runner.invoke(app, ["validate", str(path), "--strict"])
    assert res.exit_code == 0 and "valid" in res.output
    full = json.loads(runner.invoke(app, ["validate", str(path), "--full", "--json"]).output)
    assert full["ok"] and full["examples_checked"] == 80  # every row, not a sample
    info = json.loads(runner.invoke(app, ["info", str(path), "--json"]).output)
    assert info["rows"] == 80 and info["columns"]["spectrum_flux"]["shape"] == [64]
    assert info["columns"]["Z"]["alias"] == "z"
    with h5py.File(_first_file(path), "r+") as h:
        h["healpix"][0] = 0
    res = runner.invoke(app, ["validate", str(path)])
    assert res.exit_code == 1 and "INVALID" in res.output
    bad = runner.invoke(app, ["build", "toyspec", "--raw", str(tmp_path / "raw"), "--out",
                              str(tmp_path / "o2"), "--no-such-option"])
    assert bad.exit_code == 2 and "unknown option '--no-such-option'" in bad.output


def test_validate_catches_a_stale_positions_sidecar(corrupt_copy):
    ra = np.load(corrupt_copy / "_index" / "pos_ra.npy")
    ra[0] += 1e-3
    np.save(corrupt_copy / "_index" / "pos_ra.npy", ra)
    assert validate(corrupt_copy).ok  # lengths still agree: only --strict compares values
    strict = validate(corrupt_copy, strict=True)
    assert any("stale sidecar" in p.message for p in strict.problems)


def test_large_unit_fragments_become_files_as_they_are(tmp_path):
    """A pixel fed by several units: each unit's sorted rows that hold at least 1/16 of the size
    budget are one file, hard-linked from staging (written once); smaller ones are merged."""
    import os

    from mmu_core.storage.writer import (
        LINK_MIN_FRACTION,
        UnitResult,
        UnitStager,
        merge_pixel,
        plan_pixel_files,
    )

    dataset = tmp_path / "toyimg" / "default"
    staging = dataset / layout.STAGING_DIR
    staging.mkdir(parents=True)
    attrs = {"survey": "toyimg", "config": "default"}
    # all rows within 0.3 degrees of the centre of NSIDE-16 pixel 1000
    ra, dec = healpy.pix2ang(16, 1000, nest=True, lonlat=True)
    specs = [{"key": key, "seed": seed, "n": n, "ra": float(ra), "dec": float(dec),
              "radius": 0.3, "id0": 9_000_000}
             for key, seed, n in (("big-a", 1, 200), ("big-b", 2, 150), ("small", 3, 5))]
    rows, results = {}, {}
    for spec in specs:
        r = make_rows(spec, "image")
        if spec["key"] != "small":  # big-b's ids fall between big-a's
            r["object_id"] = (1_000_000 + (spec["key"] == "big-b")
                              + 14 * np.arange(spec["n"], dtype=np.int64))
        rows[spec["key"]] = r
        stager = UnitStager(staging, spec["key"], attrs)
        stager.add(r, 0)
        results[spec["key"]] = stager.finish(UnitResult(key=spec["key"]))
    (pixel,) = {p for res in results.values() for p in res.pixels}
    schema = results["big-a"].column_specs()
    row_bytes = sum(s.row_bytes for s in schema.values())
    budget = 250 * row_bytes  # 200 and 150 rows fit; 5 rows are under 1/16 of it
    assert 5 * row_bytes < LINK_MIN_FRACTION * budget <= 150 * row_bytes
    fragments = [(k, staging / k / f"pix-{pixel}.hdf5") for k in ("small", "big-b", "big-a")]
    staged = [f for k, _ in fragments for f in results[k].fragment_list(staging / k, schema)[pixel]]
    assert [f[:3] for f in staged] == [(k, p, len(rows[k]["object_id"])) for k, p in fragments]

    plan = plan_pixel_files(staged, schema, budget)
    # the two large fragments first (by first id), then the merged rest
    assert [([k for k, _ in frags], part) for frags, part in plan] == [
        (["big-a"], (1, 1)), (["big-b"], (1, 1)), (["small"], (1, 1))]

    result = merge_pixel(dataset, pixel, staged, schema, attrs, budget)
    names = [f["path"] for f in result.files]
    assert names == [f"healpix={pixel}/{i:03d}-of-003.hdf5" for i in (1, 2, 3)]
    files = [dataset / n for n in names]
    # written once: the final files are the staged fragments themselves
    assert os.path.samefile(files[0], fragments[2][1])
    assert os.path.samefile(files[1], fragments[1][1])
    assert not os.path.samefile(files[2], fragments[0][1])  # a merge, rewritten
    for f, key in zip(files, ("big-a", "big-b", "small"), strict=True):
        with h5py.File(f) as h:
            assert h.attrs["healpix"] == pixel and "file_index" not in h.attrs
            ids = h["object_id"][...]
            assert np.all(np.diff(ids) > 0)
            order = np.argsort(rows[key]["object_id"])
            np.testing.assert_array_equal(ids, rows[key]["object_id"][order])
            np.testing.assert_array_equal(h["image_array"][...],
                                          rows[key]["image_array"][order])

    # a budget that the large fragments exceed: the classic split of all rows, sorted across
    small_budget = 100 * row_bytes
    plan = plan_pixel_files(staged, schema, small_budget)
    assert [part for _, part in plan] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all(len(frags) == 3 for frags, _ in plan)
