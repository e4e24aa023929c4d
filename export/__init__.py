"""Export stage: checkpoint -> ONNX -> (int8) -> verified, self-contained serving bundle.

``python -m export.onnx`` is the command (docs/export.md); the bundle layout is docs/contracts.md section 4.
Modules: ``checkpoint`` (find/validate a checkpoint), ``artifacts`` (W&B pull/log), ``convert`` (optimum
export + ORT graph optimisation), ``quantize`` (dynamic int8), ``verify`` (the gate and its
``GateFailedError``), ``bundle`` (manifest writer, atomic write, ``verify_bundle``), ``pipeline`` (the steps
in order), ``onnx`` (the CLI). The bundle's reader, its rules and ``BundleError`` are the torch-free
:mod:`bundle_contract`'s.

Nothing heavy is imported here (numpy and msgspec at most): torch/optimum load only when an export runs.
"""

from export.bundle import verify_bundle
from export.errors import BundleError, CheckpointError, DataError, ExportError
from export.verify import GateFailedError

__all__ = [
    "BundleError",
    "CheckpointError",
    "DataError",
    "ExportError",
    "GateFailedError",
    "verify_bundle",
]
