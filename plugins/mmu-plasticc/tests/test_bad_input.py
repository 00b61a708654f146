"""Bad input is an error naming file, line and object, or with --skip-bad skipped and listed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mmu_core
from mmu_core.errors import BuildError, InputError
from mmu_core.models import ConvertContext
from mmu_plasticc.convert import convert_unit
from mmu_plasticc.discover import discover_units

GOOD = {
    10: [f"10,{59600 + k}.25,{k % 6},{k}.5,1.25,{k % 2}" for k in range(8)],
    20: [f"20,{59610 + k}.75,{(k * 5) % 6},-{k}.125,2.5,0" for k in range(6)],
    1_000_001: [f"1000001,{59620 + k}.0,{k % 3},3.0,0.5,1" for k in range(4)],
}


def _folder(
    helpers,
    tmp_path,
    bad_line: str | None = None,
    extra_meta: list[int] = (),
    lc_only: list[int] = (),
):
    """Objects 10, 20, 1000001 (+ ``lc_only`` without metadata); ``bad_line`` goes into
    object 20's rows as line 12 of the file (header = line 1)."""
    rows = GOOD[10] + GOOD[20][:2] + ([bad_line] if bad_line else []) + GOOD[20][2:]
    rows += GOOD[1_000_001]
    for i in lc_only:
        rows += [f"{i},{59630 + k}.0,{k % 6},1.0,1.0,0" for k in range(3)]
    meta = [helpers.meta_line(i) for i in (10, 20, 1_000_001, *extra_meta)]
    return helpers.kaggle_folder(tmp_path / "raw", rows, meta)


BAD_LINES = [
    ("20,59611.5,6,1.0,1.0,0", "passband 6 is outside 0-5"),
    ("20,59611.5,-1,1.0,1.0,0", "passband -1 is outside 0-5"),
    ("20,59611.5,2,1.0", "malformed line: 4 fields, expected 6"),
    ("20,59611.5,2,abc,1.0,0", "malformed line: flux is not a number: 'abc'"),
    ("20,59611.5,2,,1.0,0", "malformed line: flux is not a number: ''"),
    ("20,nan,2,1.0,1.0,0", "mjd is not finite: nan"),
    ("20,inf,2,1.0,1.0,0", "mjd is not finite: inf"),
    ("20,59611.5,2,1.0,1.0,7", "detected is 7, not 0 or 1"),
]


@pytest.mark.parametrize("line,message", BAD_LINES)
def test_bad_line_is_an_error_naming_file_line_and_object(tmp_path, helpers, line, message):
    raw = _folder(helpers, tmp_path, line)
    (unit,) = discover_units("plasticc", "train", raw, {})
    with pytest.raises(InputError) as err:
        list(convert_unit(unit, ConvertContext(raw_dir=raw)))
    assert err.value.file == str(raw / "training_set.csv")
    assert err.value.object == "20"
    assert f"line 12: {message}" in str(err.value)
    with pytest.raises(BuildError, match="line 12") as err:  # the same through the core
        helpers.build(raw, tmp_path / "out")
    assert "object 20" in str(err.value) and "training_set.csv" in str(err.value)


@pytest.mark.parametrize("line,message", BAD_LINES[::3])
def test_skip_bad_leaves_the_object_out_and_lists_it(tmp_path, helpers, line, message):
    raw = _folder(helpers, tmp_path, line)
    summary = helpers.build(raw, tmp_path / "out", skip_bad=True)
    ds = mmu_core.open_dataset(summary.path)
    stored = np.sort(
        np.concatenate([b["object_id"] for b in ds.iter_batches(columns=["object_id"])])
    )
    assert list(stored) == [10, 1_000_001]
    (listed,) = [s for s in summary.skipped_objects if s.get("object") == "20"]
    assert listed["file"] == str(raw / "training_set.csv")
    assert f"line 12: {message}" in listed["message"]
    # the objects around it are whole
    got = helpers.stored_observations(summary.path)
    assert (got.object_id == 10).sum() == 8 and (got.object_id == 1_000_001).sum() == 4


def test_unreadable_object_id_drops_only_that_line(tmp_path, helpers):
    raw = _folder(helpers, tmp_path, "2x0,59611.5,2,1.0,1.0,0")
    with pytest.raises(BuildError, match="line 12: malformed line: object_id is not an integer"):
        helpers.build(raw, tmp_path / "a")
    summary = helpers.build(raw, tmp_path / "b", skip_bad=True)
    got = helpers.stored_observations(summary.path)
    assert (got.object_id == 20).sum() == 6  # its good rows are all there
    assert any(
        "line 12" in s["message"] and s.get("object") is None for s in summary.skipped_objects
    )


def test_rows_for_an_object_without_metadata(tmp_path, helpers):
    raw = _folder(helpers, tmp_path, lc_only=[555])
    (unit,) = discover_units("plasticc", "train", raw, {})
    with pytest.raises(InputError) as err:
        list(convert_unit(unit, ConvertContext(raw_dir=raw)))
    assert err.value.object == "555" and err.value.file == str(raw / "training_set.csv")
    assert (
        "line 20: light-curve rows for an object with no row in training_set_metadata.csv"
        in str(err.value)
    )
    summary = helpers.build(raw, tmp_path / "out", skip_bad=True)
    assert len(mmu_core.open_dataset(summary.path)) == 3
    assert any(s.get("object") == "555" for s in summary.skipped_objects)


def test_metadata_row_without_light_curve_is_listed(tmp_path, helpers):
    raw = _folder(helpers, tmp_path, extra_meta=[777, 778])
    summary = helpers.build(raw, tmp_path / "out")  # not an error
    assert len(mmu_core.open_dataset(summary.path)) == 3
    listed = {s["object"]: s for s in summary.skipped_objects}
    assert set(listed) == {"777", "778"}
    assert listed["777"]["file"] == str(raw / "training_set_metadata.csv")
    assert "metadata row with no light curve" in listed["777"]["message"]


def test_object_rows_split_in_two_places(tmp_path, helpers):
    rows = GOOD[10][:4] + GOOD[20] + GOOD[10][4:] + GOOD[1_000_001]
    raw = helpers.kaggle_folder(
        tmp_path / "raw", rows, [helpers.meta_line(i) for i in (10, 20, 1_000_001)]
    )
    with pytest.raises(
        InputError,
        match="rows of object 10 are not together: they start at "
        "line 2 of training_set.csv and again at line 12",
    ):
        discover_units("plasticc", "train", raw, {})
    summary = helpers.build(raw, tmp_path / "out", skip_bad=True, unit_mb=0.0001)
    stored = helpers.stored_observations(summary.path)
    assert set(stored.object_id) == {20, 1_000_001}
    assert any(s.get("object") == "10" for s in summary.skipped_objects)


def test_repeated_metadata_row(tmp_path, helpers):
    raw = _folder(helpers, tmp_path, extra_meta=[20])
    with pytest.raises(InputError, match="object 20 has 2 metadata rows"):
        discover_units("plasticc", "train", raw, {})


def test_real_zero_flux_is_not_padding(tmp_path, helpers):
    rows = [f"31,{59600 + k}.0,{k % 2},0.000000,1.5,0" for k in range(7)]  # u: 4, g: 3 points
    fluxes = [0.0, 1.5, -2.0, 0.0, 3.0, 4.0, -1.0, 2.0, 0.5, 1.0, 6.0, -0.5]
    rows += [f"32,{59600 + k}.0,{k % 6},{f:.6f},1.0,0" for k, f in enumerate(fluxes)]
    raw = helpers.kaggle_folder(
        tmp_path / "raw", rows, [helpers.meta_line(31), helpers.meta_line(32)]
    )
    summary = helpers.build(raw, tmp_path / "out")
    ds = mmu_core.open_dataset(summary.path)
    row = ds.get([31, 32])
    mask, flux = row["lightcurve_mask"], row["lightcurve_flux"]
    csv = pd.read_csv(raw / "training_set.csv")
    for i, oid in enumerate((31, 32)):
        for band in range(6):
            n_real = int(((csv.object_id == oid) & (csv.passband == band)).sum())
            assert (~mask[i, band]).sum() == n_real
            assert mask[i, band, n_real:].all()
    # object 31: every real point has flux exactly 0, and every one is unmasked
    assert (flux[0][~mask[0]] == 0).all() and (~mask[0]).sum() == 7
    assert (row["lightcurve_flux_err"][0][~mask[0]] == 1.5).all()  # real, unlike padding (0)
    assert (csv[csv.object_id == 32].flux == 0).sum() == 2
    assert ((flux[1] == 0) & ~mask[1]).sum() == 2
