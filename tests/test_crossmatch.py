"""Cross-matching stored datasets against astropy, the matched dataset, the CLI, concatenation.

The two big synthetic catalogs (>= 100,000 objects each) put many pairs on NSIDE-16 pixel
borders, around both poles and across ra = 0/360; the expected pairs come from astropy's
``search_around_sky`` / ``match_to_catalog_sky`` on the same coordinates.
"""

from __future__ import annotations

import shutil

import astropy.units as u
import healpy
import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord, search_around_sky
from stored import build_toy_pair, offset, store
from typer.testing import CliRunner

import mmu_core
from mmu_core.cli import app
from mmu_core.concat import ConcatError, concatenate
from mmu_core.crossmatch import CrossMatchError, cross_match
from mmu_core.validate import validate

RADIUS = 1.0  # arcsec
REGIONS = [(45.0, 0.0, 3.0), (0.0, 90.0, 2.0), (0.0, -90.0, 2.0), (0.0, 30.0, 2.0)]
LEFT_ONLY = (120.0, 60.0, 1.0)  # pixels with no right object anywhere near
RIGHT_ONLY = (200.0, -30.0, 1.0)


# ---- synthetic catalogs -----------------------------------------------------------------
def in_cap(rng, n, ra0, dec0, radius_deg):
    t = np.degrees(np.arccos(rng.uniform(np.cos(np.radians(radius_deg)), 1.0, n))) * 3600
    return offset(np.full(n, ra0), np.full(n, dec0), t, rng.uniform(0, 360, n))


def on_pixel_borders(rng, n, ra0, dec0, radius_deg):
    """Points on the edges of the NSIDE-16 pixels of a cap, moved by up to 1.5 arcsec."""
    pixels = healpy.query_disc(16, healpy.ang2vec(ra0, dec0, lonlat=True),
                               np.radians(radius_deg), inclusive=True, nest=True)
    edges = healpy.boundaries(16, pixels, step=32, nest=True)  # (npix, 3, 128)
    if edges.ndim == 2:
        edges = edges[None]
    k = rng.integers(0, len(pixels), n)
    j = rng.integers(0, edges.shape[2], n)
    t = rng.random(n)[:, None]
    a = edges[k, :, j]
    b = edges[k, :, (j + 1) % edges.shape[2]]
    ra, dec = healpy.vec2ang(a * (1 - t) + b * t, lonlat=True)
    return offset(ra, dec, rng.uniform(0, 1.5, n), rng.uniform(0, 360, n))


def on_meridian(rng, n, dec_lo, dec_hi):
    """Points within ~1.5 arcsec of ra = 0/360."""
    dec = rng.uniform(dec_lo, dec_hi, n)
    ra = rng.uniform(-1.5, 1.5, n) / 3600.0 / np.cos(np.radians(dec))
    return np.where(ra < 0, ra + 360.0, ra), dec


def make_catalogs(seed: int = 7, scale: float = 1.0) -> tuple[dict, dict]:
    """The left and right catalogs (``scale`` times the objects, same construction)."""
    rng = np.random.default_rng(seed)

    def n(count: int) -> int:
        return int(count * scale)

    parts = []
    for ra0, dec0, r in REGIONS:
        parts.append(in_cap(rng, n(13_000), ra0, dec0, r))
        parts.append(on_pixel_borders(rng, n(14_000), ra0, dec0, r))
    parts.append(on_meridian(rng, n(4_000), 27.0, 33.0))
    lra = np.concatenate([p[0] for p in parts])
    ldec = np.concatenate([p[1] for p in parts])
    # twins: left objects close to another left one, so two lefts compete for one right
    twin = rng.choice(len(lra), n(6_000), replace=False)
    tra, tdec = offset(lra[twin], ldec[twin], rng.uniform(0.2, 1.6, len(twin)),
                       rng.uniform(0, 360, len(twin)))
    lra, ldec = np.concatenate([lra, tra]), np.concatenate([ldec, tdec])
    n_paired = len(lra)  # objects after this one have no right counterpart
    alone = in_cap(rng, n(2_000), *LEFT_ONLY)
    lra, ldec = np.concatenate([lra, alone[0]]), np.concatenate([ldec, alone[1]])
    n_left = len(lra)

    src = rng.choice(n_paired, int(0.6 * n_paired), replace=False)
    cra, cdec = offset(lra[src], ldec[src], rng.uniform(0, 1.5, len(src)),
                       rng.uniform(0, 360, len(src)))
    src2 = rng.choice(n_paired, int(0.1 * n_paired), replace=False)
    c2ra, c2dec = offset(lra[src2], ldec[src2], rng.uniform(0, 1.5, len(src2)),
                         rng.uniform(0, 360, len(src2)))
    noise = [in_cap(rng, n(6_000), *reg[:2], reg[2]) for reg in REGIONS]
    noise.append(in_cap(rng, n(3_000), *RIGHT_ONLY))
    rra = np.concatenate([cra, c2ra, *[p[0] for p in noise]])
    rdec = np.concatenate([cdec, c2dec, *[p[1] for p in noise]])
    n_right = len(rra)

    left = {"object_id": 10**12 + rng.permutation(n_left).astype(np.int64) * 3,
            "ra": lra, "dec": ldec, "mag": rng.normal(21, 1, n_left).astype(np.float32)}
    right = {"object_id": 5 * 10**12 + rng.permutation(n_right).astype(np.int64) * 5,
             "ra": rra, "dec": rdec, "flux": rng.random(n_right).astype(np.float32)}
    return left, right


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory):
    root = tmp_path_factory.mktemp("xmatch")
    left, right = make_catalogs()
    assert len(left["ra"]) >= 100_000 and len(right["ra"]) >= 100_000
    lpath = store(root / "lsurvey" / "test", left, "lsurvey")
    rpath = store(root / "rsurvey" / "test", right, "rsurvey")
    return {"root": root, "left": left, "right": right, "lpath": lpath, "rpath": rpath,
            "lsky": SkyCoord(left["ra"] * u.deg, left["dec"] * u.deg),
            "rsky": SkyCoord(right["ra"] * u.deg, right["dec"] * u.deg)}


@pytest.fixture(scope="module")
def all_pairs(catalogs):
    return cross_match(catalogs["lpath"], catalogs["rpath"], radius_arcsec=RADIUS, how="all")


def _pairs(table) -> np.ndarray:
    a = np.asarray(table["left_object_id"]).astype(np.int64)
    b = np.asarray(table["right_object_id"]).astype(np.int64)
    order = np.lexsort((b, a))
    return np.stack([a[order], b[order]], axis=1)


def _sorted_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    order = np.lexsort((b, a))
    return np.stack([a[order], b[order]], axis=1)


# ---- how="all" --------------------------------------------------------------------------
def test_all_finds_exactly_the_pairs_of_search_around_sky(catalogs, all_pairs):
    left, right = catalogs["left"], catalogs["right"]
    i, j, d2d, _ = search_around_sky(catalogs["lsky"], catalogs["rsky"], RADIUS * u.arcsec)
    expected = _sorted_pairs(left["object_id"][i], right["object_id"][j])
    got = _pairs(all_pairs.catalog)
    assert len(got) == len(expected) > 50_000
    np.testing.assert_array_equal(got, expected)

    # separations, left positions and pixels agree with astropy / healpy
    cat = all_pairs.catalog.to_pydict()
    lid = np.array(cat["left_object_id"])
    rid = np.array(cat["right_object_id"])
    key = {(a, b): s for a, b, s in zip(left["object_id"][i], right["object_id"][j],
                                        d2d.to_value(u.arcsec), strict=True)}
    np.testing.assert_allclose(cat["separation_arcsec"],
                               [key[(a, b)] for a, b in zip(lid, rid, strict=True)],
                               rtol=0, atol=1e-7)
    lpos = np.argsort(left["object_id"])
    li = lpos[np.searchsorted(left["object_id"], lid, sorter=lpos)]
    np.testing.assert_array_equal(cat["ra"], left["ra"][li])
    np.testing.assert_array_equal(cat["dec"], left["dec"][li])
    np.testing.assert_array_equal(
        cat["healpix"], healpy.ang2pix(16, left["ra"][li], left["dec"][li], lonlat=True, nest=True))

    # the data really exercises borders, poles and the ra wrap
    rpos = np.argsort(right["object_id"])
    ri = rpos[np.searchsorted(right["object_id"], rid, sorter=rpos)]
    rpix = healpy.ang2pix(16, right["ra"][ri], right["dec"][ri], lonlat=True, nest=True)
    assert np.sum(rpix != np.array(cat["healpix"])) > 5_000  # pairs across pixel borders
    assert np.sum(np.abs(cat["dec"]) > 88.0) > 5_000  # around the poles
    wrap = (np.array(cat["ra"]) > 359.0) != (right["ra"][ri] > 359.0)
    assert wrap.sum() > 200  # one side just below 360, the other just above 0


def test_only_pixels_in_both_datasets_and_their_neighbours_are_read(catalogs, all_pairs):
    left, right = catalogs["left"], catalogs["right"]
    lpix = set(healpy.ang2pix(16, left["ra"], left["dec"], lonlat=True, nest=True).tolist())
    rpix = set(healpy.ang2pix(16, right["ra"], right["dec"], lonlat=True, nest=True).tolist())

    def around(p):
        return {p} | {q for q in healpy.get_all_neighbours(16, p, nest=True).tolist() if q >= 0}

    active = {p for p in lpix if around(p) & rpix}
    assert all_pairs.left_pixels_read == sorted(active)
    assert all_pairs.right_pixels_read == sorted(set().union(*(around(p) & rpix for p in active)))
    lonly = healpy.ang2pix(16, *LEFT_ONLY[:2], lonlat=True, nest=True)
    ronly = healpy.ang2pix(16, *RIGHT_ONLY[:2], lonlat=True, nest=True)
    assert lonly in lpix and lonly not in all_pairs.left_pixels_read
    assert ronly in rpix and ronly not in all_pairs.right_pixels_read


# ---- how="nearest" ----------------------------------------------------------------------
def expected_nearest(lsky, rsky, lids, rids, radius_arcsec):
    """astropy's nearest match cut at the radius, then the documented one-to-one rule: a right
    object goes to its closest claimant (ties: the smaller left id). Returns (pairs, number of
    left objects with a match before the rule)."""
    idx, d2d, _ = lsky.match_to_catalog_sky(rsky)
    sep = d2d.to_value(u.arcsec)
    within = np.flatnonzero(sep <= radius_arcsec)
    order = np.lexsort((lids[within], sep[within], idx[within]))
    claimed = idx[within][order]
    first = np.r_[True, claimed[1:] != claimed[:-1]]
    winners = within[order][first]
    return _sorted_pairs(lids[winners], rids[idx[winners]]), len(within)


def test_nearest_is_match_to_catalog_sky_resolved_one_to_one(catalogs):
    left, right = catalogs["left"], catalogs["right"]
    # single-pixel tasks: left objects competing for one right object sit in different tasks
    result = cross_match(catalogs["lpath"], catalogs["rpath"], radius_arcsec=RADIUS,
                         how="nearest", max_task_rows=1)
    assert result.tasks == len(result.left_pixels_read)

    expected, n_within = expected_nearest(catalogs["lsky"], catalogs["rsky"],
                                          left["object_id"], right["object_id"], RADIUS)
    got = _pairs(result.catalog)
    np.testing.assert_array_equal(got, expected)
    assert result.candidates == n_within
    assert n_within - len(expected) > 500  # the rule really had conflicts to resolve
    assert len(np.unique(got[:, 0])) == len(got) == len(np.unique(got[:, 1]))


def test_radius_beyond_the_neighbours_uses_a_disc_search(tmp_path):
    rng = np.random.default_rng(3)
    lra, ldec = in_cap(rng, 2_500, 10.0, 80.0, 12.0)
    rra, rdec = in_cap(rng, 2_500, 10.0, 80.0, 12.0)
    lpath = store(tmp_path / "a" / "test", {"object_id": np.arange(2_500, dtype=np.int64),
                                            "ra": lra, "dec": ldec}, "a")
    rpath = store(tmp_path / "b" / "test", {"object_id": np.arange(2_500, dtype=np.int64),
                                            "ra": rra, "dec": rdec}, "b")
    radius = 3.5 * 3600  # wider than a pixel and its neighbours
    lsky, rsky = SkyCoord(lra * u.deg, ldec * u.deg), SkyCoord(rra * u.deg, rdec * u.deg)
    result = cross_match(lpath, rpath, radius_arcsec=radius, how="all")
    i, j, _, _ = search_around_sky(lsky, rsky, radius * u.arcsec)
    np.testing.assert_array_equal(_pairs(result.catalog), _sorted_pairs(i, j))
    nearest = cross_match(lpath, rpath, radius_arcsec=radius, how="nearest")
    ids = np.arange(2_500, dtype=np.int64)
    expected, _ = expected_nearest(lsky, rsky, ids, ids, radius)
    np.testing.assert_array_equal(_pairs(nearest.catalog), expected)


def test_string_ids_and_no_pairs(tmp_path):
    rng = np.random.default_rng(4)
    ra, dec = in_cap(rng, 300, 80.0, -10.0, 1.0)
    names = np.array([f"8485-{1901 + i}".encode() for i in range(300)])
    lpath = store(tmp_path / "a" / "test", {"object_id": names, "ra": ra, "dec": dec}, "a")
    mra, mdec = offset(ra, dec, rng.uniform(0, 0.8, 300), rng.uniform(0, 360, 300))
    rpath = store(tmp_path / "b" / "test", {"object_id": names[::-1].copy(), "ra": mra,
                                            "dec": mdec}, "b")
    result = cross_match(lpath, rpath, tmp_path / "out", radius_arcsec=1.0, how="nearest")
    cat = pq.read_table(result.catalog_path).to_pydict()
    assert len(cat["left_object_id"]) == 300
    by_left = dict(zip(cat["left_object_id"], cat["right_object_id"], strict=True))
    assert all(by_left[n.decode()] == names[::-1][i].decode() for i, n in enumerate(names))
    assert validate(result.dataset_path).ok

    far = store(tmp_path / "c" / "test", {"object_id": names, "ra": (ra + 90.0) % 360,
                                          "dec": dec}, "c")
    none = cross_match(lpath, far, tmp_path / "none", radius_arcsec=1.0, how="all")
    assert len(none) == 0 and none.left_pixels_read == []
    assert pq.read_table(none.catalog_path).num_rows == 0
    assert len(mmu_core.open_dataset(none.dataset_path)) == 0


def test_bad_arguments_are_refused(catalogs):
    with pytest.raises(CrossMatchError, match="how must be"):
        cross_match(catalogs["lpath"], catalogs["rpath"], how="closest")
    with pytest.raises(CrossMatchError, match="positive"):
        cross_match(catalogs["lpath"], catalogs["rpath"], radius_arcsec=-1)


# ---- the matched dataset ----------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_pair(tmp_path_factory):
    """A toy image and a toy spectrum dataset whose objects coincide (same seeds), the spectra
    covering only half of the units."""
    root = tmp_path_factory.mktemp("toypair")
    img, spec = build_toy_pair(root, spec_units=2)
    return root, img, spec


def test_matched_dataset_holds_both_sides_and_validates(toy_pair, tmp_path):
    _, img_path, spec_path = toy_pair
    out = tmp_path / "xm"
    result = cross_match(img_path, spec_path, out, radius_arcsec=1.0, how="nearest", workers=2)
    img, spec = mmu_core.open_dataset(img_path), mmu_core.open_dataset(spec_path)
    assert len(result) == len(spec) == 120  # every spectrum has its image twin at 0"
    assert result.dataset_path == out / "toyimg_x_toyspec" / "matched"

    report = validate(result.dataset_path, strict=True, full=True)
    assert report.ok, report.text()
    assert report.examples_checked == 2 * 120  # both sides of every row schema-checked

    matched = mmu_core.open_dataset(result.dataset_path)
    assert matched.modality == "matched"
    assert {"toyimg.image_array", "toyspec.spectrum_flux", "toyspec.Z"} <= set(matched.columns)
    cat = pq.read_table(out / "catalog.parquet").to_pydict()
    assert {"left_object_id", "right_object_id", "separation_arcsec", "ra", "dec",
            "healpix"} <= set(cat)
    rows = matched.get(cat["match_id"])
    np.testing.assert_array_equal(rows["toyimg.object_id"], cat["left_object_id"])
    np.testing.assert_array_equal(rows["toyspec.object_id"], cat["right_object_id"])
    want_img = img.get(cat["left_object_id"])
    want_spec = spec.get(cat["right_object_id"])
    for name in img.columns:
        np.testing.assert_array_equal(rows[f"toyimg.{name}"], want_img[name], err_msg=name)
    for name in spec.columns:
        np.testing.assert_array_equal(rows[f"toyspec.{name}"], want_spec[name], err_msg=name)
    np.testing.assert_array_equal(rows["ra"], want_img["ra"])
    np.testing.assert_array_equal(rows["healpix"], want_img["healpix"])
    # aliases live under their namespace
    np.testing.assert_array_equal(matched.get(cat["match_id"][:5], columns=["toyspec.z"])
                                  ["toyspec.z"], want_spec["Z"][:5])
    prov = matched.manifest.provenance
    assert prov["left"]["survey"] == "toyimg" and prov["right"]["survey"] == "toyspec"
    assert prov["left"]["fingerprint"] == img.manifest.fingerprint()


def test_catalog_only_and_no_output(toy_pair, tmp_path):
    _, img_path, spec_path = toy_pair
    in_memory = cross_match(img_path, spec_path, radius_arcsec=1.0, how="all")
    assert in_memory.out is None and in_memory.dataset_path is None
    res = cross_match(img_path, spec_path, tmp_path / "xm", how="all", catalog_only=True)
    assert res.dataset_path is None and not (tmp_path / "xm" / "toyimg_x_toyspec").exists()
    assert pq.read_table(res.catalog_path).equals(in_memory.catalog)


def test_cli_crossmatch(toy_pair, tmp_path):
    _, img_path, spec_path = toy_pair
    out = tmp_path / "cli"
    args = ["crossmatch", str(img_path), str(spec_path), "--radius", "1.0arcsec", "--how", "all",
            "--out", str(out), "--workers", "1"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "120 pairs" in res.output
    assert pq.read_table(out / "catalog.parquet").num_rows == 120
    assert validate(out / "toyimg_x_toyspec" / "matched").ok
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "already exists" in again.output
    assert CliRunner().invoke(app, [*args, "--overwrite"]).exit_code == 0
    bad = CliRunner().invoke(app, [*args[:-4], "--how", "best", "--out", str(out)])
    assert bad.exit_code == 1 and "how must be" in bad.output


# ---- concatenation ----------------------------------------------------------------------
def _spectra(rng, n, id0, flux_name, z_name, length=16):
    ra, dec = in_cap(rng, n, 30.0, -20.0, 4.0)
    lam = np.tile(np.linspace(4000, 9000, length, dtype=np.float32), (n, 1))
    return {"object_id": id0 + np.arange(n, dtype=np.int64), "ra": ra, "dec": dec,
            "spectrum_lambda": lam, "spectrum_flux": rng.random((n, length), np.float32),
            "spectrum_ivar": rng.random((n, length), np.float32),
            "spectrum_mask": rng.random((n, length)) > 0.9,
            z_name: rng.random(n).astype(np.float32), flux_name: rng.random(n),
            "only_here_" + z_name: np.zeros(n)}


def test_concatenate_through_standard_names(tmp_path):
    rng = np.random.default_rng(5)
    a = _spectra(rng, 300, 0, "FLUX_G", "Z")
    b = _spectra(rng, 200, 0, "g_flux", "redshift")  # same ids as a: they collide
    pa = store(tmp_path / "sa" / "test", a, "sa", "spectrum", {"Z": "z", "FLUX_G": "flux_g"})
    pb = store(tmp_path / "sb" / "test", b, "sb", "spectrum", {"redshift": "z", "g_flux": "flux_g"})
    ds = concatenate([pa, pb], tmp_path / "both")
    assert len(ds) == 500 and ds.modality == "spectrum"
    assert {"z", "flux_g", "source", "source_object_id"} <= set(ds.columns)
    assert not {"Z", "redshift", "only_here_Z", "only_here_redshift"} & set(ds.columns)
    assert validate(ds.path, strict=True).ok
    rows = {k: v for k, v in ds.get(np.asarray(ds.index().ids)).items()}
    for src, cols, zname, fname in (("sa/test", a, "Z", "FLUX_G"),
                                    ("sb/test", b, "redshift", "g_flux")):
        sel = rows["source"] == src.encode()
        order = np.argsort(rows["source_object_id"][sel])
        np.testing.assert_array_equal(rows["source_object_id"][sel][order], cols["object_id"])
        np.testing.assert_array_equal(rows["z"][sel][order], cols[zname])
        np.testing.assert_array_equal(rows["flux_g"][sel][order], cols[fname])
        np.testing.assert_array_equal(rows["spectrum_flux"][sel][order], cols["spectrum_flux"])
        np.testing.assert_array_equal(rows["ra"][sel][order], cols["ra"])


def test_concatenate_keeps_disjoint_ids_and_refuses_mixed_modalities(tmp_path, toy_pair):
    rng = np.random.default_rng(6)
    pa = store(tmp_path / "sa" / "test", _spectra(rng, 50, 0, "F", "Z"), "sa", "spectrum")
    pb = store(tmp_path / "sb" / "test", _spectra(rng, 50, 1000, "F", "Z"), "sb", "spectrum")
    ds = concatenate([pa, pb], tmp_path / "both")
    assert "source_object_id" not in ds.columns
    np.testing.assert_array_equal(np.sort(np.asarray(ds.index().ids)),
                                  np.r_[np.arange(50), 1000 + np.arange(50)])
    _, img_path, spec_path = toy_pair
    with pytest.raises(ConcatError, match="different modalities"):
        concatenate([img_path, spec_path], tmp_path / "mixed")

    res = CliRunner().invoke(app, ["concat", str(pa), str(pb), "--out", str(tmp_path / "cli"),
                                   "--new-ids"])
    assert res.exit_code == 0, res.output
    assert "100 rows" in res.output
    assert "source_object_id" in mmu_core.open_dataset(tmp_path / "cli").columns
    res = CliRunner().invoke(app, ["concat", str(img_path), str(spec_path), "--out",
                                   str(tmp_path / "cli2")])
    assert res.exit_code == 1 and "different modalities" in res.output


def test_positions_sidecar_and_file_reads_give_the_same_pairs(tmp_path):
    """Cross-matching reads the build's positions sidecar; without it (e.g. MMU v1 folders)
    it reads the pixel files. Both give the same catalog, and the validator checks the sidecar."""
    rng = np.random.default_rng(3)
    n = 20_000
    ra, dec = rng.uniform(10, 14, n), rng.uniform(-2, 2, n)
    left = store(tmp_path / "l" / "a" / "test", {"object_id": np.arange(n, dtype=np.int64),
                                                 "ra": ra, "dec": dec}, "a")
    right = store(tmp_path / "r" / "b" / "test",
                  {"object_id": np.arange(n, dtype=np.int64) + 10**9,
                   "ra": (ra + rng.normal(0, 1e-4, n)) % 360, "dec": dec}, "b")
    assert (left / "_index" / "pos_ra.npy").exists()
    with_sidecar = cross_match(left, right, None, radius_arcsec=1.0, how="all").catalog
    assert validate(left, strict=True).ok
    for side in (left, right):
        for f in (side / "_index").glob("pos_*.npy"):
            f.unlink()
    from_files = cross_match(left, right, None, radius_arcsec=1.0, how="all").catalog
    assert with_sidecar.num_rows > n // 2
    assert with_sidecar.equals(from_files)


@pytest.mark.parametrize("how", ["all", "nearest"])
def test_threads_and_many_blocks_give_the_inline_catalog_in_order(catalogs, tmp_path, how):
    """Blocks matched on 2 threads (the catalog of how="all" written as blocks finish, the
    claims of how="nearest" settled across blocks) give the same catalog as one block at a
    time; rows run in (healpix, left id, right id) order and match_id counts them."""
    inline = cross_match(catalogs["lpath"], catalogs["rpath"], tmp_path / "inline",
                         radius_arcsec=RADIUS, how=how, catalog_only=True)
    threaded = cross_match(catalogs["lpath"], catalogs["rpath"], tmp_path / "threads",
                           radius_arcsec=RADIUS, how=how, catalog_only=True, workers=2,
                           max_task_rows=20_000)
    assert threaded.tasks > 4 * inline.tasks
    a, b = inline.catalog, threaded.catalog
    assert a.num_rows > 50_000 and a.equals(b)
    assert not (tmp_path / "threads" / "parts").exists()
    assert [p.name for p in (tmp_path / "threads").iterdir()] == ["catalog.parquet"]
    hp, lid, rid = (np.asarray(b[c]) for c in ("healpix", "left_object_id", "right_object_id"))
    np.testing.assert_array_equal(np.lexsort((rid, lid, hp)), np.arange(len(hp)))
    np.testing.assert_array_equal(np.asarray(b["match_id"]), np.arange(len(hp)))


def test_rows_stored_out_of_id_order_still_give_an_ordered_catalog(catalogs, tmp_path):
    """An MMU v1 folder (no manifest, no sidecar) whose rows are not sorted by object_id:
    the pairs are the same and the catalog is still in (healpix, left id, right id) order."""
    import h5py

    v1 = tmp_path / "v1" / "lsurvey" / "test"
    v1.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for pixel_dir in sorted(catalogs["lpath"].glob("healpix=*")):
        shutil.copytree(pixel_dir, v1 / pixel_dir.name)
        for f in (v1 / pixel_dir.name).glob("*.hdf5"):
            with h5py.File(f, "r+") as h:
                perm = rng.permutation(h["object_id"].shape[0])
                for name in list(h):
                    h[name][...] = h[name][...][perm]
    expected = cross_match(catalogs["lpath"], catalogs["rpath"], radius_arcsec=RADIUS,
                           how="all").catalog
    got = cross_match(v1, catalogs["rpath"], radius_arcsec=RADIUS, how="all").catalog
    cols = ["left_object_id", "right_object_id", "separation_arcsec", "healpix"]
    assert got.select(cols).equals(expected.select(cols))
