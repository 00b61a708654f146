"""discover + convert: every stored value checked against the FITS files read with astropy."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from gz3d_testutil import by_id, convert_all

from mmu_gz3d.spaxels import gz3d_wcs_from_row


def test_image_and_masks_read_back_exactly(sample_rows, sample_raw, files_of):
    rows = sample_rows
    files = files_of(sample_raw)
    assert len(rows["object_id"]) == len(files)
    assert rows["image_array"].dtype == np.uint8
    assert rows["segmentation_array"].dtype == np.int32
    for path in files:
        with fits.open(path) as hdul:
            i = by_id(rows, hdul[5].data["MANGAID"][0])
            image = hdul[0].data
            assert image.shape == (525, 525, 3)
            np.testing.assert_array_equal(rows["image_array"][i], np.moveaxis(image, -1, 0))
            for k in range(4):
                stored = rows["segmentation_array"][i, k]
                assert np.array_equal(stored.astype(np.float64), hdul[1 + k].data)
    assert list(rows["segmentation_class"][0]) == ["center", "star", "spiral", "bar"]
    # The heavily classified sample galaxy: counts above 255 survive (uint8 would wrap).
    assert rows["segmentation_array"].max() > 255


def test_vote_fractions_from_hdu5(sample_rows, sample_raw, files_of):
    rows = sample_rows
    for path in files_of(sample_raw):
        meta = fits.getdata(path, 5)
        i = by_id(rows, meta["MANGAID"][0])
        total = float(meta["GZ_total_classifications"][0])
        expected = [-1, -1, meta["GZ_spiral_votes"][0] / total, meta["GZ_bar_votes"][0] / total]
        np.testing.assert_allclose(rows["segmentation_vote_fraction"][i], expected, rtol=1e-6)
    assert rows["segmentation_vote_fraction"].dtype == np.float32
    assert (rows["GZ_total_classifications"] > 255).any()


def test_metadata_catalogue_clusters_and_counts(sample_rows, sample_raw, files_of):
    rows = sample_rows
    catalog = fits.getdata(sample_raw / "gz3d_metadata.fits", 1)
    for path in files_of(sample_raw):
        with fits.open(path) as hdul:
            meta = hdul[5].data[0]
            i = by_id(rows, meta["MANGAID"])
            assert rows["ra"][i] == np.float64(meta["ra"]) and rows["dec"][i] == np.float64(meta["dec"])
            for name in ("IFUDESIGNSIZE", "MANGA_TILEID", "nsa_id", "GZ_total_classifications",
                         "GZ_bar_votes", "GZ_spiral_votes"):
                assert rows[name][i] == meta[name], name
            for name in ("MANGAID", "IAUNAME", "explorer_link", "sample"):
                assert rows[name][i] == meta[name].strip(), name
            subject = int(path.name.split("_")[-1].split(".")[0])
            assert rows["zooniverse_subject_id"][i] == subject
            (c,) = np.flatnonzero(catalog["zooniverse_subject_id"] == subject)
            assert rows["file_name"][i] == catalog["file_name"][c]
            assert rows["observed"][i] == catalog["observed"][c]
            for prefix, hdu, number in (("center", 6, "number_galaxy_centers"),
                                        ("star", 7, "number_foreground_stars")):
                table = hdul[hdu].data
                n = len(table)
                assert rows[number][i] == n == catalog[number][c]
                for col in ("x", "y", "var_x", "var_y", "var_x_y", "ra", "dec", "var_ra",
                            "var_dec", "var_ra_dec"):
                    stored = rows[f"{prefix}_{col}"][i]
                    np.testing.assert_array_equal(stored[:n], table[col])
                    assert np.isnan(stored[n:]).all()
                np.testing.assert_array_equal(rows[f"{prefix}_count"][i][:n], table["count"])
                assert (rows[f"{prefix}_count"][i][n:] == 0).all()
            assert rows["n_center_star_classifications"][i] == len(hdul[8].data)
            assert rows["n_spiral_classifications"][i] == len(hdul[9].data)
            assert rows["n_bar_classifications"][i] == len(hdul[10].data)
    assert rows["center_x"].shape[1] == 8 and rows["star_x"].shape[1] == 20
    np.testing.assert_allclose(rows["image_scale"], 0.099, rtol=1e-6)


def test_stored_wcs_reproduces_the_header_wcs(sample_rows, sample_raw, files_of):
    rows = sample_rows
    pixels = np.array([[0.0, 0.0], [261.5, 261.5], [524.0, 10.0], [100.0, 400.0]])
    for path in files_of(sample_raw):
        header_wcs = WCS(fits.getheader(path, 1))
        i = by_id(rows, fits.getdata(path, 5)["MANGAID"][0])
        stored_wcs = gz3d_wcs_from_row(rows, i)
        np.testing.assert_allclose(stored_wcs.wcs_pix2world(pixels, 0),
                                   header_wcs.wcs_pix2world(pixels, 0), rtol=0, atol=1e-12)


def test_flat_and_sas_folders_give_the_same_rows(registry, sample_raw, sample_rows, tmp_path):
    sas = tmp_path / "sas" / "dr17" / "manga" / "morphology" / "galaxyzoo3d" / "v4_0_0"
    shutil.copytree(sample_raw, sas)
    flat_units = registry.discover("gz3d", "dr17", sample_raw, {})
    sas_units = registry.discover("gz3d", "dr17", tmp_path / "sas", {})
    assert [u.key for u in flat_units] == [u.key for u in sas_units]
    flat = sample_rows
    deep, _ = convert_all(registry, tmp_path / "sas")
    assert sorted(flat) == sorted(deep)
    for name in flat:
        np.testing.assert_array_equal(flat[name], deep[name])


def test_units_group_galaxies_and_keys_are_stable(registry, sample_raw):
    one = registry.discover("gz3d", "dr17", sample_raw, {"galaxies_per_unit": 1})
    again = registry.discover("gz3d", "dr17", sample_raw, {"galaxies_per_unit": 1})
    assert len(one) == 3 and [u.key for u in one] == [u.key for u in again]
    grouped = registry.discover("gz3d", "dr17", sample_raw, {"galaxies_per_unit": 2})
    assert [len(u.files) for u in grouped] == [2, 1]
    assert sorted(f for u in grouped for f in u.files) == sorted(f for u in one for f in u.files)


def test_two_subjects_of_one_galaxy_give_one_row(registry, raw_copy, files_of, rewrite):
    """The validator requires unique object_ids: the better-classified subject is kept."""
    original = files_of(raw_copy)[0]
    mangaid, ifu, subject = original.name[len("gz3d_"):-len(".fits.gz")].split("_")
    twin = raw_copy / f"gz3d_{mangaid}_{ifu}_{int(subject) + 1}.fits.gz"
    shutil.copy(original, twin)

    def fewer_classifications(hdul):
        hdul[8] = fits.BinTableHDU(hdul[8].data[:2])
        return hdul

    rewrite(twin, fewer_classifications)
    rows, contexts = convert_all(registry, raw_copy)
    assert (rows["object_id"] == mangaid).sum() == 1
    assert rows["zooniverse_subject_id"][by_id(rows, mangaid)] == int(subject)
    skipped = [p for c in contexts for p in c.skipped]
    assert [p.file for p in skipped] == [str(twin)] and skipped[0].object == mangaid


@pytest.mark.parametrize("max_stars", [1, 2])
def test_extra_clusters_keep_the_most_voted_and_warn(registry, raw_copy, files_of, rewrite,
                                                     max_stars):
    path = files_of(raw_copy)[0]
    counts = np.array([4, 11, 7])

    def three_stars(hdul):
        template = hdul[6].data  # one centre cluster: reuse its columns
        table = np.repeat(np.asarray(template[:1]), 3)
        table["count"] = counts
        table["x"] = [10.0, 20.0, 30.0]
        hdul[7] = fits.BinTableHDU(table)
        return hdul

    rewrite(path, three_stars)
    rows, contexts = convert_all(registry, raw_copy, max_stars=max_stars)
    i = by_id(rows, fits.getdata(path, 5)["MANGAID"][0])
    kept = np.sort(np.argsort(-counts, kind="stable")[:max_stars])
    np.testing.assert_array_equal(rows["star_count"][i], counts[kept])
    np.testing.assert_array_equal(rows["star_x"][i], np.array([10.0, 20.0, 30.0])[kept])
    assert rows["number_foreground_stars"][i] == 3
    assert any("most voted" in w for c in contexts for w in c.warnings)
