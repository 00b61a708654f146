"""Where another sample's objects are, so that a new sample can share them (``mmu sample
SURVEY --like OTHER``): two independent samples never overlap, so a user's own cross-match
would find no pairs.

``OTHER`` is a built dataset (any folder :func:`~mmu_core.storage.reader.open_dataset` opens)
or a raw folder written by ``mmu sample``, which records the survey that wrote it in
``mmu-sample.json``; its objects' positions are those its converter gives (the positions a
build of it would store), read through the registry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import MMUError
from mmu_core.models import ConvertContext, SampleRequest, SampleResult
from mmu_core.registry import Registry

RECORD_NAME = "mmu-sample.json"
LIKE_FRACTION = 0.5  # share of the new sample's objects placed on the other's


def record_sample(survey: str, request: SampleRequest, result: SampleResult) -> Path:
    """Write ``OUT/mmu-sample.json``: which survey wrote the folder, and how."""
    path = Path(request.out_dir) / RECORD_NAME
    path.write_text(json.dumps({
        "survey": survey, "n": request.n, "seed": request.seed, "ra": request.ra,
        "dec": request.dec, "radius_deg": request.radius, "objects": result.n_objects,
        "files": len(result.files)}, indent=2))
    return path


def positions_of(path: Path | str, registry: Registry) -> np.ndarray:
    """(n, 2) ra, dec in degrees of the objects of a dataset or of an ``mmu sample`` folder."""
    path = Path(path)
    record = path / RECORD_NAME
    if record.is_file():
        survey = json.loads(record.read_text())["survey"]
        config = registry.resolve_config(survey, None)
        out = []
        for unit in registry.discover(survey, config, path, {}):
            for batch in registry.convert(unit, ConvertContext(raw_dir=path, options={})):
                out.append(np.stack([np.asarray(batch["ra"], float),
                                     np.asarray(batch["dec"], float)], axis=1))
        if not out:
            raise MMUError(f"{path}: the {survey} sample there has no objects")
        return np.concatenate(out)
    from mmu_core.storage.reader import DatasetError, open_dataset

    try:
        ds = open_dataset(path)
    except DatasetError as exc:
        raise MMUError(f"--like {path}: neither a dataset nor a folder written by mmu sample "
                       f"(no {RECORD_NAME}): {exc}") from None
    with ds:
        parts = [np.stack([b["ra"], b["dec"]], axis=1)
                 for b in ds.iter_batches(columns=["ra", "dec"])]
    return np.concatenate(parts) if parts else np.empty((0, 2))


def like_request(request: SampleRequest, other: np.ndarray, seed: int | None = None,
                 fraction: float = LIKE_FRACTION) -> SampleRequest:
    """``request`` with about ``fraction`` of its objects placed on ``other``'s positions
    (drawn at random, reproducibly from the seed), the sample's cone centred on them."""
    if not len(other):
        raise MMUError("--like: the other sample has no objects")
    rng = np.random.default_rng(request.seed if seed is None else seed)
    k = min(len(other), max(1, int(round(request.n * fraction))))
    chosen = other[rng.permutation(len(other))[:k]]
    ra0, dec0, radius = _cone_around(other)
    update: dict[str, Any] = {"positions": [tuple(map(float, p)) for p in chosen],
                              "ra": ra0, "dec": dec0, "radius": max(radius, 1e-3)}
    return request.model_copy(update=update)


def _cone_around(points: np.ndarray) -> tuple[float, float, float]:
    """A cone holding every point: centre at their mean direction, radius to the farthest."""
    ra, dec = np.radians(points[:, 0]), np.radians(points[:, 1])
    v = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=1)
    c = v.mean(axis=0)
    c /= np.linalg.norm(c)
    radius = float(np.degrees(np.arccos(np.clip(v @ c, -1, 1)).max()))
    return (float(np.degrees(np.arctan2(c[1], c[0])) % 360.0),
            float(np.degrees(np.arcsin(c[2]))), radius)
