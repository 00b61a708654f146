"""``mmu validate``: check a stored dataset and report every problem found.

Cheap checks run on every row (lengths, ra/dec, healpix, ids); every stored byte is checked
against its checksum (the block digests of contiguous columns, HDF5's Fletcher32 of chunked
ones; columns without either, as in MMU v1 files, are counted as *unchecked*, not corrupt);
the modality's per-row schema checks (the pydantic logical example) run on a sample of rows
per file (all rows with ``full=True``); ``strict=True`` also compares each file's sha256 with
the manifest's. Works without a manifest too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from rich.console import Console

from mmu_core import schemas
from mmu_core.schemas.common import ALWAYS_PRESENT
from mmu_core.storage import layout
from mmu_core.storage.access import ColumnAccess, foreign_storage
from mmu_core.storage.columns import ColumnSpec
from mmu_core.storage.index import IdIndex
from mmu_core.storage.integrity import CorruptDataError
from mmu_core.storage.manifest import load_manifest
from mmu_core.storage.writer import sha256_of

MAX_ROWS_REPORTED = 5
VERIFY_BYTES = 64 * 1024 * 1024  # bytes of one column read at a time while verifying


@dataclass
class Issue:
    message: str
    file: str | None = None
    column: str | None = None
    row: int | None = None

    def __str__(self) -> str:
        where = [p for p in (self.file, self.column and f"column {self.column}",
                             self.row is not None and f"row {self.row}") if p]
        return f"{' / '.join(where)}: {self.message}" if where else self.message


@dataclass
class Report:
    path: Path
    problems: list[Issue] = field(default_factory=list)
    files_checked: int = 0
    rows_checked: int = 0
    examples_checked: int = 0
    checksums_checked: int = 0
    columns_verified: int = 0  # (file, column) pairs whose every byte matched its checksums
    columns_unchecked: int = 0  # (file, column) pairs stored without checksums

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, message: str, file: str | None = None, column: str | None = None,
            row: int | None = None) -> None:
        self.problems.append(Issue(message, file, column, row))

    def text(self) -> str:
        head = (f"{self.path}: {'valid' if self.ok else 'INVALID'} — {self.files_checked} files, "
                f"{self.rows_checked:,} rows, {self.examples_checked} examples schema-checked, "
                f"{self.columns_verified} columns verified"
                + (f", {self.columns_unchecked} unchecked (no checksums)"
                   if self.columns_unchecked else "")
                + (f", {self.checksums_checked} file checksums" if self.checksums_checked else ""))
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])

    def print(self, console: Console) -> None:
        style = "green" if self.ok else "red"
        lines = self.text().splitlines()
        console.print(f"[{style}]{lines[0]}[/]", highlight=False)
        for line in lines[1:]:
            console.print(line, highlight=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "ok": self.ok, "files_checked": self.files_checked,
            "rows_checked": self.rows_checked, "examples_checked": self.examples_checked,
            "checksums_checked": self.checksums_checked,
            "columns_verified": self.columns_verified,
            "columns_unchecked": self.columns_unchecked,
            "problems": [p.__dict__ for p in self.problems],
        }


def validate(path: Path | str, strict: bool = False, full: bool = False,
             sample_rows: int = 8, seed: int = 0) -> Report:
    """Validate the dataset folder ``path``; never raises for a bad dataset, reports it."""
    path = Path(path)
    report = Report(path)
    if not path.is_dir():
        report.add("no such dataset folder")
        return report
    try:
        manifest = load_manifest(path)
    except Exception as exc:  # noqa: BLE001 - a corrupt manifest is a finding
        report.add(f"manifest.json is unreadable: {exc}")
        manifest = None
    on_disk = {s.relpath for s in layout.list_shards(path)}
    if manifest is not None:
        listed = {f.path: f for f in manifest.files}
        for rel in sorted(set(listed) - on_disk):
            if layout.parse_relpath(rel) is None:
                report.add("listed in the manifest, but not a healpix=N/i-of-n.hdf5 path inside "
                           "the dataset folder (refused)", file=rel)
            else:
                report.add("listed in the manifest but missing", file=rel)
        for rel in sorted(on_disk - set(listed)):
            report.add("present but not listed in the manifest", file=rel)
        if manifest.rows != sum(f.rows for f in manifest.files):
            report.add(f"manifest rows {manifest.rows} != sum of its files' rows")
        relpaths = sorted(set(listed) & on_disk)
        specs = manifest.column_specs()
        modality = schemas.canonical_name(manifest.modality)
    else:
        listed = {}
        relpaths = sorted(on_disk)
        specs = None
        modality = None
    if not relpaths:
        from mmu_core.storage.hats import is_hats_catalog

        if is_hats_catalog(path):
            report.add("a HATS catalog (Parquet), not an mmu HDF5 dataset: validate checks the "
                       "HDF5 layout; `mmu import-hats` converts it into one")
        else:
            report.add("no data files (healpix=N/i-of-n.hdf5)")
        return report

    ids_parts: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    rng = np.random.default_rng(seed)
    for fi, rel in enumerate(relpaths):
        shard = layout.parse_relpath(rel)
        real = (path / rel).resolve()
        if not real.is_relative_to(path.resolve()):
            report.add(f"leads outside the dataset folder (to {real}); not read", file=rel)
            continue
        try:
            h = h5py.File(path / rel, "r")
        except Exception as exc:  # noqa: BLE001
            report.add(f"cannot be opened as HDF5: {exc}", file=rel)
            continue
        with h:
            foreign = foreign_storage(h)
            for name, what in foreign:
                report.add(f"is {what}: data outside the dataset's files (refused; the file is "
                           "not read further)", file=rel, column=name)
            if foreign:
                continue
            report.files_checked += 1
            file_specs = {k: ColumnSpec(d.dtype.str, tuple(d.shape[1:]))
                          for k, d in h.items() if isinstance(d, h5py.Dataset) and d.ndim}
            if specs is None:
                specs = dict(file_specs)
            if modality is None:
                modality = (schemas.MATCHED if "namespaces" in h.attrs
                            else schemas.guess_modality(file_specs))
            for col in ALWAYS_PRESENT:
                if col not in file_specs:
                    report.add("required column missing", file=rel, column=col)
            if "object_id" not in file_specs:
                continue
            n = h["object_id"].shape[0]
            lengths_ok = True
            for name, ds in h.items():
                if isinstance(ds, h5py.Dataset) and ds.ndim and ds.shape[0] != n:
                    lengths_ok = False
                    report.add(f"has {ds.shape[0]} rows, object_id has {n} (truncated column?)",
                               file=rel, column=name)
            for name, spec in (specs or {}).items():
                got = file_specs.get(name)
                if got is None:
                    report.add("column listed in the manifest is missing", file=rel, column=name)
                elif got.shape != spec.shape or np.dtype(got.dtype).kind != spec.np_dtype.kind:
                    report.add(f"dtype/shape {got.dtype}{got.shape} differ from the manifest's "
                               f"{spec.dtype}{spec.shape}", file=rel, column=name)
            if rel in listed and listed[rel].rows != n:
                report.add(f"has {n} rows, the manifest says {listed[rel].rows}", file=rel)
            report.rows_checked += n
            ids = h["object_id"][...]
            ids_parts.append(ids)
            owners.append(np.full(len(ids), fi, np.int32))
            if len(ids) > 1 and not np.all(ids[1:] >= ids[:-1]):
                report.add("rows are not sorted by object_id (lookups rely on it)", file=rel,
                           column="object_id")
            _check_positions(report, h, rel, shard.pixel if shard else None, n)
            if lengths_ok:
                _check_stored_bytes(report, path / rel, h, rel)
            if strict and rel in listed:
                report.checksums_checked += 1
                if listed[rel].sha256 and sha256_of(path / rel) != listed[rel].sha256:
                    report.add("checksum mismatch (file changed since the build)", file=rel)
            if modality and n and lengths_ok:
                rows = _sample_rows(n, sample_rows if not full else n, rng)
                _check_examples(report, h, rel, modality, rows)

    if modality and specs:
        for msg in _check_modality_columns(modality, specs):
            report.add(msg)
    if ids_parts:
        all_ids = np.concatenate(ids_parts)
        own = np.concatenate(owners)
        order = np.argsort(all_ids, kind="stable")
        s = all_ids[order]
        dup = np.flatnonzero(s[1:] == s[:-1])
        for d in dup[:MAX_ROWS_REPORTED]:
            value = s[d].decode() if isinstance(s[d], bytes) else s[d]
            report.add(f"object_id {value} is not unique (also in {relpaths[own[order[d]]]})",
                       file=relpaths[own[order[d + 1]]], column="object_id")
        if len(dup) > MAX_ROWS_REPORTED:
            report.add(f"... {len(dup) - MAX_ROWS_REPORTED} more duplicate object_ids")
        if manifest is not None:
            index = IdIndex.load(path)
            if index is None:
                report.add("_index/ is missing: lookups by id will rebuild it in memory")
            elif len(index) != len(all_ids):
                report.add(f"_index/ holds {len(index)} ids, the files {len(all_ids)}")
            _check_positions_sidecar(report, path, relpaths, manifest, strict)
    return report


def _check_stored_bytes(report: Report, file: Path, h: h5py.File, rel: str) -> None:
    """Read every column of a file once, checked against its checksums."""
    for name, d in h.items():
        if not isinstance(d, h5py.Dataset) or not d.ndim:
            continue
        access = ColumnAccess(file, h, name, d.dtype, tuple(d.shape[1:]))
        if not access.checked:
            report.columns_unchecked += 1
            continue
        row_bytes = max(1, int(np.prod(d.shape[1:], dtype=np.int64)) * d.dtype.itemsize)
        step = max(1, VERIFY_BYTES // row_bytes)
        try:
            for a in range(0, access.n, step):
                access.slice(a, min(access.n, a + step))
        except CorruptDataError as exc:
            report.add(str(exc).split(": ", 1)[-1], file=rel, column=name)
            continue
        report.columns_verified += 1


def _check_positions_sidecar(report: Report, path: Path, relpaths: list[str], manifest: Any,
                             strict: bool) -> None:
    """The cross-match positions sidecar must describe the files as they are."""
    from mmu_core.storage.index import load_positions

    side = load_positions(path)
    if side is None:
        return
    ids, ra, dec, offsets = side
    order = [f.path for f in manifest.files]
    rows = np.array([f.rows for f in manifest.files])
    if len(offsets) != len(order) + 1 or not np.array_equal(np.diff(offsets), rows):
        report.add("_index/pos_*.npy do not match the manifest's files (stale sidecar)")
        return
    if not strict:
        return
    for i, rel in enumerate(order):
        if rel not in relpaths:
            continue
        a, b = int(offsets[i]), int(offsets[i + 1])
        with h5py.File(path / rel, "r") as h:
            same = (np.array_equal(h["object_id"][...], ids[a:b])
                    and np.array_equal(h["ra"][...], ra[a:b])
                    and np.array_equal(h["dec"][...], dec[a:b]))
        if not same:
            report.add("_index/pos_*.npy differ from the file's object_id/ra/dec (stale sidecar)",
                       file=rel)


def _check_positions(report: Report, h: h5py.File, rel: str, pixel: int | None, n: int) -> None:
    if not {"ra", "dec"} <= set(h):
        return
    ra, dec = h["ra"][...].astype(float), h["dec"][...].astype(float)
    bad = ~np.isfinite(ra) | ~np.isfinite(dec) | (ra < 0) | (ra >= 360) | (dec < -90) | (dec > 90)
    for r in np.flatnonzero(bad)[:MAX_ROWS_REPORTED]:
        report.add(f"ra/dec ({ra[r]}, {dec[r]}) not finite or out of range", file=rel, row=int(r))
    if "healpix" not in h:
        return
    hp = h["healpix"][...]
    ok = ~bad
    expected = np.full(n, -1, np.int64)
    expected[ok] = layout.healpix_of(ra[ok], dec[ok])
    wrong = np.flatnonzero(ok & (hp != expected))
    for r in wrong[:MAX_ROWS_REPORTED]:
        report.add(f"healpix {hp[r]} != ang2pix(ra, dec) = {expected[r]}", file=rel,
                   column="healpix", row=int(r))
    if len(wrong) > MAX_ROWS_REPORTED:
        report.add(f"... {len(wrong) - MAX_ROWS_REPORTED} more rows with a wrong healpix", file=rel)
    if pixel is not None:
        other = np.flatnonzero(hp != pixel)
        if len(other):
            report.add(f"{len(other)} row(s) have healpix != the folder's pixel {pixel}",
                       file=rel, column="healpix", row=int(other[0]))


def _sample_rows(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if k >= n:
        return np.arange(n)
    picks = {0, n - 1, *rng.choice(n, size=max(0, k - 2), replace=False).tolist()}
    return np.array(sorted(picks))


def _check_examples(report: Report, h: h5py.File, rel: str, modality: str, rows: np.ndarray) -> None:
    namespaces = _namespaces(modality, h.attrs)
    for r in rows:
        for prefix, mod in namespaces:
            row = {}
            try:
                for name, ds in h.items():
                    if not isinstance(ds, h5py.Dataset) or not ds.ndim:
                        continue
                    if prefix and not name.startswith(prefix):
                        continue
                    row[name[len(prefix):]] = ds[int(r)]
                for key in ALWAYS_PRESENT:
                    row.setdefault(key, h[key][int(r)] if key in h else None)
            except OSError:
                continue  # unreadable bytes: reported by the checksum pass
            try:
                spec = schemas.get_modality(mod)
                problems = spec.check_row(row) if spec.check_row else []
                for msg in problems:
                    report.add(f"{prefix}{msg}", file=rel, row=int(r))
                if problems:
                    continue
                example = schemas.example_from_row(mod, row)
            except (KeyError, IndexError, ValueError) as exc:
                report.add(f"cannot form a {mod} example: {exc!r}", file=rel, row=int(r))
                continue
            for msg in schemas.validate_example(mod, example):
                report.add(f"{prefix}{msg}", file=rel, row=int(r))
            report.examples_checked += 1


def _namespaces(modality: str, attrs: Any) -> list[tuple[str, str]]:
    """[(column prefix, modality)]: one entry, or one per side of a matched dataset."""
    if modality != schemas.MATCHED:
        return [("", modality)]
    import json

    sides = json.loads(attrs.get("namespaces", "{}"))
    return [(f"{name}.", mod) for name, mod in sides.items()]


def _check_modality_columns(modality: str, specs: dict[str, ColumnSpec]) -> list[str]:
    if modality == schemas.MATCHED:
        return []
    try:
        spec = schemas.get_modality(modality)
    except ValueError as exc:
        return [str(exc)]
    return spec.check_columns({k: v.shape for k, v in specs.items()})
