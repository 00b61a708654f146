"""Typed records exchanged between the core and survey plugins.

Plugins return these from their hooks; the core validates them on arrival, so a plugin that
returns something malformed is reported by name instead of failing somewhere deep in a build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mmu_core.schemas import BUILTIN_MODALITIES, canonical_name, get_modality

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

MODALITIES: tuple[str, ...] = BUILTIN_MODALITIES  # the built-in ones; see schemas.modalities()


def check_slug(value: str, what: str) -> str:
    """Return ``value`` if it is a slug (it becomes a folder name), else raise ``ValueError``."""
    if not isinstance(value, str) or not SLUG_RE.match(value):
        raise ValueError(
            f"{what} {value!r} is not a slug: use lower-case letters, digits, '_', '.', '-' "
            "and start with a letter or digit"
        )
    return value


class ConfigInfo(BaseModel):
    """One configuration (subset/selection) of a survey, e.g. DESI ``dr1_main``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        return check_slug(v, "config name")


class OptionInfo(BaseModel):
    """A survey-specific command-line option of ``mmu build`` or ``mmu sample``.

    ``mmu build hsc ... --require-all-bands`` reaches the plugin as
    ``options["require_all_bands"] = True``; ``--release unblinded`` as ``options["release"]``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str  # python identifier, e.g. "require_all_bands"; CLI spelling uses dashes
    kind: Literal["flag", "str", "int", "float", "path"] = "flag"
    help: str = ""
    default: Any = None

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not v.isidentifier():
            raise ValueError(f"option name {v!r} must be a Python identifier")
        return v

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


class SurveyInfo(BaseModel):
    """What a plugin says about one survey it provides (returned by ``mmu_describe``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    modality: str = Field(description="a registered modality (mmu_core.schemas.modalities())")
    description: str
    configs: list[ConfigInfo] = Field(min_length=1)
    default_config: str
    citation: str = ""
    license: str = ""
    homepage: str = ""
    version: str = ""
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="native catalog columns the converter writes, name -> description",
    )
    build_options: list[OptionInfo] = Field(default_factory=list)
    sample_options: list[OptionInfo] = Field(default_factory=list)

    preview_columns: list[str] = Field(
        default_factory=list,
        description="catalog columns worth showing beside the object id in a preview (e.g. a "
        "redshift or a class); recorded in the manifest",
    )
    units: dict[str, str] = Field(
        default_factory=dict,
        description="column -> unit, as astropy spells it (e.g. 'nanomaggy', 'mag', 'deg', "
        "'1e-17 erg / (s cm2 Angstrom)'); recorded in the manifest's column entries, used by "
        "Dataset.to_table and the previews",
    )

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        return check_slug(v, "survey name")

    @field_validator("modality")
    @classmethod
    def _known_modality(cls, v: str) -> str:
        get_modality(v)  # ValueError listing the known modalities
        return canonical_name(v) or v

    @model_validator(mode="after")
    def _default_is_a_config(self) -> SurveyInfo:
        names = [c.name for c in self.configs]
        if self.default_config not in names:
            raise ValueError(
                f"default_config {self.default_config!r} is not one of the configs {names}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"config names repeat: {names}")
        return self

    def config_names(self) -> list[str]:
        return [c.name for c in self.configs]


class WorkUnit(BaseModel):
    """An independent, idempotent piece of a build: a group of input files.

    ``key`` must be unique within a build and stable between runs (it names the unit's
    staging folder, which is how a re-run knows the unit is finished). ``ra``/``dec`` are
    the unit's approximate sky position when known. ``meta`` is free JSON-able data the
    plugin's convert hook wants back.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    survey: str
    config: str
    key: str
    files: list[str]
    ra: float | None = None
    dec: float | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _key_is_safe(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.,=+-]*$", v):
            raise ValueError(f"unit key {v!r} must be usable as a file name")
        return v


class Problem(BaseModel):
    """Something wrong with one input: reported, or skipped with ``--skip-bad``."""

    model_config = ConfigDict(frozen=True)
    file: str | None = None
    object: str | None = None
    message: str

    def __str__(self) -> str:
        where = ", ".join(
            p for p in (self.file and f"file {self.file}", self.object and f"object {self.object}") if p
        )
        return f"{where}: {self.message}" if where else self.message


class ConvertContext(BaseModel):
    """What the core hands a converter besides the unit itself.

    Converters report recoverable trouble through :meth:`warn` (kept, shown once per message
    in the build summary) and :meth:`skip` (an object or file left out on purpose).
    Unrecoverable bad input is raised as :class:`mmu_core.errors.InputError`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    raw_dir: Path
    options: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    skipped: list[Problem] = Field(default_factory=list)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def skip(self, message: str, file: str | None = None, object: str | None = None) -> None:
        self.skipped.append(Problem(file=file, object=object, message=message))

    def option(self, name: str, default: Any = None) -> Any:
        value = self.options.get(name)
        return default if value is None else value


class SampleRequest(BaseModel):
    """Arguments of ``mmu sample SURVEY``: where and how much synthetic raw data to write."""

    model_config = ConfigDict(frozen=True)
    out_dir: Path
    n: int = Field(default=100, ge=1)
    seed: int = 0
    ra: float = 150.0
    dec: float = 2.0
    radius: float = Field(default=0.5, gt=0, description="degrees")
    positions: list[tuple[float, float]] | None = Field(
        default=None,
        description="(ra, dec) degrees where the first objects must sit exactly, so samples of "
        "different surveys contain the same objects (cross-matching demos); the rest, if n is "
        "larger, are drawn in the cone",
    )
    options: dict[str, Any] = Field(default_factory=dict)


class SampleResult(BaseModel):
    """What ``mmu_sample`` wrote."""

    files: list[str]
    n_objects: int
    notes: list[str] = Field(default_factory=list)
