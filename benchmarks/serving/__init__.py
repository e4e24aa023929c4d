"""Side-by-side serving benchmark: our server (int8, fp32) vs a FastAPI + PyTorch eager baseline, plus the
in-process ceiling. Entry point: ``python -m benchmarks.serving.run`` (docs/benchmarks.md)."""
