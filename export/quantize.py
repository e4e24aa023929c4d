"""Dynamic int8 quantization: optimum's ``ORTQuantizer`` + ``AutoQuantizationConfig`` for the CPU's ISA."""

from __future__ import annotations

import logging
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from export.errors import ExportError

logger = logging.getLogger(__name__)

ISAS = ("avx512_vnni", "avx512", "avx2", "arm64")
CPUINFO = Path("/proc/cpuinfo")


def detect_isa(cpuinfo: Path = CPUINFO) -> str:
    """The best ``AutoQuantizationConfig`` target for this CPU, from the /proc/cpuinfo flags."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in {"flags", "Features"}:
            flags.update(value.split())
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags and "avx512bw" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    if "asimd" in flags or platform.machine().lower() in {"aarch64", "arm64"}:
        return "arm64"
    logger.warning("no AVX2/AVX512/NEON flag found in %s; quantizing for avx2", cpuinfo)
    return "avx2"


@dataclass(frozen=True)
class QuantizationSettings:
    """What goes into the manifest's ``quantization`` key."""

    isa: str
    per_channel: bool = True
    # 7-bit weights: the bundle may run on a CPU without VNNI (Cloud Run does not promise one), where the
    # u8*s8 VPMADDUBSW path can saturate; so reduce_range stays on even when the export machine has VNNI.
    reduce_range: bool = True
    mode: str = "dynamic"
    dtype: str = "int8"

    def to_manifest(self) -> dict[str, Any]:
        return asdict(self)


def quantization_config(settings: QuantizationSettings) -> Any:
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    if settings.isa not in ISAS:
        raise ExportError(f"unknown ISA {settings.isa!r}; choose one of {', '.join(ISAS)}")
    factory = getattr(AutoQuantizationConfig, settings.isa)
    config = factory(is_static=False, per_channel=settings.per_channel)
    # avx512_vnni/arm64 factories hard-code reduce_range=False; set it explicitly for every ISA (see above).
    config.reduce_range = settings.reduce_range
    return config


def quantize_int8(fp32_dir: Path, out_dir: Path, settings: QuantizationSettings) -> Path:
    """``fp32_dir/model.onnx`` -> ``out_dir/model.onnx``: int8 weights, activations quantized at run time."""
    from optimum.onnxruntime import ORTQuantizer

    config = quantization_config(settings)
    try:
        quantizer = ORTQuantizer.from_pretrained(fp32_dir, file_name="model.onnx")
        quantizer.quantize(config, out_dir, file_suffix=None)
    except (RuntimeError, ValueError) as exc:
        raise ExportError(f"int8 quantization of {fp32_dir / 'model.onnx'} failed: {exc}") from exc
    path = out_dir / "model.onnx"
    logger.info(
        "quantized int8 (%s, per_channel=%s, reduce_range=%s): %s (%.1f MB)",
        settings.isa,
        settings.per_channel,
        settings.reduce_range,
        path,
        path.stat().st_size / 1e6,
    )
    return path
