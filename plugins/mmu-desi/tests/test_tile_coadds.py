"""Tile coadds as the EDR serves them: no SURVEY, PROGRAM or FAPRGRM keyword in any HDU. Their
survey comes from the release's tiles file, else from the FIBERMAP targeting columns; a coadd
is taken by one config or listed, never both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from desi_fitsmaker import (
    fibermap_table,
    random_cameras,
    run_convert,
    tile_fibermap,
    write_coadd,
    write_tile_coadd,
    write_tiles,
)

import mmu_core
import mmu_desi.hooks as hooks
from mmu_core.build import build
from mmu_core.errors import InputError
from mmu_desi import catalogs, convert

# An SV3 tile: SV3_* bits, and (the data model's required columns) unprefixed ones as well.
SV3_BITS = {"SV3_DESI_TARGET": 2**1, "SV3_BGS_TARGET": 0, "SV3_MWS_TARGET": 0,
            "SV3_SCND_TARGET": 0, "DESI_TARGET": 2**1}
SV3_IDS = [101, 102, 103]
MAIN_IDS = [201, 202]


def sv3_tile(raw: Path, targeting: dict[str, int] | None = SV3_BITS, tileid: int = 80605,
             ids: list[int] = SV3_IDS, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    return write_tile_coadd(raw, tile_fibermap(ids, rng, tileid, targeting),
                            random_cameras(rng, len(ids)), tileid=tileid)


def main_healpix(raw: Path) -> Path:
    rng = np.random.default_rng(5)
    fm = fibermap_table(MAIN_IDS, rng.uniform(150, 151, 2), rng.uniform(2, 3, 2))
    return write_coadd(raw / "healpix/main/dark/1/100/coadd-main-dark-100.fits", fm,
                       random_cameras(rng, 2))


def ids_of(summary) -> list[int]:
    ds = mmu_core.open_dataset(summary.path)
    return sorted(int(i) for b in ds.iter_batches(columns=["object_id"]) for i in b["object_id"])


def listed(summary, path: Path) -> list[str]:
    return [s["message"] for s in summary.skipped_objects if s.get("file") == str(path)]


def test_synthetic_tile_coadd_has_no_survey_keyword_anywhere(tmp_path):
    path = sv3_tile(tmp_path)
    with fits.open(path) as hdul:
        for hdu in hdul:
            assert not {"SURVEY", "PROGRAM", "FAPRGRM"} & set(hdu.header), hdu.name
        assert {"SPGRP", "SPGRPVAL", "NIGHT", "TILEID", "SPECTRO", "PETAL"} <= set(hdul[0].header)


def test_sv3_tile_builds_under_edr_sv3_and_is_listed_not_taken_by_dr1_main(tmp_path, desi_registry):
    raw = tmp_path / "raw"
    tile, healpix = sv3_tile(raw), main_healpix(raw)
    sv3 = build("desi", raw, tmp_path / "out", config="edr_sv3", registry=desi_registry)
    assert ids_of(sv3) == SV3_IDS
    ds = mmu_core.open_dataset(sv3.path)
    assert {bytes(s) for b in ds.iter_batches(columns=["SURVEY"]) for s in b["SURVEY"]} == {b"sv3"}
    assert "DESI survey 'main'" in listed(sv3, healpix)[0]

    main = build("desi", raw, tmp_path / "out", config="dr1_main", registry=desi_registry)
    assert ids_of(main) == MAIN_IDS  # the tile's targets are not taken
    (message,) = listed(main, tile)
    assert "'sv3'" in message and "SV3_DESI_TARGET" in message
    assert not listed(main, healpix)


def test_a_folder_of_sv3_tiles_only_names_them_for_dr1_main(tmp_path):
    sv3_tile(tmp_path)
    with pytest.raises(InputError, match=r"survey 'main'.*sv3 \(1: coadd-3-80605-thru20210205"):
        hooks.mmu_discover("desi", "dr1_main", tmp_path, {})


def test_tiles_file_beats_the_targeting_columns(tmp_path, desi_registry):
    """The targeting columns say sv3, the tiles file says main/dark: the tiles file wins."""
    raw = tmp_path / "raw"
    tile = sv3_tile(raw)
    write_tiles(raw / "tiles-fuji.fits", [(80605, "main", "dark"), (80606, "sv3", "bright")])
    summary = build("desi", raw, tmp_path / "out", config="dr1_main", registry=desi_registry)
    assert ids_of(summary) == SV3_IDS
    ds = mmu_core.open_dataset(summary.path)
    assert {bytes(p) for b in ds.iter_batches(columns=["PROGRAM"]) for p in b["PROGRAM"]} == {b"dark"}
    with pytest.raises(InputError, match="TILEID 80605 in tiles-fuji.fits"):
        hooks.mmu_discover("desi", "edr_sv3", raw, {})
    assert tile.exists()


def test_without_targeting_columns_the_tiles_option_tells_the_survey(tmp_path, desi_registry):
    raw = tmp_path / "raw"
    bare = sv3_tile(raw, targeting=None, tileid=80610, ids=[301, 302], seed=1)
    sv3_tile(raw)
    # no tiles file: the bare tile is listed with its reason, the other one is built
    summary = build("desi", raw, tmp_path / "out1", config="edr_sv3", registry=desi_registry)
    assert ids_of(summary) == SV3_IDS
    (message,) = listed(summary, bare)
    assert "cannot tell the DESI survey" in message and "--tiles" in message
    # --tiles outside the raw folder: the bare tile is taken, with the table's program
    tiles = write_tiles(tmp_path / "elsewhere" / "tiles-fuji.fits", [(80610, "sv3", "bright")])
    summary = build("desi", raw, tmp_path / "out2", config="edr_sv3",
                    options={"tiles": str(tiles)}, registry=desi_registry)
    assert ids_of(summary) == sorted(SV3_IDS + [301, 302])
    out, _ = run_convert(raw, "edr_sv3", {"tiles": str(tiles)})
    program = dict(zip(out["object_id"].tolist(), out["PROGRAM"].tolist(), strict=True))
    assert program[301] == b"bright" and program[101] == b""  # 80605: not in the table


def test_untold_tiles_only_are_named_with_the_way_out(tmp_path, desi_registry):
    """Used to fail with 'cannot tell the DESI survey' and, with --skip-bad, 'no rows'."""
    raw = tmp_path / "raw"
    sv3_tile(raw, targeting=None)
    for options in ({}, {"skip_bad": True}):
        with pytest.raises(InputError, match="survey not told.*coadd-3-80605.*--tiles"):
            build("desi", raw, tmp_path / "out", config="edr_sv3", options=options,
                  registry=desi_registry)


def test_fuji_fibermap_without_mjd_columns_is_filled_and_said_once(tmp_path):
    raw = tmp_path / "raw"
    sv3_tile(raw)
    sv3_tile(raw, tileid=80606, ids=[104, 105], seed=2)
    out, ctx = run_convert(raw, "edr_sv3")
    assert len(out["object_id"]) == 5
    assert all(np.isnan(out[c]).all() for c in ("MIN_MJD", "MEAN_MJD", "MAX_MJD"))
    said = [w for w in ctx.warnings if w.startswith(convert.MISSING_COLUMNS)]
    assert len(said) == 1 and "MIN_MJD, MEAN_MJD, MAX_MJD" in said[0]


def test_a_survey_keyword_in_a_header_is_honoured(tmp_path):
    raw = tmp_path / "raw"
    rng = np.random.default_rng(0)
    fm = tile_fibermap([5, 6], rng, targeting=SV3_BITS)
    fm.header["SURVEY"] = "main"  # a file that says so itself outranks its targeting bits
    write_tile_coadd(raw, fm, random_cameras(rng, 2))
    out, _ = run_convert(raw, "dr1_main")
    assert out["object_id"].tolist() == [5, 6] and set(out["SURVEY"]) == {b"main"}


def test_tiles_files_that_disagree_are_an_error(tmp_path):
    a = write_tiles(tmp_path / "tiles-fuji.fits", [(1, "sv3", "dark")])
    b = write_tiles(tmp_path / "tiles-iron.fits", [(1, "sv1", "dark"), (2, "main", "")])
    assert catalogs.read_tiles([b])[2].program is None
    with pytest.raises(InputError, match="tile 1 is of survey 'sv3'") as info:
        catalogs.read_tiles([a, b])
    assert info.value.file == str(b)


def test_missing_tiles_option_file_is_named(tmp_path):
    sv3_tile(tmp_path)
    with pytest.raises(InputError, match="--tiles"):
        hooks.mmu_discover("desi", "edr_sv3", tmp_path, {"tiles": str(tmp_path / "nope.fits")})
