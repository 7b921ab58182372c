"""Calibration and verification crops: person crops cut from real images the way inference cuts
them, so INT8 ranges and export checks see the activations the model will see.

A source is a data folder with a keypoint annotation file (COCO, or MPII / OCHuman / CrowdPose in
mmpose's JSON forms: the people's boxes), a folder of images, an image, or a glob. Images without
annotations get a detector's boxes when one is given, else one centre crop (the whole image).
Every crop is also taken mirrored, as flip test will feed it. A bottom-up model calibrates on
whole images (`image_sources`), resized as its pipeline resizes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.coco import KeypointData, find_dataset, load_keypoints
from ..data.synthetic import draw_image
from ..data.topdown import crop_people, ground_truth_boxes
from ..data.transforms import boxes_to_crops
from ..errors import HrposeError
from ..inference.detector import Detector
from ..inference.images import IMAGE_SUFFIXES, find_inputs
from ..io import read_image
from ..skeletons import FROM_DATA, Skeleton


def _annotated(source: str) -> tuple[Path, Path] | None:
    """(annotation file, image folder) when the source is an annotated data set's folder."""
    if not Path(source).is_dir():
        return None
    try:
        ann, images = find_dataset(source)
    except HrposeError:
        return None
    return ann, images


def _listed_images(source: str) -> list[Path]:
    """The images of a source that is not an annotated data set (a folder, image or glob)."""
    paths = [p for p in find_inputs(source) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not paths:
        raise HrposeError(f"{source}: no images to calibrate on")
    return paths


def _people(source: str) -> list[tuple[Path, np.ndarray | None]]:
    """(image path, person boxes (n, 4) x, y, w, h, or None: not annotated) of one source."""
    found = _annotated(source)
    if found is None:
        return [(p, None) for p in _listed_images(source)]
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
    return np.ascontiguousarray(crops[draw_evenly(range(len(crops)), limit, seed)])


@dataclass
class AnnotatedImages:
    """Images of an annotated data set, with its people: what a bottom-up INT8 export is scored
    on (COCO AP against the fp32 source's)."""

    data: KeypointData
    image_dir: Path

    def paths(self) -> list[Path]:
        return [self.image_dir / self.data.images[i].file_name for i in sorted(self.data.images)]

    def describe(self) -> str:
        return f"{self.data.path.name} ({len(self.data.images)} images)"


def image_sources(sources: Sequence[str], keypoints: Skeleton | None = None
                  ) -> tuple[list[Path], list[AnnotatedImages]]:
    """Every image of `sources` (data folders, image folders, images, globs) and the annotated
    data sets among them, read with `keypoints` (the model's set; a data set of other joints
    is left unscored)."""
    if not sources:
        raise HrposeError("no calibration images given")
    paths: list[Path] = []
    annotated = []
    for source in sources:
        found = _annotated(source)
        if found is None:
            paths += _listed_images(source)
            continue
        ann, image_dir = found
        try:
            data = load_keypoints(ann, keypoints or FROM_DATA)
        except HrposeError:                     # another keypoint set: images only
            data = load_keypoints(ann)
        else:
            if data.kind != "mpii":
                annotated.append(AnnotatedImages(data, image_dir))
        paths += [image_dir / data.images[i].file_name for i in sorted(data.images)]
    return paths, annotated


def draw_evenly(items: Sequence, limit: int, seed: int = 0) -> list:
    """At most `limit` of `items`, drawn evenly with a fixed seed, in their order."""
    if len(items) <= limit:
        return list(items)
    return [items[i] for i in np.sort(np.random.default_rng(seed).choice(len(items), limit,
                                                                        False))]


def synthetic_images(count: int, seed: int = 0) -> list[np.ndarray]:
    """Synthetic images with people (the project's own data): bottom-up verification inputs
    when no real images are given."""
    rng = np.random.default_rng(seed)
    return [draw_image(rng)[0] for _ in range(count)]


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
