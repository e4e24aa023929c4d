"""ISA detection from /proc/cpuinfo and the quantization config built for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from export.errors import ExportError
from export.quantize import (
    QuantizationSettings,
    default_reduce_range,
    detect_isa,
    quantization_config,
    resolve_settings,
)


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


@pytest.mark.parametrize(
    ("flags", "isa", "reduce_range"),
    [
        ("fpu sse avx avx2 fma", "avx2", True),  # e.g. this AMD EPYC (AVX2 only): u8*s8 can saturate
        ("fpu avx2 avx512f avx512bw", "avx512", True),  # Skylake-SP: AVX512 but no VNNI
        ("fpu avx2 avx512f avx512bw avx512_vnni", "avx512_vnni", False),
        ("fpu avx2 avx_vnni", "avx2", False),  # Alder Lake: VNNI without AVX512
        ("fpu avx2 avx512f avx512bw avx512_vnni amx_tile amx_int8", "avx512_vnni", False),
    ],
)
def test_reduce_range_default_follows_the_cpu(
    tmp_path: Path, flags: str, isa: str, reduce_range: bool
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    settings = resolve_settings("auto", cpuinfo=cpuinfo)
    assert (settings.isa, settings.reduce_range) == (isa, reduce_range)
    assert settings.reduce_range_source.startswith("default: this CPU")
    assert set(settings.cpu_flags) <= set(flags.split()) and "avx2" in settings.cpu_flags
    # the flags still override the default, either way
    assert (
        resolve_settings("auto", reduce_range=not reduce_range, cpuinfo=cpuinfo).reduce_range
        is not reduce_range
    )
    forced = resolve_settings("auto", reduce_range=False, cpuinfo=cpuinfo)
    assert forced.reduce_range_source == "--no-reduce-range"


def test_explicit_isa_decides_the_default_whatever_the_export_cpu(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: avx2 avx512f avx512bw avx512_vnni\n")
    assert resolve_settings("avx2", cpuinfo=cpuinfo).reduce_range is True  # serving on a non-VNNI CPU
    assert resolve_settings("avx512_vnni", cpuinfo=cpuinfo).reduce_range is False
    assert resolve_settings("arm64", cpuinfo=cpuinfo).reduce_range is False
    assert default_reduce_range("avx2") == (True, "--isa avx2 (no VNNI): 7-bit weights")


def test_manifest_block_records_the_choice() -> None:
    block = QuantizationSettings(
        isa="avx2", reduce_range=True, reduce_range_source="default: x", cpu_flags=["avx2"]
    ).to_manifest()
    assert block["reduce_range"] is True and block["reduce_range_source"] == "default: x"
    assert block["cpu_flags"] == ["avx2"] and block["isa"] == "avx2"
