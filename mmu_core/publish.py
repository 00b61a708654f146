"""Stored datasets as a HuggingFace Hub dataset repository folder (``mmu publish``).

::

    result = mmu_core.publish("data", "hub-out", repo_id="me/mmu-sample")
    # hf upload me/mmu-sample hub-out --repo-type dataset
    datasets.load_dataset("me/mmu-sample", "desi_dr1_main", split="train")

The folder needs no loading script: its ``README.md`` (the dataset card) declares one
``configs:`` entry per dataset whose ``data_files`` glob matches that dataset's HDF5 files, so
``datasets`` reads them with its own packaged ``hdf5`` builder (chosen from the files'
extension). Layout of ``OUT``::

    README.md                  card: YAML front matter (configs, dataset_info, license, ...) + body
    LICENSE.md                 each dataset's license text (written when one is not a Hub license id)
    .gitattributes             large-file patterns, for pushes with the git command line
    <survey>_<config>/         one mmu dataset folder per config (mmu_core.open_dataset opens it)
      manifest.json            the source's, unchanged
      _index/                  the source's id index and positions sidecar
      healpix=N/i-of-n.hdf5    the data files (hard links to the source's where possible)

How ``datasets`` reads it (pinned by tests/test_publish.py against the installed ``datasets``):

- the first config's data files pick the builder (``.hdf5`` -> ``hdf5``); every config has
  ``data_files: [{split: train, path: <config>/healpix=*/*.hdf5}]``, which matches the data
  files only (not ``manifest.json`` nor ``_index/*.npy``);
- ``dataset_info`` of each config declares its ``features``, and the builder then loads
  exactly those HDF5 datasets (top-level names = our columns) and casts them to the declared
  types instead of inferring them from the first file. Declaring them is what makes every
  column we store readable: inferred, byte strings become ``binary`` and per-row arrays of
  more than five axes fail (``Array6D not supported``); declared, strings are ``string`` and
  such arrays nested fixed-length lists. ``splits`` gives the row count, which ``datasets``
  checks after reading;
- each config's ``batch_size`` (an option of the hdf5 builder's config) keeps a batch near
  :data:`BATCH_BYTES`; without it the builder reads a whole file per batch.

Columns are given as stored (native names, one feature per HDF5 dataset): a dtype the builder
cannot hold is left out of the features (so not loaded) and listed in the card with the reason
(:func:`hub_feature`). The HDF5 attributes (mmu's per-row XXH3 checksums, file metadata) are
not read by ``datasets``: only mmu's reader checks them.

Limits: the Hub's repository recommendations at the time of writing are fewer than 10,000
entries (files and folders) per folder (a hard limit), fewer than 100,000 files per repository,
files under 200 GB (500 GB is the hard per-file limit) and no per-repository size limit (the
account's storage quota applies). :func:`publish` checks the planned folder against these
numbers (parameters, so tests and stricter policies can lower them) before writing anything
and stops listing every breach.

The folder is written under a temporary sibling name and renamed into place when complete
(``overwrite`` swaps it for an existing one); an interrupted run leaves only the temporary
folder, removed by the next run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from mmu_core.errors import MMUError
from mmu_core.schemas import ALWAYS_PRESENT, get_modality
from mmu_core.schemas.features import column_feature, value_feature
from mmu_core.storage import layout
from mmu_core.storage.columns import ColumnSpec
from mmu_core.storage.manifest import Manifest, load_manifest
from mmu_core.storage.writer import swap_in
from mmu_core.version import __version__

# The Hub's repository limits and recommendations (see the module docstring).
HUB_MAX_FILES_PER_FOLDER = 10_000
HUB_MAX_FILES_PER_REPO = 100_000
HUB_MAX_FILE_BYTES = 200 * 10**9  # recommended; the hard limit is HUB_HARD_FILE_BYTES
HUB_HARD_FILE_BYTES = 500 * 10**9
GIT_LARGE_FILE_BYTES = 10 * 1024**2  # the Hub refuses larger files pushed by git outside LFS

BATCH_BYTES = 64 * 1024 * 1024  # stored bytes per batch the hdf5 builder reads
SPLIT = "train"
DATA_GLOB = f"{layout.PIXEL_PREFIX}*/*{layout.FILE_SUFFIX}"
CARD_NAME = "README.md"
LICENSE_NAME = "LICENSE.md"
LFS_PATTERNS = ("*.hdf5", "*.h5", "*.npy")

# License identifiers the Hub's card metadata accepts (its list holds more, mostly for code and
# models); a license text that normalises to one of these is given as that identifier.
HUB_LICENSES = frozenset({
    "apache-2.0", "mit", "bsd", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "isc",
    "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0",
    "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0",
    "cc-by-nc-sa-4.0", "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0",
    "odc-by", "odbl", "pddl", "etalab-2.0", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1",
    "lgpl-3.0", "agpl-3.0", "mpl-2.0", "unlicense",
})
SIZE_CATEGORIES = [(10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"),
                   (10**6, "100K<n<1M"), (10**7, "1M<n<10M"), (10**8, "10M<n<100M"),
                   (10**9, "100M<n<1B"), (10**10, "1B<n<10B"), (10**11, "10B<n<100B"),
                   (10**12, "100B<n<1T")]


class PublishError(MMUError):
    """The datasets cannot be published as asked (names the dataset, file or folder)."""


@dataclass
class PublishedConfig:
    """One dataset of a published folder: a ``configs:`` entry of the card."""

    name: str  # the config's name and folder: <survey>_<config>
    survey: str
    config: str
    modality: str | None
    source: Path  # the dataset folder it was published from
    rows: int
    files: int  # data files
    data_bytes: int
    pixels: int
    features: dict[str, Any]  # column -> datasets feature, as declared in the card
    unreadable: dict[str, str]  # column -> why datasets cannot load it
    batch_size: int

    @property
    def data_files(self) -> str:
        return f"{self.name}/{DATA_GLOB}"


@dataclass
class PublishResult:
    path: Path
    configs: list[PublishedConfig]
    files: int  # every file of the folder
    bytes: int
    linked: int  # data and index files hard-linked to the sources
    copied: int  # ... and those copied (another file system, or link=False)

    @property
    def card(self) -> Path:
        return self.path / CARD_NAME


@dataclass
class _Plan:
    """What one dataset contributes: its config record and the files to place."""

    config: PublishedConfig
    manifest: Manifest
    info: Any  # the plugin's SurveyInfo when the survey is installed, else None
    files: list[tuple[Path, PurePosixPath, int]] = field(default_factory=list)  # src, dest, bytes


# ---- public -----------------------------------------------------------------------------
def publish(
    root: Path | str | Sequence[Path | str],
    out: Path | str,
    *,
    repo_id: str | None = None,
    title: str | None = None,
    overwrite: bool = False,
    link: bool = True,
    registry: Any = None,
    max_file_bytes: int | None = HUB_MAX_FILE_BYTES,
    max_files_per_folder: int | None = HUB_MAX_FILES_PER_FOLDER,
    max_files_per_repo: int | None = HUB_MAX_FILES_PER_REPO,
    max_repo_bytes: int | None = None,
) -> PublishResult:
    """Write ``out``: a HuggingFace dataset repository folder holding every dataset found at
    or below ``root`` (one config each), with its dataset card.

    :param root: a folder of built datasets (``ROOT/SURVEY/CONFIG``, cross-match and concat
        outputs too), one dataset folder, or a list of such folders.
    :param out: the folder to write (must not overlap ``root``).
    :param repo_id: the Hub name (``user/name``) the card's loading examples use (default
        ``<user>/<out's name>``).
    :param title: the card's title (``pretty_name``).
    :param overwrite: replace an existing ``out`` (swapped in when the new one is complete).
    :param link: hard-link the data and index files to the sources (copies where the file
        system refuses); ``False`` copies them.
    :param registry: plugin registry for the surveys' and columns' descriptions in the card
        (default: the installed plugins; a survey not installed is described from its manifest).
    :param max_file_bytes: largest file allowed (``None``: no check).
    :param max_files_per_folder: most entries (files and folders) in one folder.
    :param max_files_per_repo: most files in the whole folder.
    :param max_repo_bytes: most bytes in the whole folder (default: no limit).
    :raises PublishError: nothing to publish, a dataset without a manifest or whose files
        differ from it, two datasets with one config name, ``out`` overlapping a root or
        existing (without ``overwrite``), or a limit broken (every breach listed).
    """
    roots = [Path(root)] if isinstance(root, (str, Path)) else [Path(r) for r in root]
    out = Path(out)
    found = _find_datasets(roots)
    _check_places(roots, found, out, overwrite)
    registry = _registry(registry)
    plans = [_plan(path, registry) for path in found]
    names: dict[str, Path] = {}
    for p in plans:
        if p.config.name in names:
            raise PublishError(f"{names[p.config.name]} and {p.config.source} would both be "
                               f"published as config {p.config.name!r}: publish them separately")
        names[p.config.name] = p.config.source
    configs = [p.config for p in plans]
    card = dataset_card(configs, [p.manifest for p in plans], [p.info for p in plans],
                        repo_id=repo_id or f"<user>/{out.name}", title=title)
    extra = {CARD_NAME: card.encode()}
    license_text = license_file(configs, [p.manifest for p in plans])
    if license_text is not None:
        extra[LICENSE_NAME] = license_text.encode()
    sizes = {PurePosixPath(k): len(v) for k, v in extra.items()}
    for p in plans:
        manifest = p.config.source / layout.MANIFEST_NAME
        sizes[PurePosixPath(p.config.name, layout.MANIFEST_NAME)] = manifest.stat().st_size
        sizes.update({dest: n for _, dest, n in p.files})
    large = [str(k) for k, n in sizes.items()
             if n > GIT_LARGE_FILE_BYTES and not any(k.match(x) for x in LFS_PATTERNS)]
    extra[".gitattributes"] = "".join(f"{x} filter=lfs diff=lfs merge=lfs -text\n"
                                      for x in [*LFS_PATTERNS, *sorted(large)]).encode()
    sizes[PurePosixPath(".gitattributes")] = len(extra[".gitattributes"])
    _check_limits(out, sizes, max_file_bytes=max_file_bytes,
                  max_files_per_folder=max_files_per_folder,
                  max_files_per_repo=max_files_per_repo, max_repo_bytes=max_repo_bytes)

    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}{layout.TMP_MARK}*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = layout.tmp_name(out, str(os.getpid()))
    linked = copied = 0
    try:
        tmp.mkdir()
        for p in plans:
            (tmp / p.config.name).mkdir()
            shutil.copyfile(p.config.source / layout.MANIFEST_NAME,
                            tmp / p.config.name / layout.MANIFEST_NAME)
            for src, dest, _ in p.files:
                target = tmp / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                if link and _hard_link(src, target):
                    linked += 1
                else:
                    shutil.copyfile(src, target)
                    copied += 1
        for name, data in extra.items():
            (tmp / name).write_bytes(data)
        _swap_in(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PublishResult(path=out, configs=configs, files=len(sizes),
                         bytes=sum(sizes.values()), linked=linked, copied=copied)


def hub_feature(spec: ColumnSpec) -> Any:
    """The ``datasets`` feature a stored column is declared with, so that the packaged hdf5
    builder gives it whole: numbers and booleans as ``Value``/fixed-length lists/``Array2D``
    .. ``Array5D`` (nested fixed-length lists beyond five axes), byte strings as ``string``
    (UTF-8), complex numbers as ``{"real", "imag"}`` of their float type, and a column with an
    empty axis as a variable-length list (what the builder makes of it).

    :raises ValueError: a dtype the builder cannot give (structured, object, time types, ...).
    """
    dtype = spec.np_dtype
    if dtype.kind == "c":
        part = hub_feature(ColumnSpec(np.dtype(f"<f{dtype.itemsize // 2}").str, spec.shape))
        return {"real": part, "imag": part}
    if dtype.kind not in "biufS":
        raise ValueError(f"dtype {spec.dtype} has no datasets feature the hdf5 builder fills")
    from datasets import List

    value = value_feature(spec)  # raises ValueError for dtypes Arrow lacks (float128)
    if 0 in spec.shape:
        return List(value)
    return column_feature(spec)


def hub_features(specs: dict[str, ColumnSpec]) -> tuple[dict[str, Any], dict[str, str]]:
    """(column -> feature, column -> reason) for every stored column: ``object_id``, ``ra``,
    ``dec``, ``healpix`` first, then the others in manifest order; columns without a feature
    go to the second dict."""
    features: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    order = [c for c in ALWAYS_PRESENT if c in specs] + [c for c in specs if c not in ALWAYS_PRESENT]
    for name in order:
        try:
            features[name] = hub_feature(specs[name])
        except (ValueError, TypeError) as exc:
            unreadable[name] = str(exc)
    return features, unreadable


def hub_license(text: str | None) -> str:
    """The Hub license identifier of a license as a plugin states it (``"CC BY 4.0"`` ->
    ``cc-by-4.0``); ``unknown`` when none is stated, ``other`` when it is no Hub identifier."""
    if not text or not text.strip():
        return "unknown"
    slug = re.sub(r"[\s_]+", "-", text.strip().lower())
    slug = re.sub(r"-?licen[cs]e-?", "-", slug).strip("-") or slug
    return slug if slug in HUB_LICENSES else "other"


# ---- finding and planning -----------------------------------------------------------------
def _find_datasets(roots: list[Path]) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        if not root.is_dir():
            raise PublishError(f"{root}: no such folder")
        here = [d for d in layout.find_datasets(root)
                if not any(part.startswith(".") for part in d.relative_to(root).parts)]
        if not here:
            raise PublishError(f"{root}: no dataset folder (manifest.json or healpix=N/*.hdf5) "
                               "at or below it")
        found += here
    return found


def _check_places(roots: list[Path], found: list[Path], out: Path, overwrite: bool) -> None:
    target = out.resolve()
    for place in [*roots, *found]:
        place = place.resolve()
        if target == place or place in target.parents or target in place.parents:
            raise PublishError(f"{out} overlaps {place}: publish into a folder outside the "
                               "datasets (overwriting it would delete them)")
    if out.exists():
        if not out.is_dir():
            raise PublishError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not overwrite:
            raise PublishError(f"{out} already exists and is not empty; pass overwrite=True "
                               "(--overwrite) or choose another folder")


def _registry(registry: Any) -> Any:
    if registry is not None:
        return registry
    from mmu_core.registry import get_registry

    return get_registry()


def config_name(survey: str, config: str) -> str:
    """A dataset's config name and folder in the published repository."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{survey}_{config}")


def _plan(path: Path, registry: Any) -> _Plan:
    manifest = load_manifest(path)
    if manifest is None:
        raise PublishError(f"{path}: no manifest.json (a folder of MMU v1 files?): publishing "
                           "takes datasets built by mmu, whose manifest records the files, "
                           "their checksums and the survey's citation and license")
    name = config_name(manifest.survey, manifest.config)
    base = path.resolve()
    files: list[tuple[Path, PurePosixPath, int]] = []
    for entry in manifest.files:
        if layout.parse_relpath(entry.path) is None:
            raise PublishError(f"{path / layout.MANIFEST_NAME} lists {entry.path!r}, which is "
                               "not a healpix=N/i-of-n.hdf5 file inside the dataset folder")
        src = _inside(path, base, entry.path)
        size = src.stat().st_size
        if size != entry.bytes:
            raise PublishError(f"{src} is {size:,} bytes but the manifest says {entry.bytes:,}: "
                               f"the dataset changed after it was built (mmu validate {path})")
        files.append((src, PurePosixPath(name, entry.path), size))
    index = path / layout.INDEX_DIR
    if index.is_dir():
        for f in sorted(index.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                src = _inside(path, base, f"{layout.INDEX_DIR}/{f.name}")
                files.append((src, PurePosixPath(name, layout.INDEX_DIR, f.name),
                              src.stat().st_size))
    specs = manifest.column_specs()
    features, unreadable = hub_features(specs)
    row_bytes = sum(specs[c].row_bytes for c in features)
    info = None
    try:
        info = registry.survey(manifest.survey).info
    except MMUError:
        pass
    config = PublishedConfig(
        name=name, survey=manifest.survey, config=manifest.config, modality=manifest.modality,
        source=path, rows=manifest.rows, files=len(manifest.files),
        data_bytes=sum(f.bytes for f in manifest.files), pixels=len(manifest.pixels),
        features=features, unreadable=unreadable,
        batch_size=max(1, BATCH_BYTES // max(row_bytes, 1)))
    return _Plan(config=config, manifest=manifest, info=info, files=files)


def _inside(path: Path, base: Path, relpath: str) -> Path:
    """``path / relpath``, a regular file whose real place is inside the dataset folder."""
    src = path / relpath
    if not src.is_file():
        raise PublishError(f"{src}: missing (the manifest lists it); run mmu validate {path}")
    real = src.resolve()
    if base not in real.parents:
        raise PublishError(f"{src} resolves to {real}, outside the dataset folder: refused")
    return src


def _check_limits(out: Path, sizes: dict[PurePosixPath, int], *, max_file_bytes: int | None,
                  max_files_per_folder: int | None, max_files_per_repo: int | None,
                  max_repo_bytes: int | None) -> None:
    problems = []
    if max_files_per_repo is not None and len(sizes) > max_files_per_repo:
        problems.append(f"{len(sizes):,} files, more than {max_files_per_repo:,} per repository "
                        f"(max_files_per_repo; the Hub recommends under "
                        f"{HUB_MAX_FILES_PER_REPO:,}): publish fewer datasets per repository, "
                        "or rebuild them with a larger --max-file-bytes (fewer, larger files)")
    if max_files_per_folder is not None:
        entries: dict[PurePosixPath, set[str]] = defaultdict(set)
        for path in sizes:
            for child, parent in zip([path, *path.parents], path.parents, strict=False):
                entries[parent].add(child.name)
        for folder, names in sorted(entries.items()):
            if len(names) > max_files_per_folder:
                where = "the top folder" if str(folder) == "." else f"{folder}/"
                hint = ("rebuild the dataset with a larger --max-file-bytes (fewer files per "
                        "pixel)" if folder.name.startswith(layout.PIXEL_PREFIX)
                        else "publish fewer datasets per repository")
                problems.append(f"{where} would hold {len(names):,} entries, more than "
                                f"{max_files_per_folder:,} per folder (max_files_per_folder; "
                                f"the Hub allows at most {HUB_MAX_FILES_PER_FOLDER:,}): {hint}")
    if max_file_bytes is not None:
        big = sorted((p for p, n in sizes.items() if n > max_file_bytes), key=str)
        for p in big[:10]:
            problems.append(f"{p} is {sizes[p]:,} bytes, more than {max_file_bytes:,} "
                            f"(max_file_bytes; the Hub recommends files under "
                            f"{HUB_MAX_FILE_BYTES // 10**9} GB and refuses files over "
                            f"{HUB_HARD_FILE_BYTES // 10**9} GB): rebuild the dataset with a "
                            "smaller --max-file-bytes")
        if len(big) > 10:
            problems.append(f"... and {len(big) - 10:,} more files over {max_file_bytes:,} bytes")
    total = sum(sizes.values())
    if max_repo_bytes is not None and total > max_repo_bytes:
        problems.append(f"{total:,} bytes in all, more than {max_repo_bytes:,} (max_repo_bytes): "
                        "publish fewer datasets per repository")
    if problems:
        raise PublishError(f"{out}: not written, it would break the Hub's limits:\n"
                           + "\n".join(f"  - {p}" for p in problems))


# ---- writing ----------------------------------------------------------------------------
def _hard_link(src: Path, dest: Path) -> bool:
    try:
        os.link(src, dest)
    except OSError:  # another file system, or links not allowed there: copy instead
        return False
    return True


def _swap_in(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the written folder into place, unless a non-empty OUT appeared meanwhile and
    ``overwrite`` is off."""
    if out.exists() and any(out.iterdir()) and not overwrite:  # appeared while we wrote
        raise PublishError(f"{out} already exists and is not empty; pass overwrite=True "
                               "(--overwrite) or choose another folder")
    swap_in(tmp, out)


# ---- the dataset card ---------------------------------------------------------------------
def survey_sources(provenance: Any) -> list[dict[str, Any]]:
    """The survey records (``survey``, ``config``, ``citation``, ``license``, ``homepage``) in
    a manifest's provenance: a build's own, each input's for cross-match and concat outputs."""
    if not isinstance(provenance, dict):
        return []
    if any(k in provenance for k in ("citation", "license", "homepage")):
        return [provenance]
    found: list[dict[str, Any]] = []
    inputs = [provenance.get("left"), provenance.get("right"),
              *(provenance.get("concatenated") or [])]
    for record in inputs:
        if isinstance(record, dict):
            found += survey_sources(record.get("provenance"))
    unique: dict[tuple, dict[str, Any]] = {}
    for s in found:
        unique.setdefault((s.get("survey"), s.get("config"), s.get("citation"),
                           s.get("license")), s)
    return list(unique.values())


def _licenses(manifest: Manifest) -> list[tuple[str, str, str]]:
    """(source label, license text, Hub identifier) of each survey a dataset comes from."""
    out = []
    for s in survey_sources(manifest.provenance):
        text = str(s.get("license") or "").strip()
        label = "/".join(str(s[k]) for k in ("survey", "config") if s.get(k))
        out.append((label or f"{manifest.survey}/{manifest.config}", text, hub_license(text)))
    return out or [(f"{manifest.survey}/{manifest.config}", "", "unknown")]


def _slug(text: str) -> str:
    text = re.sub(r"https?://\S+", "", text).lower()
    return re.sub(r"[^a-z0-9.]+", "-", text).strip("-.")[:48].strip("-.") or "other"


def license_file(configs: list[PublishedConfig], manifests: list[Manifest]) -> str | None:
    """``LICENSE.md``: each config's license as its survey states it, when one of them is no
    Hub license identifier (the card's ``license: other`` links to it); else ``None``."""
    rows = [(c, label, text, hub) for c, m in zip(configs, manifests, strict=True)
            for label, text, hub in _licenses(m)]
    if not any(hub == "other" for *_, hub in rows):
        return None
    lines = ["# Licenses", "",
             "Each config holds data of the survey named; its terms are the survey's:", ""]
    for c, label, text, _ in rows:
        lines.append(f"- `{c.name}` ({label}): {text or 'not stated'}")
    return "\n".join(lines) + "\n"


def _size_category(rows: int) -> str:
    for bound, name in SIZE_CATEGORIES:
        if rows < bound:
            return name
    return "n>1T"


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} PB"


def feature_text(feature: Any) -> str:
    """A short text for a feature in the card's column tables (``float32[5, 16, 16]``)."""
    from datasets import List, Value

    if isinstance(feature, dict):
        return "{" + ", ".join(f"{k}: {feature_text(v)}" for k, v in feature.items()) + "}"
    if isinstance(feature, Value):
        return feature.dtype
    if isinstance(feature, List):  # nested lists: their lengths outermost first
        dims = []
        while isinstance(feature, List):
            dims.append(str(feature.length) if feature.length >= 0 else "")
            feature = feature.feature
        return f"{feature_text(feature)}[{', '.join(dims)}]"
    shape = getattr(feature, "shape", None)
    if shape is not None:
        return f"{feature.dtype}[{', '.join(map(str, shape))}] ({type(feature).__name__})"
    return repr(feature)


def _stored_text(spec: ColumnSpec) -> str:
    dtype = spec.np_dtype
    name = f"bytes ≤ {dtype.itemsize}" if dtype.kind == "S" else dtype.name
    return name + (f" ({', '.join(map(str, spec.shape))})" if spec.shape else "")


def _arrow_bytes(specs: dict[str, ColumnSpec], features: dict[str, Any], rows: int) -> int:
    """The declared columns' size as numpy arrays: what the card gives as the split's bytes."""
    return int(rows * sum(specs[c].row_bytes for c in features))


def card_metadata(configs: list[PublishedConfig], manifests: list[Manifest],
                  title: str | None = None) -> dict[str, Any]:
    """The card's YAML front matter as a dict: ``configs`` (data files, the builder's batch
    size), ``dataset_info`` (features, rows, sizes), ``license`` (+ ``license_name`` and
    ``license_link`` for licenses that are no Hub identifier), ``pretty_name``, ``tags``,
    ``size_categories``. Written through ``datasets``' own serialisers, so that what it reads
    back is what was meant."""
    from datasets import Features
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    licenses = [x for m in manifests for x in _licenses(m)]
    ids = sorted({hub for *_, hub in licenses})
    meta: dict[str, Any] = {
        "pretty_name": title or _title(configs),
        "license": ids[0] if len(ids) == 1 else ids,
        "tags": ["astronomy", "multimodal-universe", "healpix"],
        "size_categories": [_size_category(sum(c.rows for c in configs))],
    }
    others = sorted({text for _, text, hub in licenses if hub == "other"})
    if others:
        meta["license_name"] = _slug(others[0]) if len(others) == 1 else "survey-data-policies"
        meta["license_link"] = LICENSE_NAME
    data = DatasetCardData(**meta)
    MetadataConfigs({c.name: {"data_files": [{"split": SPLIT, "path": c.data_files}],
                              "batch_size": c.batch_size} for c in configs}
                    ).to_dataset_card_data(data)
    infos = DatasetInfosDict()
    for c, m in zip(configs, manifests, strict=True):
        size = _arrow_bytes(m.column_specs(), c.features, c.rows)
        splits = SplitDict()
        splits.add(SplitInfo(name=SPLIT, num_bytes=size, num_examples=c.rows))
        infos[c.name] = DatasetInfo(features=Features(c.features), splits=splits,
                                    download_size=c.data_bytes, dataset_size=size)
    infos.to_dataset_card_data(data)
    return data.to_dict()


def _title(configs: list[PublishedConfig]) -> str:
    names = ", ".join(f"{c.survey}/{c.config}" for c in configs[:4])
    return f"Multimodal Universe: {names}" + (", ..." if len(configs) > 4 else "")


def dataset_card(configs: list[PublishedConfig], manifests: list[Manifest], infos: list[Any],
                 *, repo_id: str, title: str | None = None) -> str:
    """The text of ``README.md``: YAML front matter (:func:`card_metadata`) and the body
    (what each config holds, how to load it, licenses, citations)."""
    import yaml
    from huggingface_hub import DatasetCard

    meta = card_metadata(configs, manifests, title)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    text = f"---\n{front}---\n\n{_card_body(configs, manifests, infos, repo_id, meta)}"
    DatasetCard(text)  # parses the front matter as the Hub does: fails here, not after upload
    return text


def _datasets_version() -> str:
    import datasets

    return f"datasets {datasets.__version__}"


def _modality_text(modality: str | None) -> str:
    if not modality:
        return "none"
    try:
        return f"{modality} ({get_modality(modality).description})"
    except (KeyError, ValueError):
        return modality


def _card_body(configs: list[PublishedConfig], manifests: list[Manifest], infos: list[Any],
               repo_id: str, meta: dict[str, Any]) -> str:
    first = configs[0].name
    out = [f"# {meta['pretty_name']}", "",
           f"{len(configs)} dataset{'s' if len(configs) > 1 else ''} of the Multimodal Universe, "
           f"published with `mmu publish` (mmu {__version__}). Each config is one mmu dataset: "
           "one survey and configuration, its rows partitioned by sky position into HEALPix "
           "pixels (NSIDE 16, NESTED ordering) and stored as HDF5 files with one HDF5 dataset "
           "per column (`<config>/healpix=N/i-of-n.hdf5`, rows sorted by `object_id` within "
           "each pixel).", "",
           "| config | survey / config | modality | rows | files | size | pixels |",
           "|---|---|---|---:|---:|---:|---:|"]
    for c in configs:
        out.append(f"| `{c.name}` | {c.survey} / {c.config} | {c.modality or 'none'} | "
                   f"{c.rows:,} | {c.files:,} | {_human(c.data_bytes)} | {c.pixels:,} |")
    out += ["", "## Loading with `datasets`", "", "```python", "from datasets import load_dataset",
            "", f'ds = load_dataset("{repo_id}", "{first}", split="train")  # downloads its files',
            f'it = load_dataset("{repo_id}", "{first}", split="train", streaming=True)',
            "```", "",
            "- No loading script: `datasets` reads the HDF5 files with its packaged `hdf5` "
            f"builder (in `datasets` 4.1 and later; this card was written with {_datasets_version()}), "
            "one column per stored HDF5 dataset, under the survey's native names, typed "
            "by the features this card declares (`dataset_info`): numbers as stored, strings as "
            "`string`, per-row arrays as fixed-length lists or `Array2D` .. `Array5D`. Python "
            "rows hold arrays as nested lists, many times their bytes: take large arrays "
            "(images, cubes) with `ds.with_format(\"numpy\")`.",
            "- Taking several rows at once in the numpy or torch format casts float64 columns "
            "to float32 (`ra` and `dec` included: steps of 0.11 arcsec in ra from 256 degrees up); single rows "
            "and plain Python rows keep float64.",
            "- Rows come file by file, in the order of the files' paths (as listed in the "
            "config's `manifest.json`), each file's rows as stored.",
            "- `datasets` does not read HDF5 attributes, so mmu's per-row checksums are not "
            "checked on this path; each file's sha256 is in its config's `manifest.json` "
            "(`mmu validate --strict` checks them).", "",
            "## Loading with mmu", "", "```python",
            "from huggingface_hub import snapshot_download", "import mmu_core", "",
            f'folder = snapshot_download("{repo_id}", repo_type="dataset", '
            f'allow_patterns=["{first}/*"])',
            f'ds = mmu_core.open_dataset(f"{{folder}}/{first}")  # get(ids), cone(), iter_batches()',
            f'examples = mmu_core.hf.load(f"{{folder}}/{first}")  # logical examples, standard names',
            "```", "",
            "Each config folder is an mmu dataset (`manifest.json`, the id index `_index/`, the "
            "files): random access by id and by sky position, every read checked against the "
            "stored checksums, the survey's standard column names (aliases), and the modality's "
            "logical examples.", ""]
    for c, m, info in zip(configs, manifests, infos, strict=True):
        out += _config_section(c, m, info)
    out += ["## License", ""]
    for c, m in zip(configs, manifests, strict=True):
        for label, text, hub in _licenses(m):
            shown = text or "not stated by the survey plugin"
            out.append(f"- `{c.name}` ({label}): {shown}" + (f" (`{hub}`)" if text else ""))
    out += ["", "## Citation", "",
            "Cite the surveys whose data you use:", ""]
    for c, m in zip(configs, manifests, strict=True):
        sources = survey_sources(m.provenance) or [{}]
        for s in sources:
            label = ("/".join(str(s[k]) for k in ("survey", "config") if s.get(k))
                     or f"{c.survey}/{c.config}")
            text = str(s.get("citation") or "").strip()
            if "\n" in text:  # a BibTeX entry, say: kept as it is
                out += [f"- `{c.name}` ({label}):", "", "  ```", *(f"  {x}" for x in
                                                                 text.splitlines()), "  ```"]
            else:
                out.append(f"- `{c.name}` ({label}): {text or 'not stated by the survey plugin'}")
    return "\n".join(out) + "\n"


def _config_section(c: PublishedConfig, m: Manifest, info: Any) -> list[str]:
    specs = m.column_specs()
    standard = {n: s for n, s in m.aliases.items() if n in specs and s not in specs}
    described = dict(info.columns) if info is not None else {}
    head = f"`{c.survey}` / `{c.config}`"
    if info is not None:
        head += f": {info.description}"
        extra = next((x.description for x in info.configs if x.name == c.config and x.description),
                     None)
        if extra:
            head += f" ({extra})"
    homepage = next((s.get("homepage") for s in survey_sources(m.provenance) if s.get("homepage")),
                    None)
    out = [f"## `{c.name}`", "", head + ".", "",
           f"- modality: {_modality_text(c.modality)}",
           f"- {c.rows:,} rows in {c.files:,} files ({_human(c.data_bytes)}), {c.pixels:,} HEALPix "
           "pixels",
           f"- built {m.created} by "
           + " ".join(x for x in (m.distribution or "mmu", m.plugin_version) if x)
           + f" (mmu {m.core_version})"]
    if homepage:
        out.append(f"- survey homepage: {homepage}")
    out += ["", "| column | stored (dtype, shape per row) | `datasets` feature | standard name "
            "| description |", "|---|---|---|---|---|"]
    order = [n for n in ALWAYS_PRESENT if n in specs] + [n for n in specs if n not in ALWAYS_PRESENT]
    for name in order:
        spec = specs[name]
        feature = (feature_text(c.features[name]) if name in c.features
                   else "not loaded (see below)")
        out.append(f"| `{name}` | {_stored_text(spec)} | {feature} | {standard.get(name, '')} | "
                   f"{described.get(name, '')} |")
    if c.unreadable:
        out += ["", "Not loaded by `datasets` (left out of the declared features; read them with "
                "mmu):", ""]
        out += [f"- `{name}`: {why}" for name, why in c.unreadable.items()]
    return [*out, ""]
