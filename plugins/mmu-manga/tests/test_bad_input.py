"""Bad input: a missing MAPS file, --require-maps, a WAVE/FLUX mismatch, corrupt gzip files,
repeat observations, duplicate copies of a file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits
from manga_testutil import find, rewrite_gz, run, units_of, write

from mmu_core.errors import InputError
from mmu_manga import datamodel as dm

N_DRP = len(dm.DRP_CHANNELS)


def _unit(raw, key=None):
    units = units_of(raw)
    return units[0] if key is None else next(u for u in units if u.key == key)


def test_missing_maps_converted_without_maps_and_listed(raw_copy):
    unit = _unit(raw_copy)
    find(raw_copy, f"manga-{unit.key}-MAPS-*.fits.gz")[0].unlink()
    unit = _unit(raw_copy, unit.key)
    assert unit.meta["maps"] is None
    batches, ctx = run(unit, raw_copy)
    assert len(batches) == 1
    b = batches[0]
    maps_part = slice(N_DRP, None)
    assert np.all(b["ifu_image_mask"][0, maps_part] == dm.DAP_DONOTUSE)
    assert np.all(b["ifu_image_ivar"][0, maps_part] == 0)
    assert np.all(b["ifu_image_data"][0, maps_part] == 0)
    # the channels keep their units, so the column is the same as for other galaxies
    assert b["ifu_image_units"][0, N_DRP].decode() == "km/s"
    # the cube itself is still there
    assert np.any(b["ifu_ivar"][0] > 0)
    assert any(unit.key in w and "no MAPS" in w for w in ctx.warnings)
    assert ctx.skipped == []


def test_require_maps_skips_and_lists(raw_copy):
    unit = _unit(raw_copy)
    maps = find(raw_copy, f"manga-{unit.key}-MAPS-*.fits.gz")[0]
    maps.unlink()
    batches, ctx = run(_unit(raw_copy, unit.key), raw_copy, require_maps=True)
    assert batches == []
    assert len(ctx.skipped) == 1
    problem = ctx.skipped[0]
    assert problem.object == unit.meta["mangaid"]
    assert problem.file == str(maps)  # where the SAS tree would have it
    # the other galaxies, which have maps, are not affected by the flag
    other = [u for u in units_of(raw_copy) if u.key != unit.key][0]
    assert len(run(other, raw_copy, require_maps=True)[0]) == 1


def test_wave_length_disagreeing_with_flux(raw_copy):
    unit = _unit(raw_copy)
    path = find(raw_copy, f"manga-{unit.key}-LOGCUBE.fits.gz")[0]
    with fits.open(path) as h:
        hdul = fits.HDUList([x.copy() for x in h])
    hdul["WAVE"].data = hdul["WAVE"].data[:-3]
    rewrite_gz(path, hdul)
    with pytest.raises(InputError, match="WAVE has") as err:
        run(unit, raw_copy)
    assert err.value.file == str(path)


def test_truncated_cube_gzip(raw_copy):
    unit = _unit(raw_copy)
    path = find(raw_copy, f"manga-{unit.key}-LOGCUBE.fits.gz")[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match="cannot read LOGCUBE") as err:
        run(unit, raw_copy)
    assert err.value.file == str(path)


def test_corrupt_maps_gzip(raw_copy):
    unit = _unit(raw_copy)
    path = find(raw_copy, f"manga-{unit.key}-MAPS-*.fits.gz")[0]
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # CRC of the gzip trailer
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="cannot read MAPS") as err:
        run(unit, raw_copy)
    assert err.value.file == str(path)


def test_maps_without_a_channel_masks_it_and_warns(raw_copy):
    unit = _unit(raw_copy)
    path = find(raw_copy, f"manga-{unit.key}-MAPS-*.fits.gz")[0]
    with fits.open(path) as h:
        hdul = fits.HDUList([x.copy() for x in h if not x.name.startswith("EMLINE_GVEL")])
    rewrite_gz(path, hdul)
    (b,), ctx = run(unit, raw_copy)
    labels = [s.decode() for s in b["ifu_image_label"][0]]
    gvel = [k for k, label in enumerate(labels) if label.startswith("emline_gvel_")]
    assert len(gvel) == 35 and "emline_gvel_ha_6564" in labels
    assert np.all(b["ifu_image_mask"][0, gvel] == dm.DAP_DONOTUSE)
    assert np.any(b["ifu_image_mask"][0, gvel[-1] + 1] == 0)  # the next extension is read
    assert any("EMLINE_GVEL" in w for w in ctx.warnings)


def test_repeat_observations_keep_one_and_list_the_others(tmp_path):
    raw = write(tmp_path / "raw", n=2, seed=9, repeats=1, bundles="19")
    units = units_of(raw)
    assert len(units) == 3
    repeats = [u for u in units if u.meta.get("repeat_of")]
    assert len(repeats) == 1
    rep = repeats[0]
    kept = next(u for u in units if u.key == rep.meta["repeat_of"])
    assert kept.meta["mangaid"] == rep.meta["mangaid"] and kept.key != rep.key
    batches, ctx = run(rep, raw)
    assert batches == [] and ctx.skipped[0].object == rep.meta["mangaid"]
    # the kept one is the longer exposure (drpall exptime)
    with fits.open(find(raw, "drpall-*.fits")[0]) as h:
        t = h["MANGA"].data
        exptime = dict(zip(np.char.strip(t["plateifu"]), t["exptime"], strict=True))
    assert exptime[kept.key] >= exptime[rep.key]


def test_two_copies_of_a_cube_are_an_error(raw_copy):
    cube = find(raw_copy, "manga-*-LOGCUBE.fits.gz")[0]
    shutil.copy(cube, raw_copy / cube.name)
    with pytest.raises(InputError, match="copies"):
        units_of(raw_copy)


def test_cube_without_an_image_extension_masks_that_channel(raw_copy):
    unit = _unit(raw_copy)
    path = find(raw_copy, f"manga-{unit.key}-LOGCUBE.fits.gz")[0]
    with fits.open(path) as h:
        hdul = fits.HDUList([x.copy() for x in h if x.name != "ZPSF"])
    rewrite_gz(path, hdul)
    (b,), ctx = run(unit, raw_copy)
    k = [s.decode() for s in b["ifu_image_label"][0]].index("reconstructed_psf_z")
    assert np.all(b["ifu_image_mask"][0, k] == dm.DAP_DONOTUSE)
    assert np.any(b["ifu_image_mask"][0, k - 1] == 0)
    assert any("ZPSF" in w for w in ctx.warnings)
