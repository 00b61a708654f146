"""Angles and positions as users give them: numbers, astropy quantities, ``SkyCoord``s and
quantity strings.

One rule for the command line: a radius is a quantity string with its unit (``1arcsec``,
``1.5"``, ``2arcmin``, ``0.5deg``), parsed by astropy; a bare number is refused, because
it meant degrees in one command and arcsec in another. In Python, plain numbers keep their
documented unit (``cone`` radius in degrees, ``cross_match`` radius in arcsec) and astropy
quantities are converted.
"""

from __future__ import annotations

import math
from typing import Any

from mmu_core.errors import MMUError


class AngleError(MMUError, ValueError):
    """An angle or position that cannot be read."""


def _quantity(value: Any) -> Any | None:
    """``value`` as an astropy angular Quantity, or None when it is a plain number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return None
    try:
        from astropy import units as u
    except ImportError:  # pragma: no cover - astropy is a core dependency
        return None
    if isinstance(value, u.Quantity):
        return value
    return None


def to_arcsec(value: Any, what: str = "radius", default_unit: str = "arcsec") -> float:
    """A positive finite angle in arcsec: a number (in ``default_unit``), an astropy angle, or
    a quantity string (``"1arcsec"``, ``"0.5deg"``)."""
    return _convert(value, what, default_unit, "arcsec")


def to_degrees(value: Any, what: str = "radius", default_unit: str = "deg") -> float:
    """A positive finite angle in degrees (see :func:`to_arcsec`)."""
    return _convert(value, what, default_unit, "deg")


def _convert(value: Any, what: str, default_unit: str, unit: str) -> float:
    from astropy import units as u

    if isinstance(value, str):
        value = parse_angle(value, what)
    q = _quantity(value)
    if q is None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise AngleError(f"{what} must be a number or an astropy angle, got {value!r}") from None
        q = number * u.Unit(default_unit)
    try:
        out = float(q.to_value(u.Unit(unit)))
    except u.UnitConversionError:
        raise AngleError(f"{what} must be an angle, got {value!r} (unit {q.unit})") from None
    if not (math.isfinite(out) and out > 0):
        raise AngleError(f"{what} must be a positive finite angle, got {value!r}")
    return out


def parse_angle(text: str, what: str = "--radius") -> Any:
    """A quantity string with its unit as an astropy Quantity: ``1arcsec``, ``1.5"``,
    ``2arcmin``, ``0.5deg``. A bare number is refused (its unit would be a guess)."""
    from astropy import units as u

    raw = text.strip()
    try:
        float(raw)
    except ValueError:
        pass
    else:
        raise AngleError(f"{what} {raw!r} has no unit: write it with one, e.g. {raw}arcsec or "
                         f"{raw}deg (a bare number meant arcsec in crossmatch and degrees in "
                         "sample, so mmu no longer guesses)")
    spelled = raw.replace('"', "arcsec").replace("''", "arcsec").replace("'", "arcmin")
    try:
        q = u.Quantity(spelled)
    except (TypeError, ValueError):
        raise AngleError(f"{what} {raw!r} is not an angle (write e.g. 1arcsec, 2arcmin or "
                         "0.5deg)") from None
    if q.unit.physical_type != "angle":
        raise AngleError(f"{what} {raw!r} is not an angle (unit {q.unit})")
    return q


def position(target: Any, dec: Any = None) -> tuple[float, float]:
    """(ra, dec) in degrees from a ``SkyCoord`` (any frame; converted to ICRS), an
    ``(ra, dec)`` pair of numbers (degrees) or angles, or ``ra, dec`` given separately."""
    if dec is None:
        if hasattr(target, "icrs") and hasattr(target, "frame"):
            icrs = target.icrs
            if not icrs.isscalar:
                raise AngleError("give one position, not an array SkyCoord")
            return float(icrs.ra.deg), float(icrs.dec.deg)
        try:
            ra, dec = target
        except (TypeError, ValueError):
            raise AngleError(f"a position is a SkyCoord or (ra, dec), got {target!r}") from None
    else:
        ra = target
    return _degrees_any(ra, "ra"), _degrees_any(dec, "dec")


def _degrees_any(value: Any, what: str) -> float:
    q = _quantity(value)
    if q is not None:
        from astropy import units as u

        try:
            return float(q.to_value(u.deg))
        except u.UnitConversionError:
            raise AngleError(f"{what} must be an angle, got {value!r}") from None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise AngleError(f"{what} must be a number of degrees or an angle, got {value!r}") from None
    if not math.isfinite(out):
        raise AngleError(f"{what} must be finite, got {value!r}")
    return out
