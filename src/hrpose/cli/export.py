"""`hrpose export`: ONNX / OpenVINO in fp32, FP16 or INT8, verified against the source."""

from __future__ import annotations

import argparse
import json

from .common import count, file


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export to ONNX or OpenVINO (fp32, FP16, INT8), verified against PyTorch",
        description="Writes an ONNX file (opset 17, dynamic batch, checked and simplified) or "
        "an OpenVINO IR, in fp32, FP16 or INT8 (post-training static quantisation, per-channel "
        "weights, calibrated on person crops from --calib), with the metadata (input size, "
        "normalisation, keypoint set, codec) that `hrpose eval`, `hrpose infer` and "
        "PoseEstimator read. The export is run against its source on the same crops and the "
        "largest heatmap difference and keypoint agreement are printed. A bottom-up model "
        "(HigherHRNet) exports with any image size and both outputs; it is calibrated on whole "
        "images and compared on the people both runs group (INT8 on annotated data: by COCO "
        "AP).")
    p.add_argument("model", metavar="MODEL", help="a zoo model name (its published weights), "
                   "a checkpoint, or an .onnx / .xml file from elsewhere (e.g. to quantise it)")
    p.add_argument("--format", choices=("onnx", "openvino"), default="onnx")
    p.add_argument("--out", type=file, help="file to write (.onnx, or .xml + .bin; default "
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
    p.add_argument("--calib-limit", type=count(), default=300,
                   help="at most this many calibration crops, or whole images for a bottom-up "
                   "model (default 300)")
    p.add_argument("--detector", metavar="MODEL",
                   help="person detector (a zoo name or a file) for calibration images "
                   "without annotations (default: the whole image)")
    p.add_argument("--dynamic-batch", action=argparse.BooleanOptionalAction, default=True,
                   help="any batch size (default); --no-dynamic-batch fixes it to --batch")
    p.add_argument("--batch", type=count(), default=1,
                   help="the fixed batch size (default 1)")
    p.add_argument("--simplify", action=argparse.BooleanOptionalAction, default=True,
                   help="simplify the ONNX graph with onnxslim (default on)")
    p.add_argument("--force", action="store_true",
                   help="write the file even when it disagrees with its source (below 95%% of "
                   "joints within 1 heatmap px for float, 85%% for INT8)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import export_model

    detector = None
    if args.detector:
        from ..inference.detector import ExportedDetector
        from ..inference.options import RuntimeOptions

        # calibration boxes in fp32 on every CPU: the same crops wherever the export runs
        detector = ExportedDetector(args.detector, RuntimeOptions(precision="fp32"))
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
