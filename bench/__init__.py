"""Benchmarks: each figure measured as a ratio against a floor taken in the same run."""
