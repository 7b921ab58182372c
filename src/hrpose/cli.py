"""The `hrpose` command. Every command that prints figures also takes `--json`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from . import __version__
from .errors import HrposeError


def _model_info(name: str) -> dict:
    from .hub import cached_path
    from .models.complexity import measure
    from .models.zoo import create_model, get_spec

    spec = get_spec(name)
    c = measure(create_model(name, device="meta"), (3, *spec.input_hw))
    cached = None
    if spec.weights_url and cached_path(spec.weights_url).exists():
        cached = str(cached_path(spec.weights_url))
    return {
        "name": name,
        "keypoints": spec.keypoints,
        "num_joints": spec.num_joints,
        "input_shape": list(c.input_shape),
        "output_shape": list(c.output_shapes[0]),
        "params": c.params,
        "macs": c.macs,
        "gmacs": round(c.gmacs, 2),
        "paper_gflops": round(c.paper_gflops, 1),
        "gflops": round(2 * c.gmacs, 2),
        "mean": list(spec.mean),
        "std": list(spec.std),
        "published": spec.published,
        "weights_url": spec.weights_url,
        "weights_cached": cached,
    }


def _published(published: dict[str, float]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in published.items())


def cmd_info(args: argparse.Namespace) -> int:
    from .models.zoo import MODELS

    if args.model is None:
        rows = [_model_info(name) for name in MODELS]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'model':<24} {'input':>8} {'K':>3} {'params':>12} {'GMACs':>7} "
              f"{'paper GFLOPs':>12}  published")
        for r in rows:
            _, _, h, w = r["input_shape"]
            print(f"{r['name']:<24} {f'{h}x{w}':>8} {r['num_joints']:>3} {r['params']:>12,} "
                  f"{r['gmacs']:>7.2f} {r['paper_gflops']:>12.1f}  {_published(r['published'])}")
        print("GMACs: 10^9 multiply-accumulates of conv and linear layers (forward hooks). "
              "Paper GFLOPs: the same count / 2^30, as the HRNet papers print it.")
        return 0

    info = _model_info(args.model)
    if args.run:
        info["forward"] = _run_forward(args.model, info["input_shape"], args.batch)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    _, c, h, w = info["input_shape"]
    lines = [
        ("keypoints", f"{info['keypoints']} ({info['num_joints']} joints)"),
        ("input", f"N x {c} x {h} x {w} (RGB in [0, 1], normalised by ImageNet mean/std)"),
        ("output", f"N x {' x '.join(map(str, info['output_shape'][1:]))} heatmaps "
                   f"(1/4 of the input)"),
        ("parameters", f"{info['params']:,} (learnable)"),
        ("MACs", f"{info['gmacs']:.2f} G per image (multiply-accumulates of conv and linear "
                 "layers, counted with forward hooks)"),
        ("FLOPs", f"{info['gflops']:.2f} G (2 x MACs)"),
        ("paper GFLOPs", f"{info['paper_gflops']:.1f} (the MACs / 2^30: the figure the HRNet "
                         "papers print, from the official summary tool)"),
        ("published", _published(info["published"])),
        ("weights", f"{info['weights_url']}"
                    + (f" (cached: {info['weights_cached']})" if info["weights_cached"] else "")),
    ]
    if "forward" in info:
        f = info["forward"]
        lines.append(("forward", f"batch {f['batch']} on {f['device']}: {f['ms']:.0f} ms, "
                                 f"output {f['output_shape']}"))
    print(args.model)
    for key, value in lines:
        print(f"  {key:<13} {value}")
    return 0


def _run_forward(name: str, input_shape: list[int], batch: int) -> dict:
    """One real forward pass of the freshly initialised model on the CPU."""
    import torch

    from .models.zoo import create_model

    model = create_model(name).eval()
    x = torch.randn(batch, *input_shape[1:])
    with torch.inference_mode():
        model(x)  # warm-up
        start = time.perf_counter()
        y = model(x)
        ms = (time.perf_counter() - start) * 1000
    return {"batch": batch, "device": "cpu", "ms": round(ms, 1), "output_shape": list(y.shape)}


def cmd_convert(args: argparse.Namespace) -> int:
    from .models.convert import LAYOUTS, convert_checkpoint

    meta = convert_checkpoint(args.input, args.output, args.model)
    if args.json:
        print(json.dumps({"input": args.input, "output": args.output, **meta}, indent=2))
    else:
        print(f"{args.input} ({LAYOUTS[meta['source_layout']]} layout) -> {args.output} "
              f"({meta['model']}, hrpose safetensors)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hrpose", description="HRNet human pose estimation: models, weights and tools.")
    parser.add_argument("--version", action="version", version=f"hrpose {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="model sizes: parameters, MACs, input and output shapes")
    p.add_argument("model", nargs="?", help="a zoo model name; all models when omitted")
    p.add_argument("--run", action="store_true", help="also time one real forward pass on CPU")
    p.add_argument("--batch", type=int, default=1, help="batch size for --run (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="convert a published checkpoint to hrpose safetensors",
                       description="Reads an official HRNet, mmpose 0.x/1.x, Paddle .pdparams, "
                       "MindSpore .ckpt or ImageNet HRNet checkpoint (the layout is detected "
                       "from the file) and writes an hrpose safetensors checkpoint.")
    p.add_argument("input", help="checkpoint file to read")
    p.add_argument("output", help="safetensors file to write")
    p.add_argument("--model", help="zoo model the weights are for (guessed when omitted)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_convert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HrposeError as e:
        print(f"hrpose: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hrpose: interrupted", file=sys.stderr)
        return 130
