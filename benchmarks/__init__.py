"""Rerunnable performance measurements (docs/benchmarks.md). Not imported by any stage."""
