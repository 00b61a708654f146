"""Mask -> MaNGA spaxel mapping: a mask drawn at a known sky position lands on the spaxels of a
synthetic cube that cover that position. Expected values come from astropy's WCS transforms
of each spaxel centre and angular separations, not from the mapping code."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from mmu_gz3d.spaxels import manga_cube_wcs, masks_to_spaxels

GZ_RA, GZ_DEC = 150.1, 2.2
COUNT = 300  # above 255 on purpose
RADIUS = 1.5  # arcsec
HALF_DIAGONAL = 0.5 * np.sqrt(2) / 2  # of a 0.5" spaxel
CUTOUT_HALF_DIAGONAL = 0.099 * np.sqrt(2) / 2


def cutout_wcs() -> WCS:
    header = fits.Header()
    for key, value in (("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"), ("CRPIX1", 262.5),
                       ("CRPIX2", 262.5), ("CRVAL1", GZ_RA), ("CRVAL2", GZ_DEC),
                       ("CD1_1", -0.099 / 3600), ("CD1_2", 0.0), ("CD2_1", 0.0),
                       ("CD2_2", -0.099 / 3600), ("CUNIT1", "deg"), ("CUNIT2", "deg")):
        header[key] = value
    return WCS(header)


def cube_header(ra: float, dec: float, n: int) -> fits.Header:
    """A MaNGA LOGCUBE FLUX header: RA, Dec, log wavelength; 0.5" spaxels."""
    header = fits.Header()
    for key, value in (("NAXIS", 3), ("NAXIS1", n), ("NAXIS2", n), ("NAXIS3", 4563),
                       ("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"), ("CTYPE3", "WAVE-LOG"),
                       ("CRPIX1", (n + 1) / 2), ("CRPIX2", (n + 1) / 2), ("CRPIX3", 1.0),
                       ("CRVAL1", ra), ("CRVAL2", dec), ("CRVAL3", 3621.6),
                       ("CD1_1", -0.5 / 3600), ("CD2_2", 0.5 / 3600), ("CD3_3", 0.834),
                       ("CUNIT1", "deg"), ("CUNIT2", "deg"), ("CUNIT3", "Angstrom")):
        header[key] = value
    return header


def disk_mask(wcs: WCS, centre: SkyCoord) -> np.ndarray:
    """COUNT on every cutout pixel whose centre lies within RADIUS of ``centre``."""
    jj, ii = np.mgrid[0:525, 0:525]
    sky = wcs.pixel_to_world(ii, jj)
    return np.where(sky.separation(centre).arcsec <= RADIUS, COUNT, 0).astype(np.int32)


def spaxel_separations(cube: WCS, n: int, target: SkyCoord) -> np.ndarray:
    jj, ii = np.mgrid[0:n, 0:n]
    return cube.celestial.pixel_to_world(ii, jj).separation(target).arcsec


@pytest.fixture(scope="module")
def scene():
    gz = cutout_wcs()
    centre = SkyCoord(GZ_RA * u.deg, GZ_DEC * u.deg)
    target = centre.spherical_offsets_by(3.1 * u.arcsec, -4.3 * u.arcsec)  # east and south
    ifu = centre.spherical_offsets_by(-1.2 * u.arcsec, 0.8 * u.arcsec)
    return gz, target, ifu, disk_mask(gz, target)


def test_mask_lands_on_the_spaxels_at_its_sky_position(scene):
    gz, target, ifu, mask = scene
    n = 34
    header = cube_header(ifu.ra.deg, ifu.dec.deg, n)
    spaxels = masks_to_spaxels(mask, gz, WCS(header))
    assert spaxels.shape == (n, n)

    sep = spaxel_separations(WCS(header), n, target)
    margin = HALF_DIAGONAL + CUTOUT_HALF_DIAGONAL + 0.01
    inside, outside = sep < RADIUS - margin, sep > RADIUS + margin
    assert inside.sum() >= 9
    np.testing.assert_array_equal(spaxels[inside], COUNT)
    np.testing.assert_array_equal(spaxels[outside], 0)
    # the spaxel containing the target position holds the full count
    i, j = np.rint(WCS(header).celestial.world_to_pixel(target)).astype(int)
    assert spaxels[j, i] == COUNT
    # area is conserved: sum over spaxels x 0.25 arcsec^2 ~ COUNT x disk area
    np.testing.assert_allclose(spaxels.sum() * 0.25, COUNT * np.pi * RADIUS**2, rtol=0.05)


def test_orientation_north_is_up_east_is_left(scene):
    """The cutout is north-up with row 0 at the north; the cube has row 0 at the south."""
    gz, _, ifu, _ = scene
    north = ifu.spherical_offsets_by(0 * u.arcsec, 5 * u.arcsec)
    east = ifu.spherical_offsets_by(5 * u.arcsec, 0 * u.arcsec)
    masks = np.stack([disk_mask(gz, north), disk_mask(gz, east)])
    spaxels = masks_to_spaxels(masks, gz, center=(ifu.ra.deg, ifu.dec.deg), shape=(34, 34))
    centre = (34 - 1) / 2
    north_j, north_i = centroid(spaxels[0])
    east_j, east_i = centroid(spaxels[1])
    # 5" = 10 spaxels: north is +rows in the cube, east is -columns
    assert north_j - centre == pytest.approx(10, abs=0.1)
    assert north_i - centre == pytest.approx(0, abs=0.1)
    assert centre - east_i == pytest.approx(10, abs=0.1)
    assert east_j - centre == pytest.approx(0, abs=0.1)


def centroid(image: np.ndarray) -> tuple[float, float]:
    jj, ii = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    return (jj * image).sum() / image.sum(), (ii * image).sum() / image.sum()


def test_centre_and_size_equal_the_cube_wcs(scene):
    gz, _, ifu, mask = scene
    header = cube_header(ifu.ra.deg, ifu.dec.deg, 44)
    from_header = masks_to_spaxels(mask, gz, header)
    from_centre = masks_to_spaxels(mask, gz, center=(ifu.ra.deg, ifu.dec.deg), shape=(44, 44))
    np.testing.assert_array_equal(from_header, from_centre)
    np.testing.assert_array_equal(from_header, masks_to_spaxels(
        mask, gz, manga_cube_wcs(ifu.ra.deg, ifu.dec.deg, 44)))


def test_spaxels_off_the_cutout_are_nan_and_max_bounds_mean(scene):
    gz, _, ifu, mask = scene
    n = 140  # 70" across: wider than the 52" cutout
    stack = np.stack([mask, mask // 2])
    mean = masks_to_spaxels(stack, gz, center=(ifu.ra.deg, ifu.dec.deg), shape=(n, n))
    peak = masks_to_spaxels(stack, gz, center=(ifu.ra.deg, ifu.dec.deg), shape=(n, n),
                            statistic="max")
    assert mean.shape == (2, n, n)
    sep = spaxel_separations(manga_cube_wcs(ifu.ra.deg, ifu.dec.deg, n), n,
                             SkyCoord(GZ_RA * u.deg, GZ_DEC * u.deg))
    assert np.isnan(mean[:, sep > 27 * np.sqrt(2) + 1]).all()  # beyond the cutout's corners
    assert not np.isnan(mean[:, sep < 25]).any()  # inside its inscribed circle
    ok = ~np.isnan(mean)
    assert (peak[ok] >= mean[ok]).all() and peak[ok].max() == COUNT


def test_sample_centre_mask_maps_to_the_cube_centre(registry, sample_raw):
    """Through the stored columns: the galaxy-centre mask peaks at the IFU centre."""
    from mmu_core.models import ConvertContext
    from mmu_gz3d.spaxels import gz3d_wcs_from_row

    unit = registry.discover("gz3d", "dr17", sample_raw, {})[0]
    batch = next(iter(registry.convert(unit, ConvertContext(raw_dir=sample_raw))))
    for i in range(len(batch["object_id"])):
        wcs = gz3d_wcs_from_row(batch, i)
        centre = masks_to_spaxels(batch["segmentation_array"][i, 0], wcs,
                                  center=(batch["ra"][i], batch["dec"][i]), shape=(44, 44))
        j, k = centroid(np.nan_to_num(centre))
        assert abs(j - 21.5) <= 1 and abs(k - 21.5) <= 1
