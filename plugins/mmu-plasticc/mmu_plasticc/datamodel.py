"""Facts about the two public PLAsTiCC releases: file names, columns, bands and classes.

Sources: the Kaggle 2018 challenge data page and the unblinded release (Zenodo record 2539456),
as summarised in docs/surveys.md. Nothing here reads files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BANDS = ("u", "g", "r", "i", "z", "y")  # passband 0..5
N_BANDS = len(BANDS)

# Light-curve columns under the names this plugin uses; `detected` is `detected_bool` in the
# unblinded release.
LC_FIELDS = ("object_id", "mjd", "passband", "flux", "flux_err", "detected")

CLASS_NAMES: dict[int, str] = {
    6: "muLens-Single",
    15: "TDE",
    16: "EB",
    42: "SNII",
    52: "SNIax",
    53: "Mira",
    62: "SNIbc",
    64: "KN",
    65: "M-dwarf",
    67: "SNIa-91bg",
    88: "AGN",
    90: "SNIa",
    92: "RRL",
    95: "SLSN-I",
    99: "other",  # Kaggle's label for everything the training set does not contain
    991: "muLens-Binary",
    992: "ILOT",
    993: "CaRT",
    994: "PISN",
    995: "muLens-String",
}
GALACTIC_CLASSES = (6, 16, 53, 65, 92)
TRAIN_CLASSES = (6, 15, 16, 42, 52, 53, 62, 64, 65, 67, 88, 90, 92, 95)
UNBLINDED_TEST_ONLY_CLASSES = (991, 992, 993, 994, 995)
OBJ_TYPE_WIDTH = 16  # bytes: fixed width of the stored obj_type strings
UNKNOWN_TARGET = -1  # `target` where the file has none (Kaggle test set)

# Metadata columns parsed as integers; every other metadata column is float64.
INT_META_COLUMNS = frozenset(
    {"object_id", "ddf", "ddf_bool", "target", "true_target", "true_submodel", "libid_cadence"}
)

KAGGLE_META_COLUMNS = (
    "object_id",
    "ra",
    "decl",
    "gal_l",
    "gal_b",
    "ddf",
    "hostgal_specz",
    "hostgal_photoz",
    "hostgal_photoz_err",
    "distmod",
    "mwebv",
    "target",
)
UNBLINDED_META_COLUMNS = (
    "object_id",
    "ra",
    "decl",
    "ddf_bool",
    "hostgal_specz",
    "hostgal_photoz",
    "hostgal_photoz_err",
    "distmod",
    "mwebv",
    "target",
    "true_target",
    "true_submodel",
    "true_z",
    "true_distmod",
    "true_lensdmu",
    "true_vpec",
    "true_rv",
    "true_av",
    "true_peakmjd",
    "libid_cadence",
    *(f"tflux_{b}" for b in BANDS),
)


@dataclass(frozen=True)
class Release:
    """File names and column spellings of one PLAsTiCC release."""

    name: str
    lightcurves: dict[str, re.Pattern]  # config -> light-curve file name pattern
    metadata: dict[str, re.Pattern]  # config -> metadata file name pattern
    detected_column: str
    ddf_column: str
    meta_columns: tuple[str, ...]

    def lc_columns(self) -> tuple[str, ...]:
        """The light-curve header of this release."""
        return (*LC_FIELDS[:-1], self.detected_column)


def _name(pattern: str) -> re.Pattern:
    # Either release may be met compressed or not (people gunzip the Zenodo files).
    return re.compile(rf"^{pattern}\.csv(\.gz)?$")


KAGGLE = Release(
    name="kaggle",
    lightcurves={"train": _name("training_set"), "test": _name(r"test_set(?!_metadata)(_\w+)?")},
    metadata={"train": _name("training_set_metadata"), "test": _name("test_set_metadata")},
    detected_column="detected",
    ddf_column="ddf",
    meta_columns=KAGGLE_META_COLUMNS,
)
UNBLINDED = Release(
    name="unblinded",
    lightcurves={
        "train": _name("plasticc_train_lightcurves"),
        "test": _name(r"plasticc_test_lightcurves_\d+"),
    },
    metadata={"train": _name("plasticc_train_metadata"), "test": _name("plasticc_test_metadata")},
    detected_column="detected_bool",
    ddf_column="ddf_bool",
    meta_columns=UNBLINDED_META_COLUMNS,
)
RELEASES: dict[str, Release] = {r.name: r for r in (KAGGLE, UNBLINDED)}

# Kaggle's test_set_sample.csv repeats the first rows of test_set.csv: never read both.
KAGGLE_TEST_SAMPLE = _name("test_set_sample")
KAGGLE_FULL_TEST = _name("test_set")


def class_name(code: int) -> str:
    """The class name of a PLAsTiCC target code ('' when unknown, e.g. a blinded 0 or -1)."""
    return CLASS_NAMES.get(int(code), "")
