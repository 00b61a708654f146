"""The plugin manager: entry points, failures reported not fatal, duplicates, switches, an
optional mmu_sample; and the plugin-contract helpers mmu_core.sampling and mmu_core.fits."""

from __future__ import annotations

import json
import textwrap
from importlib import metadata

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from mmu_core import hookimpl, testing
from mmu_core.cli import app
from mmu_core.errors import InputError, PluginError, UnknownSurveyError
from mmu_core.fits import fits_errors, get_hdu, open_fits, read_fits
from mmu_core.models import ConfigInfo, SampleRequest, SurveyInfo
from mmu_core.registry import Registry
from mmu_core.sampling import cone_positions, separation

runner = CliRunner()


def _module(tmp_path, monkeypatch, name: str, body: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


GOOD = """
from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, SurveyInfo

@hookimpl
def mmu_describe():
    return [SurveyInfo(name="{name}", modality="spectrum", description="d",
                       configs=[ConfigInfo(name="c1")], default_config="c1")]
"""


def test_broken_import_is_reported_and_others_load(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, "good_plugin", GOOD.format(name="goodsurvey"))
    _module(tmp_path, monkeypatch, "broken_plugin", "raise RuntimeError('boom at import')\n")
    eps = [
        metadata.EntryPoint(name="broken", value="broken_plugin", group="mmu"),
        metadata.EntryPoint(name="good", value="good_plugin", group="mmu"),
    ]
    registry = Registry.from_entry_points(eps)
    assert list(registry.surveys) == ["goodsurvey"]
    assert len(registry.failures) == 1
    failure = registry.failures[0]
    assert failure.entry_point == "broken"
    assert "RuntimeError" in failure.error and "boom at import" in failure.error


def test_duplicate_survey_names_both_claimants(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, "first_plugin", GOOD.format(name="same"))
    _module(tmp_path, monkeypatch, "second_plugin", GOOD.format(name="same"))
    eps = [
        metadata.EntryPoint(name="first", value="first_plugin", group="mmu"),
        metadata.EntryPoint(name="second", value="second_plugin", group="mmu"),
    ]
    registry = Registry.from_entry_points(eps)
    assert registry.surveys["same"].plugin_name == "first"
    (failure,) = registry.failures
    assert "'same'" in failure.error and "first" in failure.error and "second" in failure.error


def test_list_surveys_shows_good_and_reports_both_problems(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, "good_plugin2", GOOD.format(name="alpha"))
    _module(tmp_path, monkeypatch, "dupe_plugin", GOOD.format(name="alpha"))
    _module(tmp_path, monkeypatch, "broken_plugin2", "import does_not_exist_anywhere\n")
    eps = [
        metadata.EntryPoint(name="good", value="good_plugin2", group="mmu"),
        metadata.EntryPoint(name="dupe", value="dupe_plugin", group="mmu"),
        metadata.EntryPoint(name="broken", value="broken_plugin2", group="mmu"),
    ]
    with testing.use_registry(Registry.from_entry_points(eps)):
        result = runner.invoke(app, ["list-surveys", "--json"])
        table = runner.invoke(app, ["list-surveys"], terminal_width=200)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] == "failed"]
    assert [r["name"] for r in ok] == ["alpha"]
    errors = " ".join(r["error"] for r in failed)
    assert "ModuleNotFoundError" in errors and "does_not_exist_anywhere" in errors
    assert "claimed by both" in errors
    assert table.exit_code == 0 and "alpha" in table.output and "failed" in table.output


def test_invalid_hook_implementation_is_reported():
    class BadArgs:
        @hookimpl
        def mmu_discover(self, survey, not_a_spec_argument):
            return None

    class UnknownHook:
        @hookimpl
        def mmu_convrt(self, unit):  # typo: not a hook
            return None

    registry = testing.plugin_registry(BadArgs(), UnknownHook())
    assert not registry.surveys
    errors = [f.error for f in registry.failures]
    assert any("not_a_spec_argument" in e for e in errors)
    assert any("mmu_convrt" in e for e in errors)


def test_describe_returning_bad_records_is_reported():
    class BadSlug:
        @hookimpl
        def mmu_describe(self):
            return [{"name": "Bad Name", "modality": "image", "description": "x",
                     "configs": [{"name": "c"}], "default_config": "c"}]

    registry = testing.plugin_registry(BadSlug())
    assert not registry.surveys
    assert "not a slug" in registry.failures[0].error


def test_env_switches(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, "p_one", GOOD.format(name="one"))
    _module(tmp_path, monkeypatch, "p_two", GOOD.format(name="two"))
    eps = [metadata.EntryPoint(name="one", value="p_one", group="mmu"),
           metadata.EntryPoint(name="two", value="p_two", group="mmu")]
    monkeypatch.setenv("MMU_DISABLE_PLUGINS", "one")
    assert list(Registry.from_entry_points(eps).surveys) == ["two"]
    monkeypatch.delenv("MMU_DISABLE_PLUGINS")
    monkeypatch.setenv("MMU_LOAD_PLUGINS", "one")
    assert list(Registry.from_entry_points(eps).surveys) == ["one"]
    monkeypatch.setenv("MMU_LOAD_PLUGINS", "")
    assert not Registry.from_entry_points(eps).surveys


def test_unknown_survey_error_lists_installed(toy_registry):
    with pytest.raises(UnknownSurveyError, match="toyimg"):
        toy_registry.survey("nope")
    with pytest.raises(UnknownSurveyError, match="no config"):
        toy_registry.resolve_config("toyimg", "missing")


def test_dispatch_goes_only_to_the_owner():
    calls = []

    class A:
        @hookimpl
        def mmu_describe(self):
            return [SurveyInfo(name="a", modality="image", description="a",
                               configs=[ConfigInfo(name="c")], default_config="c")]

        @hookimpl
        def mmu_aliases(self, survey, config):
            calls.append("A")
            return {"x": "y"}

    class B:
        @hookimpl
        def mmu_describe(self):
            return [SurveyInfo(name="b", modality="image", description="b",
                               configs=[ConfigInfo(name="c")], default_config="c")]

        @hookimpl
        def mmu_aliases(self, survey, config):
            calls.append("B")
            return {"p": "q"}

    registry = testing.plugin_registry(A(), B())
    assert registry.aliases("b", "c") == {"p": "q"}
    assert calls == ["B"]


def test_installed_plugins_are_listed():
    """The three required plugins are installed with their distributions and versions."""
    result = runner.invoke(app, ["list-surveys", "--json"])
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.output) if r["status"] == "ok"}
    for name, modality in (("hsc", "image"), ("desi", "spectrum"), ("manga", "ifu")):
        assert rows[name]["distribution"] == f"mmu-{name}"
        assert rows[name]["version"] == metadata.version(f"mmu-{name}")
        assert rows[name]["modality"] == modality
    assert set(rows["hsc"]["configs"]) == {"pdr3_dud_22.5", "pdr3_wide"}
    assert set(rows["desi"]["configs"]) == {"dr1_main", "edr_sv3"}
    assert rows["manga"]["configs"] == ["dr17"]


def test_describe_command(toy_registry):
    result = runner.invoke(app, ["describe", "toyspec", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["modality"] == "spectrum"
    assert data["aliases"]["default"] == {"mag": "magnitude", "Z": "z"}
    bad = runner.invoke(app, ["describe", "nope"])
    assert bad.exit_code == 1 and "no installed plugin provides survey 'nope'" in bad.output


NO_SAMPLER = """
from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, SurveyInfo, WorkUnit

@hookimpl
def mmu_describe():
    return [SurveyInfo(name="nosampler", modality="spectrum", description="no mmu_sample",
                       configs=[ConfigInfo(name="c1")], default_config="c1")]

@hookimpl
def mmu_discover(survey, config, raw_dir):
    return [WorkUnit(survey=survey, config=config, key="one", files=[])]

@hookimpl
def mmu_convert(unit, context):
    return iter(())

@hookimpl
def mmu_aliases(survey, config):
    return {}
"""


def test_plugin_without_mmu_sample_loads_and_says_it_cannot_sample(tmp_path, monkeypatch,
                                                                   toy_registry):
    import importlib

    _module(tmp_path, monkeypatch, "nosampler_plugin", NO_SAMPLER)
    eps = [metadata.EntryPoint(name="nosampler", value="nosampler_plugin", group="mmu")]
    registry = Registry.from_entry_points(eps)
    assert list(registry.surveys) == ["nosampler"] and not registry.failures
    assert registry.can_sample("nosampler") is False
    assert toy_registry.can_sample("toyimg") is True
    with pytest.raises(UnknownSurveyError):
        registry.can_sample("nope")
    with pytest.raises(PluginError,
                       match="survey 'nosampler' has no sampler: its plugin 'nosampler' does "
                             "not implement mmu_sample"):
        registry.sample("nosampler", SampleRequest(out_dir=tmp_path / "raw"))
    assert not (tmp_path / "raw").exists()

    with testing.use_registry(registry):
        listed = runner.invoke(app, ["list-surveys", "--json"])
        sampled = runner.invoke(app, ["sample", "nosampler", "--out", str(tmp_path / "raw")])
    assert [(r["name"], r["status"]) for r in json.loads(listed.output)] == [("nosampler", "ok")]
    assert sampled.exit_code == 1 and "has no sampler" in sampled.output

    module = importlib.import_module("nosampler_plugin")
    checked = testing.check_plugin(module)
    assert list(checked.surveys) == ["nosampler"] and not checked.can_sample("nosampler")
    with pytest.raises(pytest.skip.Exception, match="no mmu_sample"):
        testing.sample_build_validate("nosampler", tmp_path, registry=checked)


def test_cone_positions_requested_first_then_uniform_in_the_cone(tmp_path):
    wanted = [(-0.5, 89.9), (10.0, 89.2)]
    request = SampleRequest(out_dir=tmp_path, n=4000, ra=359.9, dec=89.5, radius=1.0,
                            positions=wanted)
    ra, dec = cone_positions(request, request.n, np.random.default_rng(1))
    assert ra.shape == dec.shape == (4000,) and ((ra >= 0) & (ra < 360)).all()
    assert list(zip(ra[:2], dec[:2], strict=True)) == [(359.5, 89.9), (10.0, 89.2)]
    sep = separation(ra[2:], dec[2:], 359.9, 89.5)
    assert sep.max() <= 1.0 + 1e-9
    # uniform on the sphere: the inner cap of half the radius holds ~(1 - cos 0.5°)/(1 - cos 1°)
    inner = np.mean(sep < 0.5)
    expected = (1 - np.cos(np.radians(0.5))) / (1 - np.cos(np.radians(1.0)))
    assert abs(inner - expected) < 0.03
    # n random positions are drawn whatever the number requested: later draws do not change
    plain, shared = np.random.default_rng(7), np.random.default_rng(7)
    cone_positions(request.model_copy(update={"positions": None}), 5, plain)
    cone_positions(request, 5, shared)
    assert plain.random() == shared.random()
    # one object at a time: object k gets the k-th requested position
    ra1, dec1 = cone_positions(request, 1, np.random.default_rng(0), first=1)
    assert (ra1.tolist(), dec1.tolist()) == ([10.0], [89.2])
    ra3, dec3 = cone_positions(request, 1, np.random.default_rng(0), first=2)
    assert separation(ra3, dec3, 359.9, 89.5)[0] <= 1.0


def test_fits_helpers_name_the_file_the_hdu_and_what(tmp_path):
    good = tmp_path / "good.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((50, 50)), name="FLUX")]).writeto(good)
    with open_fits(good, "toy file", lazy=False) as hdul:
        assert get_hdu(hdul, "FLUX", good, "toy file").data.shape == (50, 50)
        with pytest.raises(InputError, match=r"missing HDU IVAR in toy file \(HDUs present: "
                                             r"\['PRIMARY', 'FLUX'\]\)") as err:
            get_hdu(hdul, "IVAR", good, "toy file")
        assert err.value.file == str(good)
        with pytest.raises(InputError, match=r"cannot read toy file \(HDU FLUX\): ValueError: x"):
            with fits_errors(good, "toy file", hdu="FLUX", object="o1"):
                raise ValueError("x")
    with pytest.raises(InputError, match="cannot read toy file: file does not exist"):
        open_fits(tmp_path / "absent.fits", "toy file")
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"not FITS at all " * 200)
    with pytest.raises(InputError, match="cannot read toy file: not a readable FITS file"):
        open_fits(junk, "toy file")
    cut = tmp_path / "cut.fits"
    cut.write_bytes(good.read_bytes()[:-10_000])
    with pytest.raises(InputError, match="truncated") as err:
        with read_fits(cut, "toy file", object="o2") as hdul:
            hdul["FLUX"].data.sum()
    assert err.value.file == str(cut) and err.value.object == "o2"
    # an InputError raised inside a block passes unchanged
    with pytest.raises(InputError, match="^file f: mine$"):
        with read_fits(good, "toy file"):
            raise InputError("mine", file="f")
