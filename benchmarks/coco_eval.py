"""Results file -> keypoint AP on a generated set of COCO's (or CrowdPose test's) size.

coco: 5,000 images, 11,000 people, 100,000 results (noisy copies and false positives, tied
scores), the scale of COCO val2017 with a detector's boxes; times hrpose (load_results +
evaluate_keypoints) and pycocotools (loadRes + evaluate + accumulate + summarize).
crowdpose: 8,000 images with crowd indices over [0, 1], 29,000 people in CrowdPose's 14-joint
format, 60,000 results; the reference is xtcocotools' "keypoints_crowd" mode (which scores the
easy / medium / hard splits again after the whole set).
coco-wholebody: 5,000 images (COCO-WholeBody val's count), 11,000 people in its layout (parts
in their fields, some unlabelled), 50,000 results; the reference is xtcocotools' six modes
(whole body, body, foot, face, left hand, right hand) on one loaded results set, as mmpose runs
them. Both on the same files, interleaved, checking that every number agrees to 4 decimals.

    python benchmarks/coco_eval.py [--protocol crowdpose|coco-wholebody] [--repeats 3]
        [--no-report]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import median, report

from cocogen import random_crowd_set, random_keypoint_set, random_wholebody_set
from hrpose.data.coco import load_coco
from hrpose.metrics.coco import evaluate_keypoints, load_results
from hrpose.metrics.protocols import PROTOCOLS

ALL = slice(None)
# Per protocol: the generated set (images, people, results), its generator, the reference
# (module, its modes with the joints each scores, use_area) and the report's title.
SETUPS = {
    "coco": ((5000, 11000, 100000), random_keypoint_set,
             ("pycocotools", (("keypoints", None),), None),
             "COCO keypoint evaluation (benchmarks/coco_eval.py)"),
    "crowdpose": ((8000, 29000, 60000), random_crowd_set,
                  ("xtcocotools", (("keypoints_crowd", ALL),), False),
                  "CrowdPose evaluation (benchmarks/coco_eval.py --protocol crowdpose)"),
    "coco-wholebody": (
        (5000, 11000, 50000), random_wholebody_set,
        ("xtcocotools", (("keypoints_wholebody", ALL), ("keypoints_body", slice(0, 17)),
                         ("keypoints_foot", slice(17, 23)), ("keypoints_face", slice(23, 91)),
                         ("keypoints_lefthand", slice(91, 112)),
                         ("keypoints_righthand", slice(112, 133))), True),
        "COCO-WholeBody evaluation (benchmarks/coco_eval.py --protocol coco-wholebody)"),
}


def reference_stats(cocoeval: type, gt: object, dt: object, modes: tuple, sigmas: np.ndarray,
                    use_area: bool | None) -> list[float]:
    """The reference's numbers, mode after mode on the same loaded results."""
    stats: list[float] = []
    for mode, joints in modes:
        extra = () if joints is None else (sigmas[joints], use_area)
        e = cocoeval(gt, dt, mode, *extra)
        e.evaluate()
        e.accumulate()
        e.summarize()
        stats += [float(v) for v in e.stats]
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=tuple(SETUPS), default="coco")
    parser.add_argument("--images", type=int, help="default: the protocol's set size")
    parser.add_argument("--people", type=int)
    parser.add_argument("--results", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-report", action="store_true", help="do not append BENCHMARKS.md")
    args = parser.parse_args()
    sizes, generate, (library, modes, use_area), title = SETUPS[args.protocol]
    images, people, n_results = (given or default for given, default in
                                 zip((args.images, args.people, args.results), sizes))
    protocol = PROTOCOLS[args.protocol]
    reference = importlib.import_module(library + ".coco").COCO
    cocoeval = importlib.import_module(library + ".cocoeval").COCOeval
    with tempfile.TemporaryDirectory() as tmp:
        gt_file, res_file = Path(tmp, "gt.json"), Path(tmp, "results.json")
        gt, results = generate(images, people, n_results, seed=0)
        gt_file.write_bytes(orjson.dumps(gt))
        res_file.write_bytes(orjson.dumps(results))
        del results
        data = load_coco(gt_file)
        k = data.skeleton.num_joints
        sigmas = np.asarray(data.skeleton.sigmas)
        with contextlib.redirect_stdout(io.StringIO()):
            reference_gt = reference(str(gt_file))
        times: dict[str, list[float]] = {"hrpose load": [], "hrpose eval": [],
                                         "reference load": [], "reference eval": []}
        ours = ref = None
        for _ in range(args.repeats):
            start = time.perf_counter()
            res = load_results(res_file, k)
            loaded = time.perf_counter()
            ours = evaluate_keypoints(data, res, protocol)
            times["hrpose load"].append(loaded - start)
            times["hrpose eval"].append(time.perf_counter() - loaded)
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")     # "'foot_score' not found, use 'score'"
                start = time.perf_counter()
                dt = reference_gt.loadRes(str(res_file))
                loaded = time.perf_counter()
                ref = reference_stats(cocoeval, reference_gt, dt, modes, sigmas, use_area)
            times["reference load"].append(loaded - start)
            times["reference eval"].append(time.perf_counter() - loaded)
    m = {key: median(v) for key, v in times.items()}
    total = m["hrpose load"] + m["hrpose eval"]
    total_ref = m["reference load"] + m["reference eval"]
    same = np.round(list(ours.values()), 4).tolist() == np.round(ref, 4).tolist()
    lines = [f"Results file -> the {len(ours)} {args.protocol} keypoint numbers; {images:,} "
             f"images, {people:,} people, {n_results:,} results (median of {args.repeats}, "
             "interleaved):", "", "| | load results (s) | evaluate (s) | total (s) |",
             "|---|---:|---:|---:|",
             f"| hrpose | {m['hrpose load']:.2f} | {m['hrpose eval']:.2f} | {total:.2f} |",
             f"| {library} | {m['reference load']:.2f} | {m['reference eval']:.2f} | "
             f"{total_ref:.2f} |", "",
             f"Speed-up {total_ref / total:.1f}x; the {len(ours)} numbers "
             f"{'equal' if same else 'DIFFER from'} {library}' to 4 decimals "
             f"(AP {ours['AP']:.4f})."]
    report(title, lines, append=not args.no_report)


if __name__ == "__main__":
    main()
