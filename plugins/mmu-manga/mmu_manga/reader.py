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
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales

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


def read_catalog(path: Path | str, hdu: str, key: str,
                 where: tuple[str, str] | None = None) -> Catalog:
    """Read table extension ``hdu`` of ``path``, indexed by column ``key`` (case-insensitive);
    with ``where = (column, value)`` only the rows whose trimmed ``column`` is ``value``."""
    with read_fits(path, "catalog") as hdul:
        data = get_hdu(hdul, hdu, path, "catalog").data
        if data is None or not isinstance(data, fits.FITS_rec):
            raise InputError(f"extension {hdu!r} is not a table", file=str(path))
        columns = {name: _column_array(data, name) for name in data.columns.names}
    if where is not None:
        column = {k.lower(): k for k in columns}.get(where[0].lower())
        if column is None:
            raise InputError(f"extension {hdu!r} has no {where[0]!r} column", file=str(path))
        keep = np.char.strip(columns[column]) == where[1].encode()
        columns = {name: col[keep] for name, col in columns.items()}
    by_lower = {k.lower(): k for k in columns}
    if key.lower() not in by_lower:
        raise InputError(f"extension {hdu!r} has no {key!r} column", file=str(path))
    keys = columns[by_lower[key.lower()]]
    index = {}
    for i, value in enumerate(keys):
        index.setdefault(value.decode("utf-8", "replace").strip(), i)
    return Catalog(str(path), columns, index)


@lru_cache(maxsize=4)
def _cached_catalog(path: str, hdu: str, key: str, where: tuple[str, str] | None,
                    stamp: tuple[int, int]) -> Catalog:
    return read_catalog(path, hdu, key, where)


def load_catalog(path: Path | str, hdu: str, key: str,
                 where: tuple[str, str] | None = None) -> Catalog:
    """read_catalog, cached per process (each worker reads drpall once, not once per cube)."""
    st = os.stat(path)
    return _cached_catalog(str(path), hdu, key, tuple(where) if where else None,
                           (st.st_size, st.st_mtime_ns))


def dapall_table(path: Path | str, daptype: str) -> tuple[str, tuple[str, str] | None]:
    """(extension, row filter) holding ``daptype``'s rows of a dapall file: DAP 3.x writes one
    extension per DAPTYPE, DAP 2.x one ``DAPALL`` extension with a DAPTYPE column."""
    with read_fits(path, "dapall") as hdul:
        names = [h.name for h in hdul[1:]]
        if daptype in names:
            return daptype, None
        held = names
        if dm.DAPALL_SINGLE_HDU in names:
            hdu = hdul[dm.DAPALL_SINGLE_HDU]
            column = {c.upper(): c for c in hdu.columns.names}.get("DAPTYPE")
            if column is not None:
                held = sorted({str(v).strip() for v in hdu.data[column]})
                if daptype in held:
                    return dm.DAPALL_SINGLE_HDU, ("DAPTYPE", daptype)
    raise InputError(f"dapall has no {daptype} table; it holds {', '.join(held) or 'none'}. "
                     "Choose one with --daptype or remove the dapall file", file=str(path))


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


def spaxel_size(header: fits.Header | None) -> float | None:
    """Spaxel size in arcsec from a header's celestial WCS, in any form astropy reads: CD
    (cubes) or PC with CDELT = 1 (MAPS, where CDELT alone would say 3600"); None if the header
    has no celestial WCS. A WCS astropy cannot read raises (call it inside ``fits_errors``)."""
    if header is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header).celestial
    if wcs.naxis != 2:
        return None
    return float(np.mean(proj_plane_pixel_scales(wcs))) * 3600.0


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
    with fits_errors(path, "LOGCUBE", hdu="FLUX", object=object):
        scale = spaxel_size(flux_header)
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
        spaxel_size=scale or dm.SPAXEL_SIZE,
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
CHANNEL_KEY = re.compile(r"^C(\d+)$")


def header_channels(header: fits.Header) -> list[tuple[str | None, str]]:
    """(name, unit) of each channel of a DAP map extension, in channel order.

    Channels are named by ``C<n>`` keys, ``n`` zero-padded to the digits of the channel count
    (``C1``, ``C2`` for two channels; ``C01`` .. ``C35`` for 35). A channel's unit is the
    ``U<n>`` key with the same digits where the extension has per-channel units (SPECINDEX
    does), else ``BUNIT``. A single-channel map is one channel named None.
    """
    bunit = str(header.get("BUNIT", "")).strip()
    if int(header.get("NAXIS", 0)) < 3:
        return [(None, bunit)]
    names = {int(m[1]): (str(v).strip(), m[1]) for k, v in header.items()
             if (m := CHANNEL_KEY.match(k))}
    out = []
    for n in range(1, int(header.get("NAXIS3", 0)) + 1):
        name, digits = names.get(n, (str(n), str(n)))
        out.append((name, str(header.get(f"U{digits}", bunit)).strip()))
    return out


def map_channels(path: Path | str, extensions: tuple[str, ...] = dm.MAP_EXTENSIONS
                 ) -> tuple[list[dm.Channel], list[str]]:
    """The stored channels of a MAPS file, from its headers alone (data is skipped; reading
    stops after the last extension wanted), and the wanted extensions it lacks."""
    found: dict[str, list[dm.Channel]] = {}
    with fits_errors(path, "MAPS", errors=(FitsStreamError,)):
        for hdu in iter_hdus(path):
            if hdu.name in extensions:
                found[hdu.name] = [dm.dap_channel(hdu.name, name, unit)
                                   for name, unit in header_channels(hdu.header)]
                if len(found) == len(extensions):
                    break
    channels = [c for ext in extensions for c in found.get(ext, [])]
    return channels, [ext for ext in extensions if ext not in found]


@dataclass
class Maps:
    """The asked-for DAP channels, padded: data/ivar (K, G, G) float32, mask (K, G, G) int32,
    units per channel, the spaxel size of the maps' WCS (None if they have none), and problems
    found (missing channels, channels of the file not asked for)."""

    header: fits.Header
    data: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    units: list[str]
    spaxel_size: float | None
    problems: list[str]


def read_maps(
    path: Path | str,
    channels: tuple[dm.Channel, ...],
    size: tuple[int, int],
    grid: int = dm.GRID,
    object: str | None = None,
) -> Maps:
    """Read the listed DAP channels from a MAPS file, padded like the cube (padding and
    missing channels: data 0, ivar 0, mask DONOTUSE). Channels are found by name in each
    extension's header (``header_channels``), their ivar and mask through the
    ERRDATA/QUALDATA header keys."""
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
    wanted = tuple({c.hdu for c in channels})
    kept: dict[str, tuple[fits.Header, np.ndarray]] = {}
    header = None
    with fits_errors(path, "MAPS", object=object, errors=(FitsStreamError,)):
        for hdu in iter_hdus(path):
            if hdu.index == 0:
                header = hdu.header
            elif wanted and hdu.name.startswith(wanted) and hdu.is_image and hdu.shape:
                kept[hdu.name] = (hdu.header, hdu.read())
    in_file = {ext: header_channels(kept[ext][0]) for ext in wanted if ext in kept}
    for ext, listed in in_file.items():
        asked = {c.channel for c in channels if c.hdu == ext}
        extra = [str(name) for name, _ in listed if name not in asked]
        if extra:
            problems.append(f"{ext} channel(s) {', '.join(extra)} are not stored (the build's "
                            "channel list comes from another MAPS file)")
    for i, ch in enumerate(channels):
        if ch.hdu not in kept:
            problems.append(f"no {ch.hdu} extension")
            continue
        hdr, values = kept[ch.hdu]
        names = [name for name, _ in in_file[ch.hdu]]
        if ch.channel not in names:
            problems.append(f"{ch.hdu} has no channel {ch.channel!r}")
            continue
        idx = names.index(ch.channel) if ch.channel is not None else None
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
        unit = in_file[ch.hdu][names.index(ch.channel)][1]
        if unit:
            units[i] = unit
    first = next(iter(kept.values()), None)
    with fits_errors(path, "MAPS", object=object):
        scale = spaxel_size(first[0]) if first else None
    return Maps(header, data, ivar, mask, units, scale, problems)
