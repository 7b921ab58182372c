"""`hrpose train`: a run folder from a config (torchrun for many devices)."""

from __future__ import annotations

import argparse
import os
import sys
import time

from ..errors import HrposeError
from ..paths import check_output
from .common import folder, print_metrics


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a top-down or bottom-up model from a YAML config (torchrun for "
        "many devices)",
        description="Trains with the config's recipe (defaults: the published HRNet-W32 "
        "256x192 COCO recipe) and writes RUN_DIR: config.yaml, latest.pt (for --resume), "
        "latest.safetensors, best.safetensors, metrics.json after each evaluation, "
        "log.jsonl and tb/ (TensorBoard). Many devices: torchrun --nproc_per_node N -m hrpose "
        "train ...")
    p.add_argument("config", metavar="CONFIG", nargs="?",
                   help="YAML config (configs/...); with --resume the run's own config is used")
    p.add_argument("--out", type=folder, required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="change one config value, e.g. -o train.lr=5e-4 -o data.root=DIR "
                   "(repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue RUN_DIR from its latest.pt exactly where it stopped")
    p.add_argument("--teacher", metavar="MODEL",
                   help="distil from this teacher: its config YAML, a zoo name or an hrpose "
                   "checkpoint (sets distill.teacher; distill.weight mixes the losses)")
    p.add_argument("--teacher-weights", metavar="FILE",
                   help="the teacher's weights (a zoo teacher: 'published' by default)")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config and exit")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import dump_config, load_config
    from ..engine.train import resume_config, train

    if args.resume:
        if args.config:
            print(f"--resume: using {args.out}/config.yaml (the run's own config), not "
                  f"{args.config}", file=sys.stderr)
        config = resume_config(args.out, args.override)
    else:
        if args.config is None:
            raise HrposeError("give a CONFIG file (e.g. configs/synthetic/quickstart.yaml), "
                              "or --resume to continue RUN_DIR")
        teacher = [f"distill.teacher={args.teacher}"] if args.teacher else []
        if args.teacher_weights:
            teacher.append(f"distill.teacher_weights={args.teacher_weights}")
        config = load_config(args.config, [*teacher, *args.override])
        check_output(args.out, [args.config])     # the run writes OUT/config.yaml
    if args.print_config:
        print(dump_config(config), end="")
        return 0
    start = time.perf_counter()
    metrics = train(config, args.out, resume=args.resume, progress=not args.json)
    seconds = time.perf_counter() - start
    if os.environ.get("RANK", "0") == "0":        # under torchrun, rank 0 reports
        print_metrics(metrics, args, seconds, f"run folder: {args.out} ({seconds / 60:.1f} min)")
    return 0
