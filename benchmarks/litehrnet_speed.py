"""LiteHRNet-30 and PP-TinyPose (its weights in PyTorch) against HRNet-W32, 256x192, batch 8, on
every path of `hrpose bench` (torch, ONNX Runtime, OpenVINO; fp32, bf16, int8): images/s of
the model alone, and each small model's speed-up over HRNet-W32 on the same path.
The goal: the fastest LiteHRNet-30 path at >= 8x the fastest HRNet-W32 fp32 path. OpenVINO
paths are timed with one stream and with two (the batch split across them).

    python benchmarks/litehrnet_speed.py [--rounds 5] [--precisions fp32 bf16 int8]
        [--no-report]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, report

from hrpose.export.bench import bench
from hrpose.models.convert import convert_openvino


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "int8"])
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED}: the shared data (PP-TinyPose, calibration images) is needed")
    tmp = Path(tempfile.mkdtemp(prefix="hrpose-lite-"))
    tinypose = tmp / "tinypose_256x192.safetensors"
    convert_openvino(SHARED / "models" / "tinypose_256x192" / "model.xml", tinypose)
    calib = [str(SHARED / d) for d in ("coco-tiny", "mpii-tiny", "ochuman-tiny")]
    models = {"HRNet-W32": ("hrnet_w32_256x192", None),
              "LiteHRNet-30": ("litehrnet_30_256x192", None),
              "PP-TinyPose": ("tinypose_256x192", str(tinypose))}
    speeds: dict[str, dict[str, float]] = {name: {} for name in models}
    for precision in args.precisions:
        for name, (model, weights) in models.items():
            r = bench(model, "auto", precision, 8, weights=weights, rounds=args.rounds,
                      passes=1, calib=calib if precision == "int8" else ())
            for p in r["paths"]:
                streams = f" {p['streams']} streams" if p.get("streams", 1) > 1 else ""
                speeds[name][f"{p['backend']} {p['precision']}{streams}"] = p["img_per_s"]
            print(name, precision, speeds[name], flush=True)
    paths = [p for p in speeds["HRNet-W32"] if all(p in s for s in speeds.values())]
    lines = ["Model alone, batch 8, 2 threads, median of "
             f"{args.rounds} interleaved rounds per precision (`hrpose bench`); LiteHRNet-30 "
             "and HRNet-W32 random weights (speed only), PP-TinyPose its real weights "
             "converted from the shared OpenVINO file; INT8 calibrated on coco-tiny, mpii-tiny "
             "and ochuman-tiny.", "",
             "| path | " + " | ".join(f"{n} img/s" for n in models) +
             " | LiteHRNet-30 / W32 | PP-TinyPose / W32 |",
             "|---|" + "---:|" * (len(models) + 2)]
    for path in paths:
        w32 = speeds["HRNet-W32"][path]
        cells = " | ".join(f"{speeds[n][path]:.1f}" for n in models)
        lines.append(f"| {path} | {cells} | {speeds['LiteHRNet-30'][path] / w32:.1f}x | "
                     f"{speeds['PP-TinyPose'][path] / w32:.1f}x |")
    w32_fp32 = max((p for p in speeds["HRNet-W32"] if "fp32" in p),
                   key=lambda p: speeds["HRNet-W32"][p])
    lines.append(f"\nFastest HRNet-W32 fp32 path: {w32_fp32}, "
                 f"{speeds['HRNet-W32'][w32_fp32]:.1f} img/s.")
    for name in ("LiteHRNet-30", "PP-TinyPose"):
        best = max(speeds[name], key=lambda p: speeds[name][p])
        lines.append(f"\nFastest {name} path: {best}, {speeds[name][best]:.1f} img/s = "
                     f"{speeds[name][best] / speeds['HRNet-W32'][w32_fp32]:.1f}x the fastest "
                     "HRNet-W32 fp32 path (goal for LiteHRNet-30: 8x).")
    report("LiteHRNet and PP-TinyPose against HRNet-W32 on every path", lines,
           append=not args.no_report)


if __name__ == "__main__":
    main()
