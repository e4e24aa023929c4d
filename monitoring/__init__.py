"""Operate the model after it ships: input/prediction drift reports and robustness checks.

Commands (see docs/deployment.md):
- ``python -m monitoring.drift --log predictions.jsonl --bundle bundles/<version>`` (vs its held-out split)
- ``python -m monitoring.robustness --bundle bundles/<version> --data data/processed/<data>/test.parquet``

This package reads the server's prediction log and the serving bundle; it never imports torch, transformers or
anything from ``training/`` or ``export/``.
"""
