"""mmu plugin: Hyper Suprime-Cam PDR3 multiband postage stamps."""

__version__ = "0.1.0"
