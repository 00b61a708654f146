"""Reading FITS files in a plugin: every failure becomes an :class:`~mmu_core.errors.InputError`
naming the file, the HDU (when one is concerned) and what was being read.

::

    with open_fits(path, "redshift catalog") as hdul:   # opening fails: InputError
        hdu = get_hdu(hdul, "ZCATALOG", path, "redshift catalog")   # missing: InputError
        with fits_errors(path, "redshift catalog", hdu="ZCATALOG"):
            z = hdu.data["Z"]                            # damaged data: InputError

    with read_fits(path, "drpall catalog") as hdul:      # the same, for the whole block
        ...

Astropy only *warns* about a truncated or corrupt file (and then hands back short arrays);
these helpers turn such warnings into errors, so they become InputErrors too. An InputError
raised inside a block passes through unchanged.
"""

from __future__ import annotations

import contextlib
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from astropy.io import fits

from mmu_core.errors import InputError

# What astropy, gzip and zlib raise on truncated, corrupt or non-FITS input (gzip.BadGzipFile
# is an OSError), and warnings turned into errors (astropy's about damaged files, see below).
READ_ERRORS: tuple[type[Exception], ...] = (
    OSError, EOFError, ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError,
    zlib.error, Warning,
)
# astropy's warnings that mean the data cannot be trusted (matched case-insensitively)
_DAMAGE_WARNINGS = r"(?s).*(truncated|corrupt)"


def _where(what: str, hdu: str | int | None) -> str:
    return what if hdu is None else f"{what} (HDU {hdu})"


def _text(exc: BaseException) -> str:
    """``Type: message`` on one line (astropy's messages span several)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


@contextlib.contextmanager
def _damage_is_an_error() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=_DAMAGE_WARNINGS)
        yield


@contextlib.contextmanager
def fits_errors(
    path: str | Path,
    what: str,
    *,
    hdu: str | int | None = None,
    object: str | None = None,
    errors: tuple[type[BaseException], ...] = (),
) -> Iterator[None]:
    """Inside the block, a failure reading ``path`` raises
    ``InputError("cannot read WHAT (HDU H): Type: message", file=path, object=object)``.

    :param what: what is being read, e.g. ``"LOGCUBE"`` or ``"DESI coadd camera arrays"``.
    :param hdu: the HDU concerned, if one is.
    :param errors: further exception types to turn into InputError (e.g. a plugin's own
        stream reader's error), besides :data:`READ_ERRORS`.
    """
    try:
        with _damage_is_an_error():
            yield
    except InputError:
        raise
    except (*READ_ERRORS, *errors) as exc:
        raise InputError(f"cannot read {_where(what, hdu)}: {_text(exc)}", file=str(path),
                         object=object) from exc


def open_fits(
    path: str | Path,
    what: str,
    *,
    object: str | None = None,
    lazy: bool = True,
    memmap: bool = False,
    fileobj: IO[bytes] | None = None,
) -> fits.HDUList:
    """``fits.open`` whose failures raise InputError naming ``path`` and ``what``: a missing
    file, a file that is not FITS, a truncated or corrupt one (with ``lazy=False`` every
    header is parsed now, so truncation shows here rather than at a later HDU).

    The HDUList is a context manager (``with open_fits(...) as hdul:``); reads of its HDUs
    can be wrapped in :func:`fits_errors`, or use :func:`read_fits` for both at once.

    :param fileobj: read these bytes instead of opening ``path`` (e.g. a decompressed
        buffer); ``path`` still names the file in errors.
    """
    if fileobj is None and not Path(path).exists():
        raise InputError(f"cannot read {what}: file does not exist", file=str(path),
                         object=object)
    try:
        with _damage_is_an_error():
            hdul = fits.open(path if fileobj is None else fileobj, memmap=memmap,
                             lazy_load_hdus=lazy)
            try:
                if not lazy:
                    len(hdul)  # parse every header now
            except BaseException:
                hdul.close()
                raise
    except READ_ERRORS as exc:
        kind = ("truncated or corrupt FITS file" if isinstance(exc, Warning)
                else "not a readable FITS file")
        raise InputError(f"cannot read {what}: {kind} ({_text(exc)})", file=str(path),
                         object=object) from exc
    return hdul


@contextlib.contextmanager
def read_fits(
    path: str | Path, what: str, *, object: str | None = None, **options: Any
) -> Iterator[fits.HDUList]:
    """:func:`open_fits` (same options: ``lazy``, ``memmap``, ``fileobj``) for the block, and
    any failure reading the file inside the block raised as InputError (:func:`fits_errors`);
    the file is closed at the end."""
    with fits_errors(path, what, object=object):
        with open_fits(path, what, object=object, **options) as hdul:
            yield hdul


def get_hdu(
    hdul: fits.HDUList,
    key: str | int,
    path: str | Path,
    what: str,
    *,
    object: str | None = None,
):
    """``hdul[key]``, or InputError ``"missing HDU KEY in WHAT (HDUs present: [...])"``; an
    HDU whose header cannot be read raises InputError too (:func:`fits_errors`)."""
    with fits_errors(path, what, hdu=key, object=object):
        try:
            return hdul[key]
        except (KeyError, IndexError):
            present = [h.name for h in hdul]
            raise InputError(f"missing HDU {key} in {what} (HDUs present: {present})",
                             file=str(path), object=object) from None


__all__ = ["READ_ERRORS", "fits_errors", "get_hdu", "open_fits", "read_fits"]


def pixel_positions(wcs: Any, ra: Any, dec: Any) -> tuple[Any, Any]:
    """0-based pixel coordinates (x, y) of sky positions (degrees) through an astropy ``WCS``,
    distortions included (``all_world2pix``); NaN where not computable, empty for no positions.
    """
    import numpy as np

    if len(ra) == 0:
        return np.zeros(0), np.zeros(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, y = wcs.all_world2pix(np.asarray(ra, float), np.asarray(dec, float), 0)
    return np.asarray(x, float), np.asarray(y, float)
