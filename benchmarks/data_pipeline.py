"""Training samples per second on one core: read, decode, augment, crop, encode targets.

hrpose's TopDownDataset (published augmentation, 256x192 input, 64x48 heatmaps) beside a plain
reference pipeline written the way the published HRNet code works: cv2.imread, colour conversion
of the whole image, a three-point affine, a per-joint loop for the targets, and per-sample float
normalisation. Both run single-threaded in one process (one data worker), interleaved.

    python benchmarks/data_pipeline.py [--data COCO_ROOT] [--repeats 5] [--no-report]

The default data is ../shared/data/coco-mini-train (80 real COCO train images, 640 px wide).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import simplejpeg
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, median, report

from hrpose.codecs.heatmap import HeatmapCodec
from hrpose.data import topdown
from hrpose.data.coco import load_coco
from hrpose.data.transforms import boxes_to_crops

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def reference_sample(path: Path, box: np.ndarray, joints: np.ndarray,
                     rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The published pipeline's steps, plainly: whole-image decode and colour conversion,
    random scale/rotation/flip, a three-point affine, a loop over joints for the targets."""
    image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    center, size = boxes_to_crops(box[None], 192 / 256)
    center, size = center[0], size[0] * np.clip(rng.normal() * 0.35 + 1, 0.65, 1.35)
    rot = np.clip(rng.normal() * 45, -90, 90) if rng.random() <= 0.6 else 0.0
    if rng.random() < 0.5:
        image = image[:, ::-1]
        center = center.copy()
        center[0] = image.shape[1] - 1 - center[0]
        joints = joints.copy()
        joints[:, 0] = image.shape[1] - 1 - joints[:, 0]
    r = np.deg2rad(rot)
    direction = np.array([np.sin(r), -np.cos(r)]) * size[0] * 0.5
    def third(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = a - b
        return b + np.array([-d[1], d[0]])

    src = np.float32([center, center + direction, third(center, center + direction)])
    dst_a, dst_b = np.array([96.0, 128.0]), np.array([96.0, 128.0 - 96])
    dst = np.float32([dst_a, dst_b, third(dst_a, dst_b)])
    m = cv2.getAffineTransform(src, dst)
    crop = cv2.warpAffine(np.ascontiguousarray(image), m, (192, 256), flags=cv2.INTER_LINEAR)
    target = np.zeros((17, 64, 48), np.float32)
    weight = np.ones(17, np.float32)
    tmp = 6
    for j in range(17):
        x, y = m @ np.r_[joints[j, :2], 1] / 4
        mx, my = int(x + 0.5), int(y + 0.5)
        if joints[j, 2] == 0 or mx - tmp >= 48 or my - tmp >= 64 or mx + tmp < 0 or my + tmp < 0:
            weight[j] = 0
            continue
        xs, ys = np.arange(48), np.arange(64)[:, None]
        g = np.exp(-((xs - mx) ** 2 + (ys - my) ** 2) / 8.0)
        g[(np.abs(xs - mx) > tmp) | (np.abs(ys - my) > tmp)] = 0
        target[j] = g
    tensor = torch.from_numpy(((crop / 255.0 - MEAN) / STD).astype(np.float32)).permute(2, 0, 1)
    return tensor, target, weight


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/coco-mini-train"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-report", action="store_true", help="do not append BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    root = Path(args.data)
    ann = next((root / "annotations").glob("person_keypoints_*.json"))
    images = root / ann.stem.removeprefix("person_keypoints_")
    data = load_coco(ann)
    ds = topdown.TopDownDataset(data, images, HeatmapCodec((192, 256), (48, 64)))
    paths = [images / data.images[int(data.image_ids[p])].file_name for p in ds.people]
    rng = np.random.default_rng(0)

    def run_hrpose() -> float:
        start = time.perf_counter()
        for i in range(len(ds)):
            ds[i]
        return len(ds) / (time.perf_counter() - start)

    def run_reference() -> float:
        start = time.perf_counter()
        for i, p in enumerate(ds.people):
            reference_sample(paths[i], ds.boxes[i], data.keypoints[p].astype(float), rng)
        return len(ds) / (time.perf_counter() - start)

    def run_decode() -> float:
        start = time.perf_counter()
        for p in paths:
            topdown.read_image(p)
        return len(paths) / (time.perf_counter() - start)

    def run_decode_scaled(factor: int) -> float:
        """libjpeg's DCT scaling (simplejpeg min_height / min_width): 1/factor of the size."""
        start = time.perf_counter()
        for p in paths:
            raw = p.read_bytes()
            h, w = simplejpeg.decode_jpeg_header(raw)[:2]
            simplejpeg.decode_jpeg(raw, "RGB", min_height=h // factor, min_width=w // factor)
        return len(paths) / (time.perf_counter() - start)

    # The samples whose crop (augmentation drawn) shrinks the image by 2 or more: those a
    # half-size decode could serve (the crop would then differ from today's by its resampling)
    shrink = [np.sqrt(abs(np.linalg.det(plan[1][:, :2]))) for plan in map(ds.plan, range(len(ds)))
              if plan is not None]
    halvable = float(np.mean(np.array(shrink) <= 0.5))
    run_hrpose(), run_reference()                       # warm caches
    rates: dict[str, list[float]] = {"hrpose": [], "reference": [], "decode": []}
    for _ in range(args.repeats):
        rates["reference"].append(run_reference())
        rates["hrpose"].append(run_hrpose())
        rates["decode"].append(run_decode())
        rates.setdefault("decode 1/2", []).append(run_decode_scaled(2))
        rates.setdefault("decode 1/4", []).append(run_decode_scaled(4))
    # Everything but the decode: the same samples with the image already in memory.
    cache = {p: topdown.read_image(p) for p in set(paths)}
    original = topdown.read_image
    topdown.read_image = lambda p: cache[p]
    rates["hrpose, image in memory"] = [run_hrpose() for _ in range(args.repeats)]
    topdown.read_image = original

    m = {k: median(v) for k, v in rates.items()}
    lines = [
        f"Training samples per second, one process, one thread (COCO images from {root.name}, "
        f"{len(ds)} people, 256x192 crops, 64x48 targets, published augmentation; median of "
        f"{args.repeats} interleaved passes):", "",
        "| pipeline | samples/s | ms/sample |", "|---|---:|---:|",
        *[f"| {k} | {v:.0f} | {1000 / v:.2f} |" for k, v in
          [("reference (published-code style)", m["reference"]), ("hrpose", m["hrpose"]),
           ("hrpose, image already decoded", m["hrpose, image in memory"]),
           ("JPEG decode alone (simplejpeg)", m["decode"]),
           ("JPEG decode at 1/2 size (DCT scaling)", m["decode 1/2"]),
           ("JPEG decode at 1/4 size (DCT scaling)", m["decode 1/4"])]],
        "", f"hrpose / reference: {m['hrpose'] / m['reference']:.2f}x. The decode is "
        f"{100 * (1 / m['decode']) / (1 / m['hrpose']):.0f}% of hrpose's time per sample. "
        f"{100 * halvable:.0f}% of the samples shrink their image by 2 or more (a half-size "
        "decode could serve them).",
    ]
    report("Data pipeline (benchmarks/data_pipeline.py)", lines, append=not args.no_report)


if __name__ == "__main__":
    main()
