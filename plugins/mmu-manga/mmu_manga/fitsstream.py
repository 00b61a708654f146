"""A forward-only FITS reader over a gzip stream: one decompression pass, bounded memory.

Why not ``astropy.io.fits.open`` on ``.fits.gz``: a gzip stream cannot seek, and astropy seeks
past each extension's data to find the next header and then back to read the data, which
re-inflates the file from its start — about 40 s for a 74x74 LOGCUBE instead of 4. Here each
header is parsed (with :class:`astropy.io.fits.Header`) as it arrives, and the data that
follows is read or skipped before the next header, so the file is inflated exactly once and
the gzip CRC is checked at its end. Image data can be read whole or a block of planes at a
time, so a consumer can transpose a cube into its own layout without holding the FITS copy.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from astropy.io import fits

BLOCK = 2880
CHUNK = 4 << 20  # compressed bytes read at a time
BITPIX_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


class FitsStreamError(ValueError):
    """The file is not a well-formed (gzipped) FITS file; the message says what is wrong."""


class _ByteStream:
    """Sequential bytes of a plain or gzip file (several gzip members allowed)."""

    def __init__(self, path: Path | str):
        self._f = open(path, "rb")
        self._gzip = self._f.read(2) == b"\x1f\x8b"
        self._f.seek(0)
        self._z = zlib.decompressobj(wbits=31) if self._gzip else None
        self._pending = b""  # compressed input not yet fed
        self._out = bytearray()  # decompressed, not yet consumed
        self._eof = False

    def close(self) -> None:
        self._f.close()

    def _fill(self, want: int) -> None:
        """Decompress until at least ``want`` bytes are buffered or the file ends."""
        while len(self._out) < want and not self._eof:
            if not self._gzip:
                chunk = self._f.read(max(CHUNK, want - len(self._out)))
                self._eof = not chunk
                self._out += chunk
                continue
            if not self._pending:
                self._pending = self._f.read(CHUNK)
                if not self._pending:
                    if not self._z.eof:
                        raise EOFError("compressed file ended before the end-of-stream marker")
                    self._eof = True
                    break
            if self._z.eof:
                if not self._pending.strip(b"\x00"):  # zero padding after the last member
                    self._pending = b""
                    continue
                self._z = zlib.decompressobj(wbits=31)  # a concatenated gzip member
            self._out += self._z.decompress(self._pending, max(want - len(self._out), CHUNK))
            self._pending = self._z.unused_data if self._z.eof else self._z.unconsumed_tail

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or fewer only at the end of the file."""
        self._fill(n)
        out = bytes(self._out[:n])
        del self._out[:n]
        return out

    def readinto(self, view: memoryview) -> None:
        """Fill ``view`` completely (raise EOFError if the file ends first)."""
        pos, n = 0, len(view)
        while pos < n:
            self._fill(min(n - pos, CHUNK))
            if not self._out:
                raise EOFError(f"file ended {n - pos} bytes before the end of the data")
            take = min(len(self._out), n - pos)
            with memoryview(self._out) as buffered:
                view[pos : pos + take] = buffered[:take]
            del self._out[:take]
            pos += take

    def skip(self, n: int) -> None:
        while n > 0:
            self._fill(min(n, CHUNK))
            if not self._out:
                raise EOFError(f"file ended {n} bytes before the end of the data")
            take = min(len(self._out), n)
            del self._out[:take]
            n -= take

    def drain(self) -> None:
        """Read to the end, so a damaged tail (bad CRC) is found."""
        while not self._eof:
            self._out.clear()
            self._fill(CHUNK)
        self._out.clear()


class Hdu:
    """One HDU of a FitsStream: its header, and its data readable once, in order."""

    def __init__(self, stream: _ByteStream, header: fits.Header, index: int):
        self.header = header
        self.index = index
        self.name = str(header.get("EXTNAME", "PRIMARY" if index == 0 else "")).strip().upper()
        naxis = int(header.get("NAXIS", 0))
        self.shape = tuple(int(header[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
        bitpix = int(header["BITPIX"])
        self.is_image = index == 0 or str(header.get("XTENSION", "")).strip() == "IMAGE"
        self.dtype = np.dtype(BITPIX_DTYPES.get(bitpix, ">u1"))
        elems = int(np.prod(self.shape, dtype=np.int64)) if naxis else 0
        pcount, gcount = int(header.get("PCOUNT", 0)), int(header.get("GCOUNT", 1))
        self.nbytes = abs(bitpix) // 8 * gcount * (pcount + elems) if naxis else 0
        self._stream = stream
        self._consumed = 0

    def _check_image(self) -> None:
        if not self.is_image or int(self.header["BITPIX"]) not in BITPIX_DTYPES:
            raise FitsStreamError(f"HDU {self.name or self.index} is not an image")
        if self._consumed:
            raise FitsStreamError(f"HDU {self.name or self.index}: data already read")
        if "BSCALE" in self.header or "BZERO" in self.header:
            if float(self.header.get("BSCALE", 1)) != 1 or float(self.header.get("BZERO", 0)) != 0:
                raise FitsStreamError(f"HDU {self.name}: scaled data (BSCALE/BZERO) is not supported")

    def read(self) -> np.ndarray:
        """The whole data array, FITS axis order (NAXISn ... NAXIS1), big-endian."""
        self._check_image()
        arr = np.empty(self.shape, self.dtype)
        self._stream.readinto(memoryview(arr.reshape(-1).view(np.uint8)))
        self._consumed = arr.nbytes
        return arr

    def iter_planes(self, planes: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first plane, block of up to ``planes`` planes) along the slowest axis, in order;
        the block's buffer is reused, so copy what you keep."""
        self._check_image()
        if len(self.shape) < 2:
            raise FitsStreamError(f"HDU {self.name}: not a cube")
        n = self.shape[0]
        buf = np.empty((min(planes, n), *self.shape[1:]), self.dtype)
        for start in range(0, n, planes):
            block = buf[: min(planes, n - start)]
            self._stream.readinto(memoryview(block.reshape(-1).view(np.uint8)))
            self._consumed += block.nbytes
            yield start, block

    def finish(self) -> None:
        """Skip the unread data and the padding up to the next 2880-byte block."""
        total = -(-self.nbytes // BLOCK) * BLOCK
        self._stream.skip(total - self._consumed)
        self._consumed = total


def iter_hdus(path: Path | str) -> Iterator[Hdu]:
    """Yield each HDU of a (gzipped) FITS file in order; its data must be read (or not) before
    asking for the next one. Raises EOFError/zlib.error/FitsStreamError on damaged files."""
    stream = _ByteStream(path)
    try:
        index = 0
        while True:
            first = stream.read(BLOCK)
            if not first.strip(b"\x00 "):
                break  # end of file (or trailing zero padding)
            if len(first) < BLOCK:
                raise EOFError(f"file ended inside the header of HDU {index}")
            expected = b"SIMPLE  =" if index == 0 else b"XTENSION="
            if not first.startswith(expected):
                raise FitsStreamError(f"HDU {index} does not start with {expected.decode()!r}"
                                      + (" (not a FITS file)" if index == 0 else ""))
            raw = bytearray(first)
            while not _has_end(raw):
                more = stream.read(BLOCK)
                if len(more) < BLOCK:
                    raise EOFError(f"file ended inside the header of HDU {index}")
                raw += more
            try:
                header = fits.Header.fromstring(raw.decode("ascii"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise FitsStreamError(f"HDU {index} has an unreadable header: {exc}") from exc
            hdu = Hdu(stream, header, index)
            yield hdu
            hdu.finish()
            index += 1
        stream.drain()
    finally:
        stream.close()


def _has_end(raw: bytearray) -> bool:
    for i in range(len(raw) - BLOCK, len(raw), 80):
        if raw[i : i + 8] == b"END     ":
            return True
    return False
