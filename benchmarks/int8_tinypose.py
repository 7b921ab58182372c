"""PP-TinyPose INT8: what each quantisation choice buys in COCO AP, file size and speed.

The real model (../shared/data/models/tinypose_256x192, trained by PaddleDetection), calibrated
on coco-tiny + mpii-tiny + ochuman-tiny (44 crops with mirrors), scored on coco-mini-train
(86 people, ground-truth boxes, flip test, `hrpose eval --precision fp32`), which the
calibration never sees. Rows:

- fp32: the float model (the IR's FP16 weights computed in fp32);
- `hrpose export --int8`, OpenVINO and ONNX: the shipped settings (NNCF MIXED preset, the
  overflow fix, histogram activation ranges, depthwise convolutions and branch sums kept in
  float);
- NNCF variants on the IR, each from the earlier settings (min-max activation ranges) with one
  change: everything quantised; only the sums in float; only the depthwise convolutions in
  float; no overflow fix; histogram activation ranges (what the shipped settings now use).

Speed: model alone, batch 8, static shapes, 2 threads, OpenVINO with the fp32 and the bf16
inference hints (median of interleaved rounds). Sizes: the files on disk (IR: .bin + .xml).

    python benchmarks/int8_tinypose.py [--rounds 5] [--no-report]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, median, report

from hrpose.cli import main as hrpose
from hrpose.data.transforms import normalize
from hrpose.export.calibration import person_crops
from hrpose.export.openvino import DEPTHWISE_FLOAT_TYPES, save_openvino
from hrpose.models.zoo import IMAGENET_MEAN, IMAGENET_STD

XML = SHARED / "models/tinypose_256x192/model.xml"
CALIB = [str(SHARED / d) for d in ("coco-tiny", "mpii-tiny", "ochuman-tiny")]


def quiet(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = hrpose(list(argv))
    if code != 0:
        raise SystemExit(f"hrpose {' '.join(argv)} failed ({code})")
    return out.getvalue()


def coco_ap(model: Path, work: Path) -> float:
    root = SHARED / "coco-mini-train"
    out = quiet("eval", str(model), "--data", str(root), "--ann",
                str(root / "annotations/person_keypoints_train2017.json"), "--images",
                str(root / "train2017"), "--out", str(work / f"eval_{model.stem}"),
                "--precision", "fp32", "--draw", "0", "--batch", "8", "--json")
    return json.loads(out.strip().splitlines()[-1])["AP"]


def variant(work: Path, name: str, ignored: dict | None, **advanced: object) -> Path:
    """NNCF on the IR with one setting changed from the shipped ones."""
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        OverflowFix,
    )

    logging.getLogger("nncf").setLevel(logging.ERROR)
    crops = normalize(person_crops(CALIB, (256, 192)), IMAGENET_MEAN, IMAGENET_STD)
    params = {"overflow_fix": OverflowFix.ENABLE, **advanced}
    scope = nncf.IgnoredScope(**ignored, validate=False) if ignored else None
    with contextlib.redirect_stdout(io.StringIO()):
        model = nncf.quantize(ov.Core().read_model(XML), nncf.Dataset([c[None] for c in crops]),
                              subset_size=len(crops), ignored_scope=scope,
                              preset=nncf.QuantizationPreset.MIXED,
                              advanced_parameters=AdvancedQuantizationParameters(**params))
    path = work / f"{name}.xml"
    save_openvino(model, path, {})
    return path


def speeds(paths: dict[str, Path], rounds: int) -> dict[str, dict[str, float]]:
    """img/s at batch 8 with the f32 and bf16 hints, rounds interleaved."""
    import openvino as ov

    core = ov.Core()
    x = np.random.default_rng(0).standard_normal((8, 3, 256, 192)).astype(np.float32)
    requests = {}
    for name, path in paths.items():
        for hint in ("f32", "bf16"):
            model = core.read_model(path)
            model.reshape([8, 3, 256, 192])
            try:
                compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint,
                                                             "INFERENCE_NUM_THREADS": 2})
            except RuntimeError:                # no bf16 kernels for this graph: said as -
                print(f"{name}: OpenVINO cannot compile it with the {hint} hint",
                      file=sys.stderr)
                continue
            requests[name, hint] = compiled.create_infer_request()
    times: dict[tuple, list[float]] = {key: [] for key in requests}
    for request in requests.values():
        request.infer({0: x})
    for _ in range(rounds):
        for key, request in requests.items():
            start = time.perf_counter()
            for _ in range(5):
                request.infer({0: x})
            times[key].append(40 / (time.perf_counter() - start))
    out: dict[str, dict[str, float]] = {}
    for (name, hint), values in times.items():
        out.setdefault(name, {})[hint] = median(values)
    return out


def size(path: Path) -> int:
    return path.stat().st_size + (path.with_suffix(".bin").stat().st_size
                                  if path.suffix == ".xml" else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED}: the shared data (PP-TinyPose, COCO subsets) is needed")
    work = Path(tempfile.mkdtemp(prefix="hrpose-int8-"))
    ckpt = work / "tinypose.safetensors"
    quiet("convert", str(XML), str(ckpt))
    files = {"fp32 IR (FP16 weights)": XML,
             "fp32 ONNX": work / "fp32.onnx"}
    quiet("export", str(ckpt), "--out", str(files["fp32 ONNX"]))
    files["INT8 OpenVINO (hrpose export)"] = work / "int8.xml"
    quiet("export", str(XML), "--format", "openvino", "--int8", "--calib", *CALIB, "--out",
          str(files["INT8 OpenVINO (hrpose export)"]))
    files["INT8 ONNX (hrpose export)"] = work / "int8.onnx"
    quiet("export", str(ckpt), "--int8", "--calib", *CALIB, "--out",
          str(files["INT8 ONNX (hrpose export)"]))
    from nncf.quantization.advanced_parameters import OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    shipped = {"types": list(DEPTHWISE_FLOAT_TYPES)}
    files["variant: everything quantised"] = variant(work, "all", None)
    files["variant: only the sums in float"] = variant(work, "sums", {"types": ["Add"]})
    files["variant: only the depthwise convs in float"] = variant(
        work, "dw", {"types": ["GroupConvolution"]})
    files["variant: no overflow fix (8-bit weights)"] = variant(
        work, "nofix", shipped, overflow_fix=OverflowFix.DISABLE)
    files["variant: histogram activation ranges"] = variant(
        work, "hist", shipped,
        activations_range_estimator_params=RangeEstimatorParametersSet.HISTOGRAM)
    ap = {name: coco_ap(path, work) for name, path in files.items()}
    speed = speeds({n: p for n, p in files.items() if p.suffix == ".xml" or "ONNX" in n},
                   args.rounds)
    lines = [f"`python benchmarks/int8_tinypose.py --rounds {args.rounds}`: PP-TinyPose "
             "256x192, calibrated on coco-tiny + mpii-tiny + ochuman-tiny (44 crops), AP on "
             "coco-mini-train (86 people, ground-truth boxes, flip, fp32 inference); speed of "
             "the model alone on OpenVINO, batch 8, static shapes, 2 threads, median of "
             f"{args.rounds} interleaved rounds.", "",
             "| file | AP | AP - fp32 | size MB | size / fp32 ONNX | img/s (f32 hint) "
             "| img/s (bf16 hint) |", "|---|---:|---:|---:|---:|---:|---:|"]
    base_ap, base_size = ap["fp32 ONNX"], size(files["fp32 ONNX"])
    for name, path in files.items():
        s = speed.get(name, {})
        lines.append(f"| {name} | {ap[name]:.3f} | {ap[name] - base_ap:+.3f} | "
                     f"{size(path) / 1e6:.2f} | {size(path) / base_size:.2f} | "
                     f"{s.get('f32', float('nan')):.1f} | {s.get('bf16', float('nan')):.1f} |")
    report("INT8 PP-TinyPose: what each choice buys", lines, append=not args.no_report)


if __name__ == "__main__":
    main()
