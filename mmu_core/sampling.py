"""Sky positions for a plugin's ``mmu_sample``: objects inside the requested cone, the first
ones exactly at ``SampleRequest.positions``.

::

    rng = np.random.default_rng(request.seed)
    ra, dec = cone_positions(request, request.n, rng)

    for k in range(request.n):             # or one object at a time, between other draws
        (ra,), (dec,) = cone_positions(request, 1, rng, first=k)

:func:`cone_positions` always draws ``n`` random positions, whether or not some are then
replaced by requested ones, so everything a sampler draws afterwards from the same generator
does not depend on ``request.positions``.
"""

from __future__ import annotations

import numpy as np

from mmu_core.models import SampleRequest


def random_in_cone(
    rng: np.random.Generator, n: int, ra: float, dec: float, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions uniform on the sphere within ``radius`` degrees of (``ra``, ``dec``).

    Draws ``n`` cosines of the distance from the centre, then ``n`` angles around it.

    :returns: (ra, dec) float64 arrays in degrees, ra in [0, 360).
    """
    cos_t = rng.uniform(np.cos(np.radians(radius)), 1.0, n)
    sin_t = np.sqrt(1 - cos_t**2)
    phi = rng.uniform(0, 2 * np.pi, n)
    # points around the pole, then rotated to the centre
    v = np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t])
    a, d = np.radians(ra), np.radians(dec)
    rot_y = np.array([[np.sin(d), 0, np.cos(d)], [0, 1, 0], [-np.cos(d), 0, np.sin(d)]])
    rot_z = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    x, y, z = rot_z @ rot_y @ v
    return _wrap(np.degrees(np.arctan2(y, x))), np.degrees(np.arcsin(np.clip(z, -1, 1)))


def requested_positions(
    request: SampleRequest, n: int, first: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The requested positions of objects ``first`` .. ``first + n - 1`` of the sample: those
    that ``request.positions`` gives (none if it is not given), in order.

    :returns: (ra, dec) float64 arrays in degrees, ra wrapped into [0, 360), dec as given.
    """
    given = np.array(request.positions or [], np.float64).reshape(-1, 2)
    given = given[first : first + max(n, 0)]
    return _wrap(given[:, 0]), given[:, 1].copy()


def cone_positions(
    request: SampleRequest, n: int, rng: np.random.Generator, first: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of objects ``first`` .. ``first + n - 1`` of a sample: the requested ones
    where ``request.positions`` gives them (:func:`requested_positions`), the others uniform
    on the sphere inside the cone ``request.ra``/``dec``/``radius`` (:func:`random_in_cone`,
    drawn for all ``n`` whatever the number requested).

    :returns: (ra, dec) float64 arrays of length ``n``, degrees, ra in [0, 360).
    """
    ra, dec = random_in_cone(rng, n, request.ra, request.dec, request.radius)
    fixed_ra, fixed_dec = requested_positions(request, n, first)
    ra[: len(fixed_ra)] = fixed_ra
    dec[: len(fixed_dec)] = fixed_dec
    return ra, dec


def separation(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Angular distance in degrees between positions in degrees (haversine; broadcasts)."""
    r1, d1, r2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    h = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def _wrap(ra: np.ndarray) -> np.ndarray:
    """ra modulo 360 in [0, 360) (``x % 360`` gives 360.0 for tiny negative x)."""
    ra = np.asarray(ra, np.float64) % 360.0
    return np.where(ra >= 360.0, 0.0, ra)


__all__ = ["cone_positions", "random_in_cone", "requested_positions", "separation"]
