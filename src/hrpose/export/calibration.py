"""Calibration and verification crops: person crops cut from real images the way inference cuts
them, so INT8 ranges and export checks see the activations the model will see.

A source is a data folder with a keypoint annotation file (COCO, or MPII / OCHuman / CrowdPose in
mmpose's JSON forms: the people's boxes), a folder of images, an image, or a glob. Images without
annotations get a detector's boxes when one is given, else one centre crop (the whole image).
Every crop is also taken mirrored, as flip test will feed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.coco import find_dataset, load_keypoints
from ..data.synthetic import draw_image
from ..data.topdown import crop_people, ground_truth_boxes
from ..data.transforms import boxes_to_crops
from ..errors import HrposeError
from ..inference.detector import Detector
from ..inference.images import IMAGE_SUFFIXES, find_inputs
from ..io import read_image


def _annotated(folder: Path) -> tuple[Path, Path] | None:
    """(annotation file, image folder) when the folder is an annotated data set."""
    try:
        ann, images = find_dataset(folder)
    except HrposeError:
        return None
    return ann, images


def _people(source: str) -> list[tuple[Path, np.ndarray | None]]:
    """(image path, person boxes (n, 4) x, y, w, h, or None: not annotated) of one source."""
    folder = Path(source)
    found = _annotated(folder) if folder.is_dir() else None
    if found is None:
        paths = [p for p in find_inputs(source) if p.suffix.lower() in IMAGE_SUFFIXES]
        if not paths:
            raise HrposeError(f"{source}: no images to calibrate on")
        return [(p, None) for p in paths]
    ann, image_dir = found
    data = load_keypoints(ann)
    boxes = ground_truth_boxes(data)
    out = []
    for image_id, info in data.images.items():
        mine = boxes.boxes[boxes.image_ids == image_id]
        if len(mine):
            out.append((image_dir / info.file_name, mine))
    if not out:
        raise HrposeError(f"{ann}: no annotated people to calibrate on")
    return out


def person_crops(sources: Sequence[str], input_hw: tuple[int, int],
                 detector: Detector | None = None, limit: int = 300,
                 seed: int = 0) -> np.ndarray:
    """uint8 RGB crops (n, H, W, 3) of the people in `sources`, each also mirrored; at most
    `limit`, drawn evenly from all of them (a fixed seed: the same crops every run)."""
    if not sources:
        raise HrposeError("no calibration images given")
    h, w = input_hw
    crops = []
    for source in sources:
        for path, boxes in _people(source):
            image = read_image(path)
            if boxes is None:
                boxes = (detector([image])[0][:, :4] if detector is not None else
                         np.zeros((0, 4)))
                if not len(boxes):          # nobody found (or no detector): the whole image
                    boxes = np.array([[0, 0, image.shape[1], image.shape[0]]], np.float64)
            centers, sizes = boxes_to_crops(np.asarray(boxes, np.float64), w / h)
            crops.append(crop_people(image, centers, sizes, (w, h))[0])
    crops = np.concatenate(crops)
    crops = np.concatenate([crops, crops[:, :, ::-1]])
    if len(crops) > limit:
        crops = crops[np.sort(np.random.default_rng(seed).choice(len(crops), limit, False))]
    return np.ascontiguousarray(crops)


def synthetic_crops(input_hw: tuple[int, int], count: int = 32, seed: int = 0) -> np.ndarray:
    """Crops of the people in synthetic images (the project's own data): verification inputs
    when no real images are given."""
    rng = np.random.default_rng(seed)
    h, w = input_hw
    crops: list[np.ndarray] = []
    while sum(len(c) for c in crops) < count:
        image, people = draw_image(rng)
        boxes = np.array([p["bbox"] for p in people], np.float64).reshape(-1, 4)
        boxes = boxes[(boxes[:, 2] > 1) & (boxes[:, 3] > 1)]
        if len(boxes):
            centers, sizes = boxes_to_crops(boxes, w / h)
            crops.append(crop_people(image, centers, sizes, (w, h))[0])
    return np.concatenate(crops)[:count]
