"""Redshift join (zall-pix and redrock), primary selection, configs, one owner per target."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from desi_fitsmaker import fibermap_table, random_cameras, run_convert, write_coadd, write_zall

import mmu_desi.hooks as hooks
from mmu_core.errors import InputError
from mmu_core.models import ConvertContext, SampleRequest
from mmu_desi import convert, samples


def small_coadd(raw, name, tid, survey="main", program="dark", seed=0, **fm):
    rng = np.random.default_rng(seed)
    n = len(tid)
    return write_coadd(raw / name, fibermap_table(tid, rng.uniform(150, 151, n),
                                                  rng.uniform(2, 3, n), **fm),
                       random_cameras(rng, n), survey=survey, program=program)


def test_zall_join_gives_each_object_its_catalog_row_and_nan_where_missing(tmp_path):
    raw = tmp_path / "raw"
    samples.write_sample(SampleRequest(out_dir=raw, n=30, seed=2, radius=0.3))
    zcat = Table.read(next(raw.rglob("zall-pix-*.fits")), hdu="ZCATALOG")
    out, ctx = run_convert(raw)
    assert len(out["object_id"]) == 30
    by_id = {int(t): i for i, t in enumerate(zcat["TARGETID"])}
    missing = [t for t in out["object_id"] if int(t) not in by_id]
    assert 1 <= len(missing) < 30
    for i, t in enumerate(out["object_id"]):
        if int(t) in by_id:
            row = zcat[by_id[int(t)]]
            assert row["SURVEY"] == "main" and row["PROGRAM"] == "dark"
            assert out["Z"][i] == row["Z"] and out["ZERR"][i] == row["ZERR"]
            assert out["ZWARN"][i] == row["ZWARN"]
            assert out["SPECTYPE"][i].decode() == row["SPECTYPE"].strip()
        else:
            assert np.isnan(out["Z"][i]) and np.isnan(out["ZERR"][i]) and out["ZWARN"][i] == -1
            assert out["SPECTYPE"][i] == b""
    assert convert.MISSING_IN_CATALOG in ctx.warnings


def test_join_uses_survey_and_program_and_primary_flag(tmp_path):
    """The same TARGETID in dark and bright: each coadd takes its own program's row, and only
    the primary spectrum is kept."""
    raw = tmp_path / "raw"
    small_coadd(raw, "coadd-main-dark-1.fits", [11, 12, 13], program="dark")
    small_coadd(raw, "coadd-main-bright-1.fits", [11, 12, 14], program="bright", seed=1)
    small_coadd(raw, "coadd-sv3-dark-1.fits", [11, 15], survey="sv3", seed=2)
    rows = {
        "TARGETID": np.array([11, 11, 12, 12, 13, 14, 11, 15]),
        "SURVEY": np.array(["main", "main", "main", "main", "main", "main", "sv3", "sv3"]),
        "PROGRAM": np.array(["dark", "bright", "dark", "bright", "dark", "bright", "dark", "dark"]),
        "Z": np.array([0.11, 0.911, 0.12, 0.912, 0.13, 0.914, 3.11, 3.15]),
        "ZCAT_PRIMARY": np.array([True, False, False, True, True, True, False, True]),
        "MAIN_PRIMARY": np.array([True, False, False, True, True, True, False, False]),
        "SV_PRIMARY": np.array([False, False, False, False, False, False, True, True]),
        "EXTRA_COLUMN": np.arange(8.0),
    }
    write_zall(raw / "zall-pix-iron.fits", rows,
               {"TARGETID": "K", "SURVEY": "7A", "PROGRAM": "6A", "Z": "D", "ZCAT_PRIMARY": "L",
                "MAIN_PRIMARY": "L", "SV_PRIMARY": "L", "EXTRA_COLUMN": "D"})
    out, _ = run_convert(raw, "dr1_main")
    got = dict(zip(out["object_id"].tolist(), zip(out["Z"].tolist(), out["PROGRAM"].tolist(),
                                                  strict=True), strict=True))
    assert got == {11: (0.11, b"dark"), 12: (0.912, b"bright"), 13: (0.13, b"dark"),
                   14: (0.914, b"bright")}
    out, _ = run_convert(raw, "edr_sv3")  # sv3 rows only, SV_PRIMARY decides
    assert dict(zip(out["object_id"].tolist(), out["Z"].tolist(), strict=True)) == {11: 3.11, 15: 3.15}
    assert set(out["SURVEY"]) == {b"sv3"}


def test_redrock_files_give_the_redshifts_when_there_is_no_zall(tmp_path):
    raw = tmp_path / "raw"
    samples.write_sample(SampleRequest(out_dir=raw, n=25, seed=4, radius=0.3,
                                       options={"catalog": "redrock"}))
    out, ctx = run_convert(raw)
    assert len(out["object_id"]) == 25
    n_found = 0
    for path in raw.rglob("redrock-*.fits"):
        rr = fits.getdata(path, "REDSHIFTS")
        for row in rr:
            hit = np.flatnonzero(out["object_id"] == row["TARGETID"])
            if len(hit):
                n_found += 1
                assert out["Z"][hit[0]] == row["Z"] and out["DELTACHI2"][hit[0]] == row["DELTACHI2"]
                assert out["SUBTYPE"][hit[0]].decode() == row["SUBTYPE"].strip()
    assert 0 < n_found < 25  # the redrock files lack a few targets
    assert np.isnan(out["Z"]).sum() == 25 - n_found
    assert convert.NO_CATALOG not in ctx.warnings


def test_no_catalog_gives_nan_redshifts_and_warns_once(tmp_path):
    raw = tmp_path / "raw"
    samples.write_sample(SampleRequest(out_dir=raw, n=40, seed=5, radius=0.8,
                                       options={"catalog": "none"}))
    assert not list(raw.rglob("zall-*")) and not list(raw.rglob("redrock-*"))
    units = hooks.mmu_discover("desi", "dr1_main", raw, {})
    assert len(units) > 1
    ctx = ConvertContext(raw_dir=raw)
    out, ctx = run_convert(raw, context=ctx)
    assert len(out["Z"]) == 40 and np.isnan(out["Z"]).all() and np.isnan(out["ZERR"]).all()
    assert ctx.warnings.count(convert.NO_CATALOG) == 1
    assert len(ctx.warnings) == 1


def test_a_target_in_two_coadds_has_one_owner_without_a_catalog(tmp_path):
    """Tile coadds (or no catalog): the longest exposure keeps the target."""
    raw = tmp_path / "raw"
    small_coadd(raw / "a", "coadd-3-80605-thru20210205.fits", [21, 22, 23],
                exptime=[1000, 3000, 1000])
    small_coadd(raw / "b", "coadd-4-80606-thru20210210.fits", [22, 23, 24], seed=3,
                exptime=[900, 1000, 900])
    units = hooks.mmu_discover("desi", "dr1_main", raw, {})
    assert [u.key for u in units] == ["coadd-3-80605-thru20210205", "coadd-4-80606-thru20210210"]
    # 22: longer in a; 23: tie -> first unit
    assert units[0].meta["exclude"] == [] and sorted(units[1].meta["exclude"]) == [22, 23]
    out, _ = run_convert(raw)
    assert sorted(out["object_id"].tolist()) == [21, 22, 23, 24]


def test_discover_keeps_only_the_configs_survey_and_explains_when_none(tmp_path):
    raw = tmp_path / "raw"
    small_coadd(raw, "coadd-sv1-dark-3.fits", [1], survey="sv1")
    small_coadd(raw, "coadd-main-bright-3.fits", [2], program="bright")
    assert [u.key for u in hooks.mmu_discover("desi", "dr1_main", raw, {})] == ["coadd-main-bright-3"]
    with pytest.raises(InputError, match="no coadd of DESI survey 'sv3'.*sv1"):
        hooks.mmu_discover("desi", "edr_sv3", raw, {})


def test_reader_takes_extra_reordered_missing_columns_and_fills_a_fixed_column_set(tmp_path):
    raw = tmp_path / "raw"
    n = 3
    fm = fibermap_table(
        [31, 32, 33], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0], objtype=["TGT", "TGT", "SKY"],
        extra={"SV1_DESI_TARGET": ("K", np.ones(n, "i8")), "NEW_COLUMN": ("D", np.zeros(n)),
               "EBV": ("D", np.array([0.1, 0.2, 0.3]))},  # float64 where DESI has float32
        order=["TARGET_DEC", "NEW_COLUMN", "EBV", "OBJTYPE", "TARGETID", "SV1_DESI_TARGET",
               "TARGET_RA", "COADD_FIBERSTATUS", "FLUX_R", "COADD_EXPTIME", "DESI_TARGET"])
    rng = np.random.default_rng(0)
    write_coadd(raw / "x" / "coadd-main-dark-9.fits", fm, random_cameras(rng, n), scores=False)
    out, _ = run_convert(raw)
    assert out["object_id"].tolist() == [31, 32]  # the SKY row is dropped
    assert out["ra"].tolist() == [1.0, 2.0] and out["dec"].tolist() == [4.0, 5.0]
    assert out["EBV"].dtype == np.float32 and out["EBV"].tolist() == pytest.approx([0.1, 0.2])
    assert np.isnan(out["FLUX_G"]).all() and (out["BRICKID"] == -1).all()
    assert np.isnan(out["TSNR2_LRG"]).all()  # no SCORES HDU
    assert "NEW_COLUMN" not in out and "SV1_DESI_TARGET" not in out
    # the same column set and dtypes as a full sample build's
    full, _ = run_convert(_sample(tmp_path / "s"))
    assert {k: (v.dtype, v.shape[1:]) for k, v in out.items()} == \
        {k: (v.dtype, v.shape[1:]) for k, v in full.items()}


def _sample(raw):
    samples.write_sample(SampleRequest(out_dir=raw, n=5, seed=1, radius=0.1))
    return raw


def test_big_endian_input_is_read_correctly(tmp_path):
    raw = _sample(tmp_path / "raw")
    ra = {}
    for path in raw.rglob("coadd-*.fits"):
        with fits.open(path) as h:
            assert h["B_FLUX"].data.dtype.byteorder == ">"
            assert h["FIBERMAP"].data["TARGET_RA"].dtype.byteorder == ">"
            ra.update({int(t): float(r) for t, r in zip(h["FIBERMAP"].data["TARGETID"],
                                                        h["FIBERMAP"].data["TARGET_RA"], strict=True)})
    out, _ = run_convert(raw)
    for t, r in zip(out["object_id"], out["ra"], strict=True):
        assert r == ra[int(t)]
    assert out["ra"].dtype == np.float64 and out["spectrum_flux"].dtype.byteorder in "=<|"


def test_sample_rejects_unknown_options(tmp_path):
    with pytest.raises(InputError, match="--catalog must be one of zall, redrock, none"):
        samples.write_sample(SampleRequest(out_dir=tmp_path, n=2, options={"catalog": "zpix"}))
