"""What the INT8 export gate judges by, against what users care about.

PP-TinyPose 256x192 (../shared/data/models/tinypose_256x192) is quantised for OpenVINO by
`hrpose export --int8 --force` with three calibrations: coco-mini-train; coco-tiny +
crowdpose-tiny + ochuman-tiny; and black images (a broken file). For each: the gate's verdict
and what it measured on its held-out people (COCO AP against the ground truth, or mean OKS to
the source's joints), and, on all 86 people of coco-mini-train, the joints within one heatmap
pixel of the source (the old gate's figure), the mean OKS to the source and COCO AP
(`hrpose eval`, ground-truth boxes, flip, fp32 inference) beside the float model's.

    python benchmarks/int8_gate.py [--no-report]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, report
from int8_tinypose import coco_ap  # COCO AP on coco-mini-train, as that benchmark scores it

from hrpose.codecs.heatmap import HeatmapCodec
from hrpose.data.transforms import normalize
from hrpose.errors import plural
from hrpose.export.calibration import cut_people
from hrpose.export.exporter import MIN_AGREEMENT, export_model, judge
from hrpose.export.verify import compare_heatmaps, oks_agreement, run_batched
from hrpose.inference.backends import open_model
from hrpose.inference.options import RuntimeOptions
from hrpose.inference.topdown import decode_keypoints

MODEL = SHARED / "models" / "tinypose_256x192"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="int8_gate_"))
    black = work / "black"
    black.mkdir()
    for i in range(3):
        cv2.imwrite(str(black / f"b{i}.png"), np.zeros((256, 192, 3), np.uint8))
    calibrations = {
        "coco-mini-train": [SHARED / "coco-mini-train"],
        "coco-tiny + crowdpose-tiny + ochuman-tiny": [SHARED / "coco-tiny",
                                                      SHARED / "crowdpose-tiny",
                                                      SHARED / "ochuman-tiny"],
        "black images (broken)": [black]}
    source = open_model(str(MODEL), RuntimeOptions(precision="fp32"))
    people = cut_people([str(SHARED / "coco-mini-train")], source.runner.input_hw)
    h, w = source.runner.input_hw
    x = normalize(people.crops, source.card.mean, source.card.std)
    codec = HeatmapCodec((w, h), (w // 4, h // 4))
    source_maps = run_batched(source.runner, x)
    expected = decode_keypoints(source_maps, people.matrices, codec)
    base = coco_ap(MODEL / "model.xml", work)
    lines = ["`python benchmarks/int8_gate.py`: PP-TinyPose 256x192 INT8 (OpenVINO, NNCF), "
             f"float AP {base:.3f} on coco-mini-train (86 people, ground-truth boxes, flip).",
             "", "| calibration | verdict | judged on held-out people | joints <= 1 px (all 86) "
             "| OKS to source (all 86) | AP | AP - float | export s |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for i, (name, calib) in enumerate(calibrations.items()):
        start = time.perf_counter()
        result = export_model(str(MODEL), work / f"int8_{i}.xml", "openvino", int8=True,
                              calib=[str(c) for c in calib], force=True, log=False)
        seconds = time.perf_counter() - start
        a = result.agreement
        verdict = judge(a, MIN_AGREEMENT["int8"])
        if a.ap is not None:
            held = (f"{plural(a.crops, 'person', 'people')}: AP {a.ap:.3f}, source "
                    f"{a.reference_ap:.3f}")
        elif a.oks is not None:
            held = f"{plural(a.crops, 'person', 'people')}: OKS {a.oks:.3f}"
        else:
            held = (f"{plural(a.crops, 'person', 'people')}, no joint seen: "
                    f"{100 * a.within_1px:.1f}% <= 1 px")
        exported = open_model(str(result.path), RuntimeOptions(precision="fp32"))
        maps = run_batched(exported.runner, x)
        found = decode_keypoints(maps, people.matrices, codec)
        within = compare_heatmaps(source_maps, maps).within_1px
        oks = oks_agreement(expected, found, people.boxes, source.card.keypoints.sigmas)
        ap = coco_ap(result.path, work)
        lines.append(f"| {name} | {'refused' if verdict else 'accepted'} | {held} | "
                     f"{100 * within:.1f}% | {oks:.3f} | {ap:.3f} | {ap - base:+.3f} | "
                     f"{seconds:.0f} |")
    report("INT8 export gate: held-out people, AP or OKS", lines, append=not args.no_report)


if __name__ == "__main__":
    main()
