"""``mmu sample gz3d``: the DR17 layout (docs/surveys.md), plausible and self-consistent
volunteer marks, reproducibility, the cone, and galaxies taken from a MaNGA drpall."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from matplotlib.path import Path as MplPath

from mmu_core.models import SampleRequest

HDU5_FORMATS = [("ra", "E"), ("dec", "E"), ("MANGAID", "11A"), ("IAUNAME", "19A"),
                ("IFUDESIGNSIZE", "D"), ("MANGA_TILEID", "D"), ("nsa_id", "K"),
                ("explorer_link", "90A"), ("GZ_total_classifications", "I"),
                ("GZ_bar_votes", "I"), ("GZ_spiral_votes", "I"), ("sample", "70A")]
CLUSTER_NAMES = ["x", "y", "var_x", "var_y", "var_x_y", "ra", "dec", "var_ra", "var_dec",
                 "var_ra_dec", "count"]


def test_hdu_order_dtypes_and_header_wcs(sample_raw, files_of):
    files = files_of(sample_raw)
    assert len(files) == 3
    for path in files:
        with fits.open(path) as hdul:
            assert len(hdul) == 11
            assert hdul[0].header["BITPIX"] == 8 and hdul[0].data.shape == (525, 525, 3)
            for k in range(1, 5):
                assert hdul[k].header["BITPIX"] == -64 and hdul[k].data.shape == (525, 525)
            assert [(c.name, c.format) for c in hdul[5].columns] == HDU5_FORMATS
            assert len(hdul[5].data) == 1
            for k in (6, 7):
                assert hdul[k].columns.names == CLUSTER_NAMES
            assert hdul[8].columns.names == ["classification_id", "time_stamp", "center_points",
                                             "star_points"]
            assert hdul[9].columns.names == ["classification_id", "time_stamp", "spiral_paths"]
            assert hdul[10].columns.names == ["classification_id", "time_stamp", "bar_paths"]
            meta = hdul[5].data[0]
            for k in range(5):  # astropy's to_header() form: PC matrix, CDELT = 1, no CD
                h = hdul[k].header
                assert h["WCSAXES"] == 2  # on HDU 0 too, whose data are 3-D
                assert (h["CTYPE1"], h["CTYPE2"]) == ("RA---TAN", "DEC--TAN")
                assert (h["CRPIX1"], h["CRPIX2"]) == (262.5, 262.5)
                assert h["PC1_1"] == h["PC2_2"] == pytest.approx(-2.75e-5, rel=1e-12)
                assert h["CDELT1"] == h["CDELT2"] == 1.0
                assert not {"PC1_2", "PC2_1", "CD1_1", "CD2_2"} & set(h)
                # to_header() writes 14 significant digits of the float32 HDU 5 position
                assert h["CRVAL1"] == pytest.approx(float(meta["ra"]), abs=1e-9)
                assert h["CRVAL2"] == pytest.approx(float(meta["dec"]), abs=1e-9)
            assert hdul[5].data["ra"].dtype == np.dtype(">f4")
            name = path.name
            assert name == (f"gz3d_{meta['MANGAID']}_{int(meta['IFUDESIGNSIZE'])}_"
                            f"{name.split('_')[-1]}")
            assert int(meta["IFUDESIGNSIZE"]) in (19, 37, 61, 91, 127)


def test_catalogue_files_list_every_galaxy(sample_raw, files_of):
    catalog = fits.getdata(sample_raw / "gz3d_metadata.fits", 1)
    assert list(catalog.columns.names[:5]) == ["file_name", "zooniverse_subject_id",
                                               "number_galaxy_centers",
                                               "number_foreground_stars", "observed"]
    assert list(catalog.columns.names[5:]) == [n for n, _ in HDU5_FORMATS]
    files = files_of(sample_raw)
    assert sorted("gz3d_" + f + ".gz" for f in catalog["file_name"]) == [p.name for p in files]
    centers = fits.getdata(sample_raw / "gz3d_galaxy_centers.fits", 1)
    stars = fits.getdata(sample_raw / "gz3d_foreground_stars.fits", 1)
    for path in files:
        with fits.open(path) as hdul:
            row = catalog[catalog["file_name"] == path.name[5:-3]][0]
            assert row["number_galaxy_centers"] == len(hdul[6].data)
            assert row["number_foreground_stars"] == len(hdul[7].data)
            assert (centers["file_name"] == row["file_name"]).sum() == len(hdul[6].data)
            assert (stars["file_name"] == row["file_name"]).sum() == len(hdul[7].data)
            for name, _ in HDU5_FORMATS:
                assert row[name] == hdul[5].data[name][0]


def test_masks_are_the_counted_volunteer_polygons(sample_raw, files_of):
    """Recount the spiral and bar masks from the JSON paths with matplotlib, as the GZ3D
    production code did, on a random subset of pixels."""
    rng = np.random.default_rng(0)
    for path in files_of(sample_raw):
        with fits.open(path) as hdul:
            for hdu_mask, hdu_table, column in ((3, 9, "spiral_paths"), (4, 10, "bar_paths")):
                mask = hdul[hdu_mask].data
                paths = [p for row in hdul[hdu_table].data[column] for p in json.loads(row)]
                near = np.argwhere(mask > 0)
                far = rng.integers(0, 525, (300, 2))
                picks = near[rng.choice(len(near), min(700, len(near)), replace=False)] \
                    if len(near) else np.empty((0, 2), int)
                pixels = np.vstack([picks, far])
                points = pixels[:, ::-1].astype(float)  # (x, y) = (column, row)
                counts = sum(MplPath(np.array(p)).contains_points(points) for p in paths)
                agree = np.mean(mask[pixels[:, 0], pixels[:, 1]] == counts)
                assert agree > 0.995, (path.name, column, agree)  # edge pixels may differ


def test_cluster_tables_follow_the_clicks(sample_raw, files_of):
    for path in files_of(sample_raw):
        with fits.open(path) as hdul:
            clicks = np.array([p for row in hdul[8].data["center_points"]
                               for p in json.loads(row)])
            (centre,) = hdul[6].data
            near = clicks[np.hypot(*(clicks - [centre["x"], centre["y"]]).T) < 15]
            assert centre["count"] == len(near)
            np.testing.assert_allclose([centre["x"], centre["y"]], near.mean(axis=0), atol=1e-9)
            assert hdul[1].data.max() == centre["count"] or len(hdul[6].data) > 1
            # clusters are placed on the sky with the header WCS, within ~1 cutout pixel
            wcs = WCS(hdul[1].header)
            sky = wcs.pixel_to_world(centre["x"], centre["y"])
            assert sky.separation(SkyCoord(centre["ra"] * u.deg, centre["dec"] * u.deg)).arcsec < 0.2


def test_counts_are_plausible(sample_raw, files_of):
    totals, centre_peaks, polygons = [], [], []
    for path in files_of(sample_raw):
        with fits.open(path) as hdul:
            for k in range(1, 5):
                assert np.array_equal(hdul[k].data, np.round(hdul[k].data))
                assert hdul[k].data.min() >= 0
            meta = hdul[5].data[0]
            totals.append(meta["GZ_total_classifications"])
            assert 0 <= meta["GZ_spiral_votes"] <= meta["GZ_total_classifications"]
            assert 0 <= meta["GZ_bar_votes"] <= meta["GZ_total_classifications"]
            centre_peaks.append(hdul[1].data.max())
            polygons.append(hdul[3].data.max())
            assert len(hdul[9].data) >= 15  # GZ3D retired subjects after ~15 classifications
    assert max(totals) > 255 and max(centre_peaks) > 255
    assert min(centre_peaks) >= 3 and max(polygons) > 0


def test_objects_inside_the_cone_and_reproducible(tmp_path, registry):
    def digest(folder):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}

    args = {"n": 2, "ra": 210.0, "dec": -1.0, "radius": 0.2}
    first = registry.sample("gz3d", SampleRequest(out_dir=tmp_path / "a", seed=3, **args))
    registry.sample("gz3d", SampleRequest(out_dir=tmp_path / "b", seed=3, **args))
    registry.sample("gz3d", SampleRequest(out_dir=tmp_path / "c", seed=4, **args))
    assert first.n_objects == 2 and len(first.files) == 5
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert set(digest(tmp_path / "a").values()).isdisjoint(
        v for k, v in digest(tmp_path / "c").items() if k.startswith("gz3d_1-"))
    catalog = fits.getdata(tmp_path / "a" / "gz3d_metadata.fits", 1)
    sep = SkyCoord(catalog["ra"] * u.deg, catalog["dec"] * u.deg).separation(
        SkyCoord(210 * u.deg, -1 * u.deg))
    assert (sep.deg < 0.2).all()


def test_galaxies_come_from_the_drpall(tmp_path, registry, write_drpall):
    rows = [
        ("8485-1901", "1-209232", 232.544, 48.6903, 232.545, 48.6905, 19, 0.0408, 12345),
        ("8485-1902", "1-209232", 232.544, 48.6903, 232.545, 48.6905, 19, 0.0408, 12345),  # re-observed
        ("7443-12701", "12-193481", 229.525, 42.7458, 229.526, 42.746, 127, 0.019, 22),
        ("7443-3701", "1-248389", 229.311, 43.0104, 229.312, 43.011, 37, 0.031, 88),
        ("7443-9102", "1-248420", 230.12, 42.9, 230.121, 42.9, 91, 0.05, 99),
    ]
    drpall = write_drpall(tmp_path / "drpall-v3_1_1.fits", rows)
    result = registry.sample("gz3d", SampleRequest(out_dir=tmp_path / "raw", n=3, seed=1,
                                                   options={"drpall": str(drpall)}))
    assert result.n_objects == 3
    catalog = fits.getdata(tmp_path / "raw" / "gz3d_metadata.fits", 1)
    expected = [rows[0], rows[2], rows[3]]  # first three distinct galaxies, in file order
    assert list(catalog["MANGAID"]) == [r[1] for r in expected]
    np.testing.assert_array_equal(catalog["ra"], np.float32([r[2] for r in expected]))
    np.testing.assert_array_equal(catalog["dec"], np.float32([r[3] for r in expected]))
    np.testing.assert_array_equal(catalog["IFUDESIGNSIZE"], [r[6] for r in expected])
    np.testing.assert_array_equal(catalog["nsa_id"], [r[8] for r in expected])
    names = sorted(p.name for p in (tmp_path / "raw").glob("gz3d_*-*.fits.gz"))
    assert names == sorted(f"gz3d_{r[1]}_{r[6]}_{n.split('_')[-1].split('.')[0]}.fits.gz"
                           for r, n in zip(expected, catalog["file_name"], strict=True))


def test_positions_place_the_first_galaxies_exactly(tmp_path):
    from mmu_gz3d.samples import write_sample

    wanted = [(150.2, 2.1), (150.05, 2.3)]
    write_sample(SampleRequest(out_dir=tmp_path, n=3, seed=2, ra=150.1, dec=2.2, radius=0.3,
                               positions=wanted))
    with fits.open(tmp_path / "gz3d_metadata.fits") as hdul:
        meta = hdul[1].data
        got = sorted(zip(np.asarray(meta["ra"], float), np.asarray(meta["dec"], float),
                         strict=True))
    for ra, dec in wanted:
        assert any(abs(r - ra) < 1e-4 and abs(d - dec) < 1e-4 for r, d in got)  # float32 HDU
