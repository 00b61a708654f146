"""Synthetic Galaxy Zoo 3D files in the DR17 VAC layout (``mmu sample gz3d``).

For each galaxy: ``gz3d_<MANGAID>_<IFU>_<subject>.fits.gz`` with the eleven HDUs of
docs/surveys.md, in order and with their dtypes (uint8 colour cutout carrying the 2-axis TAN
WCS header in PC form although its data are 3-D, four float64 count masks with the same
header, the one-row metadata table, the centre/star cluster tables and
the three classification tables with JSON marks), plus ``gz3d_metadata.fits``,
``gz3d_galaxy_centers.fits`` and ``gz3d_foreground_stars.fits`` beside them. As in the
release, the catalogues' ``file_name`` is the production name ``<MANGAID>_<IFU>_<subject>.fits``
(no ``gz3d_`` prefix, no ``.gz``) while the files on disk are ``gz3d_<...>.fits.gz``.

The galaxy is drawn (exponential disk, bulge, two logarithmic spiral arms, sometimes a bar,
foreground stars) and simulated volunteers mark it: centre/star clicks clustered into the
cluster tables and 2-sigma-ellipse masks, spiral-arm and bar polygons counted per pixel, as
the GZ3D production code did. The first galaxy is heavily classified (a few hundred
volunteers), so its centre mask and ``GZ_total_classifications`` exceed 255.

With ``--drpall FILE`` the galaxies (``mangaid``, position ``objra``/``objdec`` or
``ifura``/``ifudec``, IFU size) are the first ``--n`` distinct galaxies of that MaNGA drpall
catalogue, so a gz3d sample and a MaNGA sample describe the same galaxies.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from mmu_core.errors import InputError
from mmu_core.fits import read_fits
from mmu_core.models import SampleRequest, SampleResult
from mmu_core.sampling import cone_positions
from mmu_gz3d import datamodel as dm
from mmu_gz3d.raster import add_cluster_ellipse, add_polygon

IFU_SIZES = (19, 37, 61, 91, 127)
IFU_WEIGHTS = (0.2, 0.15, 0.15, 0.15, 0.35)
SAMPLE_LABELS = ("Primary", "Primary+", "Secondary", "Color-Enhanced", "Ancillary")
HEAVY_CLASSIFICATIONS = (280, 360)  # volunteers of the first galaxy, centre/star workflow


@dataclass(frozen=True)
class Target:
    """One galaxy to draw: who it is and where."""

    mangaid: str
    ra: float
    dec: float
    ifu_size: int
    nsa_id: int
    iauname: str | None = None  # from the drpall's nsa_iauname when it has one


# ---- choosing the galaxies ------------------------------------------------------------------
def targets_in_cone(request: SampleRequest, rng: np.random.Generator) -> list[Target]:
    """``request.n`` galaxies spread uniformly over the cone (the first ones at
    ``request.positions`` when given), with fresh MANGAIDs."""
    n = request.n
    ras, decs = cone_positions(request, n, rng)
    ids = rng.choice(np.arange(1, 700_000), size=n, replace=False)
    sizes = rng.choice(IFU_SIZES, size=n, p=IFU_WEIGHTS)
    nsa = rng.choice(np.arange(1, 700_000), size=n, replace=False)
    return [
        Target(f"1-{ids[i]}", float(ras[i]), float(decs[i]), int(sizes[i]), int(nsa[i]))
        for i in range(n)
    ]


def targets_from_drpall(path: str | Path, n: int) -> list[Target]:
    """The first ``n`` distinct galaxies of a MaNGA drpall file (HDU ``MANGA``)."""
    path = Path(path)
    with read_fits(path, "drpall catalogue") as hdul:
        hdu = hdul["MANGA"] if "MANGA" in hdul else hdul[1]
        table = Table(hdu.data)
    cols = {c.lower(): c for c in table.colnames}

    def column(*names: str):
        for name in names:
            if name in cols:
                return table[cols[name]]
        return None

    mangaid = column("mangaid")
    ra, dec = column("objra"), column("objdec")
    if ra is None or dec is None:
        ra, dec = column("ifura"), column("ifudec")
    if mangaid is None or ra is None or dec is None:
        raise InputError("drpall needs columns mangaid and objra/objdec or ifura/ifudec",
                         file=str(path))
    size = column("ifudesignsize")
    design = column("ifudsgn", "ifudesign")
    plateifu = column("plateifu")
    nsa = column("nsa_nsaid", "nsaid")
    iau = column("nsa_iauname")

    targets: list[Target] = []
    seen: set[str] = set()
    for i in range(len(table)):
        mid = _text(mangaid[i])
        ifu = _ifu_size(size[i] if size is not None else None,
                        design[i] if design is not None else None,
                        plateifu[i] if plateifu is not None else None)
        r, d = float(ra[i]), float(dec[i])
        if mid in seen or ifu is None or not (math.isfinite(r) and -90 <= d <= 90 and r >= 0):
            continue
        if dm.parse_file_name(f"gz3d_{mid}_{ifu}_1.fits.gz") is None:
            continue  # not a galaxy MANGAID (e.g. a standard star's)
        seen.add(mid)
        nsa_id = int(nsa[i]) if nsa is not None else 100_000 + i
        iauname = _text(iau[i]) if iau is not None else None
        targets.append(Target(mid, r % 360.0, d, ifu, nsa_id, iauname or None))
        if len(targets) == n:
            break
    if not targets:
        raise InputError("no galaxy rows (mangaid, position, IFU size) in the drpall catalogue",
                         file=str(path))
    return targets


def _text(value) -> str:
    return (value.decode() if isinstance(value, bytes) else str(value)).strip()


def _ifu_size(size, design, plateifu) -> int | None:
    """IFU size in fibres from ifudesignsize, else ifudsgn (12701 -> 127), else plateifu."""
    candidates = []
    if size is not None:
        candidates.append(int(size))
    for text in (design, _text(plateifu).split("-")[-1] if plateifu is not None else None):
        if text is not None and _text(text).isdigit() and len(_text(text)) > 2:
            candidates.append(int(_text(text)[:-2]))
    for c in candidates:
        if c in IFU_SIZES or c == 7:
            return c
    return None


# ---- drawing one galaxy and its volunteers --------------------------------------------------
@dataclass
class SimulatedGalaxy:
    image: np.ndarray
    masks: dict[str, np.ndarray]
    clusters: dict[str, dict[str, list]]
    classifications: dict[int, dict[str, list]]
    total: int
    spiral_votes: int
    bar_votes: int


def simulate_galaxy(target: Target, rng: np.random.Generator, heavy: bool) -> SimulatedGalaxy:
    """Draw a galaxy on the cutout grid and let volunteers mark it."""
    h, w = dm.IMAGE_SHAPE[:2]
    wcs = dm.gz3d_wcs(np.float32(target.ra), np.float32(target.dec))
    cx, cy = (float(v) for v in wcs.wcs.crpix - 1)  # (ra, dec) in 0-based click coordinates
    scale_len = rng.uniform(22, 50)
    q = rng.uniform(0.45, 1.0)  # axis ratio (cos inclination)
    pa = rng.uniform(0, np.pi)
    pitch = np.radians(rng.uniform(12, 28))
    arm_phase = rng.uniform(0, 2 * np.pi)
    arm_strength = rng.uniform(0.15, 1.0)
    has_bar = rng.uniform() < 0.4
    bar_len = rng.uniform(1.2, 2.2) * scale_len
    bar_angle = rng.uniform(0, np.pi)
    n_stars = int(min(4, rng.poisson(1.2)))
    stars = []
    while len(stars) < n_stars:
        sx, sy = rng.uniform(15, w - 15), rng.uniform(15, h - 15)
        if math.hypot(sx - cx, sy - cy) > 60:
            stars.append((sx, sy, rng.uniform(0.3, 2.0)))

    def to_image(radius, theta):
        """Disk-plane polar coordinates -> cutout click coordinates."""
        uu, vv = radius * np.cos(theta), radius * np.sin(theta) * q
        return cx + uu * np.cos(pa) - vv * np.sin(pa), cy + uu * np.sin(pa) + vv * np.cos(pa)

    # --- the image (gri composite, asinh stretch, uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    uu = dx * np.cos(pa) + dy * np.sin(pa)
    vv = (-dx * np.sin(pa) + dy * np.cos(pa)) / q
    radius = np.hypot(uu, vv) + 1e-6
    theta = np.arctan2(vv, uu)
    r0 = 0.8 * scale_len
    psi = 2 * (theta - np.log(radius / r0) / np.tan(pitch) - arm_phase)
    # Arms start outside the bulge and fade beyond ~3 scale lengths, where volunteers stop.
    taper = np.clip((radius - 0.6 * scale_len) / scale_len, 0, 1) * np.exp(-(radius / (3 * scale_len)) ** 4)
    arms = arm_strength * np.clip(np.cos(psi), 0, None) ** 4 * taper
    disk = np.exp(-radius / scale_len)
    bulge = 1.5 * np.exp(-np.hypot(dx, dy) / (0.2 * scale_len))
    bar = np.zeros_like(disk)
    if has_bar:
        bu = uu * np.cos(bar_angle) + vv * np.sin(bar_angle)
        bv = -uu * np.sin(bar_angle) + vv * np.cos(bar_angle)
        bar = 0.8 * np.clip(1 - (bu / bar_len) ** 2 - (bv / (0.3 * bar_len)) ** 2, 0, None) ** 1.5
    colours = {"bulge": (1.0, 0.75, 0.5), "disk": (0.8, 0.8, 0.75), "arms": (0.55, 0.7, 1.0)}
    flux = np.zeros((h, w, 3))
    for k in range(3):
        flux[..., k] = (colours["bulge"][k] * (bulge + bar) + colours["disk"][k] * disk
                        + colours["arms"][k] * arms * 1.5)
    for sx, sy, bright in stars:
        flux += (bright * np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * 2.0**2)))[..., None]
    flux += rng.normal(0, 0.004, flux.shape)
    image = np.clip(np.arcsinh(40 * flux) / np.arcsinh(40 * 2.0) * 255, 0, 255)
    image = image.astype(np.uint8)

    # --- volunteers
    n_center = int(rng.integers(*HEAVY_CLASSIFICATIONS)) if heavy else int(rng.integers(15, 31))
    n_spiral = int(rng.integers(100, 140)) if heavy else int(rng.integers(15, 31))
    n_bar = int(rng.integers(100, 140)) if heavy else int(rng.integers(15, 31))
    masks = {c: np.zeros((h, w), dtype=np.float64) for c in dm.CLASSES}
    clock = _Clock(rng)

    objects = [("center", cx, cy, 0.95, 2.5)] + [("star", sx, sy, 0.85, 1.5) for sx, sy, _ in stars]
    clicks: dict[tuple, list] = {o: [] for o in objects}
    rows_8 = {"classification_id": [], "time_stamp": [], "center_points": [], "star_points": []}
    for _ in range(n_center):
        marks = {"center": [], "star": []}
        for obj in objects:
            kind, ox, oy, p_click, sigma = obj
            if rng.uniform() < p_click:
                point = [round(float(ox + rng.normal(0, sigma)), 2),
                         round(float(oy + rng.normal(0, sigma)), 2)]
                marks[kind].append(point)
                clicks[obj].append(point)
        if rng.uniform() < 0.08:  # a stray click: too few to form a cluster
            marks["star"].append([round(float(rng.uniform(0, w)), 2),
                                  round(float(rng.uniform(0, h)), 2)])
        clock.record(rows_8)
        rows_8["center_points"].append(json.dumps(marks["center"]))
        rows_8["star_points"].append(json.dumps(marks["star"]))
    clusters = {"center": _empty_clusters(), "star": _empty_clusters()}
    for (kind, *_), points in clicks.items():
        if len(points) >= 3:  # DBSCAN(min_samples=3)
            _add_cluster(clusters[kind], masks[kind], np.array(points), wcs)

    rows_9 = {"classification_id": [], "time_stamp": [], "spiral_paths": []}
    p_arm = 0.2 + 0.7 * arm_strength
    for _ in range(n_spiral):
        paths = []
        for k in range(2):
            if rng.uniform() < p_arm:
                paths.append(_arm_polygon(rng, to_image, r0, pitch, arm_phase + np.pi * k,
                                          scale_len))
        for path in paths:
            add_polygon(masks["spiral"], np.array(path))
        clock.record(rows_9)
        rows_9["spiral_paths"].append(json.dumps(paths))

    rows_10 = {"classification_id": [], "time_stamp": [], "bar_paths": []}
    p_bar = 0.75 if has_bar else 0.08
    for _ in range(n_bar):
        paths = []
        if rng.uniform() < p_bar:
            length = bar_len if has_bar else rng.uniform(0.5, 1.0) * scale_len
            paths.append(_bar_polygon(rng, to_image, length, bar_angle))
        for path in paths:
            add_polygon(masks["bar"], np.array(path))
        clock.record(rows_10)
        rows_10["bar_paths"].append(json.dumps(paths))

    total = int(rng.integers(256, 420)) if heavy else int(rng.integers(20, 256))
    spiral_votes = int(rng.binomial(total, min(0.95, 0.1 + 0.8 * arm_strength)))
    bar_votes = int(rng.binomial(total, 0.6 if has_bar else 0.1))
    return SimulatedGalaxy(
        image, masks, clusters,
        {dm.HDU_CENTER_STAR_CLASSIFICATIONS: rows_8,
         dm.HDU_SPIRAL_CLASSIFICATIONS: rows_9,
         dm.HDU_BAR_CLASSIFICATIONS: rows_10},
        total, spiral_votes, bar_votes)


class _Clock:
    """Classification ids and time stamps, increasing like Zooniverse's."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.next_id = int(rng.integers(50_000_000, 60_000_000))
        self.t = np.datetime64("2017-03-08T09:00:00") + np.timedelta64(int(rng.integers(0, 3e7)), "s")

    def record(self, rows: dict[str, list]) -> None:
        self.next_id += int(self.rng.integers(1, 5000))
        self.t += np.timedelta64(int(self.rng.integers(30, 40_000)), "s")
        rows["classification_id"].append(self.next_id)
        rows["time_stamp"].append(str(self.t).replace("T", " ") + " UTC")


def _arm_polygon(rng, to_image, r0, pitch, phase, scale_len) -> list[list[float]]:
    """One volunteer's outline of one spiral arm: a band around the log spiral."""
    r_in = 0.8 * scale_len * rng.uniform(0.85, 1.15)
    r_out = 3.2 * scale_len * rng.uniform(0.8, 1.1)
    half_width = 0.3 * rng.uniform(0.7, 1.3)  # radians of disk-plane angle
    shift = rng.normal(0, 1.5, 2)
    radius = np.geomspace(r_in, r_out, 14)
    theta = phase + np.log(radius / r0) / np.tan(pitch)
    left = np.column_stack(to_image(radius, theta + half_width))
    right = np.column_stack(to_image(radius[::-1], theta[::-1] - half_width))
    points = np.vstack([left, right]) + shift + rng.normal(0, 0.7, (2 * len(radius), 2))
    return np.round(points, 2).tolist()


def _bar_polygon(rng, to_image, length, angle) -> list[list[float]]:
    """One volunteer's outline of the bar: an ellipse in the disk plane."""
    a = length * rng.uniform(0.85, 1.15)
    b = 0.3 * length * rng.uniform(0.8, 1.2)
    tilt = angle + np.radians(rng.normal(0, 4))
    t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    bu, bv = a * np.cos(t), b * np.sin(t)
    du, dv = bu * np.cos(tilt) - bv * np.sin(tilt), bu * np.sin(tilt) + bv * np.cos(tilt)
    radius, theta = np.hypot(du, dv), np.arctan2(dv, du)
    x, y = to_image(radius, theta)
    points = np.column_stack([x, y]) + rng.normal(0, 0.7, (len(t), 2))
    return np.round(points, 2).tolist()


def _empty_clusters() -> dict[str, list]:
    return {c: [] for c in dm.CLUSTER_COLUMNS}


def _add_cluster(table: dict[str, list], mask: np.ndarray, points: np.ndarray, wcs) -> None:
    """Cluster statistics as the production code computed them, and the mask ellipse."""
    mean = points.mean(axis=0)
    cov = np.cov(points.T)
    # The production code took 0-based click positions as 1-based FITS pixels (origin=1).
    sky = wcs.wcs_pix2world(points, 1)
    sky_cov = np.cov(sky.T)
    table["x"].append(mean[0])
    table["y"].append(mean[1])
    table["var_x"].append(cov[0, 0])
    table["var_y"].append(cov[1, 1])
    table["var_x_y"].append(cov[0, 1])
    table["ra"].append(sky[:, 0].mean())
    table["dec"].append(sky[:, 1].mean())
    table["var_ra"].append(sky_cov[0, 0])
    table["var_dec"].append(sky_cov[1, 1])
    table["var_ra_dec"].append(sky_cov[0, 1])
    table["count"].append(len(points))
    add_cluster_ellipse(mask, mean, cov, len(points))


# ---- writing --------------------------------------------------------------------------------
def wcs_header(ra: float, dec: float) -> fits.Header:
    """The cutout's WCS cards as the production code wrote them: ``define_wcs`` (CD =
    -0.099"/3600 on both axes) then astropy's ``to_header()``, which gives the PC form
    (PC1_1 = PC2_2 = -2.75e-5, CDELT = 1; docs/surveys.md)."""
    return dm.gz3d_wcs(ra, dec).to_header()


def iau_name(ra: float, dec: float) -> str:
    """IAU-style name, JHHMMSS.ss+DDMMSS.s (19 characters)."""
    c = SkyCoord(ra * u.deg, dec * u.deg)
    hms = c.ra.hms
    sign = "-" if dec < 0 else "+"
    d, m, s = c.dec.signed_dms[1:]
    return (f"J{int(hms.h):02d}{int(hms.m):02d}{hms.s:05.2f}"
            f"{sign}{int(d):02d}{int(m):02d}{s:04.1f}")


def metadata_row(target: Target, galaxy: SimulatedGalaxy, rng: np.random.Generator) -> np.ndarray:
    """HDU 5's single row, with the production dtypes."""
    ra, dec = np.float32(target.ra), np.float32(target.dec)
    row = np.zeros(1, dtype=dm.METADATA_DTYPE)
    row["ra"], row["dec"] = ra, dec
    row["MANGAID"] = target.mangaid
    row["IAUNAME"] = target.iauname or iau_name(float(ra), float(dec))
    row["IFUDESIGNSIZE"] = target.ifu_size
    row["MANGA_TILEID"] = float(rng.integers(7000, 12000))
    row["nsa_id"] = target.nsa_id
    row["explorer_link"] = ("http://skyserver.sdss.org/dr14/en/tools/explore/summary.aspx"
                            f"?ra={float(ra):.5f}&dec={float(dec):.5f}")
    row["GZ_total_classifications"] = galaxy.total
    row["GZ_bar_votes"] = galaxy.bar_votes
    row["GZ_spiral_votes"] = galaxy.spiral_votes
    row["sample"] = SAMPLE_LABELS[int(rng.integers(len(SAMPLE_LABELS)))]
    return row


def galaxy_hdus(target: Target, galaxy: SimulatedGalaxy, meta: np.ndarray) -> fits.HDUList:
    """The eleven HDUs of one gz3d file, in order."""
    header = wcs_header(float(meta["ra"][0]), float(meta["dec"][0]))
    hdus: list[fits.hdu.base.ExtensionHDU] = [fits.PrimaryHDU(galaxy.image, header=header)]
    hdus += [fits.ImageHDU(galaxy.masks[c], header=header) for c in dm.CLASSES]
    hdus.append(fits.BinTableHDU(meta))
    for kind in ("center", "star"):
        table = galaxy.clusters[kind]
        if table["x"]:
            hdus.append(fits.table_to_hdu(Table(table)))
        else:  # the production code's empty table: float64 columns, no rows
            hdus.append(fits.table_to_hdu(Table({c: np.zeros(0) for c in dm.CLUSTER_COLUMNS})))
    for index in sorted(dm.CLASSIFICATION_JSON):
        rows = galaxy.classifications[index]
        hdus.append(fits.table_to_hdu(Table({
            "classification_id": np.array(rows["classification_id"], dtype=np.int64),
            "time_stamp": np.array(rows["time_stamp"], dtype=str),
            **{c: np.array(rows[c], dtype=str) for c in dm.CLASSIFICATION_JSON[index]},
        })))
    return fits.HDUList(hdus)


def write_gzipped(hdul: fits.HDUList, path: Path) -> None:
    """Write a .fits.gz whose bytes depend only on the content (gzip mtime 0), like `gzip`."""
    buffer = io.BytesIO()
    hdul.writeto(buffer)
    with open(path, "wb") as raw, gzip.GzipFile(path.name[:-3], "wb", 6, raw, mtime=0) as gz:
        gz.write(buffer.getvalue())


def write_sample(request: SampleRequest) -> SampleResult:
    """Write the synthetic gz3d files for ``request`` (see the module docstring)."""
    out = Path(request.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(request.seed)
    notes = []
    drpall = request.options.get("drpall")
    if drpall:
        targets = targets_from_drpall(drpall, request.n)
        notes.append(f"{len(targets)} galaxies taken from {drpall} (positions from the "
                     "catalogue; the cone options are not used)")
    else:
        targets = targets_in_cone(request, rng)
    subjects = rng.choice(np.arange(14_600_000, 14_800_000), size=len(targets), replace=False)

    files, catalog, centers, stars = [], [], [], []
    for i, (target, subject) in enumerate(zip(targets, subjects, strict=True)):
        galaxy_rng = np.random.default_rng([request.seed, i])
        galaxy = simulate_galaxy(target, galaxy_rng, heavy=(i == 0))
        meta = metadata_row(target, galaxy, galaxy_rng)
        name = dm.GalaxyFileName(target.mangaid, target.ifu_size, int(subject))
        write_gzipped(galaxy_hdus(target, galaxy, meta), out / name.file_name)
        files.append(str(out / name.file_name))
        catalog.append((name, meta, len(galaxy.clusters["center"]["x"]),
                        len(galaxy.clusters["star"]["x"])))
        for kind, rows in (("center", centers), ("star", stars)):
            table = galaxy.clusters[kind]
            for k in range(len(table["x"])):
                rows.append((name.metadata_file_name, table["ra"][k], table["dec"][k],
                             table["count"][k]))

    files += write_catalogs(out, catalog, centers, stars)
    notes.append(f"galaxy {targets[0].mangaid} is heavily classified (counts above 255)")
    return SampleResult(files=files, n_objects=len(targets), notes=notes)


def write_catalogs(out: Path, catalog: list, centers: list, stars: list) -> list[str]:
    """gz3d_metadata.fits, gz3d_galaxy_centers.fits and gz3d_foreground_stars.fits."""
    meta = np.concatenate([m for _, m, _, _ in catalog])
    table = Table()
    table["file_name"] = np.array([n.metadata_file_name for n, _, _, _ in catalog], dtype="S")
    table["zooniverse_subject_id"] = np.array([n.subject_id for n, _, _, _ in catalog], np.int64)
    table["number_galaxy_centers"] = np.array([c for _, _, c, _ in catalog], dtype=np.int64)
    table["number_foreground_stars"] = np.array([s for _, _, _, s in catalog], dtype=np.int64)
    table["observed"] = np.ones(len(catalog), dtype=bool)
    for name in dm.METADATA_DTYPE.names:
        table[name] = meta[name]
    paths = [out / dm.METADATA_NAME, out / dm.CENTERS_NAME, out / dm.STARS_NAME]
    table.write(paths[0], overwrite=True)
    for rows, path in ((centers, paths[1]), (stars, paths[2])):
        Table(rows=rows or None, names=("file_name", "ra", "dec", "count"),
              dtype=("S40", "f8", "f8", "i8")).write(path, overwrite=True)
    return [str(p) for p in paths]
