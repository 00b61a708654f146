"""`mmu sample plasticc` writes files that look like the two public releases."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

import mmu_plasticc.hooks
from mmu_core.errors import InputError
from mmu_core.models import SampleRequest
from mmu_plasticc.datamodel import (
    CLASS_NAMES,
    GALACTIC_CLASSES,
    KAGGLE_META_COLUMNS,
    UNBLINDED_META_COLUMNS,
)
from mmu_plasticc.samples import distance_modulus, to_galactic

KAGGLE_FILES = [
    "test_set.csv",
    "test_set_metadata.csv",
    "training_set.csv",
    "training_set_metadata.csv",
]


def test_kaggle_layout(tmp_path, helpers):
    files = helpers.sample(tmp_path, n=10, seed=1, release="kaggle")
    assert sorted(f.name for f in files) == KAGGLE_FILES
    assert all(f.read_bytes()[:2] != b"\x1f\x8b" for f in files)  # plain CSV
    train_meta = pd.read_csv(tmp_path / "training_set_metadata.csv")
    test_meta = pd.read_csv(tmp_path / "test_set_metadata.csv")
    assert list(train_meta.columns) == list(KAGGLE_META_COLUMNS)
    assert list(test_meta.columns) == list(KAGGLE_META_COLUMNS[:-1])  # no target in test
    lc = pd.read_csv(tmp_path / "training_set.csv")
    assert list(lc.columns) == ["object_id", "mjd", "passband", "flux", "flux_err", "detected"]
    assert set(train_meta.object_id).isdisjoint(test_meta.object_id)
    assert len(train_meta) == len(test_meta) == 10


def test_unblinded_layout_is_gzipped(tmp_path, helpers):
    files = helpers.sample(tmp_path, n=12, seed=1, release="unblinded")
    names = sorted(f.name for f in files)
    assert "plasticc_train_lightcurves.csv.gz" in names
    assert "plasticc_test_lightcurves_01.csv.gz" in names
    assert {"plasticc_train_metadata.csv.gz", "plasticc_test_metadata.csv.gz"} <= set(names)
    for f in files:
        assert f.read_bytes()[:2] == b"\x1f\x8b"
    with gzip.open(tmp_path / "plasticc_train_lightcurves.csv.gz", "rt") as fh:
        assert fh.readline().strip() == "object_id,mjd,passband,flux,flux_err,detected_bool"
    test_meta = pd.read_csv(tmp_path / "plasticc_test_metadata.csv.gz")
    assert list(test_meta.columns) == list(UNBLINDED_META_COLUMNS)
    assert (test_meta.target == 0).all()  # blinded: labels are in true_target
    assert set(test_meta.true_target) <= set(CLASS_NAMES)
    # the first test file holds the deep-field objects, like the real release
    first = pd.read_csv(tmp_path / "plasticc_test_lightcurves_01.csv.gz")
    assert (first.object_id < 1_000_000).all()


@pytest.mark.parametrize("release", ["kaggle", "unblinded"])
def test_light_curves_look_like_plasticc(tmp_path, helpers, release):
    files = helpers.sample(tmp_path, n=20, seed=3, release=release)
    lc = helpers.csv_observations([f for f in files if "metadata" not in f.name])
    for _, obj in lc.groupby("object_id", sort=False):
        # rows in time order with the bands interleaved (not grouped by band)
        assert (np.diff(obj.mjd.to_numpy()) > 0).all()
        assert (np.diff(obj.passband.to_numpy()) != 0).sum() > 6
        counts = obj.groupby("passband").size()
        assert counts.nunique() > 1  # band counts differ
        if obj.object_id.iloc[0] < 1_000_000:
            assert counts.between(50, 61).all()
        else:
            assert counts.max() <= 26
    assert (lc.flux < 0).any()
    assert set(lc.detected) == {0, 1}
    assert (lc.object_id < 1_000_000).any() and (lc.object_id >= 1_000_000).any()


@pytest.mark.parametrize("release", ["kaggle", "unblinded"])
def test_metadata_looks_like_plasticc(tmp_path, helpers, release):
    files = helpers.sample(tmp_path, n=20, seed=4, release=release)
    meta = pd.concat([pd.read_csv(f) for f in files if "metadata" in f.name and "train" in f.name])
    label = meta["true_target"] if "true_target" in meta else meta["target"]
    galactic = label.isin(GALACTIC_CLASSES)
    assert galactic.any() and (~galactic).any()
    for col in ("hostgal_specz", "hostgal_photoz", "hostgal_photoz_err"):
        assert (meta.loc[galactic, col] == 0).all()
    assert meta.loc[galactic, "distmod"].isna().all()
    assert meta.loc[~galactic, "distmod"].notna().all()
    assert set(label) <= set(CLASS_NAMES)
    ddf = meta["ddf"] if "ddf" in meta else meta["ddf_bool"]
    assert (ddf == (meta.object_id < 1_000_000)).all()


def test_positions_inside_the_cone(tmp_path):
    mmu_plasticc.hooks.mmu_sample(
        "plasticc",
        SampleRequest(out_dir=tmp_path / "far", n=30, seed=5, ra=359.9, dec=-30.0, radius=0.3),
    )
    meta = pd.read_csv(tmp_path / "far" / "training_set_metadata.csv")
    ra, dec = np.radians(meta.ra), np.radians(meta.decl)
    c_ra, c_dec = np.radians(359.9), np.radians(-30.0)
    cos_sep = np.sin(dec) * np.sin(c_dec) + np.cos(dec) * np.cos(c_dec) * np.cos(ra - c_ra)
    assert (np.degrees(np.arccos(np.clip(cos_sep, -1, 1))) <= 0.3 + 1e-6).all()
    assert ((meta.ra >= 0) & (meta.ra < 360)).all()


def test_given_positions_are_used_first(tmp_path):
    positions = [(150.01, 2.02), (149.99, 1.98)]
    mmu_plasticc.hooks.mmu_sample(
        "plasticc", SampleRequest(out_dir=tmp_path, n=5, seed=1, positions=positions)
    )
    for name in ("training_set_metadata.csv", "test_set_metadata.csv"):
        meta = pd.read_csv(tmp_path / name)
        assert list(zip(meta.ra[:2], meta.decl[:2], strict=True)) == positions
        assert len(meta) == 5


def test_reproducible_from_the_seed(tmp_path, helpers):
    a = helpers.sample(tmp_path / "a", n=8, seed=11, release="unblinded")
    b = helpers.sample(tmp_path / "b", n=8, seed=11, release="unblinded")
    c = helpers.sample(tmp_path / "c", n=8, seed=12, release="unblinded")
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]
    assert [f.read_bytes() for f in a] != [f.read_bytes() for f in c]


def test_unknown_release_is_refused(tmp_path, helpers):
    with pytest.raises(InputError, match="unknown release 'lsst'"):
        helpers.sample(tmp_path, n=2, release="lsst")


def test_helper_astronomy_agrees_with_astropy():
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.cosmology import FlatLambdaCDM

    ra, dec = np.array([0.0, 150.0, 359.9, 45.0, 266.4]), np.array([0.0, 2.0, -30.0, 80.0, -29.0])
    lon, lat = to_galactic(ra, dec)
    gal = SkyCoord(ra=ra * u.deg, dec=dec * u.deg).galactic
    assert np.allclose(lon, gal.l.deg, atol=1e-4) and np.allclose(lat, gal.b.deg, atol=1e-4)
    for z in (0.01, 0.3, 1.2):
        assert abs(distance_modulus(z) - FlatLambdaCDM(H0=70, Om0=0.3).distmod(z).value) < 1e-4
