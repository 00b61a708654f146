"""mmu plugin: PLAsTiCC multi-band light curves."""

__version__ = "0.1.0"
