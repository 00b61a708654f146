"""``mmu sample manga`` writes the official DR17 layout: names, folders, HDUs, headers, dtypes."""

from __future__ import annotations

import gzip
import math
import re

import numpy as np
import pytest
from astropy.io import fits
from manga_testutil import SMALL, channel_index, find, write

from mmu_core.errors import InputError
from mmu_manga import datamodel as dm

CUBE_HDUS = ["PRIMARY", "FLUX", "IVAR", "MASK", "LSFPOST", "LSFPRE", "WAVE", "SPECRES",
             "SPECRESD", "OBSINFO", "GIMG", "RIMG", "IIMG", "ZIMG", "GPSF", "RPSF", "IPSF", "ZPSF"]


def test_sas_layout_and_file_names(small_raw):
    cubes = find(small_raw, "manga-*-LOGCUBE.fits.gz")
    maps = find(small_raw, "manga-*-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz")
    assert len(cubes) == len(maps) == 3
    for cube in cubes:
        plate, ifu = cube.name.split("-")[1:3]
        rel = cube.relative_to(small_raw).as_posix()
        assert rel == f"dr17/manga/spectro/redux/v3_1_1/{plate}/stack/{cube.name}"
        assert (small_raw / f"dr17/manga/spectro/analysis/v3_1_1/3.1.0/HYB10-MILESHC-MASTARSSP/"
                f"{plate}/{ifu}/manga-{plate}-{ifu}-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz").is_file()
        with open(cube, "rb") as f:
            assert f.read(2) == b"\x1f\x8b"  # really gzipped
    assert (small_raw / "dr17/manga/spectro/redux/v3_1_1/drpall-v3_1_1.fits").is_file()
    assert (small_raw / "dr17/manga/spectro/analysis/v3_1_1/3.1.0/dapall-v3_1_1-3.1.0.fits").is_file()


def test_logcube_hdus_headers_and_dtypes(small_raw):
    cube = find(small_raw, "manga-*-LOGCUBE.fits.gz")[0]
    with fits.open(cube) as h:
        assert [x.name for x in h] == CUBE_HDUS
        p = h[0].header
        for key in ("PLATEIFU", "MANGAID", "OBJRA", "OBJDEC", "IFURA", "IFUDEC"):
            assert key in p
        assert cube.name == f"manga-{p['PLATEIFU']}-LOGCUBE.fits.gz"
        assert h["FLUX"].header["BUNIT"] == "1E-17 erg/s/cm^2/Ang/spaxel"
        assert h["FLUX"].header["ERRDATA"] == "IVAR" and h["FLUX"].header["QUALDATA"] == "MASK"
        assert h["GIMG"].header["BUNIT"] == "nanomaggies/pixel"
        # FITS is big-endian: float32 cubes, int32 mask, float64 wavelengths.
        assert h["FLUX"].data.dtype == np.dtype(">f4")
        assert h["IVAR"].data.dtype == np.dtype(">f4")
        assert h["MASK"].data.dtype == np.dtype(">i4")
        assert h["LSFPOST"].data.dtype == np.dtype(">f4")
        assert h["WAVE"].data.dtype == np.dtype(">f8")
        nwave, ny, nx = h["FLUX"].data.shape
        assert nwave == SMALL["nwave"] == len(h["WAVE"].data)
        fibres = int(p["IFUDSGN"]) // 100
        assert ny == nx == dm.CUBE_SIZE[fibres]
        # Spaxels outside the hexagonal bundle: NOCOV|DONOTUSE, no flux, no ivar.
        mask = h["MASK"].data
        outside = np.all(mask & dm.DRP_NOCOV, axis=0)
        assert 0 < outside.sum() < ny * nx
        assert np.all(mask[:, outside] & dm.DRP_DONOTUSE)
        assert np.all(h["FLUX"].data[:, outside] == 0) and np.all(h["IVAR"].data[:, outside] == 0)
        assert outside[0, 0] and not outside[ny // 2, nx // 2]


def test_maps_channels_named_and_companions(small_raw):
    maps = find(small_raw, "manga-*-MAPS-*.fits.gz")[0]
    with fits.open(maps) as h:
        names = [x.name for x in h]
        for ext in ("SPX_SKYCOO", "SPX_ELLCOO", "BINID", "STELLAR_VEL", "STELLAR_SIGMA",
                    "EMLINE_GFLUX", "EMLINE_GVEL", "EMLINE_GSIGMA", "SPECINDEX"):
            assert ext in names
        for ext in ("STELLAR_VEL", "EMLINE_GFLUX", "EMLINE_GEW", "SPECINDEX"):
            hdr = h[ext].header
            assert hdr["ERRDATA"] == f"{ext}_IVAR" and hdr["ERRDATA"] in names
            assert hdr["QUALDATA"] == f"{ext}_MASK" and hdr["QUALDATA"] in names
            assert h[hdr["QUALDATA"]].data.dtype == np.dtype(">i4")
        g = h["EMLINE_GFLUX"].header
        assert [g[f"C{i + 1:02d}"] for i in range(35)] == list(dm.EMLINE_NAMES)
        assert g["BUNIT"] == "1E-17 erg/s/cm^2/spaxel"
        s = h["SPECINDEX"].header
        assert s[f"U{channel_index(s, 'D4000') + 1:02d}"] == ""
        assert s[f"U{channel_index(s, 'HDeltaA') + 1:02d}"] == "ang"
        assert h["STELLAR_VEL"].header["BUNIT"] == "km/s"
        assert h["EMLINE_GFLUX"].data.shape[0] == 35 and h["SPECINDEX"].data.shape[0] == 46
        # As mangadap writes them: channel keys padded to the digits of the channel count,
        # per-channel units only on some extensions, the WCS in PC form with CDELT = 1.
        sky, ell = h["SPX_SKYCOO"].header, h["SPX_ELLCOO"].header
        assert (sky["C1"], sky["C2"], sky["BUNIT"]) == ("On-sky X", "On-sky Y", "arcsec")
        assert "C01" not in sky and "U1" not in sky
        assert [ell[f"U{i}"] for i in range(1, 5)] == ["arcsec", "", "kpc/h", "degrees"]
        assert "U01" not in g and "BUNIT" in g
        for ext in ("SPX_SKYCOO", "STELLAR_VEL", "EMLINE_GFLUX", "SPECINDEX_MASK"):
            hdr = h[ext].header
            assert not [k for k in hdr if re.match(r"CD\d_\d$", k)], ext
            assert hdr["CDELT1"] == hdr["CDELT2"] == 1.0
            assert hdr["PC2_2"] * 3600 == pytest.approx(dm.SPAXEL_SIZE)
        assert h["EMLINE_GFLUX"].header["CDELT3"] == 1.0 and "CDELT3" not in h["STELLAR_VEL"].header
        # Padding-free maps the size of the cube; spaxels outside the bundle DONOTUSE (bit 30).
        m = h["STELLAR_VEL_MASK"].data
        assert np.any(m & dm.DAP_DONOTUSE) and np.any(m == 0)


def test_catalogs(small_raw):
    drpall = find(small_raw, "drpall-v3_1_1.fits")[0]
    dapall = find(small_raw, "dapall-v3_1_1-3.1.0.fits")[0]
    with fits.open(drpall) as h:
        assert h[1].name == "MANGA"
        t = h["MANGA"].data
        for col in ("plateifu", "mangaid", "objra", "objdec", "ifura", "ifudec", "nsa_z"):
            assert col in t.columns.names
        cubes = {c.name.split("-LOGCUBE")[0][len("manga-"):] for c in find(small_raw, "*LOGCUBE*")}
        assert set(np.char.strip(t["plateifu"])) == cubes
    with fits.open(dapall) as h:
        assert [x.name for x in h][1:] == list(dm.DAPALL_EXTENSIONS)
        t = h["HYB10-MILESHC-MASTARSSP"].data
        assert {"PLATEIFU", "DAPDONE", "DAPTYPE"} <= set(t.columns.names)
        assert set(np.char.strip(t["DAPTYPE"])) == {"HYB10-MILESHC-MASTARSSP"}


def test_objects_inside_the_cone(tmp_path):
    raw = write(tmp_path / "raw", n=6, seed=3, bundles="19")
    with fits.open(find(raw, "drpall-*.fits")[0]) as h:
        t = h["MANGA"].data
        ra, dec = np.radians(t["ifura"]), np.radians(t["ifudec"])
    ra0, dec0 = math.radians(150.0), math.radians(2.0)
    sep = np.degrees(np.arccos(np.clip(np.sin(dec) * math.sin(dec0)
                                       + np.cos(dec) * math.cos(dec0) * np.cos(ra - ra0), -1, 1)))
    assert np.all(sep <= 0.5)


def test_cube_sizes_follow_the_bundles(tmp_path):
    raw = write(tmp_path / "raw", n=17, seed=5, nwave=100, bundles="19,37,61,91,127")  # a plate
    sizes = {}
    for cube in find(raw, "*LOGCUBE.fits.gz"):
        with fits.open(cube) as h:
            sizes[int(h[0].header["IFUDSGN"]) // 100] = h["FLUX"].header["NAXIS1"]
    assert sizes == {19: 32, 37: 42, 61: 54, 91: 64, 127: 74}


def test_reproducible_from_seed(tmp_path):
    a = write(tmp_path / "a", n=1, seed=11, bundles="19")
    b = write(tmp_path / "b", n=1, seed=11, bundles="19")
    c = write(tmp_path / "c", n=1, seed=12, bundles="19")
    files_a = [p.relative_to(a) for p in sorted(a.rglob("*")) if p.is_file()]
    assert files_a == [p.relative_to(b) for p in sorted(b.rglob("*")) if p.is_file()]
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    cube_a, cube_c = find(a, "*LOGCUBE*")[0], find(c, "*LOGCUBE*")[0]
    assert gzip.decompress(cube_a.read_bytes()) != gzip.decompress(cube_c.read_bytes())


def test_default_is_the_full_dr17_grid(tmp_path):
    raw = write(tmp_path / "raw", n=1, seed=2, nwave=dm.NWAVE, bundles="19")
    with fits.open(find(raw, "*LOGCUBE.fits.gz")[0]) as h:
        wave = h["WAVE"].data
        assert h["FLUX"].data.shape == (4563, 32, 32)
    assert len(wave) == 4563
    assert wave[0] == pytest.approx(3621.6, abs=0.1) and wave[-1] == pytest.approx(10354, abs=1)
    assert np.allclose(np.diff(np.log10(wave)), 1e-4)


def test_flat_layout_and_repeats(tmp_path):
    raw = write(tmp_path / "raw", n=2, seed=4, layout="flat", repeats=1, bundles="19")
    names = sorted(p.name for p in raw.iterdir())
    assert all(p.is_file() for p in raw.iterdir())
    assert "drpall-v3_1_1.fits" in names and "dapall-v3_1_1-3.1.0.fits" in names
    assert sum(n.endswith("-LOGCUBE.fits.gz") for n in names) == 3  # 2 galaxies + 1 repeat
    with fits.open(raw / "drpall-v3_1_1.fits") as h:
        ids = list(h["MANGA"].data["mangaid"])
    assert len(ids) == 3 and len(set(ids)) == 2


def test_bad_sample_options_are_reported(tmp_path):
    with pytest.raises(InputError, match="bundles"):
        write(tmp_path / "x", n=1, bundles="20")
    with pytest.raises(InputError, match="layout"):
        write(tmp_path / "x", n=1, layout="tree")


def test_positions_place_the_first_galaxies_exactly(tmp_path):
    from mmu_core.models import SampleRequest
    from mmu_manga.samples import make_galaxies

    wanted = [(150.2, 2.1), (150.05, 2.3)]
    request = SampleRequest(out_dir=tmp_path, n=4, seed=1, ra=150.1, dec=2.2, radius=0.3,
                            positions=wanted)
    galaxies = make_galaxies(request, bundles=[19, 37], repeats=0)
    assert [(g.ra, g.dec) for g in galaxies[:2]] == wanted
    assert all(abs(g.dec - 2.2) < 0.31 for g in galaxies[2:])
