"""Reading a brick's Tractor catalog, the dr10_south_21 selection, and the derived columns.

A Tractor catalog is HDU 1 of ``tractor-<brick>.fits``: one row per source fit in the brick,
lower-case columns (``ra``, ``dec``, ``brickname``, ``objid``, ``brick_primary``, ``type``,
``flux_g`` ...). Columns are held as native-byte-order numpy arrays of the stored dtypes of
:data:`mmu_legacysurvey.datamodel.TRACTOR_COLUMNS`; strings as bytes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmu_core.errors import InputError
from mmu_core.fits import fits_errors, get_hdu, open_fits
from mmu_legacysurvey import datamodel as dm

WHAT = "Tractor catalog"


@dataclass
class Catalog:
    """The stored columns of one brick's catalog; ``missing`` names the optional ones the
    file lacks (filled)."""

    path: Path
    columns: dict[str, np.ndarray]
    missing: list[str]
    maskbits: dict[str, int]  # bit of each maskbits name, from the header or DR10's


def maskbit_numbers(*headers) -> dict[str, int]:
    """The bit of each maskbits name: ``MBIT_<n> = NAME`` cards of the first header having
    any (legacypipe writes them), else the DR10 numbering."""
    for header in headers:
        found = {}
        for key, value in header.items():
            if key.startswith("MBIT_") and key[5:].isdigit() and isinstance(value, str):
                found[value.strip().upper()] = int(key[5:])
        if found:
            return {**dm.MASKBITS, **found}
    return dict(dm.MASKBITS)


def _as_stored(values: np.ndarray, col: dm.Column, path: Path) -> np.ndarray:
    """A catalog column in its stored dtype, native byte order, strings as bytes."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise InputError(f"column {col.name} has shape {values.shape[1:]} per row, expected "
                         "one value", file=str(path))
    kind = np.dtype(col.dtype).kind
    if kind == "S":
        if values.dtype.kind == "U":
            values = np.char.encode(values, "ascii")
        elif values.dtype.kind != "S":
            raise InputError(f"column {col.name} is {values.dtype}, expected text",
                             file=str(path))
        return np.char.rstrip(values).astype(col.dtype)
    if kind == "b":
        if values.dtype.kind not in "biu":
            raise InputError(f"column {col.name} is {values.dtype}, expected logical",
                             file=str(path))
        return values.astype(bool)
    if values.dtype.kind not in ("iu" if kind in "iu" else "fiu"):
        raise InputError(f"column {col.name} is {values.dtype}, expected {np.dtype(col.dtype)}",
                         file=str(path))
    return values.astype(col.dtype)


def read_catalog(path: Path) -> Catalog:
    """Read the stored columns of a Tractor catalog.

    :raises InputError: naming the file, when it cannot be read, lacks a required column, or
        a column has the wrong kind of values.
    """
    path = Path(path)
    with warnings.catch_warnings():
        # Tractor files carry units astropy does not know (nanomaggy, 1/deg^2): noise here.
        warnings.simplefilter("ignore")
        with open_fits(path, WHAT) as hdul:
            hdu = get_hdu(hdul, 1, path, WHAT)
            with fits_errors(path, WHAT, hdu=1, errors=(Exception,)):
                names = {n.lower(): n for n in (hdu.columns.names if hasattr(hdu, "columns")
                                                else [])}
                if not names:
                    raise InputError("HDU 1 is not a table", file=str(path))
                missing_required = [c.name for c in dm.TRACTOR_COLUMNS
                                    if c.required and c.name not in names]
                if missing_required:
                    raise InputError(f"{WHAT} lacks required column(s) {missing_required}",
                                     file=str(path))
                data = hdu.data
                n = len(data)
                columns, missing = {}, []
                for col in dm.TRACTOR_COLUMNS:
                    if col.name in names:
                        columns[col.name] = _as_stored(data[names[col.name]], col, path)
                    else:
                        columns[col.name] = col.empty(n)
                        missing.append(col.name)
                bits = maskbit_numbers(hdu.header, hdul[0].header)
    return Catalog(path=path, columns=columns, missing=missing, maskbits=bits)


def bits_value(names, numbers: dict[str, int]) -> int:
    """OR of the bits of the given maskbits names."""
    value = 0
    for name in names:
        value |= 1 << numbers[name]
    return value


def magnitude(flux: np.ndarray) -> np.ndarray:
    """22.5 - 2.5 log10(flux) for fluxes in nanomaggies; NaN where flux <= 0 or not finite."""
    flux = np.asarray(flux, np.float64)
    good = np.isfinite(flux) & (flux > 0)
    out = np.full(flux.shape, np.nan)
    out[good] = dm.MAG_ZERO_POINT - 2.5 * np.log10(flux[good])
    return out


def magnitude_error(flux: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    """2.5 / ln 10 / (flux sqrt(ivar)); NaN where flux <= 0 or ivar <= 0."""
    flux, ivar = np.asarray(flux, np.float64), np.asarray(ivar, np.float64)
    good = np.isfinite(flux) & (flux > 0) & np.isfinite(ivar) & (ivar > 0)
    out = np.full(flux.shape, np.nan)
    out[good] = 2.5 / np.log(10) / (flux[good] * np.sqrt(ivar[good]))
    return out


def extinction(transmission: np.ndarray) -> np.ndarray:
    """-2.5 log10(transmission), mag; NaN where the transmission is not in (0, 1]."""
    t = np.asarray(transmission, np.float64)
    good = np.isfinite(t) & (t > 0)
    out = np.full(t.shape, np.nan)
    out[good] = -2.5 * np.log10(t[good])
    return out


def derived_columns(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:data:`~mmu_legacysurvey.datamodel.DERIVED_COLUMNS` from the catalog's columns."""
    out = {}
    for b in dm.MAG_BANDS:
        out[f"model_mag_{b}"] = magnitude(columns[f"flux_{b}"]).astype(np.float32)
        out[f"model_mag_err_{b}"] = magnitude_error(
            columns[f"flux_{b}"], columns[f"flux_ivar_{b}"]).astype(np.float32)
        out[f"mw_extinction_{b}"] = extinction(columns[f"mw_transmission_{b}"]).astype(np.float32)
    return out


def selection(catalog: Catalog, config: str) -> np.ndarray:
    """Rows a config keeps (boolean array).

    Every config keeps ``brick_primary`` rows only (an object appears in the catalog of each
    brick whose images hold it, and is primary in exactly one). ``dr10_south_21`` adds MMU v1's
    cuts: z-band flux > 0 with 22.5 - 2.5 log10(flux_z / mw_transmission_z) < 21, at least
    one image in each of g, r, i, z, ``type`` not PSF, and none of the maskbits
    :data:`~mmu_legacysurvey.datamodel.BAD_MASKBITS` set at the object.
    """
    cols = catalog.columns
    keep = cols["brick_primary"].copy()
    if config != "dr10_south_21":
        return keep
    flux = cols["flux_z"].astype(np.float64)
    trans = cols["mw_transmission_z"].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        dered = dm.MAG_ZERO_POINT - 2.5 * np.log10(np.where(flux > 0, flux / trans, np.nan))
    keep &= np.isfinite(dered) & (dered < dm.ZMAG_LIMIT)
    for b in dm.BANDS:
        keep &= cols[f"nobs_{b}"] > 0
    keep &= np.char.strip(cols["type"]) != b"PSF"
    bad = bits_value(dm.BAD_MASKBITS, catalog.maskbits)
    keep &= (cols["maskbits"].astype(np.int64) & bad) == 0
    return keep
