"""MAPS files as the DAP writes them: several DAPTYPEs (``--daptype`` chooses), MAPS without a
LOGCUBE, the WCS in PC form with CDELT = 1, and channel lists that differ between DAP versions
(22 emission lines in DAP 2.2.x, 35 in 3.1.0): every unused MAPS file is named with its
reason in the build summary, and the stored channels are the headers' own."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from manga_testutil import SMALL, expected_labels, find, run, units_of, write

import mmu_core
import mmu_manga.hooks
from mmu_core import testing
from mmu_core.build import build
from mmu_core.errors import InputError
from mmu_manga import datamodel as dm
from mmu_manga.reader import header_channels, spaxel_size

ONE = {**SMALL, "bundles": "19"}  # small cubes: these tests are about the MAPS files


@pytest.fixture
def registry():
    reg = testing.plugin_registry(mmu_manga.hooks)
    with testing.use_registry(reg):
        yield reg


def listed(summary) -> dict[str, str]:
    """File name -> message of the build summary's listed inputs."""
    return {Path(s["file"]).name: s["message"] for s in summary.skipped_objects if s.get("file")}


def as_daptype(raw: Path, daptype: str) -> list[Path]:
    """Copies of every MAPS file of ``raw`` renamed to another DAPTYPE (same content)."""
    out = []
    for path in find(raw, "manga-*-MAPS-*.fits.gz"):
        plateifu, old = dm.parse_maps_name(path.name)
        if old == daptype:
            continue
        copy = path.parent / dm.maps_name(plateifu, daptype)
        shutil.copy(path, copy)
        out.append(copy)
    return out


@pytest.mark.parametrize("daptype", ["HYB10-MILESHC-MASTARSSP", "HYB10-GAU-MILESHC",
                                     "VOR10-MILESHC-MASTARHC2", "SPX-GAU-MILESHC"])
def test_daptype_option_selects_any_daptype(tmp_path, daptype):
    raw = write(tmp_path / "raw", n=2, **ONE, daptype=daptype)
    units = units_of(raw, daptype=daptype)
    assert len(units) == 2
    for u in units:
        assert Path(u.meta["maps"]).name == dm.maps_name(u.key, daptype)
        assert u.meta["dapall_hdu"] == daptype and len(u.meta["dap_channels"]) == 2 + 4 * 35 + 46
        assert u.meta["report"] == []
    (batch,), ctx = run(units[0], raw, daptype=daptype)
    assert not [w for w in ctx.warnings if "MAPS" in w]
    assert batch["DAPTYPE"][0].strip() == daptype.encode()  # the dapall row of that DAPTYPE


def test_unselected_daptypes_are_named_in_the_build_summary(tmp_path, registry):
    raw = write(tmp_path / "raw", n=2, **ONE)
    others = as_daptype(raw, "VOR10-MILESHC-MASTARSSP")
    summary = build("manga", raw, tmp_path / "out", registry=registry)
    assert summary.rows == 2
    said = listed(summary)
    for path in others:
        assert "DAPTYPE VOR10-MILESHC-MASTARSSP" in said[path.name]
        assert "--daptype VOR10-MILESHC-MASTARSSP" in said[path.name]
    # and the other way round: the DR17 files are the ignored ones
    summary = build("manga", raw, tmp_path / "out2", options={"daptype": "VOR10-MILESHC-MASTARSSP"},
                    registry=registry)
    said = listed(summary)
    dr17 = [p for p in find(raw, f"manga-*-MAPS-{dm.DAPTYPE}.fits.gz")]
    assert len(dr17) == 2 and all(f"DAPTYPE {dm.DAPTYPE}" in said[p.name] for p in dr17)


def test_orphan_maps_are_named_with_the_cube_they_need(tmp_path, registry):
    raw = write(tmp_path / "raw", n=2, **ONE)
    cube = find(raw, "manga-*-LOGCUBE.fits.gz")[0]
    plateifu = cube.name[len("manga-"):-len("-LOGCUBE.fits.gz")]
    cube.unlink()
    summary = build("manga", raw, tmp_path / "out", registry=registry)
    assert summary.rows == 1
    message = listed(summary)[dm.maps_name(plateifu)]
    assert f"no LOGCUBE for plate-IFU {plateifu}" in message and cube.name in message
    assert str(cube) in message  # where the SAS tree would have it


def test_maps_without_any_cube_are_named_instead_of_no_input_files(tmp_path, registry):
    raw = write(tmp_path / "raw", n=2, **ONE)
    for cube in find(raw, "manga-*-LOGCUBE.fits.gz"):
        cube.unlink()
    with pytest.raises(InputError) as err:
        build("manga", raw, tmp_path / "out", registry=registry)
    for maps in find(raw, "manga-*-MAPS-*.fits.gz"):
        plateifu = dm.parse_maps_name(maps.name)[0]
        assert maps.name in err.value.message and dm.cube_name(plateifu) in err.value.message


def test_pc_cdelt_header_gives_the_spaxel_size(small_raw):
    maps = find(small_raw, "manga-*-MAPS-*.fits.gz")[0]
    cube = find(small_raw, "manga-*-LOGCUBE.fits.gz")[0]
    with fits.open(maps) as m, fits.open(cube) as c:
        for ext in ("STELLAR_VEL", "EMLINE_GFLUX", "SPX_SKYCOO"):
            hdr = m[ext].header
            assert hdr["CDELT2"] * 3600 == 3600  # what CDELT alone would say
            assert spaxel_size(hdr) == pytest.approx(0.5, rel=1e-9)
        assert "CD2_2" in c["FLUX"].header and "PC2_2" not in c["FLUX"].header
        assert spaxel_size(c["FLUX"].header) == pytest.approx(0.5, rel=1e-9)
    # a hand-made PC header of 0.25" spaxels, with and without a third axis
    for naxis in (2, 3):
        hdr = fits.Header({"NAXIS": naxis, "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
                           "PC1_1": -0.25 / 3600, "PC2_2": 0.25 / 3600, "CDELT1": 1.0,
                           "CDELT2": 1.0, "CRVAL1": 10.0, "CRVAL2": -5.0})
        if naxis == 3:
            hdr.update({"CTYPE3": " ", "PC3_3": 1.0, "CDELT3": 1.0})
        assert spaxel_size(hdr) == pytest.approx(0.25, rel=1e-9)


def test_maps_on_another_spaxel_scale_are_refused(raw_copy):
    unit = units_of(raw_copy)[0]
    path = Path(unit.meta["maps"])
    with fits.open(path) as h:
        hdul = fits.HDUList([x.copy() for x in h])
    for hdu in hdul[1:]:
        if "PC2_2" in hdu.header:
            hdu.header["CDELT1"] = hdu.header["CDELT2"] = 2.0  # 1" spaxels
    path.unlink()
    hdul.writeto(path)
    with pytest.raises(InputError, match=r"MAPS spaxels are 1 arcsec, the cube's 0.5"):
        run(unit, raw_copy)


@pytest.mark.parametrize("dapver, daptype, lines", [("2.2.1", "HYB10-GAU-MILESHC", 22),
                                                     ("3.1.0", dm.DAPTYPE, 35)])
def test_channel_lists_of_both_dap_versions_round_trip(tmp_path, registry, dapver, daptype, lines):
    work = tmp_path
    path = testing.sample_build_validate(
        "manga", work, n=2, seed=3, sample_options={**ONE, "dapver": dapver},
        build_options={"daptype": daptype}, registry=registry)
    ds = mmu_core.open_dataset(path)
    raw = work / "raw" / "manga"
    for maps_path in find(raw, f"manga-*-MAPS-{daptype}.fits.gz"):
        with fits.open(maps_path) as maps:
            mangaid = maps[0].header["MANGAID"]
            row = ds.get([mangaid], columns=["ifu_image_label", "ifu_image_units",
                                              "ifu_image_data", "ifu_offset", "ifu_size",
                                              "DAPDONE"])
            labels = [s.decode() for s in row["ifu_image_label"][0]]
            units = [s.decode() for s in row["ifu_image_units"][0]]
            assert labels == expected_labels(maps_path)
            gflux = maps["EMLINE_GFLUX"].header
            names = [gflux[f"C{i:02d}"] for i in range(1, lines + 1)]
            assert maps["EMLINE_GFLUX"].data.shape[0] == lines and f"C{lines + 1:02d}" not in gflux
            (y0, x0), (ny, nx) = row["ifu_offset"][0], row["ifu_size"][0]
            for k, name in enumerate(names):
                label = "emline_gflux_" + name.lower().replace("-", "_")
                stored = row["ifu_image_data"][0, labels.index(label), y0:y0 + ny, x0:x0 + nx]
                assert np.array_equal(stored, maps["EMLINE_GFLUX"].data[k]), label
                assert units[labels.index(label)] == gflux["BUNIT"]
            spec = maps["SPECINDEX"].header
            for name, unit in header_channels(spec)[:5]:
                assert units[labels.index("specindex_" + name.lower())] == unit
            assert row["DAPDONE"][0]  # dapall: DAP 2.x one DAPALL table, 3.x one per DAPTYPE
    if dapver == "2.2.1":
        assert "emline_gflux_hei_3889" not in labels  # a 3.1.0-only line is not invented


def test_dapall_without_the_daptype_is_refused(tmp_path):
    raw = write(tmp_path / "raw", n=1, **ONE, dapver="2.2.1")
    with pytest.raises(InputError, match="dapall has no HYB10-MILESHC-MASTARSSP table; it holds "
                                         "HYB10-GAU-MILESHC, VOR10-GAU-MILESHC"):
        units_of(raw)
