"""Discover: release recognition, units cut between objects, L from the data; streaming."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mmu_core
from mmu_core.errors import InputError
from mmu_core.models import ConvertContext
from mmu_plasticc.convert import convert_unit
from mmu_plasticc.discover import discover_units


def _line_objects(path) -> tuple[np.ndarray, np.ndarray]:
    """Byte offset and object id of every data line, found by splitting the bytes."""
    data = path.read_bytes()
    offsets, ids, pos = [], [], data.index(b"\n") + 1
    while pos < len(data):
        end = data.index(b"\n", pos)
        offsets.append(pos)
        ids.append(int(data[pos:end].split(b",")[0]))
        pos = end + 1
    return np.array(offsets), np.array(ids)


def _convert_all(unit, raw, **options):
    ctx = ConvertContext(raw_dir=raw, options=options)
    batches = list(convert_unit(unit, ctx))
    return batches, ctx


def test_units_are_byte_ranges_cut_between_objects(tmp_path, helpers):
    helpers.sample(tmp_path, n=40, seed=2)
    units = discover_units("plasticc", "train", tmp_path, {"unit_mb": 0.02})
    assert len(units) > 3
    lc = tmp_path / "training_set.csv"
    offsets, ids = _line_objects(lc)
    assert units[0].meta["start"] == offsets[0]
    assert units[-1].meta["end"] is None
    for a, b in zip(units, units[1:], strict=False):
        assert a.meta["end"] == b.meta["start"]
        k = int(np.searchsorted(offsets, b.meta["start"]))
        assert offsets[k] == b.meta["start"]  # a line start ...
        assert ids[k] != ids[k - 1]  # ... where a new object begins
        assert a.meta["start"] + 0.02e6 <= b.meta["start"] or a.meta["n_objects"] == 1
    assert sum(u.meta["n_objects"] for u in units) == len(np.unique(ids))
    assert len({u.key for u in units}) == len(units)
    again = discover_units("plasticc", "train", tmp_path, {"unit_mb": 0.02})
    assert [u.key for u in again] == [u.key for u in units]  # stable keys


def test_each_unit_converts_exactly_its_own_objects(tmp_path, helpers):
    helpers.sample(tmp_path, n=30, seed=3)
    units = discover_units("plasticc", "train", tmp_path, {"unit_mb": 0.03})
    offsets, ids = _line_objects(tmp_path / "training_set.csv")
    seen = []
    for unit in units:
        end = unit.meta["end"] or np.inf
        inside = np.unique(ids[(offsets >= unit.meta["start"]) & (offsets < end)])
        batches, ctx = _convert_all(unit, tmp_path)
        got = np.concatenate([b["object_id"] for b in batches])
        assert sorted(got) == sorted(inside)
        assert not ctx.skipped and not ctx.warnings
        seen.extend(got)
    assert sorted(seen) == sorted(np.unique(ids))


def test_tiny_blocks_give_the_same_result(tmp_path, helpers):
    """Objects spanning read blocks (and lines cut by them) are reassembled exactly."""
    helpers.sample(tmp_path, n=12, seed=4, release="unblinded")
    big = discover_units("plasticc", "test", tmp_path, {})
    small = discover_units("plasticc", "test", tmp_path, {}, block_bytes=333)
    assert [u.model_dump() for u in big] == [u.model_dump() for u in small]
    ctx = ConvertContext(raw_dir=tmp_path)
    for unit in big:
        a = list(convert_unit(unit, ctx))
        b = list(convert_unit(unit, ctx, block_bytes=333))
        assert len(b) >= len(a)
        for name in a[0]:
            joined_a = np.concatenate([x[name] for x in a])
            joined_b = np.concatenate([x[name] for x in b])
            assert np.array_equal(joined_a, joined_b, equal_nan=joined_a.dtype.kind == "f"), name


def test_gzipped_files_are_one_unit_each(tmp_path, helpers):
    files = helpers.sample(tmp_path, n=12, seed=5, release="unblinded")
    test_lc = [f for f in files if "test_lightcurves" in f.name]
    units = discover_units("plasticc", "test", tmp_path, {"unit_mb": 0.001})
    assert sorted(u.files[0] for u in units) == sorted(str(f) for f in test_lc)
    assert all(u.meta["start"] > 0 and u.meta["end"] is None for u in units)


def test_length_is_the_longest_band_over_all_files(tmp_path, helpers):
    files = helpers.sample(tmp_path, n=12, seed=6, release="unblinded")
    lc = helpers.csv_observations([f for f in files if "test_lightcurves" in f.name])
    units = discover_units("plasticc", "test", tmp_path, {})
    longest = lc.groupby(["object_id", "passband"]).size().max()
    assert {u.meta["length"] for u in units} == {longest}


def test_objects_out_of_id_order_still_find_their_metadata(tmp_path, helpers):
    ids = [5_000_000, 42, 3_000_000, 77]  # descending and mixed: not the usual order
    lines = [f"{i},{59600 + k}.5,{k % 6},{i / 1e6 + k},1.5,0" for i in ids for k in range(4)]
    meta = [helpers.meta_line(i, ra=100 + j, dec=-10 - j) for j, i in enumerate(sorted(ids))]
    helpers.kaggle_folder(tmp_path / "raw", lines, meta)
    units = discover_units("plasticc", "train", tmp_path / "raw", {})
    assert units[0].meta["ascending"] is False
    summary = helpers.build(tmp_path / "raw", tmp_path / "out")
    ds = mmu_core.open_dataset(summary.path)
    rows = ds.get(sorted(ids), columns=["ra", "dec", "lightcurve_flux", "lightcurve_mask"])
    assert np.array_equal(rows["ra"], [100.0, 101.0, 102.0, 103.0])
    assert np.array_equal(rows["dec"], [-10.0, -11.0, -12.0, -13.0])
    assert np.allclose(rows["lightcurve_flux"][:, 0, 0], np.array(sorted(ids)) / 1e6, atol=1e-6)


def test_length_option(tmp_path, helpers):
    lines = [f"7,{59600 + k}.0,2,{k}.5,1.0,1" for k in range(5)]
    lines += [f"8,{59600 + k}.0,{k % 6},1.0,1.0,0" for k in range(6)]
    helpers.kaggle_folder(tmp_path / "raw", lines, [helpers.meta_line(7), helpers.meta_line(8)])
    summary = helpers.build(tmp_path / "raw", tmp_path / "a", length=9)
    assert mmu_core.open_dataset(summary.path).schema["lightcurve_flux"].shape == (6, 9)
    with pytest.raises(InputError, match="object 7 has 5 points in band r") as err:
        discover_units("plasticc", "train", tmp_path / "raw", {"length": 4})
    assert err.value.object == "7"
    summary = helpers.build(tmp_path / "raw", tmp_path / "b", length=4, skip_bad=True)
    assert list(mmu_core.open_dataset(summary.path).get([8])["object_id"]) == [8]
    assert len(mmu_core.open_dataset(summary.path)) == 1
    listed = [s for s in summary.skipped_objects if s["object"] == "7"]
    assert listed and "more than the dataset length L=4" in listed[0]["message"]


# ---- recognising the release ------------------------------------------------------------
def test_both_releases_need_a_choice(tmp_path, helpers):
    helpers.sample(tmp_path, n=4, seed=1, release="kaggle")
    helpers.sample(tmp_path, n=4, seed=2, release="unblinded")
    with pytest.raises(InputError, match="both PLAsTiCC releases"):
        discover_units("plasticc", "train", tmp_path, {})
    units = discover_units("plasticc", "train", tmp_path, {"release": "unblinded"})
    assert units[0].meta["release"] == "unblinded"
    assert units[0].meta["detected_column"] == "detected_bool"
    units = discover_units("plasticc", "train", tmp_path, {"release": "kaggle"})
    assert units[0].files[0].endswith("training_set.csv")


def test_missing_files_are_named(tmp_path, helpers):
    helpers.sample(tmp_path, n=4, release="kaggle")
    (tmp_path / "test_set_metadata.csv").unlink()
    with pytest.raises(InputError, match="no PLAsTiCC 'test' files") as err:
        discover_units("plasticc", "test", tmp_path, {})
    assert "test_set.csv" in str(err.value)  # what was found is listed


def test_columns_of_the_other_release_are_refused(tmp_path, helpers):
    helpers.sample(tmp_path, n=4, release="kaggle")
    lc = tmp_path / "training_set.csv"
    text = lc.read_text()
    lc.write_text(text.replace("detected\n", "detected_bool\n", 1))
    with pytest.raises(InputError, match="columns are those of the unblinded release") as err:
        discover_units("plasticc", "train", tmp_path, {})
    assert err.value.file == str(lc)


def test_kaggle_test_set_sample_is_not_read_twice(tmp_path, helpers):
    helpers.sample(tmp_path, n=6, release="kaggle")
    head = "".join((tmp_path / "test_set.csv").read_text().splitlines(keepends=True)[:30])
    (tmp_path / "test_set_sample.csv").write_text(head)
    units = discover_units("plasticc", "test", tmp_path, {})
    assert {u.files[0] for u in units} == {str(tmp_path / "test_set.csv")}


def test_uncompressed_unblinded_files_are_recognised(tmp_path, helpers):
    import gzip

    helpers.sample(tmp_path / "gz", n=6, release="unblinded")
    for name in ("plasticc_train_lightcurves.csv.gz", "plasticc_train_metadata.csv.gz"):
        (tmp_path / "plain" / name[:-3]).parent.mkdir(exist_ok=True)
        (tmp_path / "plain" / name[:-3]).write_bytes(
            gzip.decompress((tmp_path / "gz" / name).read_bytes())
        )
    a = helpers.build(tmp_path / "gz", tmp_path / "out_gz")
    b = helpers.build(tmp_path / "plain", tmp_path / "out_plain")
    da, db = mmu_core.open_dataset(a.path), mmu_core.open_dataset(b.path)
    ids = np.sort(np.concatenate([x["object_id"] for x in da.iter_batches(columns=["object_id"])]))
    ra, rb = da.get(ids), db.get(ids)
    for name in ra:
        assert np.array_equal(ra[name], rb[name], equal_nan=ra[name].dtype.kind == "f"), name
    assert pd.Index(da.columns).equals(pd.Index(db.columns))
