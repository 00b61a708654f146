"""``mmu sample desi`` writes the official layout, in the requested cone, reproducibly."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest
from astropy.io import fits

from mmu_core.models import SampleRequest
from mmu_core.sampling import random_in_cone
from mmu_desi import samples

HDU_ORDER = ["PRIMARY", "FIBERMAP", "EXP_FIBERMAP"] + [
    f"{c}_{p}" for c in "BRZ" for p in ("WAVELENGTH", "FLUX", "IVAR", "MASK", "RESOLUTION")
] + ["SCORES"]
LENGTHS = {"B": 2751, "R": 2326, "Z": 2881}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("desi-sample")
    result = samples.write_sample(SampleRequest(out_dir=out, n=120, seed=11, ra=210.0, dec=-1.0,
                                                radius=0.6))
    return out, result


def test_coadd_files_follow_the_data_model(sample):
    out, result = sample
    coadds = sorted(out.rglob("coadd-*.fits"))
    assert len(coadds) >= 2 and len(result.files) == len(coadds) + 1  # + zall
    for path in coadds:
        with fits.open(path, memmap=False) as h:
            assert [x.name for x in h] == HDU_ORDER
            hdr = h[0].header
            assert hdr["SPGRP"] == "healpix" and hdr["HPXNSIDE"] == 64 and hdr["HPXNEST"] is True
            assert hdr["SURVEY"] == "main" and hdr["PROGRAM"] == "dark"
            assert path.name == f"coadd-main-dark-{hdr['HPXPIXEL']}.fits"
            assert path.parent.as_posix().endswith(
                f"healpix/main/dark/{hdr['HPXPIXEL'] // 100}/{hdr['HPXPIXEL']}")
            n = len(h["FIBERMAP"].data)
            for cam, length in LENGTHS.items():
                wave = h[f"{cam}_WAVELENGTH"]
                assert wave.header["BUNIT"] == "Angstrom" and wave.data.dtype == np.dtype(">f8")
                assert wave.data.shape == (length,) and wave.data[1] - wave.data[0] == pytest.approx(0.8)
                assert h[f"{cam}_FLUX"].header["BUNIT"] == "10**-17 erg/(s cm2 Angstrom)"
                assert h[f"{cam}_FLUX"].data.dtype == np.dtype(">f4")
                assert h[f"{cam}_IVAR"].data.shape == (n, length)
                mask = h[f"{cam}_MASK"]
                assert mask.header["BITPIX"] == 32 and mask.header["BZERO"] == 2**31
                assert mask.data.dtype == np.uint32
                assert h[f"{cam}_RESOLUTION"].data.shape == (n, 11, length)
                assert h[f"{cam}_RESOLUTION"].data.dtype == np.dtype(">f4")
            fm = h["FIBERMAP"].data
            assert h["FIBERMAP"].columns["TARGET_RA"].unit == "deg"
            assert fm["TARGETID"].dtype == np.dtype(">i8")
            assert len(h["SCORES"].data) == n and "TSNR2_LRG" in h["SCORES"].columns.names
            # the file's targets lie in its NSIDE-64 pixel; sky fibers negative; bad fibers flagged
            tgt = fm["TARGETID"] > 0
            good = tgt & (fm["COADD_FIBERSTATUS"] == 0)
            pix = hp.ang2pix(64, fm["TARGET_RA"][good], fm["TARGET_DEC"][good], nest=True, lonlat=True)
            assert (pix == hdr["HPXPIXEL"]).all()
            assert (fm["OBJTYPE"][~tgt] == "SKY").all() and (~tgt).sum() >= 2
            assert 1 <= (tgt & (fm["COADD_FIBERSTATUS"] != 0)).sum() <= 2
            assert all(x.verify_checksum() == 1 and x.verify_datasum() == 1 for x in h)


def test_targets_are_in_the_cone_and_the_catalog_lacks_a_few(sample):
    out, result = sample
    ids, ra, dec = [], [], []
    for path in out.rglob("coadd-*.fits"):
        fm = fits.getdata(path, "FIBERMAP")
        real = (fm["TARGETID"] > 0) & (fm["COADD_FIBERSTATUS"] == 0)
        ids += fm["TARGETID"][real].tolist()
        ra += fm["TARGET_RA"][real].tolist()
        dec += fm["TARGET_DEC"][real].tolist()
    assert len(ids) == len(set(ids)) == result.n_objects == 120
    sep = hp.rotator.angdist([210.0, -1.0], [np.array(ra), np.array(dec)], lonlat=True)
    assert np.degrees(sep).max() <= 0.6
    zcat = fits.getdata(next(out.rglob("zall-pix-iron.fits")), "ZCATALOG")
    assert {"ZCAT_PRIMARY", "MAIN_PRIMARY", "Z", "ZERR", "ZWARN", "SPECTYPE"} <= set(zcat.names)
    missing = set(ids) - set(zcat["TARGETID"].tolist())
    assert 1 <= len(missing) <= 5


def test_sample_is_reproducible_from_the_seed(tmp_path):
    a = samples.write_sample(SampleRequest(out_dir=tmp_path / "a", n=10, seed=3, radius=0.2))
    b = samples.write_sample(SampleRequest(out_dir=tmp_path / "b", n=10, seed=3, radius=0.2))
    samples.write_sample(SampleRequest(out_dir=tmp_path / "c", n=10, seed=4, radius=0.2))
    names = [p.split("/a/")[1] for p in a.files]
    assert names == [p.split("/b/")[1] for p in b.files]
    for name in names:
        for hdu in ("FIBERMAP", "B_FLUX", "Z_RESOLUTION") if "coadd" in name else ("ZCATALOG",):
            assert np.array_equal(fits.getdata(tmp_path / "a" / name, hdu),
                                  fits.getdata(tmp_path / "b" / name, hdu))
    ids_a = fits.getdata(next((tmp_path / "a").rglob("zall*")), "ZCATALOG")["TARGETID"]
    ids_c = fits.getdata(next((tmp_path / "c").rglob("zall*")), "ZCATALOG")["TARGETID"]
    assert set(ids_a) != set(ids_c)


def test_sv3_sample_with_redrock_files(tmp_path):
    res = samples.write_sample(SampleRequest(out_dir=tmp_path, n=8, seed=1, radius=0.1,
                                             options={"survey": "sv3", "catalog": "redrock"}))
    coadd = next(tmp_path.rglob("coadd-sv3-dark-*.fits"))
    redrock = coadd.parent / coadd.name.replace("coadd-", "redrock-")
    assert str(redrock) in res.files
    with fits.open(redrock) as h:
        assert [x.name for x in h] == ["PRIMARY", "REDSHIFTS", "FIBERMAP", "EXP_FIBERMAP", "TSNR2"]
        assert {"TARGETID", "Z", "ZERR", "ZWARN", "SPECTYPE", "DELTACHI2"} <= set(h["REDSHIFTS"].columns.names)
    fm = fits.getdata(coadd, "FIBERMAP")
    assert "SV3_DESI_TARGET" in fm.names and "DESI_TARGET" not in fm.names
    assert not {"MIN_MJD", "MEAN_MJD", "MAX_MJD"} & set(fm.names)  # as fuji's FIBERMAPs


def test_spectra_show_the_lines_of_their_redshift(tmp_path):
    """Previews look real: a star-forming galaxy's [OII] and Hα sit at (1+z) x rest."""
    rng = np.random.default_rng(1)
    t = samples.make_targets(rng, *random_in_cone(rng, 200, 150.0, 2.0, 0.2))
    pick = np.flatnonzero((t.spectype == "GALAXY") & (t.z > 0.05) & (t.z < 0.3))
    t = t.take(pick)
    grid = 3600.0 + 0.8 * np.arange(7781)
    model = samples.synth.model_spectra(grid, t.spectype, t.z, t.flux_r, rng)
    ratios = []
    for i in range(len(t)):
        line = np.argmin(np.abs(grid - 6564.61 * (1 + t.z[i])))
        side = np.r_[line - 40:line - 20, line + 20:line + 40]
        ratios.append(model[i, line] / np.median(model[i, side]))
    assert np.median(ratios) > 1.5  # Hα stands out of the continuum where it should
    assert (model > 0).all()


def test_positions_place_the_first_targets_exactly(tmp_path):
    from astropy.io import fits as _fits

    from mmu_core.models import SampleRequest
    from mmu_desi.samples import write_sample

    wanted = [(150.2, 2.1), (150.05, 2.3), (149.9, 2.25)]
    write_sample(SampleRequest(out_dir=tmp_path, n=20, seed=3, ra=150.1, dec=2.2, radius=0.3,
                               positions=wanted))
    got = []
    for path in tmp_path.rglob("coadd-*.fits"):
        with _fits.open(path) as hdul:
            fm = hdul["FIBERMAP"].data
            got += list(zip(fm["TARGET_RA"], fm["TARGET_DEC"], strict=True))
    for ra, dec in wanted:
        assert any(abs(r - ra) < 1e-9 and abs(d - dec) < 1e-9 for r, d in got)
