"""``mmu sample legacysurvey``: files in the archive's layout, as legacypipe writes them, and
self-consistent (catalogs, images, the brick grid, requested positions)."""

from __future__ import annotations

import h5py
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from mmu_legacysurvey import datamodel as dm
from mmu_legacysurvey import samples

TRACTOR_DTYPES = {"release": ">i2", "brickid": ">i4", "brickname": "S8", "objid": ">i4",
                  "brick_primary": "bool", "maskbits": ">i4", "type": "S3", "ra": ">f8",
                  "dec": ">f8", "flux_g": ">f4", "flux_ivar_z": ">f4", "nobs_i": ">i2",
                  "mw_transmission_r": ">f4", "psfsize_z": ">f4", "shape_r": ">f4",
                  "ref_cat": "S2", "ref_id": ">i8", "wisemask_w1": "uint8", "dchisq": ">f4"}


def test_coadds_follow_the_archive_layout(raw, ls):
    for brick in ls.bricks(raw):
        centre = dm.brick_centre(brick)
        for kind, band in [(k, b) for k in ("image", "invvar") for b in ls.BANDS] + [
                ("maskbits", None)]:
            path = ls.coadd_path(raw, brick, kind, band)
            with fits.open(path) as hdul, fits.open(path, disable_image_compression=True) as bt:
                assert len(hdul) == 2 and isinstance(hdul[1], fits.CompImageHDU)
                h, z = hdul[1].header, bt[1].header
                assert (h["NAXIS1"], h["NAXIS2"]) == (400, 400)
                assert (z["ZTILE1"], z["ZTILE2"]) == (100, 100)
                assert z["ZCMPTYPE"] == ("HCOMPRESS_1" if kind == "maskbits" else "RICE_1")
                if kind == "image":
                    assert z["ZQUANTIZ"] == "SUBTRACTIVE_DITHER_2"
                    assert h["BUNIT"] == "nanomaggy" and h["MAGZERO"] == 22.5
                    assert hdul[1].data.dtype == np.float32
                elif kind == "invvar":
                    assert z.get("ZQUANTIZ", "NO_DITHER") == "NO_DITHER" and h["BUNIT"] == "1/nanomaggy^2"
                else:
                    assert hdul[1].data.dtype == np.int32 and h["MBIT_11"] == "MEDIUM"
                assert h["BRICK"] == brick and h["FILTERX" if band else "IMTYPE"] == (band or kind)
                wcs = WCS(h)
                assert list(wcs.wcs.ctype) == ["RA---TAN", "DEC--TAN"]
                np.testing.assert_allclose(np.abs(np.diag(wcs.wcs.cd)) * 3600, 0.262)
                np.testing.assert_allclose(wcs.wcs.crpix, [200.5, 200.5])
                np.testing.assert_allclose(wcs.wcs.crval, centre, atol=0.1)


def test_tractor_catalogs_follow_the_data_model(raw, ls):
    for brick in ls.bricks(raw):
        with fits.open(ls.tractor_path(raw, brick)) as hdul:
            assert [hdul[0].header[f"BAND{k}"] for k in range(4)] == list(ls.BANDS)
            data = hdul[1].data
            names = data.columns.names
            assert names == [n.lower() for n in names]
            for name, dtype in TRACTOR_DTYPES.items():
                got, want = data[name].dtype, np.dtype(dtype)
                if want.kind == "S":  # astropy may hand text back as str
                    assert got.kind in "SU" and data.columns[name].format == f"{want.itemsize}A"
                else:
                    assert got == want, (name, got, want)
            assert data["dchisq"].shape[1] == 5
            assert (np.char.strip(data["brickname"]) == brick).all()
            assert set(np.char.strip(data["type"])) <= {"PSF", "REX", "EXP", "DEV", "SER"}


def test_catalog_positions_and_maskbits_match_the_images(raw, ls):
    for brick in ls.bricks(raw):
        cat = ls.catalog(raw, brick)
        bits, _, wcs = ls.read_plane(ls.coadd_path(raw, brick, "maskbits"))
        x, y = wcs.world_to_pixel_values(cat["ra"], cat["dec"])
        np.testing.assert_allclose(x, cat["bx"], atol=1e-3)
        np.testing.assert_allclose(y, cat["by"], atol=1e-3)
        px, py = np.floor(x + 0.5).astype(int), np.floor(y + 0.5).astype(int)
        np.testing.assert_array_equal(bits[py, px], cat["maskbits"])


def test_noise_follows_the_inverse_variance(raw, ls):
    brick = ls.bricks(raw)[0]
    cat = ls.catalog(raw, brick)
    for band in ("g", "z"):
        image, _, wcs = ls.read_plane(ls.coadd_path(raw, brick, "image", band))
        ivar, _, _ = ls.read_plane(ls.coadd_path(raw, brick, "invvar", band))
        yy, xx = np.mgrid[0:400, 0:400]
        far = np.ones(image.shape, bool)
        for bx, by in zip(cat["bx"], cat["by"], strict=True):
            far &= (xx - bx) ** 2 + (yy - by) ** 2 > 25**2
        far &= ivar > 0
        z = image[far] * np.sqrt(ivar[far])
        robust = 1.4826 * np.median(np.abs(z - np.median(z)))
        assert 0.9 < robust < 1.1 and abs(np.median(z)) < 0.1, band


def test_stein_files_follow_the_release_layout(raw, ls):
    files = sorted((raw / "images" / "south").glob("*.h5"))
    assert [p.name for p in files][:2] == ["images_npix152_000000000_000000012.h5",
                                           "images_npix152_000000012_000000024.h5"]
    flux_z, start = [], 0
    for path in files:
        with h5py.File(path, "r") as f:
            n = f["images"].shape[0]
            assert f["images"].shape == (n, 3, 152, 152) and f["images"].dtype == np.float32
            assert f["flux"].shape == (n, 3) and f["psfsize"].dtype == np.float32
            assert f["inds"].dtype == np.int64 and f["ra"].dtype == np.float64
            np.testing.assert_array_equal(f["inds"][...], np.arange(start, start + n))
            assert set(f) >= {f.name for f in dm.STEIN_FIELDS} | {"images"}
            flux_z.append(f["flux"][:, 2])
            start += n
    flux_z = np.concatenate(flux_z)
    # ordered by decreasing z flux, as the release (noise added after the ordering)
    assert np.corrcoef(np.arange(len(flux_z)), flux_z)[0, 1] < -0.5


def test_requested_positions_are_the_first_objects(tmp_path, ls):
    positions = [(149.985, 2.005), (149.975, 1.996), (149.981, 2.0)]  # around 1499p020's centre
    raw = ls.write_sample(tmp_path / "raw", n=12, seed=2, ra=149.98, dec=2.0, radius=0.015,
                          positions=positions, objects_per_brick=12)
    (brick,) = ls.bricks(raw)
    cat = ls.catalog(raw, brick)
    for ra, dec in positions:
        i = np.flatnonzero((cat["ra"] == ra) & (cat["dec"] == dec))
        assert len(i) == 1 and ls.selected(cat)[i[0]]  # exactly there, and kept by the cut
    with h5py.File(next((raw / "images" / "south").glob("*.h5")), "r") as f:
        stein = set(zip(f["ra"][...].tolist(), f["dec"][...].tolist(), strict=True))
    assert set(positions) <= stein


def test_sample_is_reproducible(tmp_path, ls):
    a = ls.write_sample(tmp_path / "a", n=10, seed=5, layout="bricks", objects_per_brick=5)
    b = ls.write_sample(tmp_path / "b", n=10, seed=5, layout="bricks", objects_per_brick=5)
    brick = ls.bricks(a)[0]
    assert ls.bricks(a) == ls.bricks(b) and not (a / "images").exists()
    ca, cb = ls.catalog(a, brick), ls.catalog(b, brick)
    assert all((ca[n] == cb[n]).all() for n in ca.colnames)
    ia = ls.read_plane(ls.coadd_path(a, brick, "image", "r"))[0]
    np.testing.assert_array_equal(ia, ls.read_plane(ls.coadd_path(b, brick, "image", "r"))[0])


def test_brick_grid():
    b = samples.brick_at(150.0, 2.0)
    assert b.name == "1499p020" and dm.brick_centre(b.name) == (149.9, 2.0)
    assert b.owns(np.array([b.ra]), np.array([b.dec]))[0]
    rng = np.random.default_rng(0)
    ra, dec = rng.uniform(140, 160, 200), rng.uniform(-5, 5, 200)
    for r, d in zip(ra, dec, strict=True):  # every point is owned by its brick and no neighbour
        brick = samples.brick_at(r, d)
        assert brick.owns(np.array([r]), np.array([d]))[0]
        for dr, dd in ((0.26, 0), (-0.26, 0), (0, 0.26), (0, -0.26)):
            other = samples.brick_at(r + dr, d + dd)
            assert other.name != brick.name and not other.owns(np.array([r]), np.array([d]))[0]
    assert len({samples.brick_at(r, d).brickid for r, d in zip(ra, dec, strict=True)}) == len(
        {samples.brick_at(r, d).name for r, d in zip(ra, dec, strict=True)})


def test_full_size_images_cover_their_brick_and_flag_the_rest():
    """3600 pixels of 0.262" hold the 0.25 deg brick with a margin: NPRIMARY exactly there."""
    brick = samples.brick_at(150.1, 2.2)
    wcs = brick.wcs(3600)
    mask = np.zeros((3600, 3600), np.int32)
    samples._nprimary(brick, wcs, 3600, mask)
    flagged = mask != 0
    assert 0 < flagged.mean() < 0.2 and not flagged[100:3500, 100:3500].any()
    rng = np.random.default_rng(1)
    ys, xs = rng.integers(0, 3600, 3000), rng.integers(0, 3600, 3000)
    ra, dec = wcs.wcs_pix2world(xs, ys, 0)
    np.testing.assert_array_equal(flagged[ys, xs], ~brick.owns(ra, dec))
