"""HSC PDR3 naming conventions: bands, filters, patches and calexp file names.

Coadd images are served by the archive as
``{FILTER}/{tract}/{x},{y}/calexp-{FILTER}-{tract}-{x},{y}.fits`` (FILTER like ``HSC-G``),
one file per band per patch; the catalog's SQL output writes ``patch`` as the integer
``100*x + y``. Everything that formats or parses those names lives here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

BANDS = ("g", "r", "i", "z", "y")
FILTERS = {b: f"HSC-{b.upper()}" for b in BANDS}
# Stored band names follow MMU v1 (lower-cased filter names), so old and new files agree.
BAND_NAMES = tuple(FILTERS[b].lower() for b in BANDS)
PIXEL_SCALE = 0.168  # arcsec per coadd pixel
ZERO_POINT = 27.0  # AB magnitude of one count in a coadd image

# Mask planes of HSC coadds (their bit numbers are also written in MP_* header keywords).
MASK_PLANES = {
    "BAD": 0,
    "SAT": 1,
    "INTRP": 2,
    "CR": 3,
    "EDGE": 4,
    "DETECTED": 5,
    "DETECTED_NEGATIVE": 6,
    "SUSPECT": 7,
    "NO_DATA": 8,
    "CROSSTALK": 9,
    "NOT_DEBLENDED": 10,
    "UNMASKEDNAN": 11,
    "BRIGHT_OBJECT": 12,
    "CLIPPED": 13,
    "INEXACT_PSF": 14,
    "REJECTED": 15,
    "SENSOR_EDGE": 16,
}
# A pixel is good when none of these planes is set (MMU v1: bits 0, 1 and 8).
BAD_PLANES = ("BAD", "SAT", "NO_DATA")

_CALEXP_RE = re.compile(
    r"^calexp-HSC-(?P<band>[GRIZY])-(?P<tract>\d+)-(?P<px>\d+),(?P<py>\d+)\.fits$"
)


def patch_label(x: int, y: int) -> str:
    """The ``x,y`` spelling of a patch used in folder and file names."""
    return f"{int(x)},{int(y)}"


def parse_patch(value: object) -> str:
    """A catalog ``patch`` value (integer ``100*x + y`` or string ``x,y``) -> ``x,y``.

    :raises ValueError: if the value is neither.
    """
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode()
    if isinstance(value, str):
        text = value.strip()
        if "," in text:
            x, y = text.split(",")
            return patch_label(int(x), int(y))
        value = text
    number = int(value)
    if number < 0 or float(value) != number:
        raise ValueError(f"patch {value!r} is not 100*x + y nor 'x,y'")
    return patch_label(number // 100, number % 100)


def calexp_name(band: str, tract: int, patch: str) -> str:
    """``calexp-HSC-G-9813-4,5.fits`` for band ``g``, tract 9813, patch ``4,5``."""
    return f"calexp-{FILTERS[band]}-{int(tract)}-{patch}.fits"


def calexp_relpath(band: str, tract: int, patch: str) -> Path:
    """The archive's layout: ``HSC-G/9813/4,5/calexp-HSC-G-9813-4,5.fits``."""
    return Path(FILTERS[band]) / str(int(tract)) / patch / calexp_name(band, tract, patch)


def parse_calexp_name(name: str) -> tuple[str, int, str] | None:
    """``calexp-HSC-G-9813-4,5.fits`` -> ``("g", 9813, "4,5")``; None if not a calexp name."""
    m = _CALEXP_RE.match(name)
    if m is None:
        return None
    return m["band"].lower(), int(m["tract"]), patch_label(int(m["px"]), int(m["py"]))


def unit_key(tract: int, patch: str) -> str:
    """Stable work-unit key of a patch, e.g. ``9813-4,5``."""
    return f"{int(tract)}-{patch}"
