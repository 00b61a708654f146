"""``mmu download``: copy a dataset served over the network, or the part of it a sky region
touches, into a local folder that opens and validates like any built dataset.

The source is a dataset folder at a URL (``https://``, ``http://``, ``hf://``, ``s3://``;
read through :mod:`mmu_core.storage.remote`). The copy goes to ``OUT/<survey>/<config>/``
with the source's file names:

- **Which files.** Every file, or those of the pixels a cone touches (healpy ``query_disc``,
  inclusive, NSIDE 16 NESTED: the pixels ``Dataset.cone`` opens), or of the pixels given.
- **File by file, resumable.** Each file is fetched in byte ranges into a temporary name
  (``healpix=N/.i-of-n.hdf5.tmp-download``) and appended to in order; after an interruption
  (a kill, a dropped connection, a server gone), the next run continues from the bytes
  already there with a range request from that offset.
- **Verified before it is kept.** The whole file's sha256 must equal the manifest's before
  it is renamed to its final name; a mismatch is refused, naming the file and both digests,
  and the temporary file is deleted (a rerun fetches it anew).
- **Manifest last.** Once every file is in place, ``_index/`` is made from the files (so the
  index describes exactly the bytes verified) and then the manifest: the source's, with the
  files, pixels and rows of the subset and ``extra.download`` recording the source URL, the
  source manifest's sha256 and fingerprint, and the selection. A rerun with the same
  selection does nothing; another selection from the same source adds its files.
- **Columns.** ``columns`` keeps only some columns (``object_id``, ``ra``, ``dec`` and
  ``healpix`` always): the files are then rewritten locally from checked remote reads (every
  byte read is verified against the block digests or Fletcher32 checksums stored with it), so
  only those columns' bytes travel. Their sha256 are the new files', not the publisher's (the
  manifest says so in ``extra.download``); a subset that keeps some but not all of the
  columns the modality requires is refused, one with none of them has no modality.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import MMUError
from mmu_core.progress import NullProgress, ProgressSink
from mmu_core.storage import layout
from mmu_core.storage.index import IdIndex
from mmu_core.storage.manifest import FileEntry, Manifest, load_manifest, save_manifest
from mmu_core.storage.remote import Remote, RemoteOptions, fetch_manifest
from mmu_core.storage.writer import ensure_space, sha256_of

CHUNK_BYTES = 8 * 1024 * 1024  # bytes asked per range request
PARALLEL_CHUNKS = 4  # range requests in flight at once
TMP_TOKEN = "download"  # fixed, so that a rerun finds the partial file
_NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")
ALWAYS_KEPT = ("object_id", "ra", "dec", "healpix")


class DownloadError(MMUError):
    """A download cannot go on, or a file is refused: names the file and why."""


@dataclass
class DownloadResult:
    path: Path  # the local dataset folder
    url: str
    files: int  # files of the local copy
    rows: int
    pixels: list[int]
    downloaded: int = 0  # files fetched (or rewritten) by this run
    present: int = 0  # files already in place
    resumed: int = 0  # files continued from bytes an earlier run left
    bytes_fetched: int = 0
    noop: bool = False
    columns: list[str] | None = None
    selection: dict[str, Any] = field(default_factory=dict)


def select_pixels(manifest: Manifest, cone: Sequence[float] | None = None,
                  pixels: Iterable[int] | None = None) -> tuple[list[int], dict[str, Any]]:
    """The dataset's pixels the selection touches (all without one), and the selection as
    recorded in the manifest."""
    present = sorted({f.pixel for f in manifest.files})
    if cone is not None and pixels is not None:
        raise DownloadError("give a cone or pixels, not both")
    if cone is not None:
        import healpy

        from mmu_core.angles import to_degrees

        if len(cone) != 3:
            raise DownloadError(f"a cone is (ra, dec, radius), got {list(cone)}")
        ra, dec = float(cone[0]), float(cone[1])
        radius = to_degrees(cone[2], "cone radius")  # a number in degrees, or an angle
        if not -90 <= dec <= 90:
            raise DownloadError(f"cone ({ra}, {dec}, {radius}): dec must lie in [-90, 90]")
        vec = healpy.ang2vec(ra, dec, lonlat=True)
        disc = set(healpy.query_disc(layout.NSIDE, vec, np.radians(radius), inclusive=True,
                                     nest=layout.NEST).tolist())
        return [p for p in present if p in disc], {"cone": [ra, dec, radius]}
    if pixels is not None:
        wanted = sorted({int(p) for p in pixels})
        bad = [p for p in wanted if not 0 <= p < layout.NPIX]
        if bad:
            raise DownloadError(f"pixels {bad} are not NSIDE-16 pixels (0-{layout.NPIX - 1})")
        return [p for p in present if p in set(wanted)], {"pixels": wanted}
    return present, {"all": True}


def download(
    url: str,
    out_root: Path | str,
    cone: Sequence[float] | None = None,
    pixels: Iterable[int] | None = None,
    columns: Sequence[str] | None = None,
    *,
    options: RemoteOptions | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    parallel: int = PARALLEL_CHUNKS,
    progress: ProgressSink | None = None,
) -> DownloadResult:
    """Copy the dataset at ``url`` (or the pixels ``cone`` = (ra, dec, radius_deg) or
    ``pixels`` touch; or only ``columns``) into ``out_root/<survey>/<config>/``; see the
    module's description. Returns what was done; raises :class:`DownloadError` or
    :class:`~mmu_core.storage.remote.RemoteError` naming the file and the problem."""
    progress = progress or NullProgress()
    remote = Remote(url, options)
    raw, manifest = fetch_manifest(remote)
    remote.sizes = {f.path: int(f.bytes) for f in manifest.files}
    digest = hashlib.sha256(raw).hexdigest()
    for what, name in (("survey", manifest.survey), ("config", manifest.config)):
        if not _NAME_RE.match(name) or name in (".", ".."):
            raise DownloadError(f"{remote.name(layout.MANIFEST_NAME)}: {what} {name!r} cannot "
                                "be a folder name: refused")
    dataset_dir = Path(out_root) / manifest.survey / manifest.config
    keep = _columns(manifest, columns)
    chosen, selection = select_pixels(manifest, cone, pixels)
    if not chosen:
        raise DownloadError(f"{url}: the selection {selection} touches none of the dataset's "
                            f"pixels ({', '.join(map(str, sorted({f.pixel for f in manifest.files})))})")
    files = [f for f in manifest.files if f.pixel in set(chosen)]

    earlier = load_manifest(dataset_dir) if (dataset_dir / layout.MANIFEST_NAME).is_file() \
        else None
    trusted: set[str] = set()
    if earlier is not None:
        record = earlier.extra.get("download") or {}
        if record.get("source_manifest_sha256") != digest or record.get("columns") != keep:
            raise DownloadError(
                f"{dataset_dir} already holds a dataset that is not a download of this "
                f"manifest of {url}" + (" with these columns" if keep else "")
                + "; choose another --out, or delete the folder")
        trusted = {f.path for f in earlier.files}
        if {f.path for f in files} <= trusted:
            return DownloadResult(dataset_dir, url, len(earlier.files), earlier.rows,
                                  list(earlier.pixels), present=len(files), noop=True,
                                  columns=keep, selection=selection)
        files = sorted({f.path: f for f in manifest.files
                        if f.path in trusted or f.pixel in set(chosen)}.values(),
                       key=lambda f: f.path)
        selection = {"selections": [*record.get("selections", []), selection]}
    else:
        selection = {"selections": [selection]}

    result = DownloadResult(dataset_dir, url, len(files), 0, sorted({f.pixel for f in files}),
                            columns=keep, selection=selection)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    progress.start("download files", len(files))
    start_bytes = remote.stats["bytes"]
    for f in files:
        final = dataset_dir / f.path
        if keep is None:
            _fetch_file(remote, f, final, f.path in trusted, chunk_bytes, parallel, result)
        else:
            _rewrite_file(remote, manifest, f, final, keep, f.path in trusted, result)
        progress.advance("download files")
    result.bytes_fetched = remote.stats["bytes"] - start_bytes

    relpaths = [f.path for f in files]
    IdIndex.from_files(dataset_dir, relpaths).save(dataset_dir)
    entries = files if keep is None else [_describe(dataset_dir, f) for f in files]
    extra = dict(manifest.extra)
    extra["download"] = {
        "source": remote.url, "source_manifest_sha256": digest,
        "source_fingerprint": manifest.fingerprint(), "source_rows": manifest.rows,
        "source_files": len(manifest.files), "complete": len(files) == len(manifest.files),
        "columns": keep, **selection,
        "rewritten": keep is not None,  # True: sha256 are of the files written here
        "downloaded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    update: dict[str, Any] = {
        "files": [FileEntry(**e.model_dump()) for e in entries],
        "pixels": sorted({e.pixel for e in entries}), "rows": int(sum(e.rows for e in entries)),
        "extra": extra,
    }
    if keep is not None:
        update["columns"] = {k: v for k, v in manifest.columns.items() if k in keep}
        update["aliases"] = {k: v for k, v in manifest.aliases.items() if k in keep}
        update["preview_columns"] = [c for c in manifest.preview_columns if c in keep]
        update["modality"] = _kept_modality(manifest, keep)
    save_manifest(dataset_dir, manifest.model_copy(update=update))
    result.rows, result.files = update["rows"], len(entries)
    return result


# ---- whole files ---------------------------------------------------------------------------
def _fetch_file(remote: Remote, f: FileEntry, final: Path, trusted: bool, chunk_bytes: int,
                parallel: int, result: DownloadResult) -> None:
    """One file into place: kept if already there (and verified), else fetched (resumed from
    a partial temporary file), verified against the manifest's sha256, renamed."""
    url = remote.name(f.path)
    if not f.sha256:
        raise DownloadError(f"{url}: the manifest gives no sha256 for it, so it cannot be "
                            "verified: refused")
    if final.is_file():
        if final.stat().st_size == f.bytes and (trusted or sha256_of(final) == f.sha256):
            result.present += 1
            return
        final.unlink()  # not the manifest's file (an older copy): fetched again
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.tmp_name(final, TMP_TOKEN)
    have = tmp.stat().st_size if tmp.is_file() else 0
    if have > f.bytes:
        tmp.unlink()
        have = 0
    if have:
        result.resumed += 1
    ensure_space(final.parent, f.bytes - have, f"downloading {f.path}")
    step = max(1, int(chunk_bytes))
    with open(tmp, "ab") as out:
        while have < f.bytes:
            ranges = []
            for _ in range(max(1, parallel)):
                a = have + len(ranges) * step
                if a >= f.bytes:
                    break
                ranges.append((a, min(f.bytes, a + step)))
            for data in remote.fetch_many(f.path, ranges):
                out.write(data)
                have += len(data)
            out.flush()
        os.fsync(out.fileno())
    got = sha256_of(tmp)
    if got != f.sha256:
        tmp.unlink()
        raise DownloadError(f"{url}: sha256 {got} does not match the manifest's {f.sha256}: "
                            f"refused ({f.path} was not kept; a rerun fetches it again)")
    os.replace(tmp, final)
    result.downloaded += 1


# ---- some columns ----------------------------------------------------------------------------
def _columns(manifest: Manifest, columns: Sequence[str] | None) -> list[str] | None:
    """The stored columns to keep (names or standard names, plus the four always kept), in
    the manifest's order; None for every column."""
    if columns is None:
        return None
    names = [c.strip() for c in columns for c in str(c).split(",") if c.strip()]
    standard = {s: n for n, s in manifest.aliases.items()
                if n in manifest.columns and s not in manifest.columns}
    stored = set(ALWAYS_KEPT)
    for name in names:
        if name in manifest.columns:
            stored.add(name)
        elif name in standard:
            stored.add(standard[name])
        else:
            raise DownloadError(f"no column {name!r} in the dataset (columns: "
                                f"{', '.join(manifest.columns)})")
    keep = [c for c in manifest.columns if c in stored]
    _kept_modality(manifest, keep)  # refuses a partial set of the modality's columns
    return keep


def _kept_modality(manifest: Manifest, keep: list[str]) -> str | None:
    """The subset's modality: the source's when its required columns are kept, None when
    none of its columns is; a partial set is refused."""
    from mmu_core import schemas

    name = schemas.canonical_name(manifest.modality)
    if name in (None, schemas.MATCHED):
        return manifest.modality
    try:
        spec = schemas.get_modality(name)
    except ValueError:
        return manifest.modality
    shapes = {k: tuple(manifest.columns[k].get("shape", ())) for k in keep}
    problems = spec.check_columns(shapes)
    if not problems:
        return manifest.modality
    if any(k.startswith(spec.prefix) for k in keep):
        raise DownloadError(f"--columns keeps some {name} columns but not all that a {name} "
                            f"dataset needs: {'; '.join(problems)}")
    return None


def _rewrite_file(remote: Remote, manifest: Manifest, f: FileEntry, final: Path,
                  keep: list[str], trusted: bool, result: DownloadResult) -> None:
    """One file with only the kept columns, written locally from verified remote reads
    (temporary name, renamed when complete)."""
    import h5py

    from mmu_core.storage.access import ColumnAccess
    from mmu_core.storage.columns import ColumnSpec
    from mmu_core.storage.integrity import block_rows, digests, write_digests
    from mmu_core.storage.writer import FILE_LIBVER, create_column

    if final.is_file():  # renamed only once complete: kept if it holds these columns
        if trusted or _columns_of(final) == set(keep):
            result.present += 1
            return
        final.unlink()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.tmp_name(final, f"{TMP_TOKEN}-{uuid.uuid4().hex[:8]}")
    specs = {k: ColumnSpec.from_json(manifest.columns[k]) for k in keep}
    h, ranges = remote.open_h5(f.path)
    try:
        ensure_space(final.parent, sum(s.row_bytes for s in specs.values()) * f.rows,
                     f"writing {f.path}")
        with h5py.File(tmp, "w", libver=FILE_LIBVER) as out:
            for key, value in h.attrs.items():
                out.attrs[key] = value
            for name in sorted(keep, key=lambda c: (ALWAYS_KEPT + (c,)).index(c)):
                spec = specs[name]
                src = ColumnAccess(remote.name(f.path), h, name, spec.np_dtype, spec.shape,
                                   ranges=ranges)
                data = src.slice(0, src.n)
                ds = create_column(out, name, spec, len(data), "auto", data[:64])
                ds[...] = data
                if ds.chunks is None:
                    per_block = block_rows(spec.row_bytes)
                    write_digests(ds, digests(data, per_block), per_block)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        h.close()
    os.replace(tmp, final)
    result.downloaded += 1


def _columns_of(path: Path) -> set[str] | None:
    import h5py

    try:
        with h5py.File(path, "r") as h:
            return set(h)
    except OSError:
        return None


def _describe(dataset_dir: Path, f: FileEntry) -> FileEntry:
    path = dataset_dir / f.path
    return FileEntry(path=f.path, pixel=f.pixel, rows=f.rows, bytes=path.stat().st_size,
                     sha256=sha256_of(path))
