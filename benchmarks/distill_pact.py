"""A small LiteHRNet student on the synthetic people set: trained alone, distilled from the
HRNet quickstart (the teacher), and PACT-quantised from the alone student; COCO AP on synthetic
val and wall time of each, and the AP of the PACT model's INT8 ONNX export.

    python benchmarks/distill_pact.py [--data data/synthetic] [--teacher RUN/best.safetensors]
        [--epochs 4] [--pact-epochs 1] [--no-report]

Without --teacher the HRNet quickstart is trained first (configs/synthetic/quickstart.yaml).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, report

from hrpose.data.synthetic import write_dataset
from hrpose.export.bench import bench


def run(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hrpose", *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "synthetic")
    parser.add_argument("--teacher", type=Path)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--pact-epochs", type=int, default=1)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()

    data = args.data
    if not (data / "annotations" / "person_keypoints_val2017.json").is_file():
        write_dataset(data, train=5000, val=200, seed=0, progress=False)
    tmp = Path(tempfile.mkdtemp(prefix="hrpose-kd-"))
    student = str(ROOT / "configs/synthetic/litehrnet_quickstart.yaml")
    common = ["-o", f"data.root={data}", "-o", f"train.epochs={args.epochs}", "--json"]
    rows = []
    teacher = args.teacher
    if teacher is None:
        seconds = run("train", str(ROOT / "configs/synthetic/quickstart.yaml"), "--out",
                      str(tmp / "teacher"), "-o", f"data.root={data}", "--json")
        teacher = tmp / "teacher" / "best.safetensors"
        rows.append(("teacher: HRNet quickstart (1.2M parameters)", metrics(tmp / "teacher"),
                     seconds))
    seconds = run("train", student, "--out", str(tmp / "alone"), *common)
    rows.append(("student alone", metrics(tmp / "alone"), seconds))
    seconds = run("train", student, "--out", str(tmp / "distilled"), "--teacher", str(teacher),
                  *common)
    rows.append(("student distilled (weight 0.5)", metrics(tmp / "distilled"), seconds))
    seconds = run("train", student, "--out", str(tmp / "pact"), "-o", f"data.root={data}",
                  "-o", f"train.epochs={args.pact_epochs}", "-o", "train.lr=5e-4",
                  "-o", "train.lr_steps=[100]", "-o", f"train.eval_every={args.pact_epochs}",
                  "-o", "quant.pact=true", "-o",
                  f"model.init={tmp / 'alone' / 'best.safetensors'}", "--json")
    rows.append((f"student + PACT ({args.pact_epochs} epoch from the alone student, "
                 "fake-quantised PyTorch)", metrics(tmp / "pact"), seconds))
    onnx = tmp / "pact_int8.onnx"
    run("export", str(tmp / "pact" / "best.safetensors"), "--out", str(onnx), "--json")
    run("eval", str(onnx), "--data", str(data), "--decode", "dark", "--out",
        str(tmp / "pact_eval"), "--json")
    rows.append(("student + PACT, INT8 ONNX export (ONNX Runtime)", metrics(tmp / "pact_eval"),
                 0.0))
    float_onnx = tmp / "alone_fp32.onnx"
    run("export", str(tmp / "alone" / "best.safetensors"), "--out", str(float_onnx), "--json")
    speed = {}
    for name, file in (("float student fp32 ONNX", float_onnx), ("PACT INT8 ONNX", onnx)):
        r = bench(str(file), "auto", "fp32", 8, rounds=5, passes=1, log=False)
        speed[name] = {f"{p['backend']}": p["img_per_s"] for p in r["paths"]}
    size = {p.name: p.stat().st_size for p in (tmp / "alone" / "best.safetensors", float_onnx,
                                                onnx)}
    lines = [f"Synthetic people set ({data.name}: 5000 / 200 images), flip test, DARK decoding; "
             f"student `configs/synthetic/litehrnet_quickstart.yaml`, {args.epochs} epochs.",
             "", "| run | AP | AP50 | AP75 | train + eval time |", "|---|---:|---:|---:|---:|"]
    for name, m, seconds in rows:
        time_text = f"{seconds / 60:.1f} min" if seconds else "-"
        lines.append(f"| {name} | {m['AP']:.3f} | {m['AP50']:.3f} | {m['AP75']:.3f} | "
                     f"{time_text} |")
    lines += ["", "Files: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in size.items()),
              "", "Speed of the exported students, batch 8, model alone (`hrpose bench FILE`, "
              "median of 5 interleaved rounds): " + "; ".join(
                  f"{name}: " + ", ".join(f"{b} {v:.0f} img/s" for b, v in paths.items())
                  for name, paths in speed.items())]
    report("LiteHRNet student: alone, distilled, PACT", lines, append=not args.no_report)


if __name__ == "__main__":
    main()
