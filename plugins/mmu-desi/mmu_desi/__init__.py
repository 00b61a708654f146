"""mmu plugin: DESI coadd spectra with their redshifts."""

__version__ = "0.1.0"
