"""The pinned container image: its settings and inputs, the offline base, the wheelhouse,
the build, the lock, save and run, the Docker engine behind a small interface, the matrix."""
