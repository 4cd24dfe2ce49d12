"""Benchmarks: run ``python -m bench.<name>``; results go into docs/benchmarks.md."""
