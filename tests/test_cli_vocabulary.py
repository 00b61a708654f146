"""One vocabulary on the command line and astropy objects in Python: radii carry their unit,
``validate`` takes every path the other commands take, failed plugins keep their name, and no
traceback reaches the user for a problem (``--debug`` shows it)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from stored import build_toy_pair
from toy_plugin import ToyPlugin
from typer.testing import CliRunner

import mmu_core
from mmu_core import cli, testing
from mmu_core.angles import AngleError, parse_angle, to_arcsec, to_degrees
from mmu_core.crossmatch import cross_match
from mmu_core.registry import PluginFailure

runner = CliRunner()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return build_toy_pair(tmp_path_factory.mktemp("vocab"), spec_units=2)


def invoke(registry, *args):
    with testing.use_registry(registry):
        return runner.invoke(cli.app, [str(a) for a in args])


def test_radius_strings_need_their_unit():
    assert to_arcsec(parse_angle("1arcsec")) == pytest.approx(1.0)
    assert to_arcsec(parse_angle('1.5"')) == pytest.approx(1.5)
    assert to_arcsec(parse_angle("0.1arcmin")) == pytest.approx(6.0)
    assert to_degrees(parse_angle("0.5deg")) == pytest.approx(0.5)
    for bare in ("1", "0.5", " 2 "):
        with pytest.raises(AngleError, match="has no unit"):
            parse_angle(bare)
    with pytest.raises(AngleError, match="not an angle"):
        parse_angle("3m")
    with pytest.raises(AngleError, match="positive"):
        to_arcsec(-1 * u.arcsec)


def test_crossmatch_radius_option_and_quantity_inputs_equal_floats(pair, tmp_path):
    img, spec = pair
    registry = testing.plugin_registry(ToyPlugin())
    bare = invoke(registry, "crossmatch", img, spec, "--radius", "1", "--out", tmp_path / "a")
    assert bare.exit_code == 1 and "has no unit" in bare.output
    done = invoke(registry, "crossmatch", img, spec, "--radius", "1arcsec", "--how", "all",
                  "--out", tmp_path / "b", "--catalog-only")
    assert done.exit_code == 0, done.output
    floats = cross_match(img, spec, radius_arcsec=1.0, how="all")
    quantity = cross_match(img, spec, radius=1 * u.arcsec, how="all")
    degrees = cross_match(img, spec, radius=(1 / 3600) * u.deg, how="all")
    assert len(floats) > 0
    for other in (quantity, degrees):
        assert other.catalog.column("right_object_id").to_pylist() == \
            floats.catalog.column("right_object_id").to_pylist()
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "b" / "catalog.parquet").num_rows == len(floats)


def test_cone_takes_skycoord_and_quantities(pair):
    ds = mmu_core.open_dataset(pair[0])
    ra, dec = 150.0, 2.0
    want = ds.cone(ra, dec, 1.0, columns=["object_id"])["object_id"]
    assert len(want) > 0
    got = [
        ds.cone(SkyCoord(ra * u.deg, dec * u.deg), 1 * u.deg, columns=["object_id"]),
        ds.cone((ra, dec), 60 * u.arcmin, columns=["object_id"]),
        ds.cone(SkyCoord(ra * u.deg, dec * u.deg).galactic, 1.0, ["object_id"]),
        ds.cone(ra * u.deg, dec * u.deg, radius=3600 * u.arcsec, columns=["object_id"]),
    ]
    for g in got:
        np.testing.assert_array_equal(np.sort(g["object_id"]), np.sort(want))
    with pytest.raises(AngleError):
        ds.cone(ra, dec, 2 * u.m)


def test_validate_takes_a_crossmatch_output_and_a_folder_of_datasets(pair, tmp_path):
    img, spec = pair
    registry = testing.plugin_registry(ToyPlugin())
    cross_match(img, spec, tmp_path / "xm", radius_arcsec=1.0)
    for path, n in ((tmp_path / "xm", 1), (img.parent.parent, 2), (img.parent, 1), (img, 1)):
        done = invoke(registry, "validate", path, "--json")
        assert done.exit_code == 0, done.output
        data = json.loads(done.output)
        reports = data if isinstance(data, list) else [data]
        assert len(reports) == n and all(r["ok"] for r in reports), (path, reports)
    empty = tmp_path / "nothing"
    empty.mkdir()
    done = invoke(registry, "validate", empty)
    assert done.exit_code == 1 and "no dataset below it" in done.output


def test_failed_plugins_keep_their_entry_point_name():
    registry = testing.plugin_registry(ToyPlugin())
    registry.failures.append(PluginFailure("brokensurvey", "mmu-broken",
                                           "ImportError: " + "a long reason " * 12))
    done = invoke(registry, "list-surveys", "--json")
    rows = json.loads(done.output)
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and failed[0]["name"] == "brokensurvey"
    text = invoke(registry, "list-surveys").output
    assert "brokensurvey" in text and "a long reason " * 3 in " ".join(text.split())


def test_describe_shows_option_defaults():
    registry = testing.plugin_registry(ToyPlugin())
    text = invoke(registry, "describe", "toyimg").output
    assert "default" in text


class RaisingSampler(ToyPlugin):
    @mmu_core.hookimpl
    def mmu_sample(self, survey, request):
        raise ValueError("the sampler broke")


@pytest.fixture
def keep_signal_handlers():
    """``cli.main`` installs SIGINT/SIGTERM handlers; left in the test process they would be
    inherited by forked workers of later tests (which then ignore ``Pool.terminate``)."""
    import signal

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_no_traceback_reaches_the_user_and_debug_shows_it(tmp_path, monkeypatch, capsys,
                                                          keep_signal_handlers):
    registry = testing.plugin_registry(RaisingSampler())
    args = ["mmu", "sample", "toyimg", "--out", str(tmp_path / "raw")]
    with testing.use_registry(registry):
        monkeypatch.setattr(sys, "argv", args)
        with pytest.raises(SystemExit) as exit_info:
            cli.main()
        assert exit_info.value.code == 1
        captured = capsys.readouterr()
        assert "the sampler broke" in captured.err and "Traceback" not in captured.err
        assert "--debug" in captured.err
        monkeypatch.setattr(sys, "argv", [*args, "--debug"])
        with pytest.raises(ValueError, match="the sampler broke"):
            cli.main()


def test_sample_refuses_to_overwrite_an_earlier_sample_without_overwrite(tmp_path):
    registry = testing.plugin_registry(ToyPlugin())
    first = invoke(registry, "sample", "toyimg", "--out", tmp_path / "raw", "--n", 8)
    assert first.exit_code == 0, first.output
    again = invoke(registry, "sample", "toyimg", "--out", tmp_path / "raw", "--n", 8)
    assert again.exit_code == 1 and "--overwrite" in again.output
    replaced = invoke(registry, "sample", "toyimg", "--out", tmp_path / "raw", "--n", 12,
                      "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((tmp_path / "raw" / "mmu-sample.json").read_text())["n"] == 12
