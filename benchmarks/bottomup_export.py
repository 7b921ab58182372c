"""Bottom-up HigherHRNet outside PyTorch: the pipeline (decoded image -> people) on every path,
side by side in one run, with the share of each stage; and the AP of each export beside the
PyTorch model it came from.

Speed: HigherHRNet-W32 at 512 (random weights: the model's cost is real, but it finds nobody,
so grouping costs almost nothing) and a trained model (its grouping works on real people:
`--trained`, e.g. the bottom-up quickstart's best.safetensors). Paths: plain PyTorch fp32,
PyTorch bf16 (autocast, where the CPU has bf16), ONNX Runtime fp32, OpenVINO fp32, bf16 and
INT8. Passes are interleaved across the paths after one warm-up pass (OpenVINO compiles each
input shape once); medians.

Accuracy (with `--trained` and `--data`): `hrpose eval` of the PyTorch model and of each export
on the same data, flip test as the model's config says.

    python benchmarks/bottomup_export.py --trained runs/bottomup/best.safetensors \
        --data data/synthetic [--calib DIR] [--coco ../shared/data/coco-tiny] [--images 12]
        [--passes 3] [--no-report]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, report

from hrpose.data.synthetic import draw_image
from hrpose.export import export_model
from hrpose.export.bench import bottomup_pipeline
from hrpose.hardware import resolve_precision
from hrpose.inference.backends import open_model
from hrpose.inference.options import RuntimeOptions
from hrpose.models.checkpoint import save_weights
from hrpose.models.loading import build_model

STAGES = ("resize", "model", "maps", "grouping")


def exports(model: str, work: Path, calib: list[str]) -> dict[str, tuple[str, RuntimeOptions]]:
    """Every path: (model file, how it runs)."""
    files = {}
    for name, fmt, fp16, int8 in (("onnx", "onnx", False, False),
                                  ("ov", "openvino", False, False),
                                  ("ov_fp16", "openvino", True, False),
                                  ("ov_int8", "openvino", False, True)):
        suffix = ".onnx" if fmt == "onnx" else ".xml"
        print(f"exporting {model} -> {name}", file=sys.stderr, flush=True)
        result = export_model(model, work / f"{name}{suffix}", fmt, fp16=fp16, int8=int8,
                              calib=calib if int8 else (), force=True, log=False)
        print(f"  {result.agreement.describe()}", file=sys.stderr, flush=True)
        files[name] = str(result.path)
    paths = {"PyTorch fp32 (plain)": (model, RuntimeOptions("torch", precision="fp32")),
             "ONNX Runtime fp32": (files["onnx"], RuntimeOptions("onnxruntime")),
             "OpenVINO fp32": (files["ov"], RuntimeOptions("openvino", precision="fp32")),
             "OpenVINO FP16 weights": (files["ov_fp16"],
                                       RuntimeOptions("openvino", precision="fp32")),
             "OpenVINO INT8": (files["ov_int8"], RuntimeOptions("openvino", precision="fp32"))}
    if resolve_precision("auto") == "bf16":
        paths["PyTorch bf16"] = (model, RuntimeOptions("torch", precision="bf16"))
        paths["OpenVINO bf16"] = (files["ov"], RuntimeOptions("openvino", precision="bf16"))
    return paths


def pipelines(paths: dict[str, tuple[str, RuntimeOptions]], images: list[np.ndarray],
              passes: int, side: int | None = None) -> dict[str, dict]:
    """images/s and stage shares of each path (`hrpose bench`'s pipeline measurement);
    `side`: the input's short side (default the model's)."""
    loaded = {name: open_model(file, options) for name, (file, options) in paths.items()}
    card = next(iter(loaded.values())).card            # every path: the same model's card
    figures = bottomup_pipeline({name: m.runner for name, m in loaded.items()}, images, card,
                                card.keypoints, passes, side)
    return {name: {"img_per_s": f["img_per_s"], **f["shares"]} for name, f in figures.items()}


def speed_lines(title: str, figures: dict[str, dict]) -> list[str]:
    base = figures.get("PyTorch bf16", figures["PyTorch fp32 (plain)"])["img_per_s"]
    base_name = "PyTorch bf16" if "PyTorch bf16" in figures else "PyTorch fp32"
    lines = [f"{title}:", "", f"| path | images/s | x {base_name} | resize | model | maps | "
             "grouping |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, f in figures.items():
        lines.append(f"| {name} | {f['img_per_s']:.2f} | {f['img_per_s'] / base:.2f} | "
                     + " | ".join(f"{100 * f[s]:.0f}%" for s in STAGES) + " |")
    return [*lines, ""]


def evaluate(model: str, data: str, out: Path, backend: str | None) -> dict:
    args = [sys.executable, "-m", "hrpose", "eval", model, "--data", data, "--out", str(out),
            "--draw", "0", "--precision", "fp32", "--json",
            *(["--backend", backend] if backend else [])]
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def accuracy_lines(model: str, files: dict[str, str], data: list[str], work: Path
                   ) -> list[str]:
    lines = ["| model | " + " | ".join(f"AP on {Path(d).name}" for d in data) + " |",
             "|---|" + "---:|" * len(data)]
    runs = {"PyTorch fp32": model, **files}
    reference = None
    for name, file in runs.items():
        aps = [evaluate(file, d, work / f"eval_{name}_{i}".replace(" ", "_"),
                        "openvino" if file.endswith(".xml") else None)["AP"]
               for i, d in enumerate(data)]
        reference = reference or aps
        lines.append(f"| {name} | " + " | ".join(
            f"{ap:.4f}" + ("" if name == "PyTorch fp32" else f" ({ap - r:+.4f})")
            for ap, r in zip(aps, reference)) + " |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trained", help="a trained bottom-up checkpoint")
    parser.add_argument("--data", nargs="*", default=[], help="data roots to score it on")
    parser.add_argument("--calib", nargs="*", default=[], help="INT8 calibration images")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--skip-w32", action="store_true")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = [draw_image(rng)[0] for _ in range(args.images)]
    lines = []
    with tempfile.TemporaryDirectory(prefix="hrpose-bu-") as tmp:
        work = Path(tmp)
        calib = args.calib or [str(work / "calib")]
        if not args.calib:
            from hrpose.data.synthetic import write_split

            write_split(work / "calib", "val", 16, seed=7, progress=False)
        if not args.skip_w32:
            w32 = work / "w32.safetensors"
            save_weights(w32, build_model("higherhrnet_w32_512").state_dict(),
                         {"model": "higherhrnet_w32_512"})
            paths = exports(str(w32), work / "w32", calib)
            lines += speed_lines(f"HigherHRNet-W32 512, random weights, {args.images} "
                                 "synthetic images (224-320 px, short side to 512), no flip",
                                 pipelines(paths, images, args.passes))
        if args.trained:
            paths = exports(args.trained, work / "trained", calib)
            name = f"{Path(args.trained).parent.name}/{Path(args.trained).name} (trained)"
            lines += speed_lines(f"{name}, the same images at its input size, no flip",
                                 pipelines(paths, images, args.passes))
            lines += speed_lines(f"{name}, the same images at a 512 short side (grouping real "
                                 "people on maps of W32 512's size), no flip",
                                 pipelines(paths, images, args.passes, side=512))
            if args.data:
                files = {n: f for n, (f, _) in paths.items() if not n.startswith("PyTorch")
                         and "bf16" not in n}
                lines += ["AP of each export beside its PyTorch source (`hrpose eval`, the "
                          "model's own test settings):", ""]
                lines += accuracy_lines(args.trained, files, args.data, work)
    report("Bottom-up HigherHRNet exported: pipeline speed and AP", lines,
           append=not args.no_report)


if __name__ == "__main__":
    main()
