"""mmu plugin: SDSS MaNGA IFU cubes and DAP maps."""

__version__ = "0.1.0"
