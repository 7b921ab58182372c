"""Results file -> COCO keypoint AP on a generated set of COCO's size.

5,000 images, 11,000 people, 100,000 results (noisy copies and false positives, tied scores), the
scale of COCO val2017 with a detector's boxes. Times hrpose (load_results + evaluate_keypoints)
and pycocotools (loadRes + evaluate + accumulate + summarize) on the same files, interleaved, and
checks that the ten numbers agree to 4 decimals.

    python benchmarks/coco_eval.py [--repeats 3] [--no-report]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import median, report

from cocogen import random_keypoint_set
from hrpose.data.coco import load_coco
from hrpose.metrics.coco import evaluate_keypoints, load_results
from hrpose.skeletons import COCO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--people", type=int, default=11000)
    parser.add_argument("--results", type=int, default=100000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-report", action="store_true", help="do not append BENCHMARKS.md")
    args = parser.parse_args()
    try:
        from pycocotools.coco import COCO as CocoApi
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        CocoApi = None
    with tempfile.TemporaryDirectory() as tmp:
        gt_file, res_file = Path(tmp, "gt.json"), Path(tmp, "results.json")
        gt, results = random_keypoint_set(args.images, args.people, args.results, seed=0)
        gt_file.write_bytes(orjson.dumps(gt))
        res_file.write_bytes(orjson.dumps(results))
        del results
        data = load_coco(gt_file, COCO)
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = CocoApi(str(gt_file)) if CocoApi else None

        times: dict[str, list[float]] = {"hrpose load": [], "hrpose eval": [],
                                         "pycocotools load": [], "pycocotools eval": []}
        ours = ref = None
        for _ in range(args.repeats):
            start = time.perf_counter()
            res = load_results(res_file, 17)
            loaded = time.perf_counter()
            ours = evaluate_keypoints(data, res)
            times["hrpose load"].append(loaded - start)
            times["hrpose eval"].append(time.perf_counter() - loaded)
            if coco_gt is not None:
                with contextlib.redirect_stdout(io.StringIO()):
                    start = time.perf_counter()
                    dt = coco_gt.loadRes(str(res_file))
                    loaded = time.perf_counter()
                    e = COCOeval(coco_gt, dt, "keypoints")
                    e.evaluate()
                    e.accumulate()
                    e.summarize()
                times["pycocotools load"].append(loaded - start)
                times["pycocotools eval"].append(time.perf_counter() - loaded)
                ref = e.stats
    m = {k: median(v) for k, v in times.items() if v}
    lines = [f"Results file -> the ten COCO keypoint numbers; {args.images:,} images, "
             f"{args.people:,} people, {args.results:,} results (median of {args.repeats}, "
             "interleaved):", "", "| | load results (s) | evaluate (s) | total (s) |",
             "|---|---:|---:|---:|",
             f"| hrpose | {m['hrpose load']:.2f} | {m['hrpose eval']:.2f} | "
             f"{m['hrpose load'] + m['hrpose eval']:.2f} |"]
    if ref is not None:
        same = np.round(list(ours.values()), 4).tolist() == np.round(ref, 4).tolist()
        total_ref = m["pycocotools load"] + m["pycocotools eval"]
        total = m["hrpose load"] + m["hrpose eval"]
        lines += [f"| pycocotools | {m['pycocotools load']:.2f} | {m['pycocotools eval']:.2f} | "
                  f"{total_ref:.2f} |", "",
                  f"Speed-up {total_ref / total:.1f}x; the ten numbers "
                  f"{'equal' if same else 'DIFFER from'} pycocotools' to 4 decimals "
                  f"(AP {ours['AP']:.4f})."]
    else:
        lines += ["", "pycocotools is not installed: no reference figure."]
    report("COCO keypoint evaluation (benchmarks/coco_eval.py)", lines, append=not args.no_report)


if __name__ == "__main__":
    main()
