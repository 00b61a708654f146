"""The plugin passes the core's conformance check and describes itself."""

import mmu_legacysurvey.hooks
from mmu_core import testing


def test_conformance():
    registry = testing.check_plugin(mmu_legacysurvey.hooks)
    info = registry.surveys["legacysurvey"].info
    assert info.modality == "image"
    assert info.config_names() == ["dr10_south_21", "stein_et_al"]
    assert info.default_config == "dr10_south_21"
    assert registry.can_sample("legacysurvey")


def test_aliases_name_stored_columns():
    registry = testing.check_plugin(mmu_legacysurvey.hooks)
    dr10 = registry.aliases("legacysurvey", "dr10_south_21")
    assert dr10["model_mag_r"] == "mag_r" and dr10["mw_extinction_z"] == "extinction_z"
    assert dr10["model_mag_err_g"] == "mag_err_g"
    stein = registry.aliases("legacysurvey", "stein_et_al")
    assert stein["z_spec"] == "z" and stein["model_mag_z"] == "mag_z"
