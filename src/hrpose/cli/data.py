"""`hrpose data synth`: the synthetic people data set."""

from __future__ import annotations

import argparse
import json
import time

from .common import count, folder


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="data sets: generate the synthetic people set")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = data_sub.add_parser(
        "synth", help="draw the synthetic people data set as a COCO keypoint root",
        description="Writes OUT/train2017/, OUT/val2017/ and OUT/annotations/"
        "person_keypoints_{train,val}2017.json: drawn 17-joint people with visibility flags, "
        "boxes and areas. The same seed gives the same data set.")
    p.add_argument("--out", type=folder, required=True, help="data root to write")
    p.add_argument("--train", type=count(), default=5000,
                   help="training images (default 5000)")
    p.add_argument("--val", type=count(), default=200,
                   help="validation images (default 200)")
    p.add_argument("--seed", type=count(0), default=0)
    p.add_argument("--workers", type=count(), help="processes (default: all cores)")
    p.add_argument("--json", action="store_true", help="print a summary object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.synthetic import write_dataset

    start = time.perf_counter()
    write_dataset(args.out, args.train, args.val, args.seed, workers=args.workers,
                  progress=not args.json)
    seconds = time.perf_counter() - start
    summary = {"out": args.out, "train": args.train, "val": args.val, "seed": args.seed,
               "seconds": round(seconds, 2)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {args.train} + {args.val} images to {args.out} in {seconds:.1f} s")
    return 0
