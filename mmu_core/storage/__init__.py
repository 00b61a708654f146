"""On-disk storage: HEALPix-partitioned HDF5 files and their manifest."""
