"""Read one gz3d galaxy file and the gz3d_metadata.fits catalogue.

Every problem with a file becomes :class:`mmu_core.errors.InputError` naming the file (and the
MANGAID when known): a missing HDU, masks whose shape differs from the image's, non-integer
vote counts, a truncated or corrupt gzip stream.
"""

from __future__ import annotations

import gzip
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from mmu_core.errors import InputError
from mmu_core.fits import fits_errors, open_fits, read_fits
from mmu_gz3d import datamodel as dm

GALAXY = "gz3d galaxy file"
CATALOG = "gz3d metadata catalogue"


@dataclass
class Gz3dGalaxy:
    """Everything the converter needs from one gz3d file, in memory."""

    path: Path
    image: np.ndarray  # (525, 525, 3) uint8, numpy order as stored
    masks: np.ndarray  # (4, 525, 525) int32 vote counts, order dm.CLASSES
    metadata: dict[str, Any]  # HDU 5 row, native names and dtypes
    centers: dict[str, np.ndarray]  # HDU 6 columns
    stars: dict[str, np.ndarray]  # HDU 7 columns
    n_classifications: dict[str, int]  # rows of HDUs 8, 9, 10
    wcs: WCS  # celestial TAN WCS of the masks (HDU 1 header)
    header: fits.Header = field(repr=False, default_factory=fits.Header)

    @property
    def mangaid(self) -> str:
        return self.metadata["MANGAID"]


def read_galaxy(path: str | Path) -> Gz3dGalaxy:
    """Read a ``gz3d_<MANGAID>_<IFU>_<subject>.fits(.gz)`` file; HDUs are taken by index."""
    path = Path(path)
    name = dm.parse_file_name(path.name)
    who = name.mangaid if name else None
    with fits_errors(path, GALAXY, object=who):
        raw = path.read_bytes()
        # Decompress once: astropy seeks back and forth, and every backward seek in a gzip
        # stream restarts decompression (~10x slower on these 11-HDU files).
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            with open_fits(path, GALAXY, object=who, lazy=False,
                           fileobj=io.BytesIO(raw)) as hdul:
                return _read_hdus(path, hdul, who)


def _read_hdus(path: Path, hdul: fits.HDUList, who: str | None) -> Gz3dGalaxy:
    def fail(message: str) -> InputError:
        return InputError(message, file=str(path), object=who)

    if len(hdul) < dm.N_HDUS:
        missing = ", ".join(f"{i} ({dm.HDU_CONTENT[i]})"
                            for i in range(len(hdul), dm.N_HDUS))
        raise fail(f"has {len(hdul)} HDUs, expected {dm.N_HDUS}; missing HDU {missing}")

    image = hdul[dm.HDU_IMAGE].data
    if image is None or image.shape != dm.IMAGE_SHAPE:
        shape = None if image is None else image.shape
        raise fail(f"HDU 0 (colour image) has shape {shape}, expected {dm.IMAGE_SHAPE}")
    if image.dtype != np.uint8:
        raise fail(f"HDU 0 (colour image) has dtype {image.dtype}, expected uint8")

    masks = np.empty((len(dm.CLASSES), *image.shape[:2]), dtype=np.int32)
    for k, cls in enumerate(dm.CLASSES):
        masks[k] = _mask_counts(hdul, dm.HDU_MASKS[cls], image.shape[:2], fail)

    meta_hdu = hdul[dm.HDU_METADATA]
    if not isinstance(meta_hdu, fits.BinTableHDU) or meta_hdu.data is None or len(meta_hdu.data) < 1:
        raise fail("HDU 5 (metadata table) is not a table with one row")
    missing = [c for c in dm.METADATA_DTYPE.names if c not in meta_hdu.columns.names]
    if missing:
        raise fail(f"HDU 5 (metadata table) lacks column(s) {missing}")
    metadata = _row_dict(meta_hdu.data[0], dm.METADATA_DTYPE.names)
    if name_mangaid := dm.parse_file_name(path.name):
        if metadata["MANGAID"] != name_mangaid.mangaid:
            raise fail(f"HDU 5 MANGAID {metadata['MANGAID']!r} differs from the file name's "
                       f"{name_mangaid.mangaid!r}")

    centers = _cluster_table(hdul, dm.HDU_CENTER_CLUSTERS, fail)
    stars = _cluster_table(hdul, dm.HDU_STAR_CLUSTERS, fail)
    n_classifications = {}
    for index, columns in dm.CLASSIFICATION_JSON.items():
        table = hdul[index]
        if not isinstance(table, fits.BinTableHDU):
            raise fail(f"HDU {index} ({dm.HDU_CONTENT[index]}) is not a table")
        absent = [c for c in ("classification_id", *columns) if c not in table.columns.names]
        if absent:
            raise fail(f"HDU {index} ({dm.HDU_CONTENT[index]}) lacks column(s) {absent}")
        n_classifications[columns[0].split("_")[0]] = 0 if table.data is None else len(table.data)

    # HDU 0 carries the same 2-axis header, but its data are 3-D with colour on FITS axis 1,
    # so its axes are not the WCS's: the masks' HDU 1 gives the WCS (PC or CD form alike).
    header = hdul[dm.HDU_MASKS["center"]].header.copy()
    wcs = WCS(header, naxis=2)
    if not wcs.has_celestial or wcs.wcs.ctype[0][:4] != "RA--":
        raise fail("HDU 1 header has no RA/Dec WCS (CTYPE1/2, CRVAL, CRPIX, PC and CDELT or CD)")
    return Gz3dGalaxy(path, np.ascontiguousarray(image), masks, metadata, centers, stars,
                      n_classifications, wcs.celestial, header)


def _mask_counts(hdul: fits.HDUList, index: int, shape: tuple[int, int], fail) -> np.ndarray:
    """A float64 count mask as exact integers; anything else is bad input."""
    data = hdul[index].data
    what = f"HDU {index} ({dm.HDU_CONTENT[index]})"
    if data is None or data.shape != shape:
        got = None if data is None else data.shape
        raise fail(f"{what} has shape {got}, differs from the image's {shape}")
    values = np.asarray(data, dtype=np.float64)
    if not np.isfinite(values).all():
        raise fail(f"{what} holds NaN or infinite values; vote counts expected")
    if values.min() < 0 or values.max() > np.iinfo(np.int32).max or (values % 1).any():
        raise fail(f"{what} holds values that are not non-negative whole vote counts "
                   f"(min {values.min()}, max {values.max()})")
    return values.astype(np.int32)


def _cluster_table(hdul: fits.HDUList, index: int, fail) -> dict[str, np.ndarray]:
    table = hdul[index]
    what = f"HDU {index} ({dm.HDU_CONTENT[index]})"
    if not isinstance(table, fits.BinTableHDU):
        raise fail(f"{what} is not a table")
    n = 0 if table.data is None else len(table.data)
    if n and not set(dm.CLUSTER_COLUMNS) <= set(table.columns.names):
        absent = sorted(set(dm.CLUSTER_COLUMNS) - set(table.columns.names))
        raise fail(f"{what} lacks column(s) {absent}")
    return {c: (np.asarray(table.data[c]) if n else np.zeros(0)) for c in dm.CLUSTER_COLUMNS}


def _row_dict(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """One FITS table row as python/numpy scalars; strings decoded and stripped."""
    out: dict[str, Any] = {}
    for name in names:
        value = row[name]
        if isinstance(value, (bytes, np.bytes_)):
            value = value.decode("ascii", "replace")
        out[name] = value.strip() if isinstance(value, str) else value
    return out


# ---- gz3d_metadata.fits ---------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogRow:
    """One row of gz3d_metadata.fits: the listed file and the catalogue-only columns."""

    name: dm.GalaxyFileName
    file_name: str
    observed: bool
    number_galaxy_centers: int
    number_foreground_stars: int


def read_metadata_catalog(path: str | Path) -> dict[int, CatalogRow]:
    """gz3d_metadata.fits (HDU 1) keyed by zooniverse subject id."""
    path = Path(path)
    with read_fits(path, CATALOG) as hdul:
        if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            raise InputError("HDU 1 is not the metadata table", file=str(path))
        data = hdul[1].data
        names = hdul[1].columns.names
        missing = [c for c in ("file_name", "observed", "number_galaxy_centers",
                               "number_foreground_stars") if c not in names]
        if missing:
            raise InputError(f"metadata table lacks column(s) {missing}", file=str(path))
        rows: dict[int, CatalogRow] = {}
        for i, r in enumerate(data if data is not None else []):
            raw = r["file_name"]
            raw = raw.decode() if isinstance(raw, bytes) else str(raw)
            parsed = dm.parse_metadata_file_name(raw)
            if parsed is None:
                raise InputError(f"row {i}: file_name {raw!r} is not a gz3d file name",
                                 file=str(path))
            rows[parsed.subject_id] = CatalogRow(
                parsed, raw.strip(), bool(r["observed"]),
                int(r["number_galaxy_centers"]), int(r["number_foreground_stars"]))
        return rows
