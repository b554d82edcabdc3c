"""Benchmarks (`python bench/NAME.py`, each printing JSON) and their shared helpers (bench/testkit/)."""
