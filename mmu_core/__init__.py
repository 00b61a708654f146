"""mmu: astronomical survey data as one machine-learning-ready Multimodal Universe.

Public API::

    from mmu_core import hookimpl            # decorate a survey plugin's hook functions
    ds = mmu_core.open_dataset("out/desi/dr1_main")
    rows = ds.get([39627745863551018], columns=["spectrum_flux", "Z"])
    matched = mmu_core.cross_match("out/hsc/pdr3_wide", "out/desi/dr1_main", "out/xmatch")
    hfds = mmu_core.hf.load("out/xmatch")
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import Any

from mmu_core.hookspecs import hookimpl
from mmu_core.version import __version__

_LAZY = {
    "open_dataset": ("mmu_core.storage.reader", "open_dataset"),
    "Dataset": ("mmu_core.storage.reader", "Dataset"),
    "build": ("mmu_core.build", "build"),
    "validate": ("mmu_core.validate", "validate"),
    "cross_match": ("mmu_core.crossmatch", "cross_match"),
    "cross_match_datasets": ("mmu_core.hf", "cross_match_datasets"),
    "concatenate": ("mmu_core.concat", "concatenate"),
    "export_hats": ("mmu_core.hats", "export_hats"),
    "import_hats": ("mmu_core.hats", "import_hats"),
    "publish": ("mmu_core.publish", "publish"),
    "download": ("mmu_core.download", "download"),
    "hf": ("mmu_core.hf", None),
}


def __getattr__(name: str) -> Any:
    # Heavy modules (h5py, healpy, datasets) load on first use, so `mmu --help` stays quick.
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = import_module(module_name)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'mmu_core' has no attribute {name!r}")


class _Package(types.ModuleType):
    """The package: importing a submodule that shares a public function's name
    (``mmu_core.build``, ``validate``, ``publish``) must not replace the function with the
    module, which Python's import system does by setting the package attribute."""

    def __setattr__(self, name: str, value: Any) -> None:
        lazy = _LAZY.get(name)
        if lazy is not None and lazy[1] is not None and isinstance(value, types.ModuleType):
            return  # the module stays in sys.modules; the attribute is the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = ["__version__", "hookimpl", *_LAZY]
