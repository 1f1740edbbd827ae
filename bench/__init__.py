"""Benchmarks for liveblog's real-time path: `python -m bench` (see bench/README.md).

Nothing is imported here: `python -m bench.simple_server` must monkey-patch before any import.
"""
