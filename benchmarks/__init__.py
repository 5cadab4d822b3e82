"""Benchmark scripts; a package so that benchmarks/training.py does not shadow training/."""
