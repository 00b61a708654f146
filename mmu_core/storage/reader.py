"""Reading a stored dataset: random access by id, cone search, columns, iteration.

``open_dataset(path)`` opens a folder built by mmu (manifest + index) or a folder of plain
Multimodal Universe v1 files (``healpix=N/*.hdf5``, no manifest: columns are inferred from
the files and the id index is built in memory on first lookup). ``open_dataset(url)``
(``https://``, ``http://``, ``hf://``, ``s3://``) opens a built folder over the network
(:mod:`mmu_core.storage.remote`): the same ``Dataset``, reading its files through an opener
(byte ranges) instead of local paths.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mmu_core.errors import MMUError
from mmu_core.schemas import MATCHED, canonical_name, get_modality, guess_modality
from mmu_core.storage import layout
from mmu_core.storage.access import ColumnAccess, foreign_storage
from mmu_core.storage.columns import ColumnSpec, NamedColumns
from mmu_core.storage.examples import row_example
from mmu_core.storage.index import IdIndex, by_file
from mmu_core.storage.manifest import Manifest, load_manifest

MAX_OPEN_FILES = 64


class DatasetError(MMUError):
    """The folder is not a readable dataset."""


class Dataset(NamedColumns):
    """A stored dataset. Use :func:`open_dataset`.

    Every read is checked against the stored checksums (docs/format.md, "Integrity"); a
    corrupt row raises :class:`~mmu_core.storage.integrity.CorruptDataError` naming the file,
    the column and the rows, never returns garbage. ``memory_map=False`` reads contiguous
    columns through h5py instead of memory maps (same results, slower).

    ``opener`` (a :class:`~mmu_core.storage.remote.Remote`, as ``open_dataset(url)`` makes)
    reads the files over the network: ``path`` is then its local cache entry (manifest and
    ``_index/``), ``url`` the dataset's URL, and errors name the files' URLs.
    """

    def __init__(self, path: Path | str, memory_map: bool = True, opener: Any = None):
        self.opener = opener
        self.url: str | None = None if opener is None else opener.url
        self.path = Path(path if opener is None else opener.local_dir)
        if not self.path.is_dir():
            raise DatasetError(f"{self.path}: no such dataset folder")
        self.manifest: Manifest | None = load_manifest(self.path)
        if self.manifest is not None:
            self._relpaths = [f.path for f in self.manifest.files]
            self._rows = [f.rows for f in self.manifest.files]
            self._specs = self.manifest.column_specs()
            self.aliases: dict[str, str] = dict(self.manifest.aliases)
        else:
            shards = layout.list_shards(self.path)
            if not shards:
                raise DatasetError(
                    f"{self.path}: neither a manifest nor healpix=N/*.hdf5 files; is this a "
                    "dataset folder (ROOT/SURVEY/CONFIG)?"
                )
            self._relpaths = [s.relpath for s in shards]
            self._rows, self._specs = _infer(self.path, self._relpaths)
            self.aliases = {}
        self._pixel_of = [self._confined(r).pixel for r in self._relpaths]
        self._handles: OrderedDict[int, h5py.File] = OrderedDict()
        self._ranges: dict[int, Any] = {}  # a remote file's checked byte ranges
        self._access: dict[tuple[int, str], ColumnAccess] = {}
        self.memory_map = memory_map
        self._guessed: str | None = None  # the modality of a folder without a manifest
        self._index: IdIndex | None = None

    def _confined(self, relpath: str) -> layout.ShardFile:
        """A listed file's place; anything but ``healpix=N/i-of-n.hdf5`` inside the folder (an
        absolute path, ``..``, another name) is refused."""
        shard = layout.parse_relpath(relpath)
        if shard is None:
            raise DatasetError(f"{self.location}/manifest.json lists {relpath!r}, which is not a "
                               "healpix=N/i-of-n.hdf5 file inside the dataset folder: refused")
        return shard

    # ---- description ----------------------------------------------------------------------
    @property
    def location(self) -> str:
        """Where the dataset is: its URL, or its folder."""
        return self.url or str(self.path)

    def file_name(self, i: int) -> str:
        """File ``i`` as errors name it: its path, or its URL."""
        return (self.opener.name(self._relpaths[i]) if self.opener is not None
                else str(self.path / self._relpaths[i]))

    @property
    def survey(self) -> str:
        return self.manifest.survey if self.manifest else self.path.parent.name

    @property
    def config(self) -> str:
        return self.manifest.config if self.manifest else self.path.name

    @property
    def modality(self) -> str | None:
        """The modality's name (``"matched"`` for a cross-match output), from the manifest, else
        guessed from the stored columns."""
        if self.manifest and self.manifest.modality:
            return canonical_name(self.manifest.modality)
        if self._guessed is None:  # read once: row_to_example asks for it every row
            self._guessed = (MATCHED if self._files_attr("namespaces")
                             else guess_modality(self._specs) or "")
        return self._guessed or None

    def sides(self) -> dict[str, dict[str, Any]]:
        """A matched dataset's sides: namespace -> what it records of that input (survey,
        config, modality, ...); empty for other datasets."""
        if self.manifest is not None and self.manifest.extra.get("sides"):
            return {ns: {**info, "modality": canonical_name(info.get("modality"))}
                    for ns, info in self.manifest.extra["sides"].items()}
        import json

        spaces = json.loads(self._files_attr("namespaces") or "{}")
        return {ns: {"survey": ns, "modality": canonical_name(m)} for ns, m in spaces.items()}

    def _files_attr(self, name: str) -> str | None:
        """An HDF5 attribute of the first data file (derived datasets record some there)."""
        if not self._relpaths:
            return None
        value = self.open_file(0).attrs.get(name)
        if 0 in self._ranges:
            self._ranges[0].check_failure()  # a remote read failed: not the attribute
        return None if value is None else str(value)

    @property
    def columns(self) -> list[str]:
        return list(self._specs)

    @property
    def schema(self) -> dict[str, ColumnSpec]:
        return dict(self._specs)

    @property
    def pixels(self) -> list[int]:
        return sorted(set(self._pixel_of))

    @property
    def files(self) -> list[Path]:
        """Every data file, in the dataset's file order (the manifest's: sorted by path)."""
        return [self.path / r for r in self._relpaths]

    @property
    def relpaths(self) -> list[str]:
        """Each file's path inside the dataset folder (``healpix=N/i-of-n.hdf5``), in file order."""
        return list(self._relpaths)

    @property
    def file_pixels(self) -> list[int]:
        """Each file's HEALPix pixel, in file order."""
        return list(self._pixel_of)

    @property
    def file_rows(self) -> list[int]:
        """Each file's row count, in file order."""
        return [int(n) for n in self._rows]

    def __len__(self) -> int:
        return int(sum(self._rows))

    def __repr__(self) -> str:
        return (f"<mmu Dataset {self.survey}/{self.config}: {len(self):,} rows, "
                f"{len(self.pixels)} pixels, {len(self._relpaths)} files>")

    def info(self) -> dict[str, Any]:
        inverse = self.standard_names()
        return {
            "path": self.location, "survey": self.survey, "config": self.config,
            "modality": self.modality, "rows": len(self), "n_pixels": len(self.pixels),
            "pixels": self.pixels, "n_files": len(self._relpaths),
            "bytes": int(sum(f.bytes for f in self.manifest.files) if self.opener is not None
                         else sum(f.stat().st_size for f in self.files)),
            "columns": {
                k: {"dtype": str(v.np_dtype), "shape": list(v.shape), "alias": inverse.get(k)}
                for k, v in self._specs.items()
            },
            "aliases": self.aliases,
            "absent_columns": self.absent_columns(),
            "provenance": self.manifest.provenance if self.manifest else None,
            "manifest": self.manifest is not None,
        }

    def absent_columns(self) -> list[str]:
        """The modality's columns this dataset does not store (allowed: MMU v1 folders may hold
        any subset; the modality's readers use what is there)."""
        try:
            spec = get_modality(self.modality) if self.modality not in (None, MATCHED) else None
        except ValueError:
            return []
        if spec is None:
            return []
        return [spec.prefix + c for c in spec.known_columns if spec.prefix + c not in self._specs]

    def side_info(self) -> dict[str, Any]:
        """What a derived dataset (concatenation, cross-match) records about this input."""
        m = self.manifest
        return {
            "survey": self.survey, "config": self.config, "modality": self.modality,
            "path": self.url or str(self.path.resolve()), "rows": len(self),
            "fingerprint": m.fingerprint() if m else None,
            "distribution": m.distribution if m else None,
            "plugin_version": m.plugin_version if m else None,
            "provenance": m.provenance if m else {},
        }

    # ---- aliases ----------------------------------------------------------------------------
    def standard_names(self) -> dict[str, str]:
        """native -> standard, for aliases whose standard name is not itself a stored column."""
        return {n: s for n, s in self.aliases.items() if n in self._specs and s not in self._specs}

    def resolve(self, name: str) -> str:
        """Stored column for a column name or a standard (aliased) name."""
        if name in self._specs:
            return name
        for native, standard in self.standard_names().items():
            if standard == name:
                return native
        raise KeyError(
            f"{self.location}: no column {name!r} (columns: {', '.join(self.columns)}; "
            f"aliases: {self.standard_names()})"
        )

    # ---- file access ------------------------------------------------------------------------
    def open_file(self, i: int) -> h5py.File:
        """The open h5py file of file ``i`` (kept open, at most MAX_OPEN_FILES at once)."""
        h = self._handles.get(i)
        if h is not None and i in self._ranges and self._ranges[i].poisoned:
            self._evict(i)  # a read under h5py failed: its metadata may be zeros, reopen
            h = None
        if h is None and self.opener is not None:
            h, ranges = self.opener.open_h5(self._relpaths[i])
            self._ranges[i] = ranges
            try:
                self._admit(i, h)
                ranges.check_failure()  # h5py read zeros where a fetch failed: reopen later
            except BaseException:
                self._evict(i)
                ranges.check_failure()  # the network's error, if it caused this one
                raise
        elif h is None:
            path = self.path / self._relpaths[i]
            real = path.resolve()
            if not real.is_relative_to(self.path.resolve()):
                raise DatasetError(f"{path} leads outside the dataset folder (to {real}): "
                                   "refused")
            try:
                h = h5py.File(path, "r", rdcc_nbytes=4 * 1024 * 1024)
            except OSError as exc:
                raise DatasetError(f"{path}: cannot be opened as HDF5 ({exc})") from None
            self._admit(i, h)
        else:
            self._handles.move_to_end(i)
        return h

    def _admit(self, i: int, h: h5py.File) -> None:
        """Keep file ``i`` open, closing the least recently used beyond MAX_OPEN_FILES; a
        file with columns stored outside it is refused."""
        foreign = foreign_storage(h)
        if foreign:
            h.close()
            raise refused(self.file_name(i), *foreign[0])
        self._handles[i] = h
        if len(self._handles) > MAX_OPEN_FILES:
            self._evict(next(iter(self._handles)))

    def _evict(self, i: int) -> None:
        """Close file ``i`` and forget its column accessors."""
        for key in [k for k in self._access if k[0] == i]:
            self._access.pop(key).close()
        self._ranges.pop(i, None)
        h = self._handles.pop(i, None)
        if h is not None:
            h.close()

    def column(self, i: int, stored: str) -> ColumnAccess:
        """Checked access to one stored column of file ``i`` (memory-mapped where contiguous)."""
        access = self._access.get((i, stored))
        ranges = self._ranges.get(i)
        if access is not None and ranges is not None and ranges.poisoned:
            access = None  # the file is reopened (open_file)
        if access is None:
            h = self.open_file(i)
            ranges = self._ranges.get(i)
            try:
                if stored not in h:
                    raise DatasetError(f"{self.file_name(i)}: no column {stored!r}")
                spec = self._specs[stored]
                where = self.path / self._relpaths[i] if self.opener is None else \
                    self.file_name(i)
                access = ColumnAccess(where, h, stored, spec.np_dtype, spec.shape,
                                      memory_map=self.memory_map, ranges=ranges)
            except Exception:
                if ranges is not None:
                    ranges.check_failure()  # the network's error, if it caused this one
                raise
            if ranges is not None:
                ranges.check_failure()  # h5py read zeros where a fetch failed: not metadata
            self._access[(i, stored)] = access
        return access

    def close(self) -> None:
        for access in self._access.values():
            access.close()
        self._access.clear()
        for h in self._handles.values():
            h.close()
        self._handles.clear()
        self._ranges.clear()

    def __getstate__(self) -> dict[str, Any]:
        # Open files and memory maps stay in the process that opened them: a pickled Dataset
        # (spawned workers) reopens lazily.
        state = dict(self.__dict__)
        state["_handles"], state["_access"], state["_ranges"] = OrderedDict(), {}, {}
        return state

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def index(self) -> IdIndex:
        if self._index is None:
            self._index = IdIndex.load(self.path) if self.manifest else None
            if self._index is None:
                self._index = IdIndex.from_files(self.path, self._relpaths)
        return self._index

    def _read_into(
        self, file_i: int, rows: np.ndarray, stored: str, out: np.ndarray, dest: np.ndarray
    ) -> None:
        """``out[dest[k]] = column[rows[k]]`` for one file; rows sorted ascending."""
        if not len(rows):
            return
        d0 = int(dest[0])
        if dest[-1] - d0 + 1 == len(dest) and bool(np.all(np.diff(dest) == 1)):
            self.column(file_i, stored).take(rows, out=out[d0 : d0 + len(dest)])  # no scatter
        else:
            self.column(file_i, stored).take_scattered(rows, out, dest)

    def read_rows(
        self, file_idx: np.ndarray, row_idx: np.ndarray, columns: Iterable[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Rows given as (file index, row in file) pairs, in the order given: column -> array.
        ``columns`` may use standard names (the keys are the names asked)."""
        return self._gather(np.asarray(file_idx), np.asarray(row_idx, dtype=np.int64),
                            self._columns(columns))

    def _gather(
        self, file_idx: np.ndarray, row_idx: np.ndarray, cols: list[tuple[str, str]]
    ) -> dict[str, np.ndarray]:
        """Read (file, row) pairs for the columns, results in the order given."""
        n = len(file_idx)
        out = {
            asked: np.empty((n, *self._specs[stored].shape), dtype=self._specs[stored].np_dtype)
            for asked, stored in cols
        }
        for f, rows, dest in by_file(file_idx, row_idx):
            for asked, stored in cols:
                self._read_into(f, rows, stored, out[asked], dest)
        return out

    # ---- public reads -----------------------------------------------------------------------
    def get(
        self,
        object_ids: Sequence[Any] | np.ndarray | Any,
        columns: Iterable[str] | None = None,
        aliases: bool = False,
    ) -> dict[str, np.ndarray]:
        """Rows for ``object_ids`` in the order asked: dict column -> array.

        A missing id raises ``KeyError`` naming it. ``columns`` may use standard (aliased)
        names; ``aliases=True`` returns every column under its standard name where it has one.
        """
        ids = np.atleast_1d(np.asarray(object_ids))
        if ids.dtype.kind == "U":
            ids = np.char.encode(ids, "utf-8")
        cols = self._columns(columns)
        file_idx, row_idx, found = self.index().locate(ids)
        if not found.all():
            missing = ids[~found][:10]
            shown = [m.decode() if isinstance(m, bytes) else m.item() for m in missing]
            raise KeyError(f"object_id(s) not in {self.location}: {shown}")
        return self._rename(self._gather(file_idx, row_idx.astype(np.int64), cols), aliases)

    def cone(
        self,
        ra: Any,
        dec: Any = None,
        radius_deg: Any = None,
        columns: Iterable[str] | None = None,
        aliases: bool = False,
        *,
        radius: Any = None,
    ) -> dict[str, np.ndarray]:
        """Every row within a radius of a position. Only the pixels that intersect the cone
        (healpy ``query_disc``, inclusive) are opened.

        ``cone(ra, dec, radius_deg)`` with numbers in degrees, or ``cone(target, radius)`` with
        ``target`` an astropy ``SkyCoord`` or an ``(ra, dec)`` pair and ``radius`` a number of
        degrees or an astropy angle (``2 * u.arcmin``); ``radius=`` works in both forms."""
        ra, dec, radius_deg, columns = cone_arguments(ra, dec, radius_deg, columns, radius)
        import healpy

        vec = healpy.ang2vec(ra, dec, lonlat=True)
        disc = set(healpy.query_disc(layout.NSIDE, vec, np.radians(radius_deg), inclusive=True,
                                     nest=layout.NEST).tolist())
        cols = self._columns(columns)
        cos_r = np.cos(np.radians(radius_deg))
        file_hits, row_hits = [], []
        for i, pixel in enumerate(self._pixel_of):
            if pixel not in disc:
                continue
            n = self._rows[i]
            r, d = self.column(i, "ra").slice(0, n), self.column(i, "dec").slice(0, n)
            v = healpy.ang2vec(r, d, lonlat=True)
            inside = np.flatnonzero(v @ vec >= cos_r)
            file_hits.append(np.full(len(inside), i))
            row_hits.append(inside)
        if not file_hits:
            return {asked: np.empty((0, *self._specs[s].shape), self._specs[s].np_dtype)
                    for asked, s in cols}
        self.last_cone_pixels = sorted(disc & set(self._pixel_of))
        return self._rename(
            self._gather(np.concatenate(file_hits), np.concatenate(row_hits).astype(np.int64), cols),
            aliases,
        )

    def iter_batches(
        self,
        batch_size: int = 1024,
        columns: Iterable[str] | None = None,
        pixels: Iterable[int] | None = None,
        aliases: bool = False,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Batches of at most ``batch_size`` rows, file by file (contiguous reads)."""
        cols = self._columns(columns)
        wanted = None if pixels is None else set(int(p) for p in pixels)
        for i in range(len(self._relpaths)):
            if wanted is not None and self._pixel_of[i] not in wanted:
                continue
            n = int(self._rows[i])
            for a in range(0, n, batch_size):
                b = min(n, a + batch_size)
                yield self._rename({asked: self.column(i, stored).slice(a, b)
                                    for asked, stored in cols}, aliases)

    def read_pixel(self, pixel: int, columns: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Every row of one pixel (all its files), for the given columns."""
        cols = self._columns(columns)
        parts = [
            {asked: self.column(i, stored).slice(0, int(self._rows[i])) for asked, stored in cols}
            for i, p in enumerate(self._pixel_of) if p == pixel
        ]
        if not parts:
            return {asked: np.empty((0, *self._specs[s].shape), self._specs[s].np_dtype)
                    for asked, s in cols}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def files_of_pixel(self, pixel: int) -> list[int]:
        return [i for i, p in enumerate(self._pixel_of) if p == pixel]

    # ---- logical examples -------------------------------------------------------------------
    def example(self, object_id: Any, columns: Iterable[str] | None = None, **kwargs: Any) -> dict:
        """One row as the logical example of the dataset's modality (docs/examples.md)."""
        row = {k: v[0] for k, v in self.get([object_id], columns=columns).items()}
        return self.row_to_example(row, **kwargs)

    def to_table(self, columns: Iterable[str] | None = None, where: str | None = None,
                 aliases: bool = True) -> Any:
        """The catalog columns as an astropy ``Table`` with units, optionally only the rows
        passing ``where`` (e.g. ``"z > 0.5 and zwarn == 0"``), read block by block
        (:func:`mmu_core.storage.tables.to_table`)."""
        from mmu_core.storage import tables

        return tables.to_table(self, columns, where, aliases)

    def to_pandas(self, columns: Iterable[str] | None = None, where: str | None = None,
                  aliases: bool = True) -> Any:
        """:meth:`to_table` as a pandas ``DataFrame``."""
        from mmu_core.storage import tables

        return tables.to_pandas(self, columns, where, aliases)

    def row_to_example(self, row: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """One stored row (column -> value) as its logical example (one per side of a matched
        dataset); ``kwargs`` go to the modality's ``example_from_row``."""
        return row_example(self, row, **kwargs)


def cone_arguments(ra: Any, dec: Any, radius_deg: Any, columns: Any,
                   radius: Any) -> tuple[float, float, float, Any]:
    """``Dataset.cone``'s two call forms as (ra, dec, radius in degrees, columns)."""
    from mmu_core.angles import position, to_degrees

    if hasattr(ra, "frame") or isinstance(ra, (tuple, list)):  # cone(target, radius, columns)
        if radius is None:
            radius, radius_deg = dec, None
        if radius_deg is not None and columns is None:
            columns = radius_deg
        ra_deg, dec_deg = position(ra)
    else:
        ra_deg, dec_deg = position(ra, dec)
        if radius is None:
            radius = radius_deg
    if radius is None:
        raise TypeError("cone() needs a radius")
    return ra_deg, dec_deg, to_degrees(radius, "cone radius"), columns


def as_dataset(value: Dataset | Path | str) -> Dataset:
    """A Dataset from a Dataset or a dataset folder."""
    return value if isinstance(value, Dataset) else open_dataset(value)


def open_dataset(path: Path | str, memory_map: bool = True) -> Dataset:
    """Open a stored dataset folder (``ROOT/SURVEY/CONFIG``), or the single dataset below a
    folder (e.g. a cross-match output ``OUT``), or a HATS catalog or collection folder (a
    :class:`~mmu_core.storage.hats.HatsDataset`, with the same reading methods), or a built
    dataset folder at a URL (``https://``, ``http://``, ``hf://``, ``s3://``: read over the
    network, :mod:`mmu_core.storage.remote`)."""
    from mmu_core.storage.hats import HatsDataset, is_hats_catalog

    if isinstance(path, HatsDataset):  # already open (as_dataset, hf.load, the loaders)
        return path  # type: ignore[return-value]
    if isinstance(path, str) and "://" in path:
        from mmu_core.storage.remote import connect, is_url

        if is_url(path):
            return Dataset(path, memory_map=memory_map, opener=connect(path))
        raise DatasetError(f"{path}: not a URL mmu reads (https://, http://, hf://, s3://)")
    path = Path(path)
    if is_hats_catalog(path):
        return HatsDataset(path, memory_map=memory_map)  # type: ignore[return-value]
    if path.is_dir() and not layout.is_dataset_dir(path):
        found = layout.find_datasets(path)
        if len(found) == 1:
            return Dataset(found[0], memory_map=memory_map)
        if len(found) > 1:
            raise DatasetError(f"{path} holds several datasets; open one of: "
                               + ", ".join(str(f) for f in found))
    return Dataset(path, memory_map=memory_map)


def _infer(path: Path, relpaths: list[str]) -> tuple[list[int], dict[str, ColumnSpec]]:
    """Rows per file and the union of the files' columns, for a folder without a manifest.

    Opening a published v1 folder reads every file's column list, so this walks each file's
    root group through h5py's low-level API: the high-level ``h5py.File``/``items()`` path
    measured 3x slower over 3,072 small v1 files (1.99 s against 0.66 s). The refusals are the
    same as :func:`~mmu_core.storage.access.foreign_storage`'s: external links, external raw
    storage and virtual datasets."""
    rows, specs = [], {}
    for rel in relpaths:
        file = path / rel
        try:
            fid = h5py.h5f.open(str(file).encode(), h5py.h5f.ACC_RDONLY)
        except OSError as exc:
            raise DatasetError(f"{file}: cannot be opened as HDF5 ({exc})") from None
        try:
            rows.append(_scan_root(file, fid, specs))
        finally:
            fid.close()
    return rows, specs


def refused(file: str, column: str, what: str) -> DatasetError:
    """The error for a column whose bytes live outside its file (a downloaded file must not
    make the reader read other files of the machine)."""
    return DatasetError(f"{file}: column {column!r} is {what}; mmu reads only data stored "
                        "inside the dataset's own files: refused")


def _scan_root(file: Path, fid: Any, specs: dict[str, ColumnSpec]) -> int:
    root = h5py.h5g.open(fid, b"/")
    n = None
    for raw in root:
        name = raw.decode()
        if root.links.get_info(raw).type == h5py.h5l.TYPE_EXTERNAL:
            raise refused(str(file), name, "an HDF5 external link")
        obj = h5py.h5o.open(root, raw)
        if not isinstance(obj, h5py.h5d.DatasetID):
            continue
        plist = obj.get_create_plist()
        if plist.get_layout() == h5py.h5d.VIRTUAL or plist.get_external_count():
            raise refused(str(file), name, "a virtual dataset"
                          if plist.get_layout() == h5py.h5d.VIRTUAL
                          else "stored in external raw files")
        shape = obj.shape
        if not shape:
            continue
        if name not in specs:
            specs[name] = ColumnSpec(obj.dtype.str, tuple(shape[1:]))
        if name == "object_id":
            n = shape[0]
    if n is None:
        raise DatasetError(f"{file}: no object_id column")
    return int(n)
