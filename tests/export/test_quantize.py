"""ISA detection from /proc/cpuinfo and the quantization config built for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from export.errors import ExportError
from export.quantize import QuantizationSettings, detect_isa, quantization_config


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse avx avx2 avx512f avx512bw avx512_vnni", "avx512_vnni"),
        ("fpu sse avx avx2 avx512f avx512bw", "avx512"),
        ("fpu sse avx avx2 fma", "avx2"),
    ],
)
def test_detect_isa_from_flags(tmp_path: Path, flags: str, expected: str) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    assert detect_isa(cpuinfo) == expected


def test_detect_isa_arm(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm aes\n")
    assert detect_isa(cpuinfo) == "arm64"


@pytest.mark.parametrize("isa", ["avx512_vnni", "avx2", "arm64"])
def test_config_keeps_the_requested_settings_for_every_isa(isa: str) -> None:
    # optimum's avx512_vnni/arm64 factories hard-code reduce_range=False; the manifest must not lie about it
    config = quantization_config(QuantizationSettings(isa=isa, per_channel=True, reduce_range=True))
    assert config.per_channel is True
    assert config.reduce_range is True
    assert config.is_static is False
    per_tensor = quantization_config(QuantizationSettings(isa=isa, per_channel=False, reduce_range=False))
    assert per_tensor.per_channel is False and per_tensor.reduce_range is False


def test_unknown_isa() -> None:
    with pytest.raises(ExportError, match="unknown ISA"):
        quantization_config(QuantizationSettings(isa="sse2"))
