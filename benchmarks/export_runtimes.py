"""Runtime paths against plain PyTorch: `hrpose bench` for HRNet-W32 256x192 at batch 8 in fp32,
bf16 and INT8 (auto: every path of the precision timed, the fastest accurate one chosen), and
PP-TinyPose (an OpenVINO file from elsewhere; no PyTorch model of it yet) on the same paths.

INT8 models are calibrated on the people of ../shared/data/{coco-tiny,mpii-tiny,ochuman-tiny}.
The pipeline figure runs on coco-mini-train's real images and annotated boxes when
../shared/data is there, else on 24 synthetic images. Goals: fp32 >= 1.3x, bf16 >= 2.6x,
INT8 >= 5x plain PyTorch fp32; pipeline >= 80% of the model alone.

    python benchmarks/export_runtimes.py [--models w32 tinypose] [--precisions fp32 bf16 int8]
        [--rounds 10] [--no-report]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED, report

from hrpose.export.bench import bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "int8"])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--models", nargs="+", choices=("w32", "tinypose"),
                        default=["w32", "tinypose"])
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()

    calib = [str(SHARED / d) for d in ("coco-tiny", "mpii-tiny", "ochuman-tiny")]
    images = str(SHARED / "coco-mini-train") if SHARED.is_dir() else None
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED}: the shared data (calibration images, PP-TinyPose) is needed")
    lines = ["`hrpose bench MODEL --precision P --batch 8` (backend auto), 2 threads; model alone: "
             f"median of {args.rounds} interleaved batch calls; pipeline: image files of "
             "coco-mini-train (36 images, 167 people) to keypoints, median of 3 passes.", "",
             "| model | precision | path chosen | img/s | p50 ms | p95 ms | plain PyTorch fp32 "
             "img/s | x plain | pipeline crops/s (% of model) | joints within 1 px of fp32 | "
             "other paths (img/s) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    names = {"w32": "hrnet_w32_256x192",
             "tinypose": str(SHARED / "models" / "tinypose_256x192" / "model.xml")}
    models = [names[m] for m in args.models]
    for model in models:
        for precision in args.precisions:
            r = bench(model, "auto", precision, 8, calib=calib if precision == "int8" else (),
                      images=images, rounds=args.rounds)
            plain = r["plain_torch_fp32"]
            others = ", ".join(f"{p['backend']} {p['precision']} {p['img_per_s']:.1f}"
                               for p in r["paths"] if (p["backend"], p["precision"]) !=
                               (r["backend"], r["precision"]))
            agree = "-" if r["within_1px"] is None else f"{100 * r['within_1px']:.1f}%"
            name = model if not model.endswith(".xml") else "PP-TinyPose 256x192 (IR)"
            lines.append(
                f"| {name} | {precision} | {r['backend']} | {r['model_img_per_s']:.1f} | "
                f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
                f"{plain['img_per_s']:.1f} | {r['speedup']:.2f}x | " if plain else
                f"| {name} | {precision} | {r['backend']} | {r['model_img_per_s']:.1f} | "
                f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | - | - | ")
            lines[-1] += (f"{r['pipeline_img_per_s']:.1f} "
                          f"({100 * r['pipeline_img_per_s'] / r['model_img_per_s']:.0f}%) | "
                          f"{agree} | {others} |")
            print(lines[-1], flush=True)
    lines += ["", "HRNet-W32 has random weights here (the published ones cannot be downloaded "
              "on this machine): its speeds are real, its keypoint agreement is not meaningful. "
              "PP-TinyPose is a real trained model: its agreement is against its own file in "
              "OpenVINO fp32."]
    report("Export and runtimes: hrpose bench against plain PyTorch", lines,
           append=not args.no_report)


if __name__ == "__main__":
    main()
