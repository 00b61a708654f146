"""The forward-only FITS reader gives what astropy gives, and fails loudly on damaged files."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import pytest
from astropy.io import fits

from mmu_manga.fitsstream import FitsStreamError, iter_hdus


def _hdul(rng: np.random.Generator) -> fits.HDUList:
    cube = rng.standard_normal((7, 5, 3)).astype(np.float32)
    table = fits.BinTableHDU.from_columns(
        [fits.Column("A", "J", array=np.arange(4, dtype=np.int32)),
         fits.Column("B", "10A", array=np.array(["x", "yy", "zzz", "w"]))], name="TAB")
    return fits.HDUList([
        fits.PrimaryHDU(),
        fits.ImageHDU(cube, name="CUBE"),
        table,  # a table between images must be skipped correctly
        fits.ImageHDU(rng.integers(-5, 5, (5, 3)).astype(np.int32), name="MASK"),
        fits.ImageHDU(np.linspace(1, 2, 11), name="WAVE"),
    ])


@pytest.mark.parametrize("suffix", [".fits", ".fits.gz"])
def test_matches_astropy(tmp_path, suffix):
    path = tmp_path / f"f{suffix}"
    _hdul(np.random.default_rng(0)).writeto(path)
    with fits.open(path) as ref:
        expected = {h.name: h.data for h in ref if h.is_image and h.data is not None}
        names = [h.name for h in ref]
        seen = []
        for hdu in iter_hdus(path):
            seen.append(hdu.name)
            if hdu.name in expected:
                got = hdu.read()
                assert got.dtype == expected[hdu.name].dtype  # big-endian, as in the file
                assert np.array_equal(got, expected[hdu.name])
    assert seen == names


def test_planes_in_blocks(tmp_path):
    path = tmp_path / "f.fits.gz"
    _hdul(np.random.default_rng(1)).writeto(path)
    with fits.open(path) as ref:
        cube = ref["CUBE"].data.copy()
    for hdu in iter_hdus(path):
        if hdu.name == "CUBE":
            blocks = [(start, block.copy()) for start, block in hdu.iter_planes(3)]
    assert [s for s, _ in blocks] == [0, 3, 6]
    assert np.array_equal(np.concatenate([b for _, b in blocks]), cube)


def test_unread_data_is_skipped(tmp_path):
    path = tmp_path / "f.fits.gz"
    _hdul(np.random.default_rng(2)).writeto(path)
    with fits.open(path) as ref:
        wave = ref["WAVE"].data.copy()
    got = [hdu.read() for hdu in iter_hdus(path) if hdu.name == "WAVE"]
    assert np.array_equal(got[0], wave)


def _gz_bytes(tmp_path) -> bytes:
    path = tmp_path / "ok.fits.gz"
    _hdul(np.random.default_rng(3)).writeto(path)
    return path.read_bytes()


def _consume(path) -> None:
    for hdu in iter_hdus(path):
        if hdu.is_image and hdu.shape:
            hdu.read()


def test_truncated_gzip_raises(tmp_path):
    data = _gz_bytes(tmp_path)
    bad = tmp_path / "bad.fits.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(EOFError):
        _consume(bad)


def test_corrupt_gzip_raises(tmp_path):
    data = bytearray(_gz_bytes(tmp_path))
    # Damage the compressed stream in the middle (checked by inflate or by the CRC).
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0x5A
    bad = tmp_path / "bad.fits.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises((zlib.error, EOFError, FitsStreamError)):
        _consume(bad)


def test_bad_crc_found_at_the_end(tmp_path):
    data = bytearray(_gz_bytes(tmp_path))
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    bad = tmp_path / "bad.fits.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(zlib.error):
        _consume(bad)


def test_not_fits(tmp_path):
    bad = tmp_path / "bad.fits.gz"
    bad.write_bytes(gzip.compress(b"hello world" * 400))
    with pytest.raises(FitsStreamError):
        _consume(bad)
