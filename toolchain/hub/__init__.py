"""From a benchmark to a Hugging Face ``datasets.Dataset``, verified first."""
