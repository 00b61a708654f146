"""Bad input: an InputError naming the file (and galaxy), or, with skip_bad, the galaxy is
left out, listed, and the others are converted."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from mmu_core.errors import InputError
from mmu_core.models import ConvertContext
from mmu_gz3d.reader import read_galaxy


def convert(registry, raw, skip_bad):
    options = {"skip_bad": skip_bad}
    rows, skipped = [], []
    for unit in registry.discover("gz3d", "dr17", raw, options):
        context = ConvertContext(raw_dir=raw, options=options)
        for batch in registry.convert(unit, context):
            rows += [x.item() if hasattr(x, "item") else x for x in batch["object_id"]]
        skipped += context.skipped
    return rows, skipped


def drop_last_hdu(hdul):
    return fits.HDUList(list(hdul)[:10])


def narrow_spiral_mask(hdul):
    hdul[3] = fits.ImageHDU(hdul[3].data[:, :524], header=hdul[3].header)
    return hdul


def fractional_bar_mask(hdul):
    data = hdul[4].data.copy()
    data[10, 10] = 0.5
    hdul[4] = fits.ImageHDU(data, header=hdul[4].header)
    return hdul


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (drop_last_hdu, "missing HDU 10"),
        (narrow_spiral_mask, "differs from the image's (525, 525)"),
        (fractional_bar_mask, "whole vote counts"),
    ],
)
def test_damaged_file_is_named_or_skipped(registry, raw_copy, files_of, rewrite, edit, says):
    files = files_of(raw_copy)
    bad = files[1]
    mangaid = fits.getdata(bad, 5)["MANGAID"][0]
    rewrite(bad, edit)

    with pytest.raises(InputError) as err:
        convert(registry, raw_copy, skip_bad=False)
    assert err.value.file == str(bad) and err.value.object == mangaid
    assert says in str(err.value)

    rows, skipped = convert(registry, raw_copy, skip_bad=True)
    assert len(rows) == len(files) - 1 and mangaid not in rows
    assert [(p.file, p.object) for p in skipped] == [(str(bad), mangaid)]
    assert says in skipped[0].message


def test_corrupt_gzip_is_named_or_skipped(registry, raw_copy, files_of):
    files = files_of(raw_copy)
    bad = files[0]
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # truncated download
    with pytest.raises(InputError) as err:
        read_galaxy(bad)
    assert err.value.file == str(bad) and "cannot read" in str(err.value)

    rows, skipped = convert(registry, raw_copy, skip_bad=True)
    assert len(rows) == len(files) - 1
    assert [p.file for p in skipped] == [str(bad)]


def test_listed_galaxy_without_file_is_named_or_skipped(registry, raw_copy, files_of):
    files = files_of(raw_copy)
    gone = files[2]
    mangaid = fits.getdata(gone, 5)["MANGAID"][0]
    gone.unlink()
    with pytest.raises(InputError) as err:
        convert(registry, raw_copy, skip_bad=False)
    assert err.value.file == str(gone) and err.value.object == mangaid
    assert "file is absent" in str(err.value)

    rows, skipped = convert(registry, raw_copy, skip_bad=True)
    assert sorted(rows) == sorted(fits.getdata(f, 5)["MANGAID"][0] for f in files[:2])
    assert [(p.file, p.object) for p in skipped] == [(str(gone), mangaid)]


def test_file_whose_hdu5_names_another_galaxy(registry, raw_copy, files_of, rewrite):
    bad = files_of(raw_copy)[0]

    def other_id(hdul):
        table = np.asarray(hdul[5].data).copy()
        table["MANGAID"] = "1-1"
        hdul[5] = fits.BinTableHDU(table)
        return hdul

    rewrite(bad, other_id)
    with pytest.raises(InputError, match="differs from the file name"):
        read_galaxy(bad)


def test_empty_folder_is_an_input_error(registry, tmp_path):
    with pytest.raises(InputError, match="no gz3d_"):
        registry.discover("gz3d", "dr17", tmp_path, {})


def test_unreadable_metadata_catalogue_is_named(registry, raw_copy):
    catalogue = raw_copy / "gz3d_metadata.fits"
    catalogue.write_bytes(catalogue.read_bytes()[:3000])
    with pytest.raises(InputError) as err:
        registry.discover("gz3d", "dr17", raw_copy, {})
    assert err.value.file == str(catalogue)
