"""The plugin manager: entry points, failures reported not fatal, duplicates, switches."""

from __future__ import annotations

import json
import textwrap
from importlib import metadata

import pytest
from typer.testing import CliRunner

from mmu_core import hookimpl, testing
from mmu_core.cli import app
from mmu_core.errors import UnknownSurveyError
from mmu_core.models import ConfigInfo, SurveyInfo
from mmu_core.registry import Registry

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
