"""Top-down inference, people per second: batching crops across images against one image at a time.

Workload: the real COCO images of ../shared/data/coco-mini-train that have annotated person boxes
(36 images, 167 non-crowd people), decoded from disk each time. Every path does the whole
pipeline: decode the image, crop each box (aspect fix, 1.25 padding, affine warp), normalise, run
the model, decode the heatmaps (argmax) and map the keypoints back to the image.

- plain PyTorch, one person at a time: a textbook loop (cv2 + torch, batch 1) — the baseline;
- plain PyTorch, one image at a time: every box of an image in one batch (what the big
  toolkits' top-down demos do);
- hrpose, one image at a time: `PoseEstimator(image, boxes)`;
- hrpose, batched across images: `PoseEstimator.predict_batch(images, boxes)`, 8 crops per
  call (its CPU default) and 32.

HRNet-W32 256x192 (random weights: speed only) in fp32 on torch, and PP-TinyPose 256x192 on
OpenVINO (fp32) for the hrpose paths. Candidates interleaved; medians of the repeats.

    python benchmarks/infer_pipeline.py [--repeats 3] [--no-report]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, median, report

from hrpose.inference.estimator import PoseEstimator
from hrpose.models.checkpoint import save_weights
from hrpose.models.zoo import create_model

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def workload() -> tuple[list[Path], list[np.ndarray]]:
    root = SHARED / "coco-mini-train"
    gt = json.loads(next((root / "annotations").glob("*.json")).read_text())
    boxes: dict[int, list] = {}
    for a in gt["annotations"]:
        if not a.get("iscrowd") and a["bbox"][2] > 1 and a["bbox"][3] > 1:
            boxes.setdefault(a["image_id"], []).append(a["bbox"])
    images = [im for im in gt["images"] if im["id"] in boxes]
    return ([root / "train2017" / im["file_name"] for im in images],
            [np.array(boxes[im["id"]], np.float64) for im in images])


def plain_crop(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One 192x256 crop of a box (aspect 3:4, padded 1.25x) and its inverse affine."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    if w > 0.75 * h:
        h = w / 0.75
    else:
        w = h * 0.75
    w, h = w * 1.25, h * 1.25
    src = np.float32([[cx, cy], [cx, cy - h / 2], [cx - w / 2, cy - h / 2]])
    dst = np.float32([[96, 128], [96, 0], [0, 0]])
    m = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(image, m, (192, 256)), cv2.invertAffineTransform(m)


@torch.inference_mode()
def plain_pytorch(model: torch.nn.Module, paths: list[Path], boxes: list[np.ndarray],
                  per_person: bool) -> int:
    people = 0
    for path, image_boxes in zip(paths, boxes):
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        crops = [plain_crop(image, b) for b in image_boxes]
        groups = [[c] for c in crops] if per_person else [crops]
        for group in groups:
            x = np.stack([(c / 255.0 - MEAN) / STD for c, _ in group]).astype(np.float32)
            heatmaps = model(torch.from_numpy(x.transpose(0, 3, 1, 2)).contiguous()).numpy()
            n, k, _, ww = heatmaps.shape
            flat = heatmaps.reshape(n, k, -1).argmax(-1)
            xy = np.stack([flat % ww, flat // ww], -1) * 4.0
            for (_, inverse), pts in zip(group, xy):
                _ = pts @ inverse[:, :2].T + inverse[:, 2]
            people += n
    return people


def hrpose_per_image(est: PoseEstimator, paths: list[Path], boxes: list[np.ndarray]) -> int:
    return sum(len(est(p, b)) for p, b in zip(paths, boxes))


def hrpose_batched(est: PoseEstimator, paths: list[Path], boxes: list[np.ndarray]) -> int:
    return sum(map(len, est.predict_batch(paths, boxes)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED}: the shared data folder is needed (set HRPOSE_SHARED_DATA)")
    paths, boxes = workload()
    people = sum(map(len, boxes))
    model = create_model("hrnet_w32_256x192").eval()
    weights = Path("/tmp/hrpose_bench_w32.safetensors")
    save_weights(weights, model.state_dict(), {"model": "hrnet_w32_256x192"})
    w32, w32_32 = PoseEstimator(weights), PoseEstimator(weights, batch=32)
    tinypose = PoseEstimator(SHARED / "models/tinypose_256x192/model.xml")
    tinypose_32 = PoseEstimator(SHARED / "models/tinypose_256x192/model.xml", batch=32)
    candidates = {
        "W32, plain PyTorch, one person at a time (baseline)":
            lambda: plain_pytorch(model, paths, boxes, per_person=True),
        "W32, plain PyTorch, one image at a time":
            lambda: plain_pytorch(model, paths, boxes, per_person=False),
        "W32, hrpose, one image at a time": lambda: hrpose_per_image(w32, paths, boxes),
        "W32, hrpose, batched across images (8)": lambda: hrpose_batched(w32, paths, boxes),
        "W32, hrpose, batched across images (32)": lambda: hrpose_batched(w32_32, paths, boxes),
        "PP-TinyPose OpenVINO, hrpose, one image at a time":
            lambda: hrpose_per_image(tinypose, paths, boxes),
        "PP-TinyPose OpenVINO, hrpose, batched across images (8)":
            lambda: hrpose_batched(tinypose, paths, boxes),
        "PP-TinyPose OpenVINO, hrpose, batched across images (32)":
            lambda: hrpose_batched(tinypose_32, paths, boxes),
    }
    for run in candidates.values():      # warm-up: first-call allocations, OpenVINO shapes
        run()
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            assert run() == people
            rates[name].append(people / (time.perf_counter() - start))
    base = median(rates[next(iter(rates))])
    lines = [f"{len(paths)} real COCO images (coco-mini-train), {people} annotated people, whole "
             f"pipeline from the image file to keypoints in image pixels, fp32, "
             f"{torch.get_num_threads()} threads; median of {args.repeats} interleaved repeats.",
             "", "| path | people/s | vs baseline |", "|---|---:|---:|"]
    for name, values in rates.items():
        lines.append(f"| {name} | {median(values):.2f} | {median(values) / base:.2f}x |")
    report("Top-down inference: batching across images", lines, append=not args.no_report)


if __name__ == "__main__":
    main()
