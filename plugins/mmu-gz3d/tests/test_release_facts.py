"""Facts of the released files that the producer code fixes: the WCS is in PC form (astropy's
``to_header()``), HDU 0 carries a 2-axis WCS over 3-D data (so the WCS comes from HDU 1), and
gz3d_metadata.fits names files ``<MANGAID>_<IFU>_<subject>.fits`` while the files on disk are
``gz3d_<MANGAID>_<IFU>_<subject>.fits.gz``."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from gz3d_testutil import by_id, convert_all

from mmu_gz3d.spaxels import gz3d_wcs_from_row

PC = -2.75e-5  # deg per pixel: 0.099"


def _set_wcs(hdul: fits.HDUList, form: str) -> fits.HDUList:
    """Rewrite HDUs 0-4's WCS cards in another (equivalent) form."""
    for k in range(5):
        h = hdul[k].header
        crval = (h["CRVAL1"], h["CRVAL2"])
        for key in ("PC1_1", "PC2_2", "PC1_2", "PC2_1", "CDELT1", "CDELT2", "CD1_1", "CD2_2"):
            h.remove(key, ignore_missing=True)
        if form == "cd":
            h["CD1_1"], h["CD2_2"] = PC, PC
        elif form == "cdelt":  # PC = identity, the scale in CDELT
            h["PC1_1"], h["PC2_2"], h["CDELT1"], h["CDELT2"] = 1.0, 1.0, PC, PC
        h["CRVAL1"], h["CRVAL2"] = crval
    return hdul


def test_pc_form_wcs_round_trips(sample_rows, sample_raw, files_of):
    """The PC + CDELT = 1 header the producer writes gives the stored WCS, the 0.099" scale,
    and the same sky positions as the header."""
    pixels = np.array([[0.0, 0.0], [262.5, 262.5], [524.0, 10.0], [100.0, 400.0]])
    for path in files_of(sample_raw):
        header = fits.getheader(path, 1)
        assert header["PC1_1"] == pytest.approx(PC) and header["CDELT1"] == 1.0
        i = by_id(sample_rows, fits.getdata(path, 5)["MANGAID"][0])
        np.testing.assert_allclose(sample_rows["wcs_cd"][i], np.diag([PC, PC]), rtol=1e-12)
        np.testing.assert_allclose(sample_rows["image_scale"][i], 0.099, rtol=1e-6)
        assert (sample_rows["wcs_crpix1"][i], sample_rows["wcs_crpix2"][i]) == (262.5, 262.5)
        stored = gz3d_wcs_from_row(sample_rows, i)
        np.testing.assert_allclose(stored.wcs_pix2world(pixels, 0),
                                   WCS(header).wcs_pix2world(pixels, 0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("form", ["cd", "cdelt"])
def test_other_wcs_forms_store_the_same_wcs(registry, raw_copy, files_of, rewrite, sample_rows,
                                            form):
    for path in files_of(raw_copy):
        rewrite(path, lambda hdul: _set_wcs(hdul, form))
    rows, _ = convert_all(registry, raw_copy)
    for name in ("wcs_cd", "wcs_crval1", "wcs_crval2", "wcs_crpix1", "wcs_crpix2", "image_scale"):
        np.testing.assert_allclose(rows[name], sample_rows[name], rtol=1e-12, err_msg=name)


def test_the_wcs_comes_from_hdu1_not_the_3d_hdu0(registry, raw_copy, files_of, rewrite,
                                                  sample_rows):
    path = files_of(raw_copy)[0]

    def spoil_hdu0(hdul):
        assert hdul[0].data.ndim == 3 and hdul[0].header["NAXIS1"] == 3  # colour on axis 1
        hdul[0].header["CRVAL1"] += 1.0
        hdul[0].header["PC1_1"] *= 10
        return hdul

    rewrite(path, spoil_hdu0)
    rows, _ = convert_all(registry, raw_copy)
    for name in ("wcs_cd", "wcs_crval1", "image_scale"):
        np.testing.assert_array_equal(rows[name], sample_rows[name])


def test_metadata_file_names_match_the_files_on_disk(registry, raw_copy, files_of):
    """file_name has no gz3d_ prefix and no .gz: each row still finds its file, and its
    catalogue values (here 'observed') reach that file's galaxy."""
    files = files_of(raw_copy)
    meta_path = raw_copy / "gz3d_metadata.fits"
    table = Table.read(meta_path, hdu=1)
    names = [str(n).strip() for n in table["file_name"]]
    assert sorted(f"gz3d_{n}.gz" for n in names) == [p.name for p in files]
    assert not any(n.startswith("gz3d_") or n.endswith(".gz") for n in names)
    table["observed"][0] = False
    table.write(meta_path, overwrite=True)
    units = registry.discover("gz3d", "dr17", raw_copy, {})
    entries = [g for u in units for g in u.meta["galaxies"]]
    assert len(entries) == len(files) and all(g["listed"] and g["path"] for g in entries)
    rows, contexts = convert_all(registry, raw_copy)
    assert not [p for c in contexts for p in c.skipped]
    observed = dict(zip(rows["file_name"].tolist(), rows["observed"].tolist(), strict=True))
    assert observed == {n: i != 0 for i, n in enumerate(names)}
