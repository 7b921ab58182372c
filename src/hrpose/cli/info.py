"""`hrpose info`: parameters, MACs and shapes of the zoo models."""

from __future__ import annotations

import argparse
import json
import time

from .common import count


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="model sizes: parameters, MACs, input and output shapes")
    p.add_argument("model", nargs="?", help="a zoo model name; all models when omitted")
    p.add_argument("--run", action="store_true", help="also time one real forward pass on CPU")
    p.add_argument("--batch", type=count(), default=1,
                   help="batch size for --run (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _g(macs: int, small: int = 3) -> str:
    """10^9 units with two decimals; `small` decimals below 1 G (LiteHRNet)."""
    return f"{macs / 1e9:.2f}" if macs >= 1e9 else f"{macs / 1e9:.{small}f}"


def _published(published: dict[str, float]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in published.items())


def run(args: argparse.Namespace) -> int:
    from ..info import FACTS, model_info
    from ..models.family import PAPER_FLOPS

    if args.model is None:
        rows = [model_info(name) for name in FACTS]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'model':<33} {'input':>8} {'K':>3} {'params':>12} {'GMACs':>7} "
              f"{'paper GFLOPs':>12}  published")
        for r in rows:
            _, _, h, w = r["input_shape"]
            paper = "-" if r["paper_gflops"] is None else f"{r['paper_gflops']:.4g}"
            published = {k: v for k, v in r["published"].items() if k != "paper_MFLOPs"}
            print(f"{r['name']:<33} {f'{h}x{w}':>8} {r['num_joints']:>3} {r['params']:>12,} "
                  f"{_g(r['macs']):>7} {paper:>12}  {_published(published)}")
        print("GMACs: 10^9 multiply-accumulates of conv, transposed conv and linear layers "
              "(forward hooks; a transposed conv counted over its input positions). Paper "
              "GFLOPs: what the papers print: HRNet the MACs / 2^30; HigherHRNet / 10^9 with the "
              "transposed conv counted over its (4x) output positions; LiteHRNet torchstat's "
              "figure (see `hrpose info NAME`).")
        return 0

    info = model_info(args.model)
    if args.run:
        info["forward"] = _run_forward(args.model, info["input_shape"], args.batch)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    _, c, h, w = info["input_shape"]
    k = info["num_joints"]
    shapes = [" x ".join(map(str, ["N", *s[1:]])) for s in info["output_shapes"]]
    output = (f"{shapes[0]} ({k} heatmaps + {k} tags at 1/4) and {shapes[1]} (heatmaps at "
              "1/2)" if info["kind"] == "bottomup" else f"{shapes[0]} heatmaps (1/4 of the input)")
    counted = PAPER_FLOPS[info["paper_flops"]]
    mflops = info["published"].get("paper_MFLOPs")
    if counted.divisor is not None:
        paper = f"{info['paper_gflops']:.1f} ({counted.says})"
    else:
        paper = f"{mflops / 1000:.4g} ({counted.says}: {mflops} M)" if mflops else \
            "none published"
    lines = [
        ("keypoints", f"{info['keypoints']} ({info['num_joints']} joints)"),
        ("input", f"N x {c} x {h} x {w} (RGB in [0, 1], normalised by ImageNet mean/std)"),
        ("output", output),
        ("parameters", f"{info['params']:,} (learnable)"),
        ("MACs", f"{_g(info['macs'], 4)} G per image (multiply-accumulates of conv, transposed "
                 "conv (over its input positions) and linear layers, counted with forward "
                 "hooks)"),
        *([("official MACs", f"{_g(info['official_macs'], 4)} G per image (the same "
                              "count on the official code, which runs each fusion's branch-0 "
                              "path twice where hrpose runs it once and doubles it)")]
          if info["official_macs"] != info["macs"] else []),
        ("FLOPs", f"{_g(2 * info['macs'], 4)} G (2 x MACs)"),
        ("paper GFLOPs", paper),
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

    from ..models.zoo import create_model

    model = create_model(name).eval()
    x = torch.randn(batch, *input_shape[1:])
    with torch.inference_mode():
        model(x)  # warm-up
        start = time.perf_counter()
        y = model(x)
        ms = (time.perf_counter() - start) * 1000
    first = y[0] if isinstance(y, (list, tuple)) else y
    return {"batch": batch, "device": "cpu", "ms": round(ms, 1),
            "output_shape": list(first.shape)}
