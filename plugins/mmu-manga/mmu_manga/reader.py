"""Reading MaNGA files: drpall/dapall catalogs, DRP LOGCUBEs and DAP MAPS, into a padded grid.

Every failure to read a file (corrupt gzip, truncated FITS, missing extension, arrays whose
shapes disagree) is raised as :class:`~mmu_core.errors.InputError` naming the file.

Memory and speed: a LOGCUBE is read in one forward pass over its gzip stream
(:mod:`mmu_manga.fitsstream`); each cube extension is streamed a block of wavelength planes at
a time straight into the padded (y, x, wavelength) array, so the peak is the padded output
(4 x 168 MB for 4,563 wavelengths) plus a 4 MB block, whatever the cube size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from mmu_core.errors import InputError
from mmu_core.fits import fits_errors, get_hdu, read_fits
from mmu_manga import datamodel as dm
from mmu_manga.fitsstream import FitsStreamError, Hdu, iter_hdus


# ---- catalogs -----------------------------------------------------------------------------
@dataclass
class Catalog:
    """A FITS table as column -> array (native names, FITS widths kept), indexed by a key."""

    path: str
    columns: dict[str, np.ndarray]
    index: dict[str, int] = field(default_factory=dict)

    def row(self, key: str) -> int | None:
        return self.index.get(key)

    def value(self, column: str, i: int, default: Any = None) -> Any:
        """Row ``i`` of ``column`` as a python value (strings decoded and stripped); ``default``
        when the catalog has no such column."""
        col = self.columns.get(column)
        if col is None:
            return default
        v = col[i]
        return v.decode("utf-8", "replace").strip() if isinstance(v, bytes) else v.item()

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def _column_array(data: fits.FITS_rec, name: str) -> np.ndarray:
    arr = np.asarray(data[name])
    if arr.dtype.kind in "SU":
        # FITS pads strings with blanks; keep the declared width so every unit agrees.
        width = arr.dtype.itemsize // (4 if arr.dtype.kind == "U" else 1)
        arr = np.char.rstrip(np.char.encode(arr, "utf-8") if arr.dtype.kind == "U" else arr)
        arr = arr.astype(f"S{max(width, 1)}")
    elif arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def read_catalog(path: Path | str, hdu: str, key: str) -> Catalog:
    """Read table extension ``hdu`` of ``path``, indexed by column ``key`` (case-insensitive)."""
    with read_fits(path, "catalog") as hdul:
        data = get_hdu(hdul, hdu, path, "catalog").data
        if data is None or not isinstance(data, fits.FITS_rec):
            raise InputError(f"extension {hdu!r} is not a table", file=str(path))
        columns = {name: _column_array(data, name) for name in data.columns.names}
    by_lower = {k.lower(): k for k in columns}
    if key.lower() not in by_lower:
        raise InputError(f"extension {hdu!r} has no {key!r} column", file=str(path))
    keys = columns[by_lower[key.lower()]]
    index = {}
    for i, value in enumerate(keys):
        index.setdefault(value.decode("utf-8", "replace").strip(), i)
    return Catalog(str(path), columns, index)


@lru_cache(maxsize=4)
def _cached_catalog(path: str, hdu: str, key: str, stamp: tuple[int, int]) -> Catalog:
    return read_catalog(path, hdu, key)


def load_catalog(path: Path | str, hdu: str, key: str) -> Catalog:
    """read_catalog, cached per process (each worker reads drpall once, not once per cube)."""
    st = os.stat(path)
    return _cached_catalog(str(path), hdu, key, (st.st_size, st.st_mtime_ns))


# ---- the LOGCUBE ----------------------------------------------------------------------------
@dataclass
class Cube:
    """One LOGCUBE padded to GRID x GRID spaxels; cube arrays are (y, x, wavelength)."""

    header: fits.Header
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    lsf_sigma: np.ndarray
    wave: np.ndarray
    spaxel_size: float
    offset: tuple[int, int]  # (y0, x0) of the original cube in the padded grid
    size: tuple[int, int]  # (ny, nx) of the original cube
    images: dict[str, np.ndarray]  # HDU name -> padded (GRID, GRID) float32 (0 if absent)
    image_units: dict[str, str]  # HDU name -> BUNIT, for the image extensions present
    no_coverage: np.ndarray  # (ny, nx) bool: every pixel of the spaxel flagged NOCOV


CUBE_ARRAYS = ("FLUX", "IVAR", "MASK", "LSFPOST")
CUBE_IMAGES = tuple(c.hdu for c in dm.DRP_CHANNELS)


def placement(ny: int, nx: int, grid: int = dm.GRID) -> tuple[int, int]:
    """(y0, x0) that centres an ny x nx cube in the grid (MMU v1: equal padding each side)."""
    return (grid - ny) // 2, (grid - nx) // 2


def _spaxel_size(header: fits.Header) -> float:
    for key in ("CD2_2", "CDELT2"):
        if key in header and header[key]:
            return abs(float(header[key])) * 3600.0
    return dm.SPAXEL_SIZE


PLANE_BLOCK_BYTES = 4 << 20  # read a cube this many bytes of wavelength planes at a time


def read_cube(path: Path | str, grid: int = dm.GRID, object: str | None = None) -> Cube:
    """Read a DRP LOGCUBE and pad it into a ``grid`` x ``grid`` spaxel grid (padding masked
    with DONOTUSE, flux/ivar/lsf 0). One pass over the file; each cube extension is streamed
    into the padded (y, x, wavelength) array a block of planes at a time."""
    path = str(path)
    out: dict[str, np.ndarray] = {}
    images: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    names: list[str] = []
    header = flux_header = no_coverage = wave = None
    shape = None
    y0 = x0 = 0
    with fits_errors(path, "LOGCUBE", object=object, errors=(FitsStreamError,)):
        for hdu in iter_hdus(path):
            names.append(hdu.name)
            if hdu.index == 0:
                header = hdu.header
            elif hdu.name in CUBE_ARRAYS:
                if len(hdu.shape) != 3:
                    raise InputError(f"extension {hdu.name} is not a 3-D cube (shape {hdu.shape})",
                                     file=path, object=object)
                if shape is None:
                    shape = hdu.shape
                    _, ny, nx = shape
                    if ny > grid or nx > grid:
                        raise InputError(f"cube is {ny}x{nx} spaxels, larger than the {grid}x{grid} "
                                         "grid", file=path, object=object)
                    y0, x0 = placement(ny, nx, grid)
                elif hdu.shape != shape:
                    raise InputError(f"extension {hdu.name} has shape {hdu.shape}, "
                                     f"{next(iter(out))} has {shape}", file=path, object=object)
                if hdu.name == "FLUX":
                    flux_header = hdu.header
                out[hdu.name], cover = _stream_cube(hdu, grid, y0, x0)
                if hdu.name == "MASK":
                    no_coverage = cover
            elif hdu.name == "WAVE":
                wave = hdu.read().astype(np.float64)
            elif hdu.name in CUBE_IMAGES:
                images[hdu.name] = hdu.read().astype(np.float32)
                units[hdu.name] = str(hdu.header.get("BUNIT", "")).strip()
    missing = [n for n in (*CUBE_ARRAYS, "WAVE") if n not in names]
    if missing:
        raise InputError(f"LOGCUBE lacks extension(s) {missing} (it has {names})", file=path,
                         object=object)
    if wave.ndim != 1 or len(wave) != shape[0]:
        raise InputError(f"WAVE has {wave.size} wavelengths but FLUX has {shape[0]}", file=path,
                         object=object)
    if not np.all(np.diff(wave) > 0):
        raise InputError("WAVE is not strictly increasing", file=path, object=object)
    ny, nx = shape[1:]
    padded_images = {}
    for name in CUBE_IMAGES:
        img = images.get(name)
        if img is not None and img.shape != (ny, nx):
            raise InputError(f"extension {name} is {img.shape}, the cube is {(ny, nx)}", file=path,
                             object=object)
        padded = np.zeros((grid, grid), np.float32)
        if img is not None:
            padded[y0 : y0 + ny, x0 : x0 + nx] = img
        padded_images[name] = padded
    return Cube(
        header=header,
        flux=out["FLUX"],
        ivar=out["IVAR"],
        mask=out["MASK"],
        lsf_sigma=out["LSFPOST"],
        wave=wave.astype(np.float32),
        spaxel_size=_spaxel_size(flux_header),
        offset=(y0, x0),
        size=(ny, nx),
        images=padded_images,
        image_units=units,
        no_coverage=no_coverage,
    )


def _stream_cube(hdu: Hdu, grid: int, y0: int, x0: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(L, ny, nx) FITS cube -> (grid, grid, L) native array, spaxel-major, read a block of
    wavelength planes at a time (no full FITS-order copy is ever held). For MASK also
    returns which spaxels are NOCOV at every wavelength."""
    nwave, ny, nx = hdu.shape
    is_mask = hdu.name == "MASK"
    if is_mask:
        padded = np.full((grid, grid, nwave), dm.DRP_DONOTUSE, dtype=np.int32)
        no_cov = np.ones((ny, nx), bool)
    else:
        padded = np.zeros((grid, grid, nwave), dtype=np.float32)
        no_cov = None
    inner = padded[y0 : y0 + ny, x0 : x0 + nx]
    planes = max(1, PLANE_BLOCK_BYTES // max(1, ny * nx * hdu.dtype.itemsize))
    for start, block in hdu.iter_planes(planes):
        # The assignment transposes and byte-swaps in one copy.
        inner[:, :, start : start + len(block)] = block.transpose(1, 2, 0)
        if is_mask:
            no_cov &= np.all(block & dm.DRP_NOCOV, axis=0)
    return padded, no_cov


# ---- the MAPS file ----------------------------------------------------------------------------
@dataclass
class Maps:
    """The DAP channels of CHANNELS (source "dap"), padded: data/ivar (K, G, G) float32,
    mask (K, G, G) int32, units per channel, and problems found (missing channels)."""

    header: fits.Header
    data: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    units: list[str]
    problems: list[str]


def _channel_index(header: fits.Header, channel: str) -> int | None:
    """0-based index of the channel named ``channel`` (header keys C01, C02 ... or C1 ...)."""
    for key, value in header.items():
        if len(key) >= 2 and key[0] == "C" and key[1:].isdigit() and str(value).strip() == channel:
            return int(key[1:]) - 1
    return None


def read_maps(
    path: Path | str,
    channels: tuple[dm.Channel, ...],
    size: tuple[int, int],
    grid: int = dm.GRID,
    object: str | None = None,
) -> Maps:
    """Read the listed DAP channels from a MAPS file, padded like the cube (padding and
    missing channels: data 0, ivar 0, mask DONOTUSE). Channels are found by name (C01 ...),
    their ivar and mask through the ERRDATA/QUALDATA header keys."""
    path = str(path)
    ny, nx = size
    y0, x0 = placement(ny, nx, grid)
    k = len(channels)
    data = np.zeros((k, grid, grid), np.float32)
    ivar = np.zeros((k, grid, grid), np.float32)
    mask = np.full((k, grid, grid), dm.DAP_DONOTUSE, np.int32)
    units = [c.units for c in channels]
    problems: list[str] = []
    # One pass, keeping only the wanted extensions and their companions (X_IVAR, X_MASK by
    # the DAP's naming; ERRDATA/QUALDATA say which) - a MAPS file has ~60 extensions.
    wanted = tuple(c.hdu for c in channels)
    kept: dict[str, tuple[fits.Header, np.ndarray]] = {}
    header = None
    with fits_errors(path, "MAPS", object=object, errors=(FitsStreamError,)):
        for hdu in iter_hdus(path):
            if hdu.index == 0:
                header = hdu.header
            elif hdu.name.startswith(wanted) and hdu.is_image and hdu.shape:
                kept[hdu.name] = (hdu.header, hdu.read())
    for i, ch in enumerate(channels):
        if ch.hdu not in kept:
            problems.append(f"no {ch.hdu} extension")
            continue
        hdr, values = kept[ch.hdu]
        idx = None
        if ch.channel is not None:
            idx = _channel_index(hdr, ch.channel)
            if idx is None:
                problems.append(f"{ch.hdu} has no channel {ch.channel!r}")
                continue
        parts = {"data": values}
        for kind, key in (("ivar", "ERRDATA"), ("mask", "QUALDATA")):
            companion = str(hdr.get(key, "")).strip()
            parts[kind] = kept[companion][1] if companion in kept else None
            if companion and companion not in kept:
                problems.append(f"{ch.hdu}: {key} extension {companion!r} not found")
        for kind, arr in parts.items():
            if arr is None:
                continue
            if idx is not None:
                if arr.ndim != 3 or idx >= arr.shape[0]:
                    raise InputError(f"{ch.hdu} ({kind}) has no channel {idx + 1}", file=path,
                                     object=object)
                arr = arr[idx]
            if arr.shape != (ny, nx):
                raise InputError(f"{ch.hdu} maps are {arr.shape}, the cube is {(ny, nx)}",
                                 file=path, object=object)
            target = {"data": data, "ivar": ivar, "mask": mask}[kind]
            target[i, y0 : y0 + ny, x0 : x0 + nx] = arr
        if parts["mask"] is None:  # no quality extension: nothing flagged inside the cube
            mask[i, y0 : y0 + ny, x0 : x0 + nx] = 0
        unit_key = f"U{idx + 1:02d}" if idx is not None else None
        unit = hdr[unit_key] if unit_key and unit_key in hdr else hdr.get("BUNIT")
        if unit is not None:
            units[i] = str(unit).strip()
    return Maps(header, data, ivar, mask, units, problems)
