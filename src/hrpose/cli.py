"""The `hrpose` command. Every command that prints figures also takes `--json`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from . import __version__
from .errors import HrposeError


def _g(macs: int, small: int = 3) -> str:
    """10^9 units with two decimals; `small` decimals below 1 G (LiteHRNet)."""
    return f"{macs / 1e9:.2f}" if macs >= 1e9 else f"{macs / 1e9:.{small}f}"


def _published(published: dict[str, float]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in published.items())


def cmd_info(args: argparse.Namespace) -> int:
    from .info import model_info
    from .models.facts import FACTS

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
    if info["kind"] == "bottomup":
        output = (f"{shapes[0]} ({k} heatmaps + {k} tags at 1/4) and {shapes[1]} (heatmaps "
                  "at 1/2)")
        paper = (f"{info['paper_gflops']:.1f} (the official HigherHRNet summary tool: the "
                 "transposed convolution counted over its output positions, 4x, then / 10^9)")
    elif "paper_MFLOPs" in info["published"] or info["name"].startswith(("tinypose",
                                                                          "naive", "wider")):
        output = f"{shapes[0]} heatmaps (1/4 of the input)"
        mflops = info["published"].get("paper_MFLOPs")
        paper = ((f"{mflops / 1000:.4g} (the paper's {mflops} M FLOPs, from the official "
                  "repo's torchstat tool: MACs plus BN and activation elements, each module's "
                  "last call only, / 2^20)") if mflops else "none published")
    else:
        output = f"{shapes[0]} heatmaps (1/4 of the input)"
        paper = (f"{info['paper_gflops']:.1f} (the MACs / 2^30: the figure the HRNet papers "
                 "print, from the official summary tool)")
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

    from .models.zoo import create_model

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


def cmd_convert(args: argparse.Namespace) -> int:
    from .engine.checkpoint import check_weights_name
    from .models.convert import LAYOUTS, convert_checkpoint, convert_openvino

    check_weights_name(args.output)       # before reading the input
    convert = convert_openvino if args.input.lower().endswith(".xml") else convert_checkpoint
    meta = convert(args.input, args.output, args.model)
    if args.json:
        print(json.dumps({"input": args.input, "output": args.output, **meta}, indent=2))
    else:
        print(f"{args.input} ({LAYOUTS[meta['source_layout']]} layout) -> {args.output} "
              f"({meta['model']}, hrpose safetensors)")
    return 0


def _triple(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.485,0.456,0.406, got "
                                         f"{text!r}")
    return values  # type: ignore[return-value]


def cmd_eval(args: argparse.Namespace) -> int:
    from .engine.evaluate import (
        EvalSettings,
        evaluate,
        evaluate_bottomup,
        format_metrics,
        score_results_file,
    )
    from .inference.backends import BGRInput, open_model

    if args.results:
        if args.model is not None:
            raise HrposeError("give a MODEL to run, or --results to score a file, not both")
        metrics = score_results_file(args.results, args.data, args.out, args.ann)
        print(json.dumps({**metrics, "out": args.out}) if args.json else format_metrics(metrics))
        return 0
    if args.model is None:
        raise HrposeError("give a MODEL to evaluate (or --results FILE to score a results file)")
    loaded = open_model(args.model, args.weights, args.backend, args.device, args.precision,
                        args.threads)
    runner = BGRInput(loaded.runner) if args.bgr else loaded.runner
    settings = EvalSettings(flip=args.flip, decode=args.decode, batch=args.batch,
                            workers=args.workers, det_json=args.det_json,
                            min_det_score=args.min_det_score, nms=args.nms, scales=args.scales)
    extra = {"model": args.model, "weights": args.weights, "backend": args.backend or "auto",
             "precision": args.precision}
    start = time.perf_counter()
    mean, std = args.mean or loaded.mean, args.std or loaded.std
    if loaded.kind == "bottomup":
        if args.det_json:
            raise HrposeError(f"{args.model}: a bottom-up model finds people itself; drop "
                              "--det-json")
        metrics = evaluate_bottomup(runner, args.data, args.out, mean, std,
                                    runner.input_hw[0], settings, args.ann, args.images,
                                    progress=not args.json, extra=extra, draw=args.draw)
    else:
        metrics = evaluate(runner, args.data, args.out, mean, std, settings, args.ann,
                           args.images, progress=not args.json, extra=extra, draw=args.draw)
    seconds = time.perf_counter() - start
    _print_metrics(metrics, args, seconds, f"wrote {args.out}/results.json and "
                   f"{args.out}/metrics.json ({seconds:.1f} s)")
    return 0


def _print_metrics(metrics: dict, args: argparse.Namespace, seconds: float, footer: str) -> None:
    """One JSON object with --json; else the metrics table and a footer line."""
    from .engine.evaluate import format_metrics

    if args.json:
        print(json.dumps({**metrics, "out": args.out, "seconds": round(seconds, 2)}))
    else:
        print(format_metrics(metrics))
        print(footer)


def cmd_train(args: argparse.Namespace) -> int:
    from .config import dump_config, load_config
    from .engine.train import resume_config, train

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
    if args.print_config:
        print(dump_config(config), end="")
        return 0
    start = time.perf_counter()
    metrics = train(config, args.out, resume=args.resume, progress=not args.json)
    seconds = time.perf_counter() - start
    if os.environ.get("RANK", "0") == "0":        # under torchrun, rank 0 reports
        _print_metrics(metrics, args, seconds, f"run folder: {args.out} ({seconds / 60:.1f} min)")
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from .inference.estimator import PoseEstimator
    from .inference.images import find_inputs
    from .inference.infer import InferSettings, infer
    from .inference.video import SmoothingSettings

    if args.boxes and args.detector:
        raise HrposeError("give --boxes FILE or --detector MODEL, not both")
    inputs = find_inputs(args.input)
    # No --detector: the zoo's default one, loaded when an image needs it (never for a
    # bottom-up model, or with --boxes); "none": the whole image is one person.
    detector = None if args.boxes else args.detector or "default"
    estimator = PoseEstimator(args.model, args.backend, args.device, args.precision,
                              weights=args.weights, detector=detector,
                              box_threshold=args.box_threshold, flip=args.flip,
                              decode=args.decode, batch=args.batch, threads=args.threads,
                              scales=args.scales)
    settings = InferSettings(
        boxes=args.boxes, box_threshold=args.box_threshold,
        keypoint_threshold=args.keypoint_threshold, person_threshold=args.person_threshold,
        draw=args.draw, smooth=args.smooth,
        smoothing=SmoothingSettings(**{k: v for k, v in (("min_cutoff", args.min_cutoff),
                                                         ("beta", args.beta)) if v is not None}),
        show_fps=args.show_fps, csv=args.format == "csv",
        progress=not args.json)
    summary = infer(inputs, estimator, args.out, settings)
    if args.json:
        print(json.dumps(summary))
    else:
        done = summary["images"] + summary["frames"]
        print(f"{summary['images']} images, {summary['frames']} video frames: "
              f"{summary['people']} people -> {summary['results']}"
              + (f" and {len(summary['drawings'])} drawings in {args.out}"
                 if summary["drawings"] else ""))
        if args.show_fps:
            print(f"{done / summary['seconds']:.1f} images/s end to end ({summary['seconds']:.1f}"
                  " s, decoding, detection, pose and drawing)")
        for failure in summary["failed"]:
            print(f"failed: {failure['error']}", file=sys.stderr)
    return 1 if summary["failed"] else 0


def cmd_synth(args: argparse.Namespace) -> int:
    from .data.synthetic import write_dataset

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


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_model

    detector = None
    if args.detector:
        from .inference.detector import ExportedDetector

        detector = ExportedDetector(args.detector)
    result = export_model(args.model, args.out, args.format, weights=args.weights,
                          fp16=args.fp16, int8=args.int8, calib=args.calib or (),
                          detector=detector, dynamic_batch=args.dynamic_batch, batch=args.batch,
                          simplify=args.simplify, calib_limit=args.calib_limit,
                          force=args.force, log=not args.json)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"wrote {result.path}: {result.format} {result.precision}, "
              f"{result.seconds:.1f} s; against {result.reference} on "
              f"{result.agreement.describe()}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .export.bench import bench, format_bench

    result = bench(args.model, args.backend, args.precision, args.batch, threads=args.threads,
                   calib=args.calib or (), weights=args.weights, images=args.images,
                   rounds=args.rounds, passes=args.passes, log=not args.json)
    print(json.dumps(result) if args.json else format_bench(result))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, like every other hrpose error, with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"hrpose: error: {message} (see '{self.prog} --help')\n")


def _count(minimum: int = 1) -> Callable[[str], int]:
    """A whole number >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got "
                                             f"{text!r}")
        return value
    parse.__name__ = "count"
    return parse


def _number(low: float, high: float = float("inf"), low_open: bool = False
            ) -> Callable[[str], float]:
    """A number in [low, high] (or (low, high] with `low_open`)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (low < value <= high if low_open else low <= value <= high):
            where = (f"in [{low:g}, {high:g}]" if high != float("inf") else
                     f"> {low:g}" if low_open else f">= {low:g}")
            raise argparse.ArgumentTypeError(f"expected a number {where}, got {text!r}")
        return value
    parse.__name__ = "number"
    return parse


FRACTION = _number(0.0, 1.0)        # scores and thresholds


def _folder(text: str) -> str:
    """An output folder: may exist, but not as a file."""
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; give a folder")
    return text


def _file(text: str) -> str:
    """An output file: may exist (it is replaced), but not as a folder."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    return text


def _device(text: str) -> str:
    from .hardware import check_device

    try:
        return check_device(text)
    except HrposeError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _scales(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers like 0.5,1,2, got {text!r}")
    return values


def _scales_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scales", type=_scales, default=(1.0,), metavar="S,S,...",
                   help="bottom-up models: test scales relative to the input size, heatmaps "
                   "averaged and tags concatenated (default 1; e.g. 0.5,1,2)")


def _runtime_arguments(p: argparse.ArgumentParser) -> None:
    """Where and how a model runs: the options `eval` and `infer` share."""
    p.add_argument("--backend", choices=("torch", "onnxruntime", "openvino"),
                   help="runtime (default: torch for zoo models, by file type otherwise)")
    p.add_argument("--device", type=_device, default="cpu", help="torch device (default cpu)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="auto (default): bf16 where the CPU has native bf16 (AVX-512 BF16, "
                   "AMX) or the GPU supports it, else fp32")
    p.add_argument("--threads", type=_count(), help="CPU threads for the runtime")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hrpose", description="HRNet human pose estimation: models, weights and tools.")
    parser.add_argument("--version", action="version", version=f"hrpose {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="model sizes: parameters, MACs, input and output shapes")
    p.add_argument("model", nargs="?", help="a zoo model name; all models when omitted")
    p.add_argument("--run", action="store_true", help="also time one real forward pass on CPU")
    p.add_argument("--batch", type=_count(), default=1,
                   help="batch size for --run (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="convert a published checkpoint to hrpose safetensors",
                       description="Reads an official HRNet, mmpose 0.x/1.x, Paddle .pdparams, "
                       "MindSpore .ckpt or ImageNet HRNet checkpoint (the layout is detected "
                       "from the file) and writes an hrpose safetensors checkpoint.")
    p.add_argument("input", help="checkpoint file to read")
    p.add_argument("output", type=_file, help="safetensors file to write (.safetensors)")
    p.add_argument("--model", help="zoo model the weights are for (guessed when omitted)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "eval", help="score a model on COCO keypoints (OKS AP) or MPII (PCKh)",
        description="Runs a zoo model or an exported heatmap model (.onnx, OpenVINO .xml) over "
        "a data set's person boxes and writes OUT/results.json (COCO results) and "
        "OUT/metrics.json (AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl; MPII: PCKh).")
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
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="flip test: average with the mirrored crop (default on)")
    p.add_argument("--decode", choices=("classic", "dark", "udp"), default="classic",
                   help="heatmap decoding (default classic: argmax + quarter-pixel shift)")
    p.add_argument("--nms", choices=("oks", "soft", "none"), default="oks",
                   help="per-image OKS-NMS at 0.9 (default), soft-OKS-NMS, or none")
    p.add_argument("--batch", type=_count(), default=32,
                   help="crops per model call (default 32)")
    p.add_argument("--workers", type=_count(0), default=0, help="image-decoding processes")
    _scales_argument(p)
    _runtime_arguments(p)
    p.add_argument("--mean", type=_triple, help="input mean, RGB in [0, 1] (default ImageNet)")
    p.add_argument("--std", type=_triple, help="input std, RGB in [0, 1] (default ImageNet)")
    p.add_argument("--bgr", action="store_true", help="the model takes BGR input")
    p.add_argument("--draw", type=_count(0), default=4, metavar="N",
                   help="draw the predictions on the first N images into OUT/predictions.jpg "
                   "(default 4; 0: none)")
    p.add_argument("--out", type=_folder, required=True,
                   help="folder for results.json and metrics.json")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)

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
    p.add_argument("--out", type=_folder, required=True, metavar="RUN_DIR", help="run folder")
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
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "infer", help="run a pose model on images, a folder, a glob or a video",
        description="Finds people (given boxes, a detector, or the whole image), estimates "
        "their keypoints and writes OUT/results.json (COCO results: image_id, keypoints, score, "
        "bbox, file_name; video: one entry per frame and person, with frame and track_id) and "
        "drawings (OUT/<image name>, OUT/<video name>.mp4 with the input's frame rate and "
        "frame count). A file that cannot be read is reported and skipped; the exit status is "
        "then 1.")
    p.add_argument("input", metavar="INPUT",
                   help="an image, a folder of images, a quoted glob ('shots/*.jpg') or a video")
    p.add_argument("--model", required=True,
                   help="a zoo model name (its published weights), a checkpoint file or an "
                   "exported .onnx / .xml file")
    p.add_argument("--weights", help="weights for a zoo model: file, URL, or 'none' for "
                   "random initialisation (default: its published weights)")
    boxes = p.add_mutually_exclusive_group()
    boxes.add_argument("--boxes", metavar="FILE",
                       help="person boxes: COCO detection results (image ids = numbered file "
                       "names or video frames) or a COCO annotation file")
    boxes.add_argument("--detector", metavar="MODEL",
                       help="person detector: a zoo detector name, an exported detector "
                       "(.onnx / .xml, PicoDet layout), or 'none' to take the whole image as "
                       "one person (default: picodet_s_320_pedestrian, downloaded on first "
                       "use)")
    p.add_argument("--box-threshold", type=FRACTION, default=0.5,
                   help="keep boxes scoring at least this (default 0.5)")
    p.add_argument("--keypoint-threshold", type=FRACTION, default=0.3,
                   help="draw joints scoring at least this (default 0.3)")
    p.add_argument("--person-threshold", type=FRACTION, default=0.1,
                   help="draw people scoring at least this (default 0.1; results.json keeps "
                   "all)")
    p.add_argument("--out", type=_folder, required=True,
                   help="folder for results.json and the drawings")
    p.add_argument("--format", choices=("json", "csv"), default="json",
                   help="results: OUT/results.json (COCO results, always), and with csv also "
                   "OUT/results.csv, one row per joint: file, frame, track_id, person, joint, "
                   "x, y, score")
    p.add_argument("--draw", action=argparse.BooleanOptionalAction, default=True,
                   help="write drawings (default on)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=False,
                   help="flip test (default off: about 2x the model time)")
    p.add_argument("--decode", choices=("classic", "dark", "udp"),
                   help="heatmap decoding (default: the model's own)")
    p.add_argument("--smooth", action="store_true",
                   help="video: One-Euro smoothing of each tracked person's keypoints")
    p.add_argument("--min-cutoff", type=_number(0, low_open=True),
                   help="One-Euro cutoff for still joints, Hz (lower: smoother; default 1.0)")
    p.add_argument("--beta", type=_number(0),
                   help="One-Euro cutoff Hz added per person height per second of speed "
                   "(higher: less lag on fast moves; default 10)")
    p.add_argument("--show-fps", action="store_true",
                   help="write the frame rate on the drawings and print the throughput")
    p.add_argument("--batch", type=_count(),
                   help="crops per model call (default 8 on the CPU, 32 on a GPU)")
    _scales_argument(p)
    _runtime_arguments(p)
    p.add_argument("--json", action="store_true", help="print a summary object")
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser(
        "export", help="export to ONNX or OpenVINO (fp32, FP16, INT8), verified against PyTorch",
        description="Writes an ONNX file (opset 17, dynamic batch, checked and simplified) or "
        "an OpenVINO IR, in fp32, FP16 or INT8 (post-training static quantisation, per-channel "
        "weights, calibrated on person crops from --calib), with the metadata (input size, "
        "normalisation, keypoint set, codec) that `hrpose eval`, `hrpose infer` and "
        "PoseEstimator read. The export is run against its source on the same crops and the "
        "largest heatmap difference and keypoint agreement are printed.")
    p.add_argument("model", metavar="MODEL", help="a zoo model name (its published weights), "
                   "a checkpoint, or an .onnx / .xml file from elsewhere (e.g. to quantise it)")
    p.add_argument("--format", choices=("onnx", "openvino"), default="onnx")
    p.add_argument("--out", type=_file, help="file to write (.onnx, or .xml + .bin; default "
                   "<model>_<precision>.<ext> here)")
    p.add_argument("--weights", default=None,
                   help="weights for a zoo model: file, URL or 'published' (the default)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="half-precision weights")
    precision.add_argument("--int8", action="store_true",
                           help="INT8 by post-training quantisation (needs --calib)")
    p.add_argument("--calib", nargs="+", metavar="IMAGES",
                   help="calibration images: data folders (people from their annotation "
                   "file), image folders, images or globs; also the verification crops")
    p.add_argument("--calib-limit", type=_count(), default=300,
                   help="at most this many calibration crops (default 300)")
    p.add_argument("--detector", metavar="MODEL",
                   help="person detector (a zoo name or a file) for calibration images "
                   "without annotations (default: the whole image)")
    p.add_argument("--dynamic-batch", action=argparse.BooleanOptionalAction, default=True,
                   help="any batch size (default); --no-dynamic-batch fixes it to --batch")
    p.add_argument("--batch", type=_count(), default=1,
                   help="the fixed batch size (default 1)")
    p.add_argument("--simplify", action=argparse.BooleanOptionalAction, default=True,
                   help="simplify the ONNX graph with onnxslim (default on)")
    p.add_argument("--force", action="store_true",
                   help="write the file even when it disagrees with its source (below 95%% of "
                   "joints within 1 heatmap px for float, 85%% for INT8)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_export)

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
    p.add_argument("--batch", type=_count(), default=8, help="crops per call (default 8)")
    p.add_argument("--threads", type=_count(), help="CPU threads (default: all cores)")
    p.add_argument("--calib", nargs="+", metavar="IMAGES", help="calibration images for int8")
    p.add_argument("--weights", help="weights for a zoo model (default: published if cached, "
                   "else random: speed only)")
    p.add_argument("--images", help="annotated data root for the pipeline and the keypoint "
                   "check (default: 24 synthetic images)")
    p.add_argument("--rounds", type=_count(), default=10,
                   help="timed calls per path (default 10)")
    p.add_argument("--passes", type=_count(), default=3,
                   help="pipeline passes over the images (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("data", help="data sets: generate the synthetic people set")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = data_sub.add_parser(
        "synth", help="draw the synthetic people data set as a COCO keypoint root",
        description="Writes OUT/train2017/, OUT/val2017/ and OUT/annotations/"
        "person_keypoints_{train,val}2017.json: drawn 17-joint people with visibility flags, "
        "boxes and areas. The same seed gives the same data set.")
    p.add_argument("--out", type=_folder, required=True, help="data root to write")
    p.add_argument("--train", type=_count(), default=5000,
                   help="training images (default 5000)")
    p.add_argument("--val", type=_count(), default=200,
                   help="validation images (default 200)")
    p.add_argument("--seed", type=_count(0), default=0)
    p.add_argument("--workers", type=_count(), help="processes (default: all cores)")
    p.add_argument("--json", action="store_true", help="print a summary object")
    p.set_defaults(func=cmd_synth)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: object = None, line: str | None = None) -> None:
    print(f"hrpose: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():     # library warnings, one line each, like the errors
            warnings.simplefilter("default")
            warnings.showwarning = _one_line_warning
            return args.func(args)
    except HrposeError as e:
        print(f"hrpose: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hrpose: interrupted", file=sys.stderr)
        return 130
