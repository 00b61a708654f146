"""A dataset's catalog columns as an astropy ``Table`` (or a pandas ``DataFrame``), optionally
only the rows passing a small filter expression.

Catalog columns are the stored columns that hold one value per row and are not modality
columns (``image_*``, ``spectrum_*`` ...; in a matched dataset ``hsc.image_*`` likewise);
``object_id``, ``ra``, ``dec`` and ``healpix`` always come first. A modality column holding one
value per row (``ifu_spaxel_size``) is taken when named; per-row arrays are refused by name. Units: ``ra``/``dec`` (a
matched dataset's ``<side>.ra``/``<side>.dec`` too) are degrees, as the format defines them;
any other column gets the unit its manifest entry records under ``"unit"``, else none. With
``aliases=True`` columns carry their standard names (``z`` for DESI's ``Z``), the names
``Dataset.get(..., aliases=True)`` gives; byte strings become ``str`` (UTF-8).

``where`` is a row filter such as ``"z > 0.5 and zwarn == 0"`` or
``"(mag_r < 20) | (spectype == 'QSO')"``: comparisons (``< <= > >= == !=``, chained as in
Python: ``0.5 < z <= 1``), ``and``/``or``/``not`` (or ``&``/``|``/``~``), parentheses,
numbers, ``True``/``False``, quoted strings, catalog column names (stored or standard; a
matched dataset's ``desi.Z`` as written), boolean columns as conditions, unary minus, and the
functions ``abs()``, ``isnan()``, ``isfinite()``. It is parsed with Python's :mod:`ast` and
checked against the schema before any row is read (no ``eval``: every node type is looked up
in a table of the few allowed); anything else is refused, naming the expression and the part
at fault. Reading goes block by block: the columns the filter needs are read and evaluated
first, then the other requested columns only for the rows kept (random access by file and
row, cheap when few rows pass).
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from mmu_core.errors import MMUError
from mmu_core.schemas import modality_prefixes

BLOCK_ROWS = 65_536  # rows per block read (catalog columns: a few MB per block)
ALWAYS = ("object_id", "ra", "dec", "healpix")
DEGREES = ("ra", "dec")
CATALOG_KINDS = "biufcS"  # numbers, booleans, byte strings


class TableError(MMUError, ValueError):
    """A column cannot go into a table (a modality array, several values per row ...)."""


class FilterError(TableError):
    """A ``where`` expression is not one mmu evaluates: names the expression and the part."""


# ---- public ------------------------------------------------------------------------------
def to_table(ds: Any, columns: Iterable[str] | None = None, where: str | None = None,
             aliases: bool = True, *, batch_size: int = BLOCK_ROWS) -> Any:
    """The catalog columns of dataset ``ds`` (a :class:`~mmu_core.storage.reader.Dataset`, or
    anything with its reading API) as an astropy ``Table``; ``columns`` (stored or standard
    names) picks the catalog columns (``object_id``, ``ra``, ``dec``, ``healpix`` are always
    there), ``where`` keeps only the rows passing the filter (module docstring), ``aliases``
    names the columns by their standard names; ``batch_size`` rows are read per block. Rows
    come in the dataset's file order."""
    from astropy.table import Column, Table

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    chosen = _chosen(ds, columns, aliases)
    stored = list(dict.fromkeys(s for _, s in chosen))
    test = None if where is None else compile_filter(ds, where)
    parts = _read(ds, stored, test, batch_size)
    specs = ds.schema
    units = _units(ds, stored)
    out = []
    for name, s in chosen:
        values = (np.concatenate(parts.pop(s)) if parts[s]
                  else np.empty((0,), dtype=specs[s].np_dtype))
        if values.dtype.kind == "S":
            values = _decode(ds, s, values)
        out.append(Column(values, name=name, unit=units.get(s), copy=False))
    meta = {"survey": ds.survey, "config": ds.config, "dataset": _where_is(ds)}
    if where is not None:
        meta["where"] = where
    return Table(out, meta=meta, copy=False)


def to_pandas(ds: Any, columns: Iterable[str] | None = None, where: str | None = None,
              aliases: bool = True, *, batch_size: int = BLOCK_ROWS) -> Any:
    """:func:`to_table` as a pandas ``DataFrame`` (astropy's conversion: units are dropped,
    text columns are ``str``)."""
    return to_table(ds, columns, where, aliases, batch_size=batch_size).to_pandas()


def catalog_columns(ds: Any) -> list[str]:
    """The stored catalog columns of ``ds``, in table order: ``object_id``, ``ra``, ``dec``,
    ``healpix`` (those present), then the other one-value-per-row, non-modality columns in
    the dataset's column order."""
    specs = ds.schema
    first = [_resolve_quietly(ds, c) for c in ALWAYS]
    first = [c for c in first if c is not None]
    rest = [c for c in specs
            if c not in first and not _is_modality(c) and _refusal(c, specs[c]) is None]
    return list(dict.fromkeys(first + rest))


# ---- columns -----------------------------------------------------------------------------
def _chosen(ds: Any, columns: Iterable[str] | None, aliases: bool) -> list[tuple[str, str]]:
    """[(name in the table, stored name)], each stored column once, always-present first."""
    specs = ds.schema
    standard = ds.standard_names() if aliases else {}
    if columns is None:
        asked = [(c, c) for c in catalog_columns(ds)]
    else:
        names = [columns] if isinstance(columns, str) else list(columns)
        asked = [(s, s) for s in (_resolve_quietly(ds, a) for a in ALWAYS) if s is not None]
        for name in names:
            s = ds.resolve(name)  # KeyError naming the dataset and the columns, as get() does
            why = _refusal(s, specs[s])
            if why is not None:
                raise TableError(f"{_where_is(ds)}: column {name!r} {why}; a table holds "
                                 "catalog columns, one value per row (read this one with "
                                 "get(), cone() or iter_batches())")
            asked.append((name, s))
    out: dict[str, str] = {}  # stored -> name
    for name, s in asked:
        if s not in out:
            shown = standard.get(s, name) if aliases else name
            # two stored columns given one standard name: the later keeps its stored name
            out[s] = s if shown in out.values() else shown
    return [(name, s) for s, name in out.items()]


def _is_modality(stored: str) -> bool:
    """A modality column (``image_array``; a matched dataset's ``hsc.image_array``)."""
    return stored.rsplit(".", 1)[-1].startswith(modality_prefixes())


def _refusal(stored: str, spec: Any) -> str | None:
    """Why a stored column cannot be a table column or a filter operand, or None."""
    if spec.shape:
        if _is_modality(stored):
            return f"is a modality array (per-row shape {tuple(spec.shape)})"
        return f"holds {tuple(spec.shape)} values per row"
    if spec.np_dtype.kind not in CATALOG_KINDS:
        return f"has dtype {spec.dtype}, which a table column does not take"
    return None


def _resolve_quietly(ds: Any, name: str) -> str | None:
    try:
        return ds.resolve(name)
    except KeyError:
        return None


def _where_is(ds: Any) -> str:
    return str(getattr(ds, "location", None) or ds.path)


def _units(ds: Any, stored: list[str]) -> dict[str, Any]:
    """stored column -> astropy unit: the manifest entry's ``"unit"``, else degrees for the
    position columns; columns with neither get none."""
    import astropy.units as u

    positions = {_resolve_quietly(ds, c) for c in DEGREES}
    recorded = ds.manifest.columns if getattr(ds, "manifest", None) is not None else {}
    out: dict[str, Any] = {}
    for s in stored:
        entry = recorded.get(s)
        text = entry.get("unit") if isinstance(entry, dict) else None
        if isinstance(text, str) and text.strip():
            out[s] = u.Unit(text.strip(), parse_strict="silent")
        elif s in positions or ("." in s and s.rsplit(".", 1)[-1] in DEGREES):
            out[s] = u.deg
    return out


def _decode(ds: Any, stored: str, values: np.ndarray) -> np.ndarray:
    try:
        return np.char.decode(values, "utf-8")
    except UnicodeDecodeError as exc:
        raise TableError(f"{_where_is(ds)}: column {stored!r} holds a value that is not UTF-8 "
                         f"text ({exc})") from None


# ---- reading -----------------------------------------------------------------------------
def _blocks(ds: Any, stored: list[str], batch_size: int
            ) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """(file index, first row, block) for every block ``iter_batches`` gives, which goes file
    by file in file order, ``batch_size`` rows at a time."""
    spans = ((i, a, min(n, a + batch_size)) for i, n in enumerate(ds.file_rows)
             for a in range(0, int(n), batch_size))
    for block in ds.iter_batches(batch_size=batch_size, columns=stored):
        i, a, b = next(spans)
        got = len(next(iter(block.values())))
        if got != b - a:
            raise TableError(f"{_where_is(ds)}: file {i} gave a block of {got} rows at row "
                             f"{a}, expected {b - a} (the files changed while being read?)")
        yield i, a, block


def _read(ds: Any, stored: list[str], test: Filter | None, batch_size: int
          ) -> dict[str, list[np.ndarray]]:
    """stored column -> its kept values, block by block."""
    parts: dict[str, list[np.ndarray]] = {s: [] for s in stored}
    if test is None:
        for _, _, block in _blocks(ds, stored, batch_size):
            for s in stored:
                parts[s].append(block[s])
        return parts
    rest = [s for s in stored if s not in test.columns]
    for i, a, block in _blocks(ds, test.columns, batch_size):
        keep = test(block)
        rows = np.flatnonzero(keep)
        if not len(rows):
            continue
        for s in stored:
            if s in block:
                parts[s].append(block[s][rows])
        if rest:
            got = ds.read_rows(np.full(len(rows), i), rows + a, columns=rest)
            for s in rest:
                parts[s].append(got[s])
    return parts


# ---- the filter --------------------------------------------------------------------------
BOOL, NUM, TEXT = "condition", "number", "text"


class Filter:
    """A compiled ``where`` expression: ``columns`` (stored names) it reads, and a call that
    turns a block (stored name -> array) into a boolean mask."""

    def __init__(self, expression: str, columns: list[str],
                 fn: Callable[[dict[str, np.ndarray]], Any]):
        self.expression, self.columns, self._fn = expression, columns, fn

    def __call__(self, block: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(block.values())))
        return np.broadcast_to(np.asarray(self._fn(block), dtype=bool), (n,))


def compile_filter(ds: Any, expression: str) -> Filter:
    """Parse and check ``expression`` against ``ds``'s schema (module docstring)."""
    if not isinstance(expression, str) or not expression.strip():
        raise FilterError(f"{_where_is(ds)}: where must be a non-empty expression such as "
                          f"\"z > 0.5 and zwarn == 0\", not {expression!r}")
    text = expression.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        at = (f" at {text[exc.offset - 1:]!r}" if exc.offset and 0 < exc.offset <= len(text)
              else "")
        raise FilterError(f"{_where_is(ds)}: where {text!r} is not a valid expression "
                          f"({exc.msg}{at})") from None
    compiler = _Compiler(ds, text)
    kind, fn = compiler.visit(tree.body)
    if kind != BOOL:
        raise FilterError(f"{_where_is(ds)}: where {text!r} gives a {kind}, not a condition "
                          "(compare it: \"z > 0.5\")")
    used = list(dict.fromkeys(compiler.used)) or [ds.resolve("object_id")]  # a block's length
    return Filter(text, used, fn)


_COMPARE = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
            ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal}
_CALLS = {"abs": (np.abs, NUM), "isnan": (np.isnan, BOOL), "isfinite": (np.isfinite, BOOL)}
Compiled = tuple[str, Callable[[dict[str, np.ndarray]], Any]]


class _Compiler:
    """Turns an expression tree into (kind, function of a block), refusing anything not in
    the whitelist; kinds are checked here, once, not on every block."""

    def __init__(self, ds: Any, text: str):
        self.ds, self.text = ds, text
        self.used: list[str] = []
        self.specs = ds.schema

    def fail(self, node: ast.AST | None, why: str) -> FilterError:
        part = ast.get_source_segment(self.text, node) if node is not None else None
        at = f" at {part!r}" if part and part != self.text else ""
        return FilterError(f"{_where_is(self.ds)}: where {self.text!r}{at}: {why}")

    def visit(self, node: ast.AST) -> Compiled:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise self.fail(node, f"{_describe(node)} is not allowed (a filter takes "
                            "comparisons, and/or/not, & | ~, parentheses, numbers, quoted "
                            "strings, column names, abs(), isnan(), isfinite())")
        return method(node)

    # -- leaves
    def visit_Constant(self, node: ast.Constant) -> Compiled:
        value = node.value
        if isinstance(value, bool):
            return BOOL, lambda block: value
        if isinstance(value, (int, float)):
            return NUM, lambda block: value
        if isinstance(value, str):
            return TEXT, lambda block: value
        raise self.fail(node, f"the constant {value!r} is not allowed (numbers, True/False and "
                        "quoted strings are)")

    def visit_Name(self, node: ast.Name) -> Compiled:
        return self.column(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> Compiled:
        parts, inner = [node.attr], node.value
        while isinstance(inner, ast.Attribute):
            parts.append(inner.attr)
            inner = inner.value
        if not isinstance(inner, ast.Name):
            raise self.fail(node, "only column names may be written with dots (desi.Z)")
        parts.append(inner.id)
        return self.column(node, ".".join(reversed(parts)))

    def column(self, node: ast.AST, name: str) -> Compiled:
        try:
            stored = self.ds.resolve(name)
        except KeyError:
            known = catalog_columns(self.ds)
            known += [n for s, n in self.ds.standard_names().items() if s in known]
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            shown = ", ".join(known[:30]) + (" ..." if len(known) > 30 else "")
            raise self.fail(node, f"no column {name!r}{hint} (catalog columns: {shown})") \
                from None
        spec = self.specs[stored]
        why = _refusal(stored, spec)
        if why is not None:
            raise self.fail(node, f"column {name!r} {why}; a filter takes catalog columns, "
                            "one value per row")
        self.used.append(stored)
        kind = {"b": BOOL, "S": TEXT}.get(spec.np_dtype.kind, NUM)
        return kind, lambda block: block[stored]

    # -- operators
    def visit_Compare(self, node: ast.Compare) -> Compiled:
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise self.fail(node, f"the operator {_describe(op)} is not allowed (< <= > >= "
                                "== != are)")
        operands = [self.visit(node.left)] + [self.visit(c) for c in node.comparators]
        nodes = [node.left, *node.comparators]
        steps = []
        for k, op in enumerate(node.ops):
            fn = _COMPARE[type(op)]
            (lk, lf), (rk, rf) = operands[k], operands[k + 1]
            if (lk == TEXT) != (rk == TEXT):
                raise self.fail(nodes[k + 1] if rk == TEXT else nodes[k],
                                "compares text with a number (quote the text on both sides, "
                                "or compare numbers)")
            if lk == TEXT:
                lf, rf = _as_bytes(lf), _as_bytes(rf)
            steps.append((fn, lf, rf))

        def compare(block: dict[str, np.ndarray]) -> Any:
            out = None
            for fn, lf, rf in steps:
                r = fn(lf(block), rf(block))
                out = r if out is None else np.logical_and(out, r)
            return out

        return BOOL, compare

    def visit_BoolOp(self, node: ast.BoolOp) -> Compiled:
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        fns = [self.condition(v, "and" if isinstance(node.op, ast.And) else "or")
               for v in node.values]

        def boolop(block: dict[str, np.ndarray]) -> Any:
            out = fns[0](block)
            for f in fns[1:]:
                out = combine(out, f(block))
            return out

        return BOOL, boolop

    def visit_BinOp(self, node: ast.BinOp) -> Compiled:
        ops = {ast.BitAnd: (np.logical_and, "&"), ast.BitOr: (np.logical_or, "|")}
        if type(node.op) not in ops:
            raise self.fail(node, f"arithmetic ({_describe(node.op)}) is not allowed; a filter "
                            "compares columns with values")
        combine, symbol = ops[type(node.op)]
        left, right = self.condition(node.left, symbol), self.condition(node.right, symbol)
        return BOOL, lambda block: combine(left(block), right(block))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Compiled:
        if isinstance(node.op, (ast.Not, ast.Invert)):
            inner = self.condition(node.operand, "not" if isinstance(node.op, ast.Not) else "~")
            return BOOL, lambda block: np.logical_not(inner(block))
        kind, fn = self.visit(node.operand)
        if kind != NUM:
            raise self.fail(node, f"a sign applies to numbers, not to a {kind}")
        if isinstance(node.op, ast.USub):
            return NUM, lambda block: np.negative(fn(block))
        return NUM, fn

    def visit_Call(self, node: ast.Call) -> Compiled:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _CALLS:
            raise self.fail(node, f"the function {ast.get_source_segment(self.text, node.func)!r} "
                            "is not allowed (abs, isnan, isfinite are)")
        if len(node.args) != 1 or node.keywords:
            raise self.fail(node, f"{name}() takes one argument")
        kind, fn = self.visit(node.args[0])
        if kind != NUM:
            raise self.fail(node, f"{name}() takes a number, not a {kind}")
        func, result = _CALLS[name]
        return result, lambda block: func(fn(block))

    def condition(self, node: ast.AST, where: str) -> Callable[[dict[str, np.ndarray]], Any]:
        kind, fn = self.visit(node)
        if kind != BOOL:
            hint = (" (& and | bind tighter than comparisons: write (a > 1) & (b < 2))"
                    if where in ("&", "|") else "")
            raise self.fail(node, f"{where!r} combines conditions, and this is a {kind}{hint}")
        return fn


def _as_bytes(fn: Callable[[dict[str, np.ndarray]], Any]
              ) -> Callable[[dict[str, np.ndarray]], Any]:
    """Text as stored (UTF-8 bytes): a quoted string compared with a text column is encoded,
    since numpy compares bytes with str as never equal."""
    def encoded(block: dict[str, np.ndarray]) -> Any:
        value = fn(block)
        return value.encode("utf-8") if isinstance(value, str) else value

    return encoded


def _describe(node: ast.AST) -> str:
    names = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
             ast.Mod: "%", ast.Pow: "**", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
             ast.MatMult: "@", ast.In: "in", ast.NotIn: "not in", ast.Is: "is",
             ast.IsNot: "is not"}
    if type(node) in names:
        return repr(names[type(node)])
    return {"Subscript": "indexing", "Lambda": "a lambda", "List": "a list", "Tuple": "a tuple",
            "Dict": "a dict", "Set": "a set", "IfExp": "if/else", "NamedExpr": ":=",
            "ListComp": "a comprehension", "GeneratorExp": "a generator",
            "JoinedStr": "an f-string", "Starred": "*", "Await": "await",
            "Slice": "a slice"}.get(type(node).__name__, type(node).__name__)
