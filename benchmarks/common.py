"""Shared by the benchmark scripts: machine and commit description, medians, BENCHMARKS.md."""

from __future__ import annotations

import datetime
import os
import statistics
import subprocess
from pathlib import Path

from hrpose.hardware import cpu_summary

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "BENCHMARKS.md"
# The shared real data (models, COCO subsets) beside the checkout, as the tests find it
SHARED = Path(os.environ.get("HRPOSE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def machine() -> str:
    """The CPU model, usable cores and the flags that decide which kernels run (AVX2, AVX-512,
    VNNI, BF16, AMX), plus any ISA cap set in the environment: a bf16 or INT8 figure means
    nothing without them."""
    cpu = cpu_summary()
    flags = " ".join(cpu["flags"]) or "none reported"
    cap = f"; capped by {cpu['cap']}" if cpu["cap"] else ""
    native = "native bf16" if cpu["native_bf16"] else "no native bf16"
    return f"{cpu['cpu']}, {cpu['cores']} cores usable, flags: {flags} ({native}{cap})"


def commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True).stdout.strip()
        return rev + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(title: str, lines: list[str], append: bool = True) -> None:
    """Print the figures; with `append`, also add them to BENCHMARKS.md as a dated section."""
    if not append:
        print("\n".join(lines))
        return
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join([f"## {title}", "", f"{stamp} · commit {commit()} · {machine()}", "",
                      *lines, ""])
    print(text)
    if not REPORT.exists():
        REPORT.write_text("# Benchmarks\n\nAppended by the scripts in `benchmarks/`; medians of "
                          "interleaved repeats, each beside its baseline measured in the same "
                          "run.\n\n")
    with open(REPORT, "a") as f:
        f.write(text + "\n")
