"""`hrpose infer`: people and their keypoints in images, folders and videos."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import HrposeError, plural
from ..paths import check_output
from .common import DETECTOR_HELP, count, estimator_arguments, estimator_options, folder, number


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "infer", help="run a pose model on images, a folder, a glob or a video",
        description="Finds people (given boxes, a detector, or the whole image), estimates "
        "their keypoints and writes OUT/results.json (COCO results: image_id, keypoints, score, "
        "bbox, file_name; video: one entry per frame and person, with frame and track_id) and "
        "drawings (the input tree mirrored under OUT, each input's name kept whole: p.jpg -> "
        "OUT/p.jpg, p.bmp -> OUT/p.bmp.jpg, clip.avi -> OUT/clip.avi.mp4 with the input's frame "
        "rate and frame count). OUT may not hold an input. A file that cannot be read is "
        "reported and skipped; the exit status is then 1.")
    p.add_argument("input", metavar="INPUT",
                   help="an image, a folder of images, a quoted glob ('shots/*.jpg'), a video, "
                   "a camera index (0) or a stream URL (rtsp://..., http://...)")
    p.add_argument("--model", required=True,
                   help="a zoo model name (its published weights), a checkpoint file or an "
                   "exported .onnx / .xml file")
    boxes = p.add_mutually_exclusive_group()
    boxes.add_argument("--boxes", metavar="FILE",
                       help="person boxes: COCO detection results (image ids = numbered file "
                       "names or video frames) or a COCO annotation file")
    boxes.add_argument("--detector", metavar="MODEL", help=DETECTOR_HELP)
    p.add_argument("--out", type=folder, required=True,
                   help="folder for results.json and the drawings")
    p.add_argument("--format", choices=("json", "csv", "parquet"),
                   help="results: OUT/results.json (COCO results, always), and with csv also "
                   "OUT/results.csv, one row per joint: file, frame, track_id, person, joint, "
                   "x, y, score; parquet: a batch job (below), no drawings")
    p.add_argument("--results-layout", choices=("joints", "parts"), default="joints",
                   help="results.json rows: joints (keypoints: [x, y, score] per joint; "
                   "default) or parts (a whole-body model's joints in COCO-WholeBody's fields: "
                   "keypoints, foot_kpts, face_kpts, lefthand_kpts, righthand_kpts)")
    p.add_argument("--draw", action=argparse.BooleanOptionalAction, default=True,
                   help="write drawings (default on)")
    p.add_argument("--smooth", action="store_true",
                   help="video: One-Euro smoothing of each tracked person's keypoints")
    p.add_argument("--min-cutoff", type=number(0, low_open=True),
                   help="One-Euro cutoff for still joints, Hz (lower: smoother; default 1.0)")
    p.add_argument("--beta", type=number(0),
                   help="One-Euro cutoff Hz added per person height per second of speed "
                   "(higher: less lag on fast moves; default 10)")
    p.add_argument("--detect-every", type=count(), default=1, metavar="K",
                   help="video: run the person detector on every K-th frame while tracking "
                   "holds, following people from their keypoints in between; it runs again at "
                   "once when a person's joints are lost (default 1: every frame)")
    p.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                   help="video: frames come at the source's pace (a file: its frame rate) and "
                   "frames the models cannot take in time are dropped rather than queued "
                   "(default: on for cameras and live streams, off for files)")
    p.add_argument("--max-frames", type=count(), metavar="N",
                   help="video: stop after N frames (a camera: record N frames)")
    p.add_argument("--show-fps", action="store_true",
                   help="write the frame rate on the drawings and print the throughput")
    p.add_argument("--batch", type=count(),
                   help="crops per model call (default 8 on the CPU, 32 on a GPU)")
    estimator_arguments(p)
    _batch_arguments(p)
    p.add_argument("--json", action="store_true", help="print a summary object")
    p.set_defaults(func=run)


def _batch_arguments(p: argparse.ArgumentParser) -> None:
    batch = p.add_argument_group(
        "batch jobs", "--format parquet, --shard or --engine ray: OUT gets Parquet parts "
        "(part-*.parquet, one row per person: key, file, image_id, frame, segment, track_id, "
        "person, bbox, box_score, score, keypoints, image size, model fields) and "
        "_manifest.json. Parts are written whole; a rerun skips the inputs already in a part, "
        "so a killed job is resumed by running it again. INPUT may also be a list file (.txt: "
        "a path or URL a line) or an fsspec URL (s3://bucket/frames/); OUT may be a URL too")
    batch.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="ray: an actor pool on a Ray cluster (extra 'ray'); local: this "
                       "process (default)")
    batch.add_argument("--address", metavar="auto|HOST:PORT",
                       help="Ray cluster to join (default: RAY_ADDRESS, else a local one)")
    batch.add_argument("--concurrency", type=count(), metavar="N",
                       help="Ray actors (default: the cluster's GPUs / --num-gpus, or CPUs / "
                       "--threads)")
    batch.add_argument("--num-gpus", type=number(0), default=0, metavar="G",
                       help="GPUs per Ray actor (0.5: two actors share one; default 0)")
    batch.add_argument("--shard", metavar="I/N",
                       help="this job's share of the inputs, by a hash of their names: N "
                       "jobs with I = 0..N-1 (a SLURM array, a Kubernetes indexed job) cover "
                       "every input once")
    batch.add_argument("--part-size", type=count(), default=256, metavar="N",
                       help="images per part file (default 256)")
    batch.add_argument("--segment-frames", type=count(), default=500, metavar="N",
                       help="video: frames per segment, each a part, tracked within "
                       "(default 500)")


BATCH_REFUSES = (("boxes", "--boxes"), ("realtime", "--realtime"),
                 ("max_frames", "--max-frames"), ("show_fps", "--show-fps"))


def run_batch(args: argparse.Namespace) -> int:
    """--format parquet / --shard / --engine ray: the batch job (hrpose.batch)."""
    from ..batch.inputs import is_url, list_sources
    from ..batch.job import BatchSettings, run_batch
    from ..inference.video import SmoothingSettings

    if args.format not in (None, "parquet"):
        raise HrposeError(f"--format {args.format}: a batch job (--shard, --engine ray) "
                          "writes Parquet; drop --format or use --format parquet")
    for name, flag in BATCH_REFUSES:
        if getattr(args, name):
            raise HrposeError(f"{flag} is not available with Parquet output")
    if not is_url(args.out):
        check_output(args.out, [*(s for s in list_sources(args.input) if not is_url(s)),
                                args.model, args.weights, args.detector])
    options = estimator_options(args)
    smoothing = {k: v for k, v in (("min_cutoff", args.min_cutoff), ("beta", args.beta))
                 if v is not None}
    settings = BatchSettings(
        part_size=args.part_size, segment_frames=args.segment_frames, shard=args.shard,
        detect_every=args.detect_every, smooth=args.smooth,
        smoothing=SmoothingSettings(**smoothing), keypoint_threshold=args.keypoint_threshold,
        progress=not args.json)
    ray = {"address": args.address, "concurrency": args.concurrency,
           "num_gpus": args.num_gpus}
    summary = run_batch(args.input, str(args.out), args.model, options, settings,
                        args.engine, ray)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['done']} done, {summary['skipped']} done before, of "
              f"{summary['items']} ({plural(summary['images'], 'image')}, "
              f"{plural(summary['video_segments'], 'video segment')}): "
              f"{plural(summary['rows'], 'person', 'people')} in "
              f"{plural(summary['parts'], 'part')} -> {summary['out']}"
              + ("" if summary["complete"] else "; not complete"))
        for failure in summary["failed"]:
            print(f"failed: {failure['input']}: {failure['error']}", file=sys.stderr)
    return 1 if summary["failed"] else 0


def refuse_bottomup_boxes(model: str, kind: str | None) -> None:
    """--boxes gives a top-down model its people; a bottom-up model finds its own."""
    if kind == "bottomup":
        raise HrposeError(f"{model}: a bottom-up model finds people itself; drop --boxes (or "
                          "give a top-down model)")


def people_source(args: argparse.Namespace, kind: str) -> str:
    """Where the people come from, for the start-up line."""
    if args.boxes:
        return f"boxes from {args.boxes}"
    if kind == "bottomup":
        return "people found by the model"
    if args.detector == "none":
        return "the whole image as one person"
    return f"detector {args.detector or 'default'}"


def run(args: argparse.Namespace) -> int:
    from ..inference.backends import describe_model
    from ..inference.estimator import PoseEstimator
    from ..inference.images import find_inputs
    from ..inference.infer import InferSettings, infer
    from ..inference.video import SmoothingSettings, Stream
    from ..models.zoo import check_detector, check_model, zoo_kind

    if args.boxes and args.detector:
        raise HrposeError("give --boxes FILE or --detector MODEL, not both")
    if args.format == "parquet" or args.shard or args.engine == "ray":
        return run_batch(args)
    if args.address or args.concurrency or args.num_gpus:
        raise HrposeError("--address, --concurrency and --num-gpus are for --engine ray")
    stream = Stream.parse(args.input)
    if stream is None and "://" in args.input:
        raise HrposeError(f"{args.input}: URLs of files are read by batch jobs: add --format "
                          "parquet (or --shard, --engine ray)")
    inputs = [stream] if stream is not None else find_inputs(args.input)
    check_output(args.out, [*(() if stream else inputs), args.boxes, args.model, args.weights,
                            args.detector])
    # No --detector: the zoo's default one, loaded when an image needs it (never for a
    # bottom-up model, or with --boxes); "none": the whole image is one person.
    check_model(args.model)
    if args.boxes:
        refuse_bottomup_boxes(args.model, zoo_kind(args.model))
    if args.detector and args.detector != "none":
        check_detector(args.detector)
    options = estimator_options(args, **({"detector": None} if args.boxes else {}))
    estimator = PoseEstimator(args.model, options)
    if args.boxes:                     # a file's kind is known once it is open
        refuse_bottomup_boxes(args.model, estimator.kind)
    if not args.json:
        print(f"hrpose: {describe_model(args.model, estimator.loaded)}; "
              f"{people_source(args, estimator.kind)}; {plural(len(inputs), 'input')}",
              file=sys.stderr)
    settings = InferSettings(
        boxes=args.boxes, box_threshold=args.box_threshold,
        keypoint_threshold=args.keypoint_threshold, person_threshold=args.person_threshold,
        draw=args.draw, smooth=args.smooth,
        smoothing=SmoothingSettings(**{k: v for k, v in (("min_cutoff", args.min_cutoff),
                                                         ("beta", args.beta)) if v is not None}),
        show_fps=args.show_fps, csv=args.format == "csv", detect_every=args.detect_every,
        results_layout=args.results_layout,
        realtime=args.realtime, max_frames=args.max_frames,
        progress=not args.json)
    summary = infer(inputs, estimator, args.out, settings)
    if args.json:
        print(json.dumps(summary))
    else:
        done = summary["images"] + summary["frames"]
        before = summary["done_before"]
        print(f"{plural(summary['images'], 'image')}, "
              f"{plural(summary['frames'], 'video frame')}"
              + (f" ({plural(before, 'input')} done before)" if before else "")
              + f": {plural(summary['people'], 'person', 'people')} -> {summary['results']}"
              + (f" and {plural(len(summary['drawings']), 'drawing')} in {args.out}"
                 if summary["drawings"] else ""))
        if args.show_fps:
            print(f"{done / summary['seconds']:.1f} images/s end to end ({summary['seconds']:.1f}"
                  " s, decoding, detection, pose and drawing)")
        for video in summary["videos"]:
            late = video["latency_ms"]
            print(f"{video['input']}: {plural(video['frames'], 'frame')} at {video['fps']} "
                  "frames/s, "
                  f"latency p50 {late['p50']} ms, p95 {late['p95']} ms; "
                  f"{video['dropped']} dropped"
                  + (" (drawn as the frame before)" if video["dropped"] and args.draw else "")
                  + f"; detector on {plural(video['detector_runs'], 'frame')}"
                  + (f"; {video['undecodable']} could not be decoded (skipped)"
                     if video["undecodable"] else ""))
        for failure in summary["failed"]:
            print(f"failed: {failure['error']}", file=sys.stderr)
    return 1 if summary["failed"] else 0
