"""A run: the pinned process, the runtime fingerprint, executors, the output folder, the
journal that makes it resumable, shards, and ``generate_benchmark`` itself."""
