"""The stored layout, built and parsed here and nowhere else.

``<root>/<survey>/<config>/healpix=<N>/<i:03d>-of-<n:03d>.hdf5`` with N the NSIDE-16 NESTED
HEALPix pixel of the rows' (ra, dec) — the Multimodal Universe v1 layout, plus ``i-of-n``
splitting for pixels over the size budget.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NSIDE = 16
NEST = True
ORDERING = "NESTED"
NPIX = 12 * NSIDE * NSIDE
PIXEL_AREA_DEG2 = 4.0 * math.pi * (180.0 / math.pi) ** 2 / NPIX  # 13.43 square degrees
MANIFEST_NAME = "manifest.json"
INDEX_DIR = "_index"
STAGING_DIR = "_staging"
PIXEL_PREFIX = "healpix="
FILE_SUFFIX = ".hdf5"
TMP_MARK = ".tmp-"

_PIXEL_RE = re.compile(r"^healpix=(\d+)$")
_FILE_RE = re.compile(r"^(\d{3,})-of-(\d{3,})\.hdf5?$")


@dataclass(frozen=True, order=True)
class ShardFile:
    """One stored file: its pixel and its place among the pixel's files."""

    pixel: int
    index: int  # 1-based
    count: int

    @property
    def relpath(self) -> str:
        return f"{pixel_dirname(self.pixel)}/{file_name(self.index, self.count)}"


def pixel_dirname(pixel: int) -> str:
    return f"{PIXEL_PREFIX}{int(pixel)}"


def file_name(index: int, count: int) -> str:
    return f"{index:03d}-of-{count:03d}{FILE_SUFFIX}"


def dataset_dir(root: Path | str, survey: str, config: str) -> Path:
    return Path(root) / survey / config


def parse_pixel_dir(name: str) -> int | None:
    m = _PIXEL_RE.match(name)
    return int(m.group(1)) if m else None


def parse_relpath(relpath: str) -> ShardFile | None:
    """``healpix=N/i-of-n.hdf5`` -> ShardFile, or None if the path is not a shard."""
    parts = str(relpath).replace("\\", "/").split("/")  # (no pathlib: runs once a file)
    if len(parts) != 2:
        return None
    pixel = parse_pixel_dir(parts[0])
    m = _FILE_RE.match(parts[1])
    if pixel is None or m is None:
        return None
    return ShardFile(pixel, int(m.group(1)), int(m.group(2)))


def list_shards(path: Path | str) -> list[ShardFile]:
    """Every finished shard file under a dataset folder, sorted by pixel then index."""
    path = Path(path)
    shards = []
    for pixel_dir in path.iterdir() if path.is_dir() else []:
        if parse_pixel_dir(pixel_dir.name) is None or not pixel_dir.is_dir():
            continue
        for f in pixel_dir.iterdir():
            shard = parse_relpath(f"{pixel_dir.name}/{f.name}")
            if shard is not None:
                shards.append(shard)
    return sorted(shards)


def is_dataset_dir(path: Path | str) -> bool:
    path = Path(path)
    return (path / MANIFEST_NAME).is_file() or bool(list_shards(path))


def find_datasets(root: Path | str) -> list[Path]:
    """Dataset folders at or below ``root`` (a manifest or healpix=N folders inside)."""
    root = Path(root)
    if is_dataset_dir(root):
        return [root]
    found = []
    for manifest in sorted(root.rglob(MANIFEST_NAME)):
        found.append(manifest.parent)
    return found


def healpix_of(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """NSIDE-16 NESTED pixel of each (ra, dec) in degrees."""
    import healpy

    return healpy.ang2pix(NSIDE, np.asarray(ra, float), np.asarray(dec, float), lonlat=True, nest=NEST).astype(np.int64)


NEIGHBOURS_FILE = Path(__file__).with_name("neighbours_nside16_nested.npy")


@functools.cache
def _neighbour_table() -> np.ndarray:
    return np.load(NEIGHBOURS_FILE)


def neighbours(pixels: np.ndarray) -> np.ndarray:
    """(n, 8) NSIDE-16 NESTED neighbours of each pixel (SW, W, NW, N, NE, E, SE, S; -1 where a
    pixel has only 7), as ``healpy.get_all_neighbours`` gives them. Read from a table shipped
    with the package (made by healpy, checked against it by the tests): importing healpy
    takes ~0.8 s (it loads matplotlib), longer than planning a whole cross-match."""
    return _neighbour_table()[np.asarray(pixels, dtype=np.int64)].astype(np.int64)


def tmp_name(final: Path, token: str) -> Path:
    """A temporary sibling name for ``final``; never parsed as a shard or pixel."""
    return final.with_name(f".{final.name}{TMP_MARK}{token}")
