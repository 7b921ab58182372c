"""What this machine runs fast: native bf16 on the CPU, CUDA devices; the precision `auto` picks.

bf16 pays off on a CPU only with native bf16 instructions (AVX-512 BF16 or AMX). Without them
PyTorch and oneDNN emulate it: measured on a 2-core AVX2 EPYC, bf16 training ran at 0.25x and
bf16 inference at 0.37x of fp32. So `auto` (the default precision everywhere) is bf16 only where
it is native, and an explicit bf16 elsewhere runs with a warning.

`ATEN_CPU_CAPABILITY` (PyTorch) and `ONEDNN_MAX_CPU_ISA` (oneDNN) cap the kernels a process may
use below what the CPU has; they count here too, so an AVX-512 machine run with
`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2` behaves, and is judged, like an AVX2 one.
"""

from __future__ import annotations

import functools
import os
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import HrposeError

PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) at or above the first with native bf16 arithmetic.
_ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX",
                     "AVX512_CORE_AMX_FP16", "AVX10_1_512", "AVX10_1_512_AMX",
                     "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2", "ALL")
# The CPU flags (Linux /proc/cpuinfo names) that say it.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# Flags recorded beside every benchmark figure: what decides which kernels run.
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
                  "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


@functools.cache
def _cpuinfo(*keys: str) -> str | None:
    """The value of the first /proc/cpuinfo line starting with one of `keys` (Linux)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.partition(":")[2] for line in lines if line.startswith(keys)), None)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is not readable)."""
    return frozenset((_cpuinfo("flags", "Features") or "").split())


def cpu_model() -> str:
    model = _cpuinfo("model name")
    return model.strip() if model else platform.processor() or platform.machine()


def _capped_below_bf16() -> str | None:
    """The environment variable that keeps this process off native bf16 kernels, if any."""
    aten = os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if aten and not aten.startswith("avx512"):
        return f"ATEN_CPU_CAPABILITY={aten}"
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if isa and isa not in _ONEDNN_BF16_ISAS:
        return f"ONEDNN_MAX_CPU_ISA={isa}"
    return None


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """AVX-512 BF16 or AMX-BF16 on this CPU, and no environment cap below them."""
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in BF16_FLAGS) and _capped_below_bf16() is None


# oneDNN ISA caps below the first with VNNI (int8 dot products without int16 saturation).
_ONEDNN_NO_VNNI_ISAS = ("SSE41", "AVX", "AVX2", "AVX512_CORE")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def cpu_has_vnni(flags: frozenset[str] | None = None) -> bool:
    """VNNI (AVX-512 VNNI, AVX-VNNI or AMX-INT8), and no oneDNN cap below it. Without it,
    oneDNN (and so OpenVINO) sums u8 x s8 products in pairs in int16 (vpmaddubsw), which
    saturates when both are near full range."""
    flags = cpu_flags() if flags is None else flags
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return any(f in flags for f in VNNI_FLAGS) and isa not in _ONEDNN_NO_VNNI_ISAS


def cpu_summary() -> dict[str, object]:
    """What a benchmark records beside its figures: the CPU model, cores, the flags that
    decide the kernels, and whether bf16 is native here."""
    flags = cpu_flags()
    return {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)),
            "flags": [f for f in REPORTED_FLAGS if f in flags],
            "native_bf16": cpu_has_native_bf16(), "vnni": cpu_has_vnni(),
            "cap": _capped_below_bf16()}


def check_device(device: str) -> str:
    """`device` if this torch can use it; else a one-line error that says what torch has."""
    import torch

    text = str(device)
    try:
        kind = torch.device(text).type
    except (RuntimeError, ValueError):
        raise HrposeError(f"--device {text!r}: not a device name (cpu, cuda, cuda:1, mps)") \
            from None
    if kind == "cuda":
        if torch.version.cuda is None:
            raise HrposeError(f"--device {text}: this torch {torch.__version__} is a CPU-only "
                              "build (no CUDA); use --device cpu, or install a CUDA build")
        if not torch.cuda.is_available():
            raise HrposeError(f"--device {text}: torch {torch.__version__} is built for CUDA "
                              f"{torch.version.cuda} but sees no GPU")
        index = torch.device(text).index
        if index is not None and index >= torch.cuda.device_count():
            raise HrposeError(f"--device {text}: there are {torch.cuda.device_count()} CUDA "
                              "devices")
    elif kind == "mps" and not (hasattr(torch.backends, "mps")
                                and torch.backends.mps.is_available()):
        raise HrposeError(f"--device {text}: MPS is not available in this torch build")
    elif kind not in ("cpu", "cuda", "mps"):
        raise HrposeError(f"--device {text}: hrpose runs on cpu, cuda or mps")
    return text


def gpu_has_bf16(device: str) -> bool:
    import torch

    return str(device).startswith("cuda") and torch.cuda.is_bf16_supported()


def check_precision(precision: str) -> None:
    if precision not in PRECISION_CHOICES:
        raise HrposeError(f"unknown precision {precision!r}; choose one of "
                          f"{', '.join(PRECISION_CHOICES)}")


@dataclass(frozen=True)
class PrecisionRule:
    """What a runtime does with an asked precision: runs `effective` (None: refuses); `say` is
    the warning (or, refused, the reason) given when it is resolved; `emulated`: PyTorch's bf16
    without native kernels (warn_emulated_bf16 words that warning for this CPU)."""

    effective: str | None
    say: str = ""
    emulated: bool = False


_FP16_CPU = PrecisionRule(None, "fp16 needs a CUDA device; use bf16 on the CPU")
_ORT_OWN = PrecisionRule(None, "ONNX Runtime runs the file's own precision; use --precision "
                         "fp32, or the openvino backend for bf16")
_RUNS = {p: PrecisionRule(p) for p in ("fp32", "bf16", "fp16", "file")}
# The one precision policy: (runtime, what the hardware has) -> asked -> what runs. Hardware:
# "cpu+bf16" (AVX-512 BF16 or AMX, no cap below them), "cpu", "gpu+bf16", "gpu". "file": the
# precision the exported graph was written in. PyTorch emulates bf16 without native kernels
# (slow, but it runs what was asked); OpenVINO has no bf16 kernels there and runs fp32.
PRECISION_POLICY: dict[tuple[str, str], dict[str, PrecisionRule]] = {
    ("torch", "cpu+bf16"): {"auto": _RUNS["bf16"], "fp32": _RUNS["fp32"],
                            "bf16": _RUNS["bf16"], "fp16": _FP16_CPU},
    ("torch", "cpu"): {"auto": _RUNS["fp32"], "fp32": _RUNS["fp32"],
                       "bf16": PrecisionRule("bf16", emulated=True), "fp16": _FP16_CPU},
    ("torch", "gpu+bf16"): {"auto": _RUNS["bf16"], "fp32": _RUNS["fp32"],
                            "bf16": _RUNS["bf16"], "fp16": _RUNS["fp16"]},
    ("torch", "gpu"): {"auto": _RUNS["fp32"], "fp32": _RUNS["fp32"], "bf16": _RUNS["bf16"],
                       "fp16": _RUNS["fp16"]},
    ("openvino", "cpu+bf16"): {"auto": _RUNS["bf16"], "fp32": _RUNS["fp32"],
                               "bf16": _RUNS["bf16"], "fp16": _RUNS["fp16"]},
    ("openvino", "cpu"): {"auto": _RUNS["fp32"], "fp32": _RUNS["fp32"],
                          "bf16": PrecisionRule("fp32", "bf16 is not native on this CPU: "
                                                "OpenVINO runs the model in fp32"),
                          "fp16": _RUNS["fp16"]},
    ("onnxruntime", "cpu+bf16"): {"auto": _RUNS["file"], "fp32": _RUNS["file"],
                                  "bf16": _ORT_OWN, "fp16": _ORT_OWN},
}
PRECISION_POLICY[("onnxruntime", "cpu")] = PRECISION_POLICY[("onnxruntime", "cpu+bf16")]


def hardware_kind(device: str = "cpu") -> str:
    """The precision policy's hardware column for a device: cpu or gpu, +bf16 where native."""
    if str(device).startswith(("cuda", "mps")):
        return "gpu+bf16" if gpu_has_bf16(device) else "gpu"
    return "cpu+bf16" if cpu_has_native_bf16() else "cpu"


def effective_precision(runtime: str, precision: str, device: str = "cpu", *,
                        warn: bool = True) -> str:
    """What `runtime` runs when `precision` is asked on `device`, by PRECISION_POLICY: a
    refusal is one line, a change or an emulation one warning (unless `warn` is off)."""
    check_precision(precision)
    where = hardware_kind(device)
    column = PRECISION_POLICY.get((runtime, where))
    if column is None:
        raise HrposeError(f"{runtime} runs on the CPU; device {device!r} is for torch")
    rule = column[precision]
    if rule.effective is None:
        raise HrposeError(f"--precision {precision}: {rule.say}")
    if warn and rule.emulated:
        warn_emulated_bf16()
    elif warn and rule.say:
        warnings.warn(rule.say, stacklevel=3)
    return rule.effective


def resolve_precision(precision: str, device: str = "cpu", *, warn: bool = True) -> str:
    """PyTorch's row of the policy: `auto` -> bf16 where it is native (CPU with AVX-512 BF16 /
    AMX, or a bf16 GPU), else fp32; an explicit bf16 on a CPU without it is kept, with a
    warning; fp16 only on a GPU."""
    return effective_precision("torch", precision, device, warn=warn)


def cpu_threads(threads: int | None = None) -> int:
    """CPU threads for a model: `threads`, else every core this process may run on."""
    return threads or len(os.sched_getaffinity(0))


def warn_emulated_bf16() -> None:
    why = _capped_below_bf16() or "no AVX-512 BF16 or AMX"
    warnings.warn(f"bf16 is emulated on this CPU ({why}): expect it to run about 3-4x slower "
                  "than fp32; precision auto picks fp32 here", stacklevel=3)
