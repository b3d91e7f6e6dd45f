"""Benchmarks; each prints human-readable lines, then one JSON line last."""
