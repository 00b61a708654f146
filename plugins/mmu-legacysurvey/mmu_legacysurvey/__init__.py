"""mmu plugin: DESI Legacy Imaging Surveys (DECaLS) postage stamps."""

__version__ = "0.1.0"
