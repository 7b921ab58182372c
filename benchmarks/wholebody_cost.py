"""What 133 joints cost: HRNet-W32 256x192 whole-body against the 17-joint model, on each runtime.

For each runtime path (PyTorch, ONNX Runtime, OpenVINO; fp32, and bf16 where the CPU has it)
`hrpose bench` times both models in turn (the model alone, batch 8, and the whole pipeline from
image files to keypoints), each beside plain PyTorch fp32 measured in the same run. Then the
decoding alone: heatmaps (8, K, 64, 48) -> keypoints for K = 17 and 133, classic, DARK and UDP,
median of interleaved repeats. The weights are random (speed only): both models are HRNet-W32,
and the head differs by one 1x1 convolution's 116 rows.

    python benchmarks/wholebody_cost.py [--rounds 10] [--repeats 200] [--no-report]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, report

from hrpose.codecs.heatmap import HeatmapCodec
from hrpose.export.bench import bench
from hrpose.hardware import cpu_summary
from hrpose.info import FACTS

MODELS = ("hrnet_w32_256x192", "hrnet_w32_256x192_coco_wholebody")
PATHS = (("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"),
         ("torch", "bf16"), ("openvino", "bf16"))


def time_decoding(repeats: int) -> dict[tuple[str, int], float]:
    """Milliseconds to decode a batch of 8 crops' heatmaps, by (method, joints)."""
    rng = np.random.default_rng(0)
    heatmaps = {k: rng.random((8, k, 64, 48), dtype=np.float32) for k in (17, 133)}
    codecs = {m: HeatmapCodec((192, 256), (48, 64), method=m)
              for m in ("classic", "dark", "udp")}
    times: dict[tuple[str, int], list[float]] = {(m, k): [] for m in codecs for k in heatmaps}
    for _ in range(repeats):
        for (method, k), values in times.items():
            start = time.perf_counter()
            codecs[method].decode(heatmaps[k])
            values.append(1000 * (time.perf_counter() - start))
    return {key: median(v) for key, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--no-report", action="store_true", help="do not append BENCHMARKS.md")
    args = parser.parse_args()
    paths = [p for p in PATHS if p[1] == "fp32" or cpu_summary()["native_bf16"]]
    rows = []
    for backend, precision in paths:
        figures = {}
        for model in MODELS:
            with contextlib.redirect_stderr(io.StringIO()):
                figures[model] = bench(model, backend, precision, rounds=args.rounds,
                                       passes=2, log=False)
        body, whole = (figures[m] for m in MODELS)
        rows.append(f"| {backend} {precision} | {body['model_img_per_s']:.1f} | "
                    f"{whole['model_img_per_s']:.1f} | "
                    f"{whole['model_img_per_s'] / body['model_img_per_s']:.2f} | "
                    f"{body['pipeline_img_per_s']:.1f} | {whole['pipeline_img_per_s']:.1f} | "
                    f"{body['plain_torch_fp32']['img_per_s']:.1f} / "
                    f"{whole['plain_torch_fp32']['img_per_s']:.1f} |")
    decode = time_decoding(args.repeats)
    macs = [FACTS[m]["macs"] for m in MODELS]
    lines = [
        "HRNet-W32 256x192, 17 joints against COCO-WholeBody's 133 (random weights; batch 8; "
        f"the model alone: {args.rounds} interleaved rounds, median; pipeline: 24 synthetic "
        "images, 2 passes):", "",
        "| path | model crops/s, 17 | model crops/s, 133 | ratio | pipeline img/s, 17 | "
        "pipeline img/s, 133 | plain PyTorch fp32 crops/s (17 / 133 run) |",
        "|---|---:|---:|---:|---:|---:|---:|", *rows, "",
        f"The head: {macs[1] - macs[0]:,} more multiply-accumulates per crop "
        f"({100 * (macs[1] - macs[0]) / macs[0]:.2f}% of {macs[0] / 1e9:.2f} G).", "",
        f"Decoding a batch of 8 crops' heatmaps (median of {args.repeats}, ms):", "",
        "| method | 17 joints | 133 joints | per crop, 133 |", "|---|---:|---:|---:|",
        *(f"| {m} | {decode[(m, 17)]:.2f} | {decode[(m, 133)]:.2f} | "
          f"{decode[(m, 133)] / 8:.2f} |" for m in ("classic", "dark", "udp"))]
    report("Whole-body cost (benchmarks/wholebody_cost.py)", lines, append=not args.no_report)


if __name__ == "__main__":
    main()
