"""Fine-tuning on a custom keypoint set by config alone, on real images.

The set: five face joints of COCO (nose, eyes, ears) under new names and in a new order
(`face5`, with COCO's sigmas for them). Its data: coco-mini-train's people (80 images) for
training; coco-tiny and ochuman-tiny for evaluation, all written as data roots with the set
file beside the annotations. The model: PP-TinyPose 256x192 converted to PyTorch (`hrpose
convert`), fine-tuned with `configs/custom/tinypose_finetune.yaml` (its backbone kept, a fresh
5-row head). Scored with ground-truth boxes beside the reference: the 17-joint PP-TinyPose on
the same people, its five joints taken out and scored the same way (rescoring, OKS-NMS and AP
with the face set's sigmas, flip test on both).

    python benchmarks/custom_keypoints.py [--epochs N] [--no-append]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, SHARED, report

from hrpose.codecs.heatmap import HeatmapCodec
from hrpose.config import EvalSettings
from hrpose.data.coco import Detections, load_keypoints
from hrpose.data.dataroot import subset_joints
from hrpose.data.topdown import ground_truth_boxes
from hrpose.engine.evaluate import Predictions, coco_results, predict
from hrpose.inference.backends import open_model
from hrpose.inference.options import RuntimeOptions
from hrpose.io import read_json, write_json
from hrpose.metrics.coco import evaluate_keypoints
from hrpose.skeletons import COCO, load_skeleton_file, write_skeleton_file

FACE = load_skeleton_file(ROOT / "configs/keypoints/face5.yaml")
SOURCES = {"snout": "nose", "eye_l": "left_eye", "eye_r": "right_eye", "ear_l": "left_ear",
           "ear_r": "right_ear"}
# (annotation file, image folder) of each set, under ../shared/data
SETS = {
    "coco-mini-train": ("coco-mini-train/annotations/person_keypoints_train2017.json",
                        "coco-mini-train/train2017"),
    "coco-tiny": ("coco-tiny/annotations/person_keypoints_val2017.json", "coco-tiny/val2017"),
    "ochuman-tiny": ("ochuman-tiny/test_ochuman.json", "ochuman-tiny"),
}


def face_root(out: Path, train: str, val: str) -> Path:
    """A data root whose train and val files are `train` and `val` with the face joints."""
    for split, name in (("train", train), ("val", val)):
        ann, images = SETS[name]
        coco = subset_joints(read_json(SHARED / ann), FACE, SOURCES)
        write_json(out / f"annotations/person_keypoints_{split}2017.json", coco)
        (out / f"{split}2017").symlink_to(SHARED / images)
    write_skeleton_file(out / "annotations/keypoints.yaml", FACE)
    return out


def hrpose(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "hrpose", *args], capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(f"hrpose {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def reference_ap(checkpoint: Path, name: str) -> float:
    """The 17-joint model on the set's people (ground-truth boxes), its five face joints
    scored as the face model is: rescored, OKS-NMS and AP with the face set's sigmas."""
    ann, images = SETS[name]
    full = load_keypoints(SHARED / ann, COCO)
    with tempfile.TemporaryDirectory() as tmp:
        face_file = Path(tmp) / "face.json"
        write_json(face_file, subset_joints(read_json(SHARED / ann), FACE, SOURCES))
        face = load_keypoints(face_file, FACE)
    loaded = open_model(str(checkpoint), RuntimeOptions(precision="fp32"))
    settings = EvalSettings()
    h, w = loaded.runner.input_hw
    codec = HeatmapCodec((w, h), (w // 4, h // 4), method=settings.decode)
    boxes = ground_truth_boxes(full)
    pred = predict(loaded.runner, boxes, full, SHARED / images, codec, loaded.card.mean,
                   loaded.card.std, settings.flip, progress=False)
    columns = [COCO.joints.index(SOURCES[j]) for j in FACE.joints]
    face_pred = Predictions(Detections(boxes.image_ids, boxes.boxes, boxes.scores),
                            pred.keypoints[:, columns], pred.areas)
    return evaluate_keypoints(face, coco_results(face_pred, face, settings))["AP"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("-o", "--override", action="append", default=[],
                        help="more recipe overrides, KEY=VALUE")
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hrpose-custom-"))
    checkpoint = work / "tinypose_256x192.safetensors"
    hrpose("convert", str(SHARED / "models/tinypose_256x192/model.xml"), str(checkpoint))
    train_root = face_root(work / "face-train", "coco-mini-train", "coco-tiny")
    recipe = ROOT / "configs/custom/tinypose_finetune.yaml"
    overrides = [f"data.root={train_root}", f"model.init={checkpoint}"]
    if args.epochs:
        overrides.append(f"train.epochs={args.epochs}")
    overrides += args.override
    start = time.perf_counter()
    log = hrpose("train", str(recipe), "--out", str(work / "run"),
                 *(a for o in overrides for a in ("-o", o)))
    minutes = (time.perf_counter() - start) / 60
    note = next((line for line in log.splitlines() if "head starts fresh" in line), "")
    best = work / "run/best.safetensors"
    rows = ["| data (ground-truth boxes, flip test) | face5 fine-tuned: AP | PP-TinyPose 17 "
            "joints, its 5 face joints: AP | ratio |", "| --- | --- | --- | --- |"]
    for name in ("coco-tiny", "ochuman-tiny"):
        root = face_root(work / f"face-{name}", "coco-mini-train", name)
        out = work / f"eval-{name}"
        hrpose("eval", str(best), "--data", str(root), "--out", str(out), "--json")
        ap = json.loads((out / "metrics.json").read_text())["AP"]
        ref = reference_ap(checkpoint, name)
        rows.append(f"| {name} | {ap:.3f} | {ref:.3f} | {ap / ref:.2f} |")
    given = " ".join(f"-o {o}" for o in overrides[2:])
    lines = [f"`python benchmarks/custom_keypoints.py {given}`".replace(" `", "`") + ": "
             f"`hrpose train configs/custom/tinypose_finetune.yaml` on coco-mini-train's face "
             f"joints took {minutes:.1f} min. {note.removeprefix('hrpose: ')}", "", *rows]
    report("Custom keypoint set: face5 fine-tuned from PP-TinyPose", lines,
           append=not args.no_append)


if __name__ == "__main__":
    main()
