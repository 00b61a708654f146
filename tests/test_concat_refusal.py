"""``concatenate`` refuses a dataset given twice (the same folder however it is reached, a
copy of it, or another dataset with its source label) instead of doubling its rows, and still
concatenates distinct datasets."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from stored import offset, store

import mmu_core
from mmu_core.cli import app
from mmu_core.concat import ConcatError, concatenate


def _rows(rng, n, id0):
    sep = np.degrees(np.arccos(rng.uniform(np.cos(np.radians(3.0)), 1.0, n))) * 3600
    ra, dec = offset(np.full(n, 150.0), np.full(n, 2.0), sep, rng.uniform(0, 360, n))
    length = 8
    return {"object_id": id0 + np.arange(n, dtype=np.int64), "ra": ra, "dec": dec,
            "spectrum_lambda": np.tile(np.linspace(4000, 9000, length, dtype=np.float32), (n, 1)),
            "spectrum_flux": rng.random((n, length), np.float32),
            "spectrum_ivar": rng.random((n, length), np.float32),
            "spectrum_mask": rng.random((n, length)) > 0.9,
            "Z": rng.random(n).astype(np.float32)}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("concat_refusal")
    rng = np.random.default_rng(3)
    a = store(root / "sa" / "test", _rows(rng, 60, 0), "sa", "spectrum", {"Z": "z"})
    b = store(root / "sb" / "test", _rows(rng, 40, 1000), "sb", "spectrum", {"Z": "z"})
    return root, a, b


def test_the_same_folder_twice_is_refused_naming_it(pair, tmp_path):
    root, a, _ = pair
    where = str(a.resolve())
    with pytest.raises(ConcatError, match=rf"dataset sa/test is given twice \(inputs 1 and 2 are "
                                          rf"both {where}\).*double its rows"):
        concatenate([a, a], tmp_path / "out")
    link = tmp_path / "link"
    os.symlink(a, link)
    relative = os.path.relpath(a, os.getcwd())
    for other in (link, relative, mmu_core.open_dataset(a)):
        with pytest.raises(ConcatError, match="sa/test is given twice"):
            concatenate([a, other], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_a_copy_or_another_build_of_the_same_label_is_refused(pair, tmp_path):
    root, a, b = pair
    copy = tmp_path / "copy" / "sa" / "test"
    shutil.copytree(a, copy)
    with pytest.raises(ConcatError, match=r"inputs 1 \(.*\) and 3 \(.*copy/sa/test\) are copies "
                                          r"of it \(manifest fingerprint [0-9a-f]{16}\)"):
        concatenate([a, b, copy], tmp_path / "out")
    rebuilt = store(tmp_path / "again" / "sa" / "test", _rows(np.random.default_rng(9), 10, 5000),
                    "sa", "spectrum", {"Z": "z"})
    with pytest.raises(ConcatError, match=r"inputs 1 \(.*\) and 2 \(.*again/sa/test\) are both "
                                          r"sa/test.*source label"):
        concatenate([a, rebuilt], tmp_path / "out")


def test_distinct_datasets_still_concatenate(pair, tmp_path):
    from typer.testing import CliRunner

    _, a, b = pair
    ds = concatenate([a, b], tmp_path / "both")
    assert len(ds) == 100
    sources = ds.to_table(columns=["source"])["source"]
    assert sorted(set(sources)) == ["sa/test", "sb/test"] and list(sources).count("sa/test") == 60
    res = CliRunner().invoke(app, ["concat", str(a), str(a), "--out", str(tmp_path / "cli")])
    assert res.exit_code == 1 and "given twice" in res.output
