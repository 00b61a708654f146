"""Built datasets hold every observation of every object exactly, band-major then by time.

The expected values come from pandas reading the sample CSV files; the stored values from
the core's reader on the built dataset.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import mmu_core
from mmu_core.validate import validate
from mmu_plasticc.datamodel import BANDS, CLASS_NAMES

META_FILES = {
    ("kaggle", "train"): "training_set_metadata.csv",
    ("kaggle", "test"): "test_set_metadata.csv",
    ("unblinded", "train"): "plasticc_train_metadata.csv.gz",
    ("unblinded", "test"): "plasticc_test_metadata.csv.gz",
}
CASES = [("kaggle", "train"), ("kaggle", "test"), ("unblinded", "train"), ("unblinded", "test")]


@pytest.mark.parametrize("release,config", CASES)
def test_every_observation_matches_its_csv_row(built, helpers, release, config):
    path, files = built[(release, config)]
    assert validate(path, strict=True).ok
    csv = helpers.csv_observations(files)
    stored = helpers.stored_observations(path)
    assert len(stored) == len(csv)
    # the CSV rows in stored order: by object, band, then time (stable: ties keep file order)
    expected = csv.sort_values(["object_id", "passband", "mjd"], kind="stable").reset_index(
        drop=True
    )
    got = stored.sort_values(["object_id", "passband", "position"], kind="stable").reset_index(
        drop=True
    )
    assert (got["object_id"].to_numpy() == expected["object_id"].to_numpy()).all()
    assert (got["passband"].to_numpy() == expected["passband"].to_numpy()).all()
    assert (got["mjd"].to_numpy() == expected["mjd"].to_numpy()).all()  # float64: exact
    assert (got["flux"].to_numpy() == expected["flux"].to_numpy(np.float32)).all()
    assert (got["flux_err"].to_numpy() == expected["flux_err"].to_numpy(np.float32)).all()
    assert (got["detected"].to_numpy() == expected["detected"].to_numpy()).all()
    assert (got["band_name"].to_numpy() == np.array(BANDS)[expected["passband"]]).all()
    # every band, y included, has observations
    assert set(stored["passband"]) == set(range(6))
    assert stored.groupby("passband").size().loc[5] == (csv["passband"] == 5).sum()


@pytest.mark.parametrize("release,config", [("kaggle", "train"), ("unblinded", "test")])
def test_order_is_band_then_time_with_padding_last(built, release, config):
    path, _ = built[(release, config)]
    ds = mmu_core.open_dataset(path)
    for batch in ds.iter_batches():
        mask, time = batch["lightcurve_mask"], batch["lightcurve_time"]
        # real points first: once padding starts in a band it does not stop
        assert (np.diff(mask.astype(int), axis=-1) >= 0).all()
        real_time = np.where(mask, np.inf, time)
        assert (real_time[..., 1:] >= real_time[..., :-1]).all()
        # padding is zero in every value column and never detected
        for col in ("lightcurve_time", "lightcurve_flux", "lightcurve_flux_err"):
            assert (batch[col][mask] == 0).all()
        assert not batch["lightcurve_detected"][mask].any()
        assert (batch["lightcurve_band"] == np.array(BANDS, "S1")).all()


@pytest.mark.parametrize("release,config", CASES)
def test_padded_length_is_the_longest_band(built, helpers, release, config):
    path, files = built[(release, config)]
    csv = helpers.csv_observations(files)
    longest = csv.groupby(["object_id", "passband"]).size().max()
    ds = mmu_core.open_dataset(path)
    assert ds.schema["lightcurve_time"].shape == (6, longest)
    assert ds.schema["lightcurve_time"].dtype == "<f8"
    assert ds.schema["lightcurve_flux"].dtype == "<f4"


@pytest.mark.parametrize("release,config", CASES)
def test_metadata_columns_keep_native_names_and_values(built, release, config):
    path, files = built[(release, config)]
    meta = pd.read_csv(files[0].parent / META_FILES[(release, config)]).set_index("object_id")
    ds = mmu_core.open_dataset(path)
    assert len(ds) == len(meta)
    rows = ds.get(meta.index.to_numpy())
    assert np.array_equal(rows["ra"], meta["ra"].to_numpy())
    assert np.array_equal(rows["dec"], meta["decl"].to_numpy())
    for name in meta.columns:
        assert np.array_equal(rows[name], meta[name].to_numpy(), equal_nan=True), name
    labels = meta["true_target"] if "true_target" in meta else meta.get("target")
    if labels is None:  # Kaggle test set: no labels at all
        assert (rows["target"] == -1).all() and (rows["obj_type"] == b"").all()
    else:
        names = [CLASS_NAMES[int(t)].encode() for t in labels]
        assert list(rows["obj_type"]) == names
    if "true_z" in meta:
        assert np.array_equal(rows["redshift"], meta["true_z"].to_numpy())
    else:
        assert np.isnan(rows["redshift"]).all()
    if release == "unblinded" and config == "test":
        assert (rows["target"] == 0).all()  # blinded in the file, kept as it is


def test_example_has_the_design_doc_structure(built, helpers):
    path, files = built[("unblinded", "train")]
    ds = mmu_core.open_dataset(path)
    csv = helpers.csv_observations(files)
    object_id = int(csv["object_id"].iloc[0])
    ex = ds.example(object_id)
    lc = ex["lightcurve"]
    length = ds.schema["lightcurve_time"].shape[1]
    assert ex["object_id"] == object_id
    assert np.array_equal(lc["band"], np.repeat(np.arange(6), length))
    for key in ("time", "flux", "flux_err", "mask"):
        assert lc[key].shape == (6 * length,)
    mine = csv[csv["object_id"] == object_id].sort_values(["passband", "mjd"], kind="stable")
    real = ~lc["mask"]
    assert np.array_equal(lc["time"][real], mine["mjd"].to_numpy())
    assert np.array_equal(lc["band"][real], mine["passband"].to_numpy())
    for key in ("obj_type", "hostgal_specz", "hostgal_photoz", "redshift", "ra", "dec"):
        assert key in ex, key
    assert ex["z"] == ex["redshift"]  # true_z under its standard name


def test_both_configs_of_a_release_share_one_column_set(built):
    for release in ("kaggle", "unblinded"):
        a = mmu_core.open_dataset(built[(release, "train")][0]).columns
        b = mmu_core.open_dataset(built[(release, "test")][0]).columns
        assert sorted(a) == sorted(b)


def test_deep_and_wide_field_objects_survive(built):
    path, _ = built[("kaggle", "train")]
    ds = mmu_core.open_dataset(path)
    rows = ds.get(
        np.sort(np.concatenate([b["object_id"] for b in ds.iter_batches(columns=["object_id"])]))
    )
    per_band = (~rows["lightcurve_mask"]).sum(axis=-1)
    deep = rows["object_id"] < 1_000_000
    assert deep.any() and (~deep).any()
    assert (rows["ddf"][deep] == 1).all() and (rows["ddf"][~deep] == 0).all()
    assert per_band[deep].min() >= 50 and per_band[~deep].max() <= 26
    assert math.isnan(rows["redshift"][0])
