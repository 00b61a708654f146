"""`mmu_core.hf.load` gives the logical light-curve example (docs/examples.md) for PLAsTiCC."""

from __future__ import annotations

import numpy as np
import pytest

import mmu_core

datasets = pytest.importorskip("datasets")


@pytest.mark.parametrize("streaming", [False, True])
def test_hf_examples_follow_the_design_doc(built, helpers, tmp_path, streaming):
    path, files = built[("unblinded", "test")]
    hfds = mmu_core.hf.load(path, streaming=streaming, cache_dir=tmp_path / "hf")
    csv = helpers.csv_observations(files)
    length = mmu_core.open_dataset(path).schema["lightcurve_time"].shape[1]
    seen = 0
    for ex in hfds:
        lc = ex["lightcurve"]
        assert set(lc) >= {"band", "time", "flux", "flux_err", "mask", "detected", "band_names"}
        assert lc["band_names"] == ["u", "g", "r", "i", "z", "y"]
        assert lc["band"] == np.repeat(np.arange(6), length).tolist()  # band-major
        for key in ("obj_type", "hostgal_specz", "hostgal_photoz", "redshift", "ra", "dec"):
            assert key in ex
        real = ~np.array(lc["mask"])
        mine = csv[csv.object_id == ex["object_id"]].sort_values(["passband", "mjd"], kind="stable")
        assert np.array(lc["band"])[real].tolist() == mine.passband.tolist()
        assert np.array(lc["time"])[real].tolist() == mine.mjd.tolist()
        assert np.array_equal(
            np.array(lc["flux"], np.float32)[real], mine.flux.to_numpy(np.float32)
        )
        assert np.array_equal(
            np.array(lc["flux_err"], np.float32)[real], mine.flux_err.to_numpy(np.float32)
        )
        assert np.array(lc["detected"])[real].tolist() == mine.detected.astype(bool).tolist()
        assert isinstance(ex["obj_type"], str) and ex["obj_type"]
        seen += 1
    assert seen == csv.object_id.nunique()
