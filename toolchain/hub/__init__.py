"""The Hugging Face Hub both ways: publish a benchmark as a dataset repo, and get it back by
name as a verified ``datasets.Dataset`` (``docs/hub.md``)."""
