"""Shared fixtures: raw folders written the way the releases are, and independent readers.

The CSV side is read with pandas, never with the plugin's reader, so a test compares the
built dataset with what an independent parser finds in the same files.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import mmu_plasticc.hooks
from mmu_core import testing
from mmu_core.build import build
from mmu_core.models import SampleRequest

KAGGLE_LC = "object_id,mjd,passband,flux,flux_err,detected"
KAGGLE_META = (
    "object_id,ra,decl,gal_l,gal_b,ddf,hostgal_specz,hostgal_photoz,"
    "hostgal_photoz_err,distmod,mwebv,target"
)


def write_text(path: Path, text: str) -> Path:
    """Write a file, gzipped when its name ends in .gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", newline="") as fh:
            fh.write(text)
    else:
        path.write_text(text, newline="")
    return path


def kaggle_folder(
    raw: Path, lc_lines: list[str], meta_lines: list[str], config: str = "train"
) -> Path:
    """A Kaggle-layout folder for ``config`` from raw CSV lines (without headers)."""
    stem = "training_set" if config == "train" else "test_set"
    header = KAGGLE_META if config == "train" else KAGGLE_META.rsplit(",", 1)[0]
    write_text(raw / f"{stem}.csv", KAGGLE_LC + "\n" + "".join(line + "\n" for line in lc_lines))
    write_text(
        raw / f"{stem}_metadata.csv", header + "\n" + "".join(line + "\n" for line in meta_lines)
    )
    return raw


def meta_line(object_id: int, ra: float = 150.0, dec: float = 2.0, target: int = 90) -> str:
    """A Kaggle training metadata line for an extragalactic object."""
    ddf = int(object_id < 1_000_000)
    return f"{object_id},{ra},{dec},236.9,42.1,{ddf},0.3,0.31,0.02,41.2,0.02,{target}"


def csv_observations(files: list[Path]) -> pd.DataFrame:
    """Every light-curve row of ``files``, parsed by pandas, in file order, with its line."""
    frames = []
    for f in files:
        df = pd.read_csv(f).rename(columns={"detected_bool": "detected"})
        df["file"], df["line"] = Path(f).name, np.arange(len(df)) + 2
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def stored_observations(path: Path) -> pd.DataFrame:
    """Every real (unmasked) observation of a built dataset, in stored order."""
    import mmu_core

    ds = mmu_core.open_dataset(path)
    rows = []
    for batch in ds.iter_batches(
        columns=[
            "object_id",
            "lightcurve_time",
            "lightcurve_flux",
            "lightcurve_flux_err",
            "lightcurve_detected",
            "lightcurve_mask",
            "lightcurve_band",
        ]
    ):
        real = ~batch["lightcurve_mask"]
        n, n_bands, length = real.shape
        obj = np.broadcast_to(batch["object_id"][:, None, None], real.shape)
        band = np.broadcast_to(np.arange(n_bands)[None, :, None], real.shape)
        pos = np.broadcast_to(np.arange(length)[None, None, :], real.shape)
        names = np.broadcast_to(batch["lightcurve_band"][:, :, None], real.shape)
        rows.append(
            pd.DataFrame(
                {
                    "object_id": obj[real],
                    "passband": band[real],
                    "position": pos[real],
                    "band_name": names[real].astype(str),
                    "mjd": batch["lightcurve_time"][real],
                    "flux": batch["lightcurve_flux"][real],
                    "flux_err": batch["lightcurve_flux_err"][real],
                    "detected": batch["lightcurve_detected"][real].astype(int),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def sample(raw: Path, n: int = 12, seed: int = 0, release: str = "kaggle") -> list[Path]:
    """Write the plugin's sample files; returns their paths."""
    result = mmu_plasticc.hooks.mmu_sample(
        "plasticc", SampleRequest(out_dir=raw, n=n, seed=seed, options={"release": release})
    )
    return [Path(f) for f in result.files]


def build_plasticc(raw: Path, out: Path, config: str = "train", **options):
    """Build through the core with a registry holding only this plugin."""
    registry = testing.plugin_registry(mmu_plasticc.hooks)
    return build("plasticc", raw, out, config=config, options=options, registry=registry, workers=1)


@pytest.fixture
def helpers() -> SimpleNamespace:
    return SimpleNamespace(
        write_text=write_text,
        kaggle_folder=kaggle_folder,
        meta_line=meta_line,
        csv_observations=csv_observations,
        stored_observations=stored_observations,
        sample=sample,
        build=build_plasticc,
    )


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict[tuple[str, str], tuple[Path, list[Path]]]:
    """Samples of both releases built in both configs: (release, config) -> (dataset, raw files)."""
    out = {}
    for release in ("kaggle", "unblinded"):
        root = tmp_path_factory.mktemp(release)
        files = sample(root / "raw", n=16, seed=7, release=release)
        for config in ("train", "test"):
            summary = build_plasticc(root / "raw", root / "out", config=config)
            lc = [f for f in files if _is_lightcurve(f.name, config)]
            out[(release, config)] = (summary.path, lc)
    return out


def _is_lightcurve(name: str, config: str) -> bool:
    if "metadata" in name:
        return False
    return name.startswith(
        ("training_set", "plasticc_train") if config == "train" else ("test_set", "plasticc_test")
    )
