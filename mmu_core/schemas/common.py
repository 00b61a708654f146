"""Fields every example has, whatever its modality, and shared array validators."""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator

SCHEMA_VERSION = "1.0"
ALWAYS_PRESENT = ("object_id", "ra", "dec", "healpix")


def _as_array(value: Any) -> np.ndarray:
    return value if isinstance(value, np.ndarray) else np.asarray(value)


Array = Annotated[
    np.ndarray,
    BeforeValidator(_as_array),
    PlainSerializer(lambda a: a.tolist(), return_type=list),
]


def decode(value: Any) -> Any:
    """bytes -> str for fixed-width HDF5 strings; other values unchanged."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace").rstrip("\x00")
    return value


class Provenance(BaseModel):
    model_config = ConfigDict(extra="allow")
    survey: str
    config: str | None = None
    release: str | None = None
    distribution: str | None = None
    version: str | None = None


class CommonFields(BaseModel):
    """object_id, position and HEALPix pixel: the columns cross-matching relies on."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="allow")
    provenance: Provenance | None = None
    object_id: int | str
    ra: float = Field(description="ICRS right ascension, degrees, in [0, 360)")
    dec: float = Field(description="ICRS declination, degrees, in [-90, 90]")
    healpix: int | None = Field(default=None, description="NSIDE 16 NESTED pixel")

    @field_validator("object_id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> Any:
        v = decode(v)
        return int(v) if isinstance(v, np.integer) else v

    @field_validator("ra")
    @classmethod
    def _ra(cls, v: float) -> float:
        if not math.isfinite(v) or not 0.0 <= v < 360.0:
            raise ValueError(f"ra must be finite and in [0, 360), got {v}")
        return v

    @field_validator("dec")
    @classmethod
    def _dec(cls, v: float) -> float:
        if not math.isfinite(v) or not -90.0 <= v <= 90.0:
            raise ValueError(f"dec must be finite and in [-90, 90], got {v}")
        return v


def same_length(name_to_array: dict[str, np.ndarray | None], what: str) -> None:
    """Raise ValueError naming the fields whose (first-axis) lengths disagree."""
    lengths = {k: len(v) for k, v in name_to_array.items() if v is not None}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{what} fields must have the same length, got {lengths}")
