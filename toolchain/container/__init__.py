"""The pinned container image: the offline base, the wheelhouse, the layers, the lock,
the Docker engine behind a small interface, and the version matrix."""
