"""mmu: astronomical survey data as one machine-learning-ready Multimodal Universe.

Public API::

    from mmu_core import hookimpl            # decorate a survey plugin's hook functions
    ds = mmu_core.open_dataset("out/desi/dr1_main")
    rows = ds.get([39627745863551018], columns=["spectrum_flux", "Z"])
    matched = mmu_core.cross_match("out/hsc/pdr3_wide", "out/desi/dr1_main", "out/xmatch")
    hfds = mmu_core.hf.load("out/xmatch")
"""

from __future__ import annotations

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
    "concatenate": ("mmu_core.concat", "concatenate"),
    "hf": ("mmu_core.hf", None),
}


def __getattr__(name: str) -> Any:
    # Heavy modules (h5py, healpy, datasets) load on first use, so `mmu --help` stays quick.
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = import_module(module_name)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'mmu_core' has no attribute {name!r}")


__all__ = ["__version__", "hookimpl", *_LAZY]
