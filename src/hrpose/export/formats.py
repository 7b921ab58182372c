"""Export formats: one record each (`ExportFormat`), the one table (`FORMATS`) that `hrpose
export`, `hrpose bench` and the command line's choices read.

A format is written from an fp32 ONNX graph (what `torch.onnx` gives: export/onnx.py) or from
a file of a format it reads; `write` makes it, quantised when given calibration batches. The
runtime that runs it is a record of `inference.backends.RUNTIMES`, which opens the file by its
suffix and reads its metadata. A new format is its file (the writer) and one line here; a new
runtime for it, its runner and one line in RUNTIMES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import HrposeError
from ..runtimes import read_openvino
from .onnx import copy_onnx, quantize_onnx
from .openvino import quantize_openvino, save_openvino

# write(source, out, calibration or None (float), fp16, metadata, simplify)
Writer = Callable[[Path, Path, "list[np.ndarray] | None", bool, dict, bool], None]


@dataclass(frozen=True)
class ExportFormat:
    """name: the --format value; title: its name in messages. suffix: the file written;
    companions: files written beside it (an IR's weights), moved into place first. runtime:
    what runs it by default (inference.backends.RUNTIMES). reads: the suffixes it is written
    from. from_torch: torch.onnx writes a float file of it directly (else `write` makes it from
    the fp32 ONNX graph). fp16_from_file: FP16 from a file of another tool's making. write:
    source -> this format."""

    name: str
    title: str
    suffix: str
    runtime: str
    reads: tuple[str, ...]
    write: Writer
    companions: tuple[str, ...] = ()
    from_torch: bool = False
    fp16_from_file: bool = True


def _write_onnx(source: Path, out: Path, calibration: list[np.ndarray] | None, fp16: bool,
                metadata: dict, simplify: bool) -> None:
    if calibration is not None:
        quantize_onnx(source, out, calibration, metadata)
    else:
        copy_onnx(source, out, metadata, simplify)


def _write_openvino(source: Path, out: Path, calibration: list[np.ndarray] | None,
                    fp16: bool, metadata: dict, simplify: bool) -> None:
    model = read_openvino(source)
    if calibration is not None:
        model = quantize_openvino(model, calibration)
    save_openvino(model, out, metadata, fp16=fp16)


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("onnx", "ONNX", ".onnx", "onnxruntime", (".onnx",), _write_onnx,
                 from_torch=True, fp16_from_file=False),
    ExportFormat("openvino", "OpenVINO IR", ".xml", "openvino", (".onnx", ".xml"),
                 _write_openvino, companions=(".bin",)),
)}


def export_format(name: str) -> ExportFormat:
    if name not in FORMATS:
        raise HrposeError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[name]


def format_for_runtime(runtime: str) -> ExportFormat:
    """The format a runtime runs by default (`hrpose bench` exports for it)."""
    return next(f for f in FORMATS.values() if f.runtime == runtime)
