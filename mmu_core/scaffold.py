"""``mmu new-plugin NAME --modality M``: a survey plugin package that installs and passes its
own tests at once.

The generated plugin reads a simple stand-in raw format — one FITS binary table per sky tile,
whose columns already follow the stored convention of the modality — so the author starts from
a working build and replaces ``datamodel.py``, ``reader.py`` and ``samples.py`` with the
survey's real format. Its modules follow the plugins' naming convention (README.md, "Add a
survey"): ``hooks``, ``discover``, ``reader``, ``convert``, ``samples``, ``datamodel``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from mmu_core.models import MODALITIES, check_slug

# Per modality: the arrays the sample writes (shape after N, dtype expression), constant
# per-row columns the converter adds, and a line describing it.
MODALITY_SPECS: dict[str, dict[str, object]] = {
    "image": {
        "arrays": {"image_array": ("(3, 32, 32)", "np.float32"),
                   "image_ivar": ("(3, 32, 32)", "np.float32"),
                   "image_mask": ("(3, 32, 32)", "bool")},
        "constants": {"image_band": "np.array([b'g', b'r', b'i'])",
                      "image_scale": "np.full(3, 0.2, np.float32)",
                      "image_psf_fwhm": "np.full(3, 0.8, np.float32)"},
    },
    "spectrum": {
        "arrays": {"spectrum_flux": ("(500,)", "np.float32"),
                   "spectrum_ivar": ("(500,)", "np.float32"),
                   "spectrum_lsf_sigma": ("(500,)", "np.float32"),
                   "spectrum_mask": ("(500,)", "bool")},
        "constants": {"spectrum_lambda": "np.linspace(4000, 9000, 500, dtype=np.float32)"},
    },
    "ifu": {
        "arrays": {"ifu_flux": ("(8, 8, 40)", "np.float32"),
                   "ifu_ivar": ("(8, 8, 40)", "np.float32"),
                   "ifu_lsf_sigma": ("(8, 8, 40)", "np.float32"),
                   "ifu_mask": ("(8, 8, 40)", "np.int32"),
                   "ifu_image_data": ("(1, 8, 8)", "np.float32"),
                   "ifu_image_ivar": ("(1, 8, 8)", "np.float32"),
                   "ifu_image_mask": ("(1, 8, 8)", "np.int32")},
        "constants": {"ifu_lambda": "np.geomspace(3600, 10000, 40).astype(np.float32)",
                      "ifu_spaxel_size": "np.float32(0.5)",
                      "ifu_offset": "np.array([0, 0], np.int32)",
                      "ifu_size": "np.array([8, 8], np.int32)",
                      "ifu_image_label": "np.array([b'white_light'])",
                      "ifu_image_filter": "np.array([b''])",
                      "ifu_image_units": "np.array([b'flux'])"},
    },
    "lightcurve": {
        "arrays": {"lightcurve_time": ("(2, 12)", "np.float64"),
                   "lightcurve_flux": ("(2, 12)", "np.float32"),
                   "lightcurve_flux_err": ("(2, 12)", "np.float32"),
                   "lightcurve_mask": ("(2, 12)", "bool")},
        "constants": {"lightcurve_band": "np.array([b'g', b'r'])"},
    },
    "segmentation": {
        "arrays": {"segmentation_array": ("(2, 24, 24)", "np.int32"),
                   "segmentation_vote_fraction": ("(2,)", "np.float32"),
                   "image_array": ("(3, 24, 24)", "np.uint8")},
        "constants": {"segmentation_class": "np.array([b'disk', b'bar'])",
                      "image_band": "np.array([b'r', b'g', b'b'])",
                      "image_scale": "np.full(3, 0.1, np.float32)"},
    },
}


def _module_name(name: str) -> str:
    return "mmu_" + name.replace("-", "_").replace(".", "_")


def scaffold(name: str, modality: str, dest: Path) -> Path:
    """Write ``dest/mmu-NAME/`` and return that folder."""
    check_slug(name, "survey name")
    if modality not in MODALITIES:
        raise ValueError(f"modality {modality!r} is not one of {MODALITIES}")
    pkg = _module_name(name)
    root = Path(dest) / f"mmu-{name}"
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    spec = MODALITY_SPECS[modality]
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{pkg}/__init__.py": INIT,
        f"{pkg}/hooks.py": HOOKS,
        f"{pkg}/datamodel.py": DATAMODEL,
        f"{pkg}/discover.py": DISCOVER,
        f"{pkg}/reader.py": READER,
        f"{pkg}/convert.py": CONVERT,
        f"{pkg}/samples.py": SAMPLES,
        "tests/test_plugin.py": TESTS,
    }
    arrays = "\n".join(f"    {k!r}: ({shape}, {dt})," for k, (shape, dt) in spec["arrays"].items())
    constants = "\n".join(f"    {k!r}: {v}," for k, v in spec["constants"].items())
    values = {"name": name, "pkg": pkg, "modality": modality, "arrays": arrays,
              "constants": constants}
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(template).lstrip().format(**values))
    return root


PYPROJECT = '''
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "mmu-{name}"
version = "0.1.0"
description = "mmu survey plugin: {name} ({modality})"
requires-python = ">=3.10"
dependencies = ["mmu-core>=0.1", "numpy", "astropy"]

[project.entry-points.mmu]
{name} = "{pkg}.hooks"

[tool.setuptools.packages.find]
include = ["{pkg}*"]
'''

README = '''
# mmu-{name}

An [mmu](https://github.com/) survey plugin providing the `{name}` survey ({modality}).

    pip install -e .
    mmu list-surveys                 # shows {name}
    mmu sample {name} --out raw/ --n 200
    mmu build {name} --raw raw/ --out data/
    mmu validate data/{name}/default
    pytest tests/

The modules follow mmu's convention: `hooks.py` (the hook implementations, short),
`discover.py` (raw folder -> units of work), `reader.py` (parsing the raw files),
`convert.py` (a unit -> batches of rows), `samples.py` (synthetic raw files) and
`datamodel.py` (file names, HDU and column facts). They use a stand-in format (one FITS
table per sky tile, columns named as mmu stores them): replace `datamodel.py`, `reader.py`
and `samples.py` with the survey's published format, keeping the column conventions of the
{modality} modality (`mmu_core/schemas/`).
'''

INIT = '''
"""mmu plugin for the {name} survey."""

__version__ = "0.1.0"
'''

HOOKS = '''
"""mmu hook implementations for {name}: short, the work is in the sibling modules."""

from __future__ import annotations

from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, SurveyInfo

import {pkg}
from {pkg} import convert, discover, samples

SURVEY = "{name}"


@hookimpl
def mmu_describe():
    return [
        SurveyInfo(
            name=SURVEY,
            modality="{modality}",
            description="The {name} survey ({modality}).",
            configs=[ConfigInfo(name="default", description="everything")],
            default_config="default",
            version={pkg}.__version__,
            columns={{"mag": "a magnitude"}},
        )
    ]


@hookimpl
def mmu_discover(survey, config, raw_dir):
    return discover.discover(survey, config, raw_dir)


@hookimpl
def mmu_convert(unit, context):
    return convert.convert(unit, context)


@hookimpl
def mmu_aliases(survey, config):
    return {{"mag": "magnitude"}}


@hookimpl
def mmu_sample(survey, request):
    return samples.write_sample(request)
'''

DATAMODEL = '''
"""The {name} data model: file names, the table HDU and its columns (a stand-in format,
one FITS binary table per sky tile). Nothing here reads files."""

from __future__ import annotations

import numpy as np

TILE_GLOB = "tile-*.fits"
TABLE_HDU = "OBJECTS"

# The table's array columns: name -> (per-row shape, dtype).
ARRAYS = {{
{arrays}
}}

# Columns that are the same for every row; the converter adds them.
CONSTANTS = {{
{constants}
}}


def tile_name(index: int) -> str:
    return f"tile-{{index:04d}}.fits"
'''

DISCOVER = '''
"""Find the {name} units of work in a raw folder: one per tile file."""

from __future__ import annotations

from pathlib import Path

from mmu_core.models import WorkUnit

from {pkg} import datamodel as dm


def discover(survey: str, config: str, raw_dir: Path) -> list[WorkUnit]:
    return [
        WorkUnit(survey=survey, config=config, key=path.stem, files=[path.name])
        for path in sorted(Path(raw_dir).glob(dm.TILE_GLOB))
    ]
'''

READER = '''
"""Read the raw {name} files: one FITS binary table per tile."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmu_core.fits import get_hdu, read_fits

from {pkg} import datamodel as dm

WHAT = "{name} tile"


def read_tile(path: Path) -> dict[str, np.ndarray]:
    """Every column of a tile's table; InputError naming the file and HDU if unreadable."""
    with read_fits(path, WHAT, memmap=True) as hdul:
        table = get_hdu(hdul, dm.TABLE_HDU, path, WHAT).data
        return {{name: np.asarray(table[name]) for name in table.columns.names}}
'''

CONVERT = '''
"""Convert one {name} tile into batches of rows ({modality} columns as mmu stores them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmu_core.models import ConvertContext, WorkUnit

from {pkg} import datamodel as dm
from {pkg} import reader

BATCH_ROWS = 256


def convert(unit: WorkUnit, context: ConvertContext) -> Iterator[dict[str, np.ndarray]]:
    columns = reader.read_tile(Path(context.raw_dir) / unit.files[0])
    n = len(columns["object_id"])
    for a in range(0, n, BATCH_ROWS):
        batch = {{k: v[a : a + BATCH_ROWS] for k, v in columns.items()}}
        m = len(batch["object_id"])
        for k, v in dm.CONSTANTS.items():
            batch[k] = np.broadcast_to(v, (m, *np.shape(v))).copy()
        yield batch
'''

SAMPLES = '''
"""Write synthetic raw {name} files (the stand-in format that reader.py reads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from mmu_core.models import SampleRequest, SampleResult
from mmu_core.sampling import cone_positions

from {pkg} import datamodel as dm


def write_sample(request: SampleRequest, per_tile: int = 100) -> SampleResult:
    out_dir = Path(request.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n, seed = request.n, request.seed
    rng = np.random.default_rng(seed)
    # in the cone, the first objects exactly at request.positions when given
    ras, decs = cone_positions(request, n, rng)
    files = []
    for t, a in enumerate(range(0, n, per_tile)):
        m = min(per_tile, n - a)
        table = Table()
        table["object_id"] = np.arange(a, a + m, dtype=np.int64) + 1000 * seed + 1
        table["ra"], table["dec"] = ras[a : a + m], decs[a : a + m]
        table["mag"] = rng.normal(21, 1, m).astype(np.float32)
        for name, (shape, dtype) in dm.ARRAYS.items():
            if dtype is bool:
                table[name] = rng.random((m, *shape)) > 0.95
            elif np.issubdtype(dtype, np.integer):
                table[name] = rng.integers(0, 50, (m, *shape)).astype(dtype)
            else:
                table[name] = np.abs(rng.normal(1, 0.2, (m, *shape))).astype(dtype)
            if name.endswith("time"):
                table[name] = np.sort(table[name] * 100 + 60000, axis=-1)
        path = out_dir / dm.tile_name(t)
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(table, name=dm.TABLE_HDU)]).writeto(
            path, overwrite=True)
        files.append(str(path))
    return SampleResult(files=files, n_objects=n)
'''

TESTS = '''
"""The generated plugin conforms, builds and round-trips its sample."""

import numpy as np
from astropy.io import fits

import mmu_core
import {pkg}.hooks
from mmu_core import testing


def test_conformance():
    registry = testing.check_plugin({pkg}.hooks)
    assert "{name}" in registry.surveys


def test_sample_build_validate_round_trip(tmp_path):
    registry = testing.plugin_registry({pkg}.hooks)
    path = testing.sample_build_validate("{name}", tmp_path, n=150, registry=registry)
    ds = mmu_core.open_dataset(path)
    assert len(ds) == 150
    with fits.open(sorted((tmp_path / "raw" / "{name}").glob("tile-*.fits"))[0]) as hdul:
        table = hdul["OBJECTS"].data
        ids = np.asarray(table["object_id"])
        got = ds.get(ids)
        for name in table.columns.names:
            np.testing.assert_array_equal(got[name], np.asarray(table[name]), err_msg=name)
'''
