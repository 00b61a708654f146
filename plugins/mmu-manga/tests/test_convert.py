"""discover + convert: stored values equal the FITS values at the same (x, y) after padding.

Expected values are read here directly with astropy (not with the plugin's reader) and
placed by hand: spaxel (x, y) of an ny x nx cube sits at grid cell [y0 + y, x0 + x] with
y0 = (96 - ny) // 2, x0 = (96 - nx) // 2.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from manga_testutil import channel_index, channel_key, expected_labels, find, run, units_of

from mmu_core.errors import InputError
from mmu_manga import datamodel as dm

G = 96


@pytest.fixture(scope="module")
def converted(small_raw):
    """{plateifu: (batch, context)} for the 3-galaxy sample."""
    out = {}
    for unit in units_of(small_raw):
        batches, ctx = run(unit, small_raw)
        assert len(batches) == 1
        out[unit.key] = (batches[0], ctx)
    return out


def _fits(raw, plateifu):
    cube = fits.open(find(raw, f"manga-{plateifu}-LOGCUBE.fits.gz")[0])
    maps = fits.open(find(raw, f"manga-{plateifu}-MAPS-*.fits.gz")[0])
    return cube, maps


def test_discover_one_unit_per_cube(small_raw):
    units = units_of(small_raw)
    cubes = find(small_raw, "manga-*-LOGCUBE.fits.gz")
    assert sorted(u.key for u in units) == sorted(c.name[6:-len("-LOGCUBE.fits.gz")] for c in cubes)
    with fits.open(find(small_raw, "drpall-*.fits")[0]) as h:
        t = h["MANGA"].data
        by_key = {str(p).strip(): (ra, dec)
                  for p, ra, dec in zip(t["plateifu"], t["ifura"], t["ifudec"], strict=True)}
    for u in units:
        assert u.meta["maps"].endswith(f"manga-{u.key}-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz")
        assert (u.ra, u.dec) == by_key[u.key]


def test_spaxel_spectra_equal_fits_after_padding(small_raw, converted):
    rng = np.random.default_rng(0)
    for plateifu, (b, _) in converted.items():
        cube, _ = _fits(small_raw, plateifu)
        with cube:
            nwave, ny, nx = cube["FLUX"].data.shape
            y0, x0 = (G - ny) // 2, (G - nx) // 2
            assert b["ifu_offset"][0].tolist() == [y0, x0]
            assert b["ifu_size"][0].tolist() == [ny, nx]
            assert b["ifu_flux"].shape == (1, G, G, nwave)
            assert b["ifu_flux"].dtype == np.float32 and b["ifu_mask"].dtype == np.int32
            # a covered spaxel, an uncovered corner one, and random ones
            picks = [(ny // 2, nx // 2), (0, 0), (ny - 1, nx - 1)]
            picks += [tuple(rng.integers(0, [ny, nx])) for _ in range(5)]
            for y, x in picks:
                for col, ext in (("ifu_flux", "FLUX"), ("ifu_ivar", "IVAR"), ("ifu_mask", "MASK"),
                                 ("ifu_lsf_sigma", "LSFPOST")):
                    stored = b[col][0, y0 + y, x0 + x, :]
                    assert np.array_equal(stored, cube[ext].data[:, y, x]), (plateifu, col, y, x)
            assert np.array_equal(b["ifu_lambda"][0], cube["WAVE"].data.astype(np.float32))
            # the whole cube, transposed to (y, x, wavelength)
            inner = b["ifu_flux"][0, y0 : y0 + ny, x0 : x0 + nx, :]
            assert np.array_equal(inner, np.moveaxis(cube["FLUX"].data, 0, -1))
            assert b["ifu_spaxel_size"][0] == pytest.approx(0.5)


def test_padding_is_masked(converted):
    for b, _ in converted.values():
        (y0, x0), (ny, nx) = b["ifu_offset"][0], b["ifu_size"][0]
        pad = np.ones((G, G), bool)
        pad[y0 : y0 + ny, x0 : x0 + nx] = False
        assert pad.sum() == G * G - ny * nx
        mask = b["ifu_mask"][0][pad]
        assert np.all(mask == dm.DRP_DONOTUSE)  # exactly DONOTUSE (bit 10)
        assert np.all(b["ifu_flux"][0][pad] == 0) and np.all(b["ifu_ivar"][0][pad] == 0)
        assert np.all(b["ifu_lsf_sigma"][0][pad] == 0)
        assert np.all(b["ifu_image_mask"][0][:, pad] & dm.DAP_DONOTUSE)  # bit 30, every channel
        assert np.all(b["ifu_image_ivar"][0][len(dm.DRP_CHANNELS):, pad] == 0)


def test_map_channels_equal_fits(small_raw, converted):
    labels = expected_labels(find(small_raw, "manga-*-MAPS-*.fits.gz")[0])
    assert len(labels) == 8 + 2 + 4 * 35 + 46  # DAP 3.1.0: 35 lines, 46 indices
    checks = [("emline_gflux_ha_6564", "EMLINE_GFLUX", "Ha-6564"),
              ("emline_gvel_ha_6564", "EMLINE_GVEL", "Ha-6564"),
              ("specindex_d4000", "SPECINDEX", "D4000"),
              ("stellar_vel", "STELLAR_VEL", None),
              ("stellar_sigma", "STELLAR_SIGMA", None)]
    for plateifu, (b, ctx) in converted.items():
        assert ctx.warnings == []
        assert [s.decode() for s in b["ifu_image_label"][0]] == labels
        _, maps = _fits(small_raw, plateifu)
        with maps:
            (y0, x0), (ny, nx) = b["ifu_offset"][0], b["ifu_size"][0]
            for label, ext, channel in checks:
                k = labels.index(label)
                hdr = maps[ext].header
                sel = (channel_index(hdr, channel),) if channel else ()
                for part, src in (("data", ext), ("ivar", hdr["ERRDATA"]), ("mask", hdr["QUALDATA"])):
                    expected = maps[src].data[sel]
                    stored = b[f"ifu_image_{part}"][0, k, y0 : y0 + ny, x0 : x0 + nx]
                    assert float_or_int_equal(stored, expected), (plateifu, label, part)
                unit_key = "U" + channel_key(hdr, channel)[1:] if channel else "BUNIT"
                unit = hdr.get(unit_key, hdr.get("BUNIT", ""))
                assert b["ifu_image_units"][0, k].decode() == str(unit)


def float_or_int_equal(stored, expected):
    return np.array_equal(stored, expected.astype(stored.dtype))


def test_reconstructed_images_and_psfs(small_raw, converted):
    for plateifu, (b, _) in converted.items():
        cube, _ = _fits(small_raw, plateifu)
        with cube:
            (y0, x0), (ny, nx) = b["ifu_offset"][0], b["ifu_size"][0]
            no_cov = np.all(cube["MASK"].data & dm.DRP_NOCOV, axis=0)
            for k, band in enumerate("griz"):
                img = b["ifu_image_data"][0, k, y0 : y0 + ny, x0 : x0 + nx]
                psf = b["ifu_image_data"][0, 4 + k, y0 : y0 + ny, x0 : x0 + nx]
                assert np.array_equal(img, cube[f"{band.upper()}IMG"].data)
                assert np.array_equal(psf, cube[f"{band.upper()}PSF"].data)
                assert b["ifu_image_filter"][0, k].decode() == band
                assert b["ifu_image_units"][0, k].decode() == "nanomaggies/pixel"
                # no uncertainty from the DRP: NaN, not 0
                assert np.all(np.isnan(b["ifu_image_ivar"][0, k]))
                img_mask = b["ifu_image_mask"][0, k, y0 : y0 + ny, x0 : x0 + nx]
                assert np.array_equal(img_mask != 0, no_cov)
                assert np.all(b["ifu_image_mask"][0, 4 + k, y0 : y0 + ny, x0 : x0 + nx] == 0)


def test_catalog_columns(small_raw, converted):
    with fits.open(find(small_raw, "drpall-*.fits")[0]) as h:
        drp = h["MANGA"].data
    with fits.open(find(small_raw, "dapall-*.fits")[0]) as h:
        dap = h["HYB10-MILESHC-MASTARSSP"].data
    for plateifu, (b, _) in converted.items():
        i = int(np.flatnonzero(np.char.strip(drp["plateifu"]) == plateifu)[0])
        assert b["object_id"][0].decode() == drp["mangaid"][i].strip()
        assert b["ra"][0] == drp["ifura"][i] and b["dec"][0] == drp["ifudec"][i]
        assert b["nsa_z"][0] == drp["nsa_z"][i]
        assert np.array_equal(b["nsa_elpetro_absmag"][0], drp["nsa_elpetro_absmag"][i])
        assert "z" not in b  # drpall's targeting z would shadow the nsa_z -> z alias
        for name in drp.columns.names:
            if name != "z":
                assert name in b
        j = int(np.flatnonzero(np.char.strip(dap["PLATEIFU"]) == plateifu)[0])
        assert b["SFR_TOT"][0] == dap["SFR_TOT"][j] and bool(b["DAPDONE"][0]) is True
        assert "PLATEIFU" not in b and "Z" not in b  # already in drpall (case-insensitive)
        assert all(len(v) == 1 for v in b.values())


def test_columns_identical_across_galaxies(converted):
    shapes = [{k: (v.shape, v.dtype.kind) for k, v in b.items()} for b, _ in converted.values()]
    assert all(s == shapes[0] for s in shapes)


def test_missing_drpall_is_an_error(raw_copy):
    find(raw_copy, "drpall-*.fits")[0].unlink()
    with pytest.raises(InputError, match="drpall"):
        units_of(raw_copy)


def test_cube_not_in_drpall(raw_copy):
    path = find(raw_copy, "drpall-*.fits")[0]
    with fits.open(path) as h:
        keep = h["MANGA"].data[1:]
        hdul = fits.HDUList([h[0].copy(), fits.BinTableHDU(keep, header=h["MANGA"].header)])
        dropped = h["MANGA"].data["plateifu"][0].strip()
        hdul.writeto(path, overwrite=True)
    unit = next(u for u in units_of(raw_copy) if u.key == dropped)
    with pytest.raises(InputError, match="not in drpall") as err:
        run(unit, raw_copy)
    assert err.value.file == str(path)
