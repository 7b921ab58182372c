"""`hrpose convert`: a published checkpoint -> hrpose safetensors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..paths import check_output
from .common import file


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a published checkpoint to hrpose safetensors",
                       description="Reads an official HRNet, mmpose 0.x/1.x, Paddle .pdparams, "
                       "MindSpore .ckpt or ImageNet HRNet checkpoint (the layout is detected "
                       "from the file) and writes an hrpose safetensors checkpoint.")
    p.add_argument("input", help="checkpoint file to read")
    p.add_argument("output", type=file, help="safetensors file to write (.safetensors)")
    p.add_argument("--model", help="zoo model the weights are for (guessed when omitted)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.checkpoint import check_weights_name
    from ..models.convert import convert_checkpoint, convert_openvino
    from ..models.layouts import LAYOUTS

    check_weights_name(args.output)       # before reading the input
    sources = [args.input, str(Path(args.input).with_suffix(".bin"))]
    check_output(args.output, sources, flag="OUTPUT", folder=False)
    convert = convert_openvino if args.input.lower().endswith(".xml") else convert_checkpoint
    meta = convert(args.input, args.output, args.model)
    if args.json:
        print(json.dumps({"input": args.input, "output": args.output, **meta}, indent=2))
    else:
        print(f"{args.input} ({LAYOUTS[meta['source_layout']]} layout) -> {args.output} "
              f"({meta['model']}, hrpose safetensors)")
    return 0
