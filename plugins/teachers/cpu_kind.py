"""What kind of CPU this is, as far as a local teacher's speed goes.

The same bf16 model runs several times faster where the CPU has AMX tile matrix units than on
AVX-512 alone, and vLLM's bf16 path is slower still without native bf16 (AVX2 machines run it in
float32). The kinds, fastest first:

* ``amx``: ``amx_bf16`` (Intel Xeon 4th gen and later);
* ``avx512-bf16``: ``avx512_bf16`` without AMX (AMD Zen 4 and later, Intel Cooper Lake);
* ``avx512``: AVX-512 without bf16;
* ``avx2``: AVX2 and FMA only (AMD Zen 1-3, most laptops before 2023);
* ``other``: anything else, or a CPU whose flags could not be read (not Linux, not x86).

oneDNN can be capped below the CPU's best ISA (``ONEDNN_MAX_CPU_ISA``, e.g. ``AVX512_CORE_BF16``
on an AMX machine, to measure what users without AMX get); the kind then follows the cap.
"""

from __future__ import annotations

import functools
import os
import platform
from typing import Literal

CpuKind = Literal["amx", "avx512-bf16", "avx512", "avx2", "other"]

# ONEDNN_MAX_CPU_ISA values (lower case) below AMX, and what kind each leaves
_ISA_CAPS: dict[str, CpuKind] = {
    "avx512_core_bf16": "avx512-bf16",
    "avx512_core_vnni": "avx512",
    "avx512_core": "avx512",
    "avx2_vnni_2": "avx2",
    "avx2_vnni": "avx2",
    "avx2": "avx2",
}
_ORDER: tuple[CpuKind, ...] = ("amx", "avx512-bf16", "avx512", "avx2", "other")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The flags of the first processor in ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.cache
def cpu_model() -> str:
    """The CPU's name, e.g. ``AMD EPYC`` or ``Intel(R) Xeon(R) Platinum 8488C``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine() or "unknown CPU"


def hardware_kind(flags: frozenset[str] | None = None) -> CpuKind:
    """The kind the CPU's flags say, ignoring any oneDNN cap."""
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512-bf16"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags and "fma" in flags:
        return "avx2"
    return "other"


def cpu_kind(flags: frozenset[str] | None = None, environ: dict[str, str] | None = None) -> CpuKind:
    """The kind matrix products run at here: the hardware's, lowered by ``ONEDNN_MAX_CPU_ISA``."""
    kind = hardware_kind(flags)
    cap = (os.environ if environ is None else environ).get("ONEDNN_MAX_CPU_ISA", "").strip().lower()
    capped = _ISA_CAPS.get(cap)
    if capped is not None and _ORDER.index(capped) > _ORDER.index(kind):
        return capped
    return kind


def has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively (x86 AVX512-BF16/AMX, Arm BF16)."""
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return True  # flags unreadable (not Linux): keep the library's own choice
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def describe_cpu() -> str:
    """One line for a benchmark's header: model, cores, kind and the flags that decide speed."""
    shown = sorted(f for f in cpu_flags() if f.startswith(("amx", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")))
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    capped = f", oneDNN capped at {cap}" if cap else ""
    return f"{cpu_model()}, {os.cpu_count()} CPUs, kind {cpu_kind()} ({' '.join(shown) or 'no AVX2'}){capped}"
