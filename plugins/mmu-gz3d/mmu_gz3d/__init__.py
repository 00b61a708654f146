"""mmu plugin: Galaxy Zoo 3D segmentation maps of MaNGA galaxies."""

__version__ = "0.1.0"
