"""What the commands share: argument types whose errors are one line, the runtime and model
flags of `eval`, `infer`, `serve` and batch jobs (and the one place they become typed options),
and printing metrics."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import HrposeError, out_of_range

if TYPE_CHECKING:
    from ..inference.options import EstimatorOptions, RuntimeOptions


def count(minimum: int = 1) -> Callable[[str], int]:
    """A whole number >= minimum."""
    def parse(text: str) -> int:
        try:
            value: object = int(text)
        except ValueError:
            value = text
        why = out_of_range(value, minimum, whole=True)
        if why is not None:
            raise argparse.ArgumentTypeError(why)
        return value
    parse.__name__ = "count"
    return parse


def number(low: float, high: float = float("inf"), low_open: bool = False
            ) -> Callable[[str], float]:
    """A number in [low, high] (or (low, high] with `low_open`)."""
    def parse(text: str) -> float:
        try:
            value: object = float(text)
        except ValueError:
            value = text
        why = out_of_range(value, low, high, low_open)
        if why is not None:
            raise argparse.ArgumentTypeError(why)
        return value
    parse.__name__ = "number"
    return parse


FRACTION = number(0.0, 1.0)        # scores and thresholds


def folder(text: str) -> str:
    """An output folder: may exist, but not as a file; writable where it is, or is made."""
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; give a folder")
    _check_writable(Path(text))
    return text


def file(text: str) -> str:
    """An output file: may exist (it is replaced), but not as a folder; its folder writable."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    _check_writable(Path(text).parent)
    return text


def _check_writable(path: Path) -> None:
    """The folder, or the nearest one above it that exists (where it would be made), takes new
    files: not on a read-only disk, and ours to write."""
    if "://" in str(path):               # a URL (an object store): its own rules
        return
    existing = next((p for p in (path, *path.absolute().parents) if p.exists()), None)
    if existing is not None and existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write in {existing} (a read-only disk, or no "
                                         "permission)")


def device(text: str) -> str:
    from ..hardware import check_device

    try:
        return check_device(text)
    except HrposeError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def scales(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers like 0.5,1,2, got {text!r}")
    return values


def scales_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scales", type=scales, default=(1.0,), metavar="S,S,...",
                   help="bottom-up models: test scales relative to the input size, heatmaps "
                   "averaged and tags concatenated (default 1; e.g. 0.5,1,2)")


def runtime_arguments(p: argparse.ArgumentParser) -> None:
    """Where and how a model runs: the options `eval` and `infer` share."""
    p.add_argument("--backend", choices=("torch", "onnxruntime", "openvino"),
                   help="runtime (default: torch for zoo models, by file type otherwise)")
    p.add_argument("--device", type=device, default="cpu", help="torch device (default cpu)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="auto (default): bf16 where the CPU has native bf16 (AVX-512 BF16, "
                   "AMX) or the GPU supports it, else fp32")
    p.add_argument("--threads", type=count(), help="CPU threads for the runtime")
    p.add_argument("--streams", type=count(), default=1, metavar="N",
                   help="OpenVINO: split the CPU into N streams and each model batch across "
                   "them (more crops/s for light models in batches; default 1)")


def estimator_arguments(p: argparse.ArgumentParser) -> None:
    """How a pose model is opened and run: the options `infer` and `serve` share (each adds
    its own --detector, which `infer` pairs with --boxes)."""
    p.add_argument("--weights", help="weights for a zoo model: file, URL, or 'none' for "
                   "random initialisation (default: its published weights)")
    p.add_argument("--box-threshold", type=FRACTION, default=0.5,
                   help="keep boxes scoring at least this (default 0.5)")
    p.add_argument("--keypoint-threshold", type=FRACTION, default=0.3,
                   help="draw joints scoring at least this (default 0.3)")
    p.add_argument("--person-threshold", type=FRACTION, default=0.1,
                   help="draw people scoring at least this (default 0.1; results keep all)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=False,
                   help="flip test (default off: about 2x the model time)")
    p.add_argument("--decode", choices=("classic", "dark", "udp"),
                   help="heatmap decoding (default: the model's own)")
    p.add_argument("--keypoints", metavar="SET",
                   help="the keypoint set of a model file that states none (an exported graph "
                   "from elsewhere): coco, mpii, crowdpose, coco_wholebody or a set file "
                   "(keypoints.yaml)")
    scales_argument(p)
    runtime_arguments(p)


DETECTOR_HELP = ("person detector: a zoo detector name, an exported detector (.onnx / .xml, "
                 "PicoDet layout), or 'none' to take the whole image as one person (default: "
                 "picodet_s_320_pedestrian, downloaded on first use)")


def runtime_options(args: argparse.Namespace) -> RuntimeOptions:
    """The runtime flags (`runtime_arguments`) as one checked value."""
    from ..inference.options import RuntimeOptions

    return RuntimeOptions(args.backend, args.device, args.precision, args.threads, args.streams)


def estimator_options(args: argparse.Namespace, **changes: object) -> EstimatorOptions:
    """The model flags (`estimator_arguments` and --detector, --batch where a command has
    them) as one checked value: what `infer`, `serve` and batch jobs pass whole. `--detector
    none` is `detector=None`; no --detector, the zoo's default one."""
    from ..inference.options import DEFAULT, EstimatorOptions
    from ..skeletons import resolve_skeleton_option

    if args.keypoints:                  # checked now, before any model loads
        resolve_skeleton_option(args.keypoints, "--keypoints")
    detector = getattr(args, "detector", None) or DEFAULT
    values = {"runtime": runtime_options(args), "weights": args.weights, "detector": detector,
              "box_threshold": args.box_threshold, "flip": args.flip, "decode": args.decode,
              "batch": getattr(args, "batch", None), "scales": tuple(args.scales),
              "keypoints": args.keypoints}
    return EstimatorOptions(**values).changed(**changes)


def triple(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.485,0.456,0.406, got "
                                         f"{text!r}")
    return values  # type: ignore[return-value]


def print_metrics(metrics: dict, args: argparse.Namespace, seconds: float, footer: str) -> None:
    """One JSON object with --json; else the metrics table and a footer line."""
    from ..engine.evaluate import format_metrics

    if args.json:
        print(json.dumps({**metrics, "out": args.out, "seconds": round(seconds, 2)}))
    else:
        print(format_metrics(metrics))
        print(footer)
