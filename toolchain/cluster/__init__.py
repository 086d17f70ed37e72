"""Scale-out: Slurm job arrays and the Dask worker entry point."""
