"""Private plumbing of benchmark-regen: no stability guarantee, not part of the API."""
