"""Read DESI coadd files as DESI publishes them (catalogs: :mod:`mmu_desi.catalogs`).

Columns are found by name (extra or reordered columns are fine), arrays may be big-endian,
masks may carry BZERO scaling (uint32) or be tile-compressed, and only the rows asked for are
read from the camera HDUs. Every problem becomes :class:`mmu_core.errors.InputError` naming
the file and what is wrong: unreadable or truncated FITS, a missing HDU or column, camera
arrays whose lengths disagree, wavelengths off the 0.8 Å grid.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from mmu_core.errors import InputError
from mmu_core.fits import READ_ERRORS, fits_errors, get_hdu, open_fits
from mmu_desi import columns as cols
from mmu_desi import datamodel as dm
from mmu_desi.merge import CameraChunk

WHAT = "DESI coadd"
CAMERA_PARTS = ("WAVELENGTH", "FLUX", "IVAR", "MASK", "RESOLUTION")
FITS_BLOCK = 2880  # bytes; every FITS header and data unit is padded to a multiple


def check_complete(path: Path, hdul: fits.HDUList, names: Iterable[str | int]) -> None:
    """Raise if the data of any named (or numbered) HDU would run past the end of the file."""
    size = os.path.getsize(path)
    for name in names:
        hdu = hdul[name]
        info = hdu.fileinfo()
        if isinstance(hdu, fits.CompImageHDU):
            # ``size`` is the uncompressed size; on disk it is the padded compressed table
            end = info["datLoc"] + info["datSpan"] - (FITS_BLOCK - 1 if info["datSpan"] else 0)
        else:
            end = info["datLoc"] + hdu.size
        if end > size:
            raise InputError(
                f"truncated FITS file: HDU {hdu.name or name} needs bytes up to {end} but the "
                f"file has {size}", file=str(path))


def _shape(hdu: fits.hdu.base._BaseHDU) -> tuple[int, ...]:
    """Data shape from the header alone (numpy order), without reading the data."""
    return tuple(int(s) for s in hdu.shape) if hasattr(hdu, "shape") else ()


def table_columns(hdu: fits.BinTableHDU) -> list[str]:
    """Column names of a table HDU, upper case."""
    return [c.upper() for c in hdu.columns.names]


@dataclass
class Camera:
    """Where one camera's pixels go on the merged grid, and its array shapes."""

    name: str
    offset: int
    length: int
    ndiag: int


@dataclass
class CoaddFile:
    """An open, validated coadd file. Use :func:`open_coadd`."""

    path: Path
    hdul: fits.HDUList
    header: fits.Header
    fibermap: fits.FITS_rec
    fibermap_columns: list[str]
    scores: fits.FITS_rec | None
    scores_columns: list[str]
    cameras: list[Camera] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.fibermap)

    def missing(self, columns: Iterable[cols.Column]) -> list[str]:
        """Names of ``columns`` neither FIBERMAP nor SCORES has (``column`` fills them)."""
        have = set(self.fibermap_columns) | set(self.scores_columns)
        return [c.name for c in columns if c.name not in have]

    def column(self, column: cols.Column, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """A FIBERMAP or SCORES column cast to its stored dtype; fill values if absent."""
        for table, names in ((self.fibermap, self.fibermap_columns),
                             (self.scores, self.scores_columns)):
            if table is not None and column.name in names:
                return cols.coerce(table[column.name][rows], column)
        n = len(np.arange(self.n_rows)[rows])
        return column.empty(n)

    def read_cameras(self, rows: np.ndarray) -> list[CameraChunk]:
        """The camera arrays of ``rows`` (sorted indices), native byte order."""
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        pick = rows - lo
        chunks = []
        for cam in self.cameras:
            def read(part: str, cam: Camera = cam) -> np.ndarray:
                name = f"{cam.name}_{part}"
                with fits_errors(self.path, WHAT, hdu=name):
                    return self.hdul[name].section[lo:hi][pick]

            chunks.append(CameraChunk(
                offset=cam.offset,
                flux=read("FLUX").astype(np.float32),
                ivar=read("IVAR").astype(np.float32),
                mask=read("MASK") != 0,
                resolution=read("RESOLUTION").astype(np.float32),
            ))
        return chunks


@contextmanager
def open_coadd(path: str | Path) -> Iterator[CoaddFile]:
    """Open and validate a coadd file; the camera arrays are read later, by row block."""
    path = Path(path)
    hdul = open_fits(path, WHAT, lazy=False)
    try:
        yield _validate(path, hdul)
    finally:
        hdul.close()


def _validate(path: Path, hdul: fits.HDUList) -> CoaddFile:
    # truncation first: a file cut short also lacks its last HDUs
    check_complete(path, hdul, range(len(hdul)))
    fm_hdu = get_hdu(hdul, "FIBERMAP", path, WHAT)
    needed = ["FIBERMAP"] + [f"{c}_{p}" for c in dm.CAMERAS for p in CAMERA_PARTS]
    for name in needed:
        get_hdu(hdul, name, path, WHAT)
    has_scores = "SCORES" in hdul
    with fits_errors(path, WHAT, hdu="FIBERMAP"):
        fibermap = fm_hdu.data
        names = table_columns(fm_hdu)
    with fits_errors(path, WHAT, hdu="SCORES"):
        scores = hdul["SCORES"].data if has_scores else None
        score_names = table_columns(hdul["SCORES"]) if has_scores else []
    if fibermap is None:
        fibermap = fits.FITS_rec.from_columns(fm_hdu.columns, nrows=0)
    for required in ("TARGETID", "TARGET_RA", "TARGET_DEC"):
        if required not in names:
            raise InputError(f"FIBERMAP has no {required} column", file=str(path))
    n = len(fibermap)
    if scores is not None and len(scores) != n:
        raise InputError(f"SCORES has {len(scores)} rows but FIBERMAP has {n}", file=str(path))
    cameras = [_check_camera(path, hdul, c, n) for c in dm.CAMERAS]
    return CoaddFile(path=path, hdul=hdul, header=hdul[0].header, fibermap=fibermap,
                     fibermap_columns=names, scores=scores, scores_columns=score_names,
                     cameras=cameras)


def _check_camera(path: Path, hdul: fits.HDUList, cam: str, n: int) -> Camera:
    """Shapes of one camera's HDUs agree with each other and FIBERMAP; grid is the DESI one."""
    shapes = {p: _shape(hdul[f"{cam}_{p}"]) for p in CAMERA_PARTS}
    wave_shape = shapes["WAVELENGTH"]
    if len(wave_shape) != 1:
        raise InputError(f"{cam}_WAVELENGTH must be 1-D, has shape {wave_shape}", file=str(path))
    length = wave_shape[0]
    for part in ("FLUX", "IVAR", "MASK"):
        if shapes[part] != (n, length):
            raise InputError(
                f"camera {cam}: {cam}_{part} has shape {shapes[part]} but {cam}_WAVELENGTH has "
                f"{length} pixels and FIBERMAP {n} rows (expected {(n, length)})", file=str(path))
    res = shapes["RESOLUTION"]
    if len(res) != 3 or res[0] != n or res[2] != length or res[1] % 2 != 1:
        raise InputError(
            f"camera {cam}: {cam}_RESOLUTION has shape {res}, expected ({n}, ndiag odd, {length})",
            file=str(path))
    with fits_errors(path, WHAT, hdu=f"{cam}_WAVELENGTH"):
        wave = np.asarray(hdul[f"{cam}_WAVELENGTH"].data, dtype=np.float64)
    idx = np.rint((wave - dm.GRID_START) / dm.STEP)
    grid = dm.GRID_START + dm.STEP * idx
    on_grid = (
        length > 0 and np.all(np.isfinite(wave)) and np.all(np.abs(wave - grid) <= dm.GRID_TOLERANCE)
        and np.all(np.diff(idx) == 1) and idx[0] >= 0 and idx[-1] < dm.GRID_LENGTH
    )
    if not on_grid:
        lo, hi = (float(np.nanmin(wave)), float(np.nanmax(wave))) if length else (np.nan, np.nan)
        raise InputError(
            f"{cam}_WAVELENGTH ({lo:.2f}-{hi:.2f} Å, {length} px) is not on DESI's 0.8 Å grid "
            f"within 3600-9824 Å", file=str(path))
    return Camera(cam, int(idx[0]), length, res[1])


# ---- light scan for discover -------------------------------------------------------------
@dataclass
class CoaddSummary:
    """What discover needs from a coadd without reading its spectra."""

    keywords: dict[str, str]  # SURVEY/PROGRAM/FAPRGRM found in the primary or FIBERMAP header
    tileid: int | None  # primary header TILEID, else the single FIBERMAP TILEID
    targeting: dict[str, bool]  # targeting column present -> holds a nonzero bit
    targetid: np.ndarray
    fiberstatus: np.ndarray
    objtype: np.ndarray | None
    exptime: np.ndarray
    ra: np.ndarray
    dec: np.ndarray


def _keywords(headers: list[fits.Header]) -> dict[str, str]:
    """The survey and program keywords of the first header that has each (trimmed, lower)."""
    out: dict[str, str] = {}
    for key in (*dm.SURVEY_KEYS, *dm.PROGRAM_KEYS):
        for header in headers:
            value = header.get(key)
            if isinstance(value, str) and value.strip():
                out.setdefault(key, value.strip().lower())
    return out


def _tileid(header: fits.Header, data: fits.FITS_rec | None, names: list[str]) -> int | None:
    value = header.get(dm.TILEID_KEY)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if data is not None and len(data) and dm.TILEID_KEY in names:
        tiles = np.unique(np.asarray(data[dm.TILEID_KEY]))
        if len(tiles) == 1:
            return int(tiles[0])
    return None


def scan_coadd(path: str | Path) -> CoaddSummary | None:
    """Headers and a few FIBERMAP columns; None if the file cannot be read (convert reports
    the problem then, so ``--skip-bad`` can skip just this file)."""
    path = Path(path)
    try:
        hdul = open_fits(path, WHAT, lazy=True)
    except InputError:
        return None
    try:
        with hdul, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convert reports what is wrong with the file
            header = hdul[0].header
            fm = hdul["FIBERMAP"]
            names = table_columns(fm)
            data = fm.data
            n = 0 if data is None else len(data)

            def get(name: str, dtype: str, fill: object) -> np.ndarray:
                return data[name].astype(dtype) if name in names and n else np.full(n, fill, dtype)

            return CoaddSummary(
                keywords=_keywords([header, fm.header]),
                tileid=_tileid(header, data, names),
                targeting={c: bool(n and np.any(np.asarray(data[c]) != 0))
                           for c in dm.TARGET_COLUMNS if c in names},
                targetid=get("TARGETID", "i8", -1),
                fiberstatus=fiberstatus(data, names) if n else np.zeros(0, "i4"),
                objtype=cols.coerce(data["OBJTYPE"], cols.Column("OBJTYPE", "S3", ""))
                if "OBJTYPE" in names and n else None,
                exptime=get("COADD_EXPTIME", "f8", 0.0),
                ra=get("TARGET_RA", "f8", np.nan),
                dec=get("TARGET_DEC", "f8", np.nan),
            )
    except READ_ERRORS:
        return None


def fiberstatus(fibermap: fits.FITS_rec, names: list[str]) -> np.ndarray:
    """COADD_FIBERSTATUS (coadds) or FIBERSTATUS (older spectra files); 0 if neither."""
    for name in ("COADD_FIBERSTATUS", "FIBERSTATUS"):
        if name in names:
            return np.asarray(fibermap[name]).astype("i8")
    return np.zeros(len(fibermap), "i8")
