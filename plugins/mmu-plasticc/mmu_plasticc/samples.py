"""Synthetic PLAsTiCC files in the layout of either public release (docs/surveys.md).

Like the real files: one row per observation with the bands interleaved in time order;
deep-drilling-field objects (object_id < 1,000,000, ddf = 1) with ~50-60 points per band and
wide-field objects with a few; per-band counts that differ; difference-image fluxes (often
negative) in FLUXCAL units with 6 decimals and mjd with 4; galactic classes with zero
redshifts and NaN distmod; classes from the real list. Kaggle files are plain CSV, the
unblinded ones gzipped, with the test light curves split over numbered files (the first
holding the deep-field objects). Every object lies in the requested cone.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import SampleRequest, SampleResult
from mmu_core.sampling import cone_positions
from mmu_plasticc.datamodel import (
    BANDS,
    GALACTIC_CLASSES,
    N_BANDS,
    RELEASES,
    TRAIN_CLASSES,
    UNBLINDED_TEST_ONLY_CLASSES,
    Release,
)

SURVEY_START, SEASON_DAYS, N_SEASONS = 59580.0343, 180.0, 3  # three observing seasons
DDF_LIMIT = 1_000_000
WFD_MAX_ID = 130_000_000
# Relative class frequencies of the Kaggle training set.
CLASS_WEIGHTS = {
    6: 151,
    15: 495,
    16: 924,
    42: 1193,
    52: 183,
    53: 30,
    62: 484,
    64: 102,
    65: 981,
    67: 208,
    88: 370,
    90: 2313,
    92: 239,
    95: 175,
    991: 100,
    992: 100,
    993: 100,
    994: 100,
    995: 100,
}
NOISE = np.array([20.0, 5.0, 5.0, 6.0, 9.0, 20.0])  # typical flux_err per band (wide field)
COLOUR = np.array([0.5, 0.9, 1.0, 1.0, 0.9, 0.8])  # relative brightness per band


@dataclass
class SimObject:
    """One synthetic object: metadata values and its observations in file (mjd) order."""

    object_id: int
    ra: float
    dec: float
    target: int
    z: float
    specz: float
    photoz: float
    photoz_err: float
    distmod: float
    mwebv: float
    peakmjd: float
    mjd: np.ndarray = field(repr=False)
    passband: np.ndarray = field(repr=False)
    flux: np.ndarray = field(repr=False)
    flux_err: np.ndarray = field(repr=False)
    detected: np.ndarray = field(repr=False)
    truth: dict[str, float] = field(default_factory=dict, repr=False)
    gal_l: float = math.nan
    gal_b: float = math.nan

    @property
    def ddf(self) -> int:
        return int(self.object_id < DDF_LIMIT)

    @property
    def galactic(self) -> bool:
        return self.target in GALACTIC_CLASSES


def write_sample(request: SampleRequest) -> SampleResult:
    """Write train and test files of ``request.n`` objects each into ``request.out_dir``."""
    name = request.options.get("release") or "kaggle"
    if name not in RELEASES:
        raise InputError(f"unknown release {name!r}; choose one of {sorted(RELEASES)}")
    release = RELEASES[name]
    out = Path(request.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(request.seed)
    n = request.n
    ids = draw_ids(rng, 2 * n, n_ddf=2 * max(1, n // 3) if n > 1 else 1)
    rng.shuffle(ids)
    files: list[str] = []
    for split, split_ids in (("train", np.sort(ids[:n])), ("test", np.sort(ids[n:]))):
        objects = simulate(rng, split_ids, split, release, request)
        files += write_split(out, split, release, objects)
    notes = [
        f"{release.name} release: train and test hold {n} objects each, in a "
        f"{request.radius} deg cone around ({request.ra}, {request.dec})"
    ]
    return SampleResult(files=files, n_objects=n, notes=notes)


def draw_ids(rng: np.random.Generator, n: int, n_ddf: int) -> np.ndarray:
    """``n`` distinct ids, ``n_ddf`` of them deep-field ids (< 1,000,000)."""
    n_ddf = min(n_ddf, n)
    ddf = rng.choice(np.arange(1, DDF_LIMIT), size=n_ddf, replace=False)
    wfd = DDF_LIMIT + rng.choice(WFD_MAX_ID - DDF_LIMIT, size=n - n_ddf, replace=False)
    return np.concatenate((ddf, wfd)).astype(np.int64)


def draw_classes(rng: np.random.Generator, n: int, codes: tuple[int, ...]) -> np.ndarray:
    """Classes with realistic frequencies; at least one galactic and one extragalactic."""
    weights = np.array([CLASS_WEIGHTS[c] for c in codes], float)
    classes = rng.choice(codes, size=n, p=weights / weights.sum())
    if n >= 2:
        gal = [c for c in codes if c in GALACTIC_CLASSES]
        extra = [c for c in codes if c not in GALACTIC_CLASSES]
        slots = rng.choice(n, size=2, replace=False)
        classes[slots[0]] = rng.choice(gal)
        classes[slots[1]] = rng.choice(extra)
    return classes.astype(np.int64)


def simulate(
    rng: np.random.Generator,
    ids: np.ndarray,
    split: str,
    release: Release,
    request: SampleRequest,
) -> list[SimObject]:
    """Metadata and light curves of the objects ``ids`` (sorted), in the cone of ``request``;
    the first ones sit exactly at ``request.positions`` when given (objects shared with
    another survey's sample)."""
    codes = TRAIN_CLASSES
    if split == "test" and release.name == "unblinded":
        codes = TRAIN_CLASSES + UNBLINDED_TEST_ONLY_CLASSES
    classes = draw_classes(rng, len(ids), codes)
    ras, decs = cone_positions(request, len(ids), rng)
    objects = [
        simulate_object(rng, int(i), float(a), float(d), int(c), split)
        for i, a, d, c in zip(ids, ras, decs, classes, strict=True)
    ]
    gal_l, gal_b = to_galactic(ras, decs)
    for o, lon, lat in zip(objects, gal_l.tolist(), gal_b.tolist(), strict=True):
        o.gal_l, o.gal_b = lon, lat
    return objects


# ICRS (J2000) -> galactic rotation (Hipparcos catalogue, vol. 1, sec. 1.5.3)
_TO_GALACTIC = np.array(
    [
        [-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
        [+0.4941094278755837, -0.4448296299600112, +0.7469822444972189],
        [-0.8676661490190047, -0.1980763734312015, +0.4559837761750669],
    ]
)


def to_galactic(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Galactic longitude and latitude (degrees) of ICRS positions (degrees)."""
    a, d = np.radians(ra), np.radians(dec)
    xyz = np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])
    x, y, z = _TO_GALACTIC @ xyz
    return np.degrees(np.arctan2(y, x)) % 360.0, np.degrees(np.arcsin(np.clip(z, -1, 1)))


def distance_modulus(z: float, h0: float = 70.0, omega_m: float = 0.3) -> float:
    """Distance modulus in a flat LambdaCDM cosmology (numerical integral; no astropy import,
    which would cost seconds per ``mmu sample``)."""
    grid = np.linspace(0.0, z, 513)
    inv_e = 1.0 / np.sqrt(omega_m * (1 + grid) ** 3 + 1 - omega_m)
    comoving = 299792.458 / h0 * float(np.sum((inv_e[1:] + inv_e[:-1]) / 2 * np.diff(grid)))
    return 5 * math.log10((1 + z) * comoving) + 25


def simulate_object(
    rng: np.random.Generator, object_id: int, ra: float, dec: float, target: int, split: str
) -> SimObject:
    """One object: cadence by field, a light-curve model by class, noise, metadata."""
    deep = object_id < DDF_LIMIT
    counts = rng.integers(50, 61, N_BANDS) if deep else rng.integers(2, 26, N_BANDS)
    if len(set(counts.tolist())) == 1:
        counts[rng.integers(N_BANDS)] += 1
    mjd, passband = _cadence(rng, counts)
    galactic = target in GALACTIC_CLASSES
    z = (
        0.0
        if galactic
        else float(np.round(rng.uniform(0.05, 0.3 if target in (15, 64) else 1.2), 4))
    )
    peak = float(np.round(rng.uniform(SURVEY_START, SURVEY_START + 2.5 * 365.25), 4))
    model = _model(rng, target, mjd, passband, peak, z)
    err = NOISE[passband] * (0.5 if deep else 1.0) * rng.lognormal(0.0, 0.3, len(mjd))
    flux = np.round(model + rng.normal(0.0, err), 6)
    err = np.round(err, 6)
    detected = (np.abs(flux) / err > 5).astype(np.int64)
    if galactic:
        specz = photoz = photoz_err = 0.0
        distmod = math.nan
    else:
        photoz = float(np.round(max(0.01, z + rng.normal(0, 0.05 * (1 + z))), 4))
        photoz_err = float(np.round(rng.uniform(0.02, 0.2), 4))
        specz = z if split == "train" or rng.random() < 0.2 else math.nan
        distmod = float(np.round(distance_modulus(photoz), 4))
    truth = {
        "true_submodel": int(rng.integers(1, 10)),
        "true_distmod": math.nan if galactic else float(np.round(distance_modulus(z), 4)),
        "true_lensdmu": 0.0 if galactic else float(np.round(rng.normal(0, 0.02), 4)),
        "true_vpec": 0.0 if galactic else float(np.round(rng.normal(0, 300), 2)),
        "true_rv": 3.1,
        "true_av": 0.0 if galactic else float(np.round(rng.exponential(0.2), 4)),
        "libid_cadence": int(rng.integers(1, 5000)),
        **{
            f"tflux_{b}": float(np.round(abs(model[passband == k]).max(initial=0.0), 4))
            for k, b in enumerate(BANDS)
        },
    }
    return SimObject(
        object_id,
        ra,
        dec,
        target,
        z,
        specz,
        photoz,
        photoz_err,
        distmod,
        float(np.round(rng.uniform(0.005, 0.2), 3)),
        peak,
        mjd,
        passband,
        flux,
        err,
        detected,
        truth,
    )


def _cadence(rng: np.random.Generator, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observation times (distinct, 4 decimals) within seasons, sorted: bands interleave."""
    total = int(counts.sum())
    while True:
        season = rng.integers(0, N_SEASONS, total)
        t = SURVEY_START + season * 365.25 + rng.uniform(0, SEASON_DAYS, total)
        t = np.round(t, 4)
        if len(np.unique(t)) == total:
            break
    passband = np.repeat(np.arange(N_BANDS), counts)
    order = np.argsort(t, kind="stable")
    return t[order], passband[order]


def _model(
    rng: np.random.Generator, target: int, t: np.ndarray, band: np.ndarray, peak: float, z: float
) -> np.ndarray:
    """A crude noiseless flux per class: enough to look like PLAsTiCC, not physics."""
    colour = COLOUR[band] * rng.uniform(0.7, 1.3, N_BANDS)[band]
    amp = rng.lognormal(math.log(300), 0.8) / (1 + 5 * z)
    if target in (53, 92, 16):  # Mira, RR Lyrae, eclipsing binary: periodic
        period = {53: rng.uniform(100, 400), 92: rng.uniform(0.3, 0.9), 16: rng.uniform(0.5, 5)}[
            target
        ]
        return amp * colour * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    if target == 88:  # AGN: a random walk around the reference image
        return np.cumsum(rng.normal(0, amp / 20, len(t))) * colour
    if target == 65:  # M-dwarf flare: quiet, then one short flare
        return np.where((t >= peak) & (t < peak + 0.5), amp * 5 * colour, 0.0)
    if target in (6, 991, 995):  # microlensing: a symmetric bump
        u = np.hypot(rng.uniform(0.05, 1.0), (t - peak) / rng.uniform(5, 60))
        return amp * colour * ((u**2 + 2) / (u * np.sqrt(u**2 + 4)) - 1)
    rise, fall = rng.uniform(2, 15), rng.uniform(10, 80)  # explosive transients
    x = np.clip(t - peak, -500, 2000)
    return amp * colour * np.exp(-x / fall) / (1 + np.exp(-x / rise))


# ---- writing --------------------------------------------------------------------------
def lightcurve_lines(objects: Iterable[SimObject]) -> Iterable[str]:
    """CSV lines (with newline) of the objects' observations, objects in the given order."""
    for o in objects:
        yield "".join(
            f"{o.object_id},{m:.4f},{p},{f:.6f},{e:.6f},{d}\n"
            for m, p, f, e, d in zip(
                o.mjd.tolist(),
                o.passband.tolist(),
                o.flux.tolist(),
                o.flux_err.tolist(),
                o.detected.tolist(),
                strict=True,
            )
        )


def metadata_line(o: SimObject, release: Release, split: str) -> str:
    """One metadata CSV line (with newline) in the release's column order."""
    if release.name == "kaggle":
        fields = [
            f"{o.object_id}",
            f"{o.ra:.6f}",
            f"{o.dec:.6f}",
            f"{o.gal_l:.6f}",
            f"{o.gal_b:.6f}",
            f"{o.ddf}",
            f"{o.specz:.4f}",
            f"{o.photoz:.4f}",
            f"{o.photoz_err:.4f}",
            f"{o.distmod:.4f}",
            f"{o.mwebv:.3f}",
        ]
        if split == "train":
            fields.append(f"{o.target}")
        return ",".join(fields) + "\n"
    specz = -9.0 if math.isnan(o.specz) else o.specz  # the unblinded files' "missing"
    t = o.truth
    fields = [
        f"{o.object_id}",
        f"{o.ra:.6f}",
        f"{o.dec:.6f}",
        f"{o.ddf}",
        f"{specz:.4f}",
        f"{o.photoz:.4f}",
        f"{o.photoz_err:.4f}",
        f"{o.distmod:.4f}",
        f"{o.mwebv:.3f}",
        f"{o.target if split == 'train' else 0}",
        f"{o.target}",
        f"{t['true_submodel']}",
        f"{o.z:.4f}",
        f"{t['true_distmod']:.4f}",
        f"{t['true_lensdmu']:.4f}",
        f"{t['true_vpec']:.2f}",
        f"{t['true_rv']:.2f}",
        f"{t['true_av']:.4f}",
        f"{o.peakmjd:.4f}",
        f"{t['libid_cadence']}",
        *(f"{t[f'tflux_{b}']:.4f}" for b in BANDS),
    ]
    return ",".join(fields) + "\n"


def file_names(release: Release, split: str, n_lc_files: int = 1) -> tuple[list[str], str]:
    """Light-curve and metadata file names of a split."""
    if release.name == "kaggle":
        stem = "training_set" if split == "train" else "test_set"
        return [f"{stem}.csv"], f"{stem}_metadata.csv"
    if split == "train":
        return ["plasticc_train_lightcurves.csv.gz"], "plasticc_train_metadata.csv.gz"
    return (
        [f"plasticc_test_lightcurves_{k:02d}.csv.gz" for k in range(1, n_lc_files + 1)],
        "plasticc_test_metadata.csv.gz",
    )


@contextlib.contextmanager
def open_text(path: Path) -> Iterator[IO[str]]:
    """Write text, gzipped (reproducibly: no time stamp, no name) for .gz names."""
    if not path.name.endswith(".gz"):
        with open(path, "w", newline="", encoding="utf-8") as fh:
            yield fh
        return
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        text = io.TextIOWrapper(gz, encoding="utf-8", newline="")
        yield text
        text.flush()
        text.detach()


def write_split(out: Path, split: str, release: Release, objects: list[SimObject]) -> list[str]:
    """Write the light-curve file(s) and the metadata file of one split."""
    groups = [objects]
    if release.name == "unblinded" and split == "test":
        # like the real release: file 01 holds the deep-field objects, the rest follow
        deep = [o for o in objects if o.ddf]
        wide = [o for o in objects if not o.ddf]
        groups = [g for g in [deep, *np.array_split(np.array(wide, dtype=object), 2)] if len(g)]
    lc_names, meta_name = file_names(release, split, len(groups))
    written = []
    for name, group in zip(lc_names, groups, strict=True):
        with open_text(out / name) as fh:
            fh.write(",".join(release.lc_columns()) + "\n")
            fh.writelines(lightcurve_lines(group))
        written.append(str(out / name))
    columns = [
        c
        for c in release.meta_columns
        if split == "train" or release.name != "kaggle" or c != "target"
    ]
    with open_text(out / meta_name) as fh:
        fh.write(",".join(columns) + "\n")
        fh.writelines(metadata_line(o, release, split) for o in objects)
    written.append(str(out / meta_name))
    return written
