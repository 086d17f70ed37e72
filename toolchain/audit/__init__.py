"""Checking what was made: verify a benchmark, sign and check manifests, compare two
benchmarks and explain their drift, and the HTML report."""
