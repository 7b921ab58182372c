"""`hrpose bench`: images/s and latency on each runtime, beside plain PyTorch."""

from __future__ import annotations

import argparse
import json

from .common import count


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="images/s and latency of a model on each runtime, beside plain PyTorch",
        description="Times the model alone (batch calls after warm-up, candidates interleaved, "
        "medians) and the whole pipeline (decode image files, crop, model, keypoints), always "
        "beside plain PyTorch fp32 measured in the same run. --backend auto picks the fastest "
        "path for the precision whose keypoints stay within 1 heatmap pixel of fp32 for 99% "
        "of joints.")
    p.add_argument("model", metavar="MODEL",
                   help="a zoo model name, a checkpoint or an exported .onnx / .xml file")
    p.add_argument("--backend", choices=("auto", "torch", "onnxruntime", "openvino"),
                   default="auto")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "int8"), default="auto",
                   help="auto (default): bf16 where the CPU has native bf16, else fp32")
    p.add_argument("--batch", type=count(), default=8, help="crops per call (default 8)")
    p.add_argument("--threads", type=count(), help="CPU threads (default: all cores)")
    p.add_argument("--calib", nargs="+", metavar="IMAGES", help="calibration images for int8")
    p.add_argument("--weights", help="weights for a zoo model (default: published if cached, "
                   "else random: speed only)")
    p.add_argument("--images", help="annotated data root for the pipeline and the keypoint "
                   "check (default: 24 synthetic images)")
    p.add_argument("--rounds", type=count(), default=10,
                   help="timed calls per path (default 10)")
    p.add_argument("--passes", type=count(), default=3,
                   help="pipeline passes over the images (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export.bench import bench, format_bench

    result = bench(args.model, args.backend, args.precision, args.batch, threads=args.threads,
                   calib=args.calib or (), weights=args.weights, images=args.images,
                   rounds=args.rounds, passes=args.passes, log=not args.json)
    print(json.dumps(result) if args.json else format_bench(result))
    return 0
