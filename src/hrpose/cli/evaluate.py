"""`hrpose eval`: OKS AP (COCO, CrowdPose, OCHuman) or MPII PCKh of a model, or of a results
file, by each benchmark's published protocol."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..errors import HrposeError, plural
from ..paths import check_output, output_folder
from .common import (
    FRACTION,
    count,
    folder,
    print_metrics,
    runtime_arguments,
    runtime_options,
    scales_argument,
    triple,
)

# The choices of metrics.protocols (a test holds them equal): the CLI imports no numpy.
PROTOCOLS = ("auto", "coco", "crowdpose", "ochuman", "coco-wholebody", "mpii")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="score a model on COCO, CrowdPose, OCHuman (OKS AP) or MPII (PCKh)",
        description="Runs a zoo model or an exported heatmap model (.onnx, OpenVINO .xml) over "
        "a data set's person boxes and writes OUT/results.json (COCO results) and "
        "OUT/metrics.json, scored by the benchmark's published protocol (named there with its "
        "parameters): COCO: AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl; CrowdPose: AP, "
        "AP50, AP75, AR, AR50, AR75, AP_easy, AP_medium, AP_hard; OCHuman: COCO's ten; MPII: "
        "PCKh@0.5 per joint and group, mean, PCKh@0.1.")
    p.add_argument("model", metavar="MODEL", nargs="?",
                   help="a zoo model name, a checkpoint file (.safetensors, .pth, ...: its model "
                   "is read from its metadata or guessed) or an exported .onnx / .xml file")
    p.add_argument("--results", help="score this COCO results file instead of running a model")
    p.add_argument("--weights", help="weights for a zoo model: file, URL, 'imagenet', or "
                   "'none' for random initialisation (default: its published weights)")
    p.add_argument("--data", required=True, help="data root: COCO layout (annotations/, "
                   "val2017/) or a folder with one annotation .json")
    p.add_argument("--ann", help="annotation file (default: found under --data)")
    p.add_argument("--images", help="image folder (default: found under --data)")
    p.add_argument("--det-json", help="person detections, COCO results format (default: "
                   "ground-truth boxes)")
    p.add_argument("--min-det-score", type=FRACTION, default=0.0,
                   help="keep detections with at least this score (default 0.0)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="auto",
                   help="how to score (default auto: from the annotation file; CrowdPose's "
                   "images carry crowdIndex, OCHuman's files are named so, COCO-WholeBody's have "
                   "part fields, MPII's are lists)")
    p.add_argument("--headboxes", metavar="MAT",
                   help="MPII's head boxes (mpii_gt_val.mat), PCKh's normaliser (default: "
                   "that file beside the annotations, else the neck to head top distance, "
                   "which is not the published protocol)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="flip test: average with the mirrored crop (default on)")
    p.add_argument("--decode", choices=("classic", "dark", "udp"), default="classic",
                   help="heatmap decoding (default classic: argmax + quarter-pixel shift)")
    p.add_argument("--nms", choices=("oks", "soft", "none"), default="oks",
                   help="per-image OKS-NMS at 0.9 (default), soft-OKS-NMS, or none")
    p.add_argument("--batch", type=count(), default=32,
                   help="crops per model call (default 32)")
    p.add_argument("--workers", type=count(0), default=0, help="image-decoding processes")
    scales_argument(p)
    runtime_arguments(p)
    p.add_argument("--mean", type=triple, help="input mean, RGB in [0, 1] (default ImageNet)")
    p.add_argument("--std", type=triple, help="input std, RGB in [0, 1] (default ImageNet)")
    p.add_argument("--bgr", action="store_true", help="the model takes BGR input")
    p.add_argument("--draw", type=count(0), default=4, metavar="N",
                   help="draw the predictions on the first N images into OUT/predictions.jpg "
                   "(default 4; 0: none)")
    p.add_argument("--out", type=folder, required=True,
                   help="folder for results.json and metrics.json")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import EvalSettings
    from ..engine.evaluate import (
        check_eval_data,
        evaluate,
        evaluate_bottomup,
        format_metrics,
        score_results_file,
    )
    from ..inference.backends import BGRInput, describe_model, open_model
    from ..models.zoo import check_model
    from ..skeletons import FROM_DATA

    check_output(args.out, [args.data, args.ann, args.images, args.det_json, args.results,
                            args.model, args.weights, args.headboxes])
    if args.results:
        if args.model is not None:
            raise HrposeError("give a MODEL to run, or --results to score a file, not both")
        metrics = score_results_file(args.results, args.data, args.out, args.ann,
                                     args.protocol, args.headboxes)
        print(json.dumps({**metrics, "out": args.out}) if args.json else format_metrics(metrics))
        return 0
    if args.model is None:
        raise HrposeError("give a MODEL to evaluate (or --results FILE to score a results file)")
    settings = EvalSettings(flip=args.flip, decode=args.decode, batch=args.batch,
                            workers=args.workers, det_json=args.det_json,
                            min_det_score=args.min_det_score, nms=args.nms, scales=args.scales,
                            protocol=args.protocol, headboxes=args.headboxes)
    check_model(args.model)
    data = check_eval_data(args.data, args.ann, args.images, FROM_DATA, settings)
    loaded = open_model(args.model, runtime_options(args), args.weights)
    runner = BGRInput(loaded.runner) if args.bgr else loaded.runner
    if not args.json:
        print(f"hrpose: evaluating {describe_model(args.model, loaded)}; "
              f"{plural(len(data.images), 'image')} of {data.path}", file=sys.stderr)
    # metrics.json records what ran (backend, precision, device) as the runner resolved it.
    extra = {"model": args.model, "weights": args.weights}
    start = time.perf_counter()
    mean, std = args.mean or loaded.card.mean, args.std or loaded.card.std
    # The model's keypoint set, which the data must name; a file that states none: the data's.
    keypoints = loaded.card.keypoints or FROM_DATA
    if loaded.card.bottomup and args.det_json:
        raise HrposeError(f"{args.model}: a bottom-up model finds people itself; drop "
                          "--det-json")
    with output_folder(args.out):           # gone again if the run fails before writing
        if loaded.card.bottomup:
            metrics = evaluate_bottomup(runner, args.data, args.out, mean, std,
                                        runner.input_hw[0], settings, args.ann, args.images,
                                        progress=not args.json, extra=extra, draw=args.draw,
                                        keypoints=keypoints)
        else:
            metrics = evaluate(runner, args.data, args.out, mean, std, settings, args.ann,
                               args.images, progress=not args.json, extra=extra,
                               draw=args.draw, keypoints=keypoints)
    seconds = time.perf_counter() - start
    print_metrics(metrics, args, seconds, f"wrote {args.out}/results.json and "
                   f"{args.out}/metrics.json ({seconds:.1f} s)")
    return 0
