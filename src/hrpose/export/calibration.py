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
from ..errors import HrposeError, plural
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


@dataclass
class People:
    """The people of calibration sources, cut as inference cuts them: crops (n, H, W, 3) uint8
    RGB, not mirrored; their image -> crop matrices (n, 2, 3) and boxes (n, 4) x, y, w, h;
    `image` (n,) the index of the image each is from. `annotated[i]`: image i's data set and
    image id when its people are a data set's annotated people (else None)."""

    crops: np.ndarray
    matrices: np.ndarray
    boxes: np.ndarray
    image: np.ndarray
    annotated: list[tuple[AnnotatedImages, int] | None]


def _people(source: str) -> list[tuple[Path, np.ndarray | None, tuple | None]]:
    """(image path, person boxes (n, 4) x, y, w, h, or None: not annotated, (data set, image
    id) when annotated) of one source."""
    found = _annotated(source)
    if found is None:
        return [(p, None, None) for p in _listed_images(source)]
    ann, image_dir = found
    data = load_keypoints(ann)
    annotated = AnnotatedImages(data, image_dir)
    boxes = ground_truth_boxes(data)
    out = []
    for image_id, info in data.images.items():
        mine = boxes.boxes[boxes.image_ids == image_id]
        if len(mine):
            out.append((image_dir / info.file_name, mine, (annotated, image_id)))
    if not out:
        raise HrposeError(f"{ann}: no annotated people to calibrate on")
    return out


def cut_people(sources: Sequence[str], input_hw: tuple[int, int],
               detector: Detector | None = None) -> People:
    """Every person of `sources` as a crop: annotated boxes, else `detector`'s, else the whole
    image as one person."""
    if not sources:
        raise HrposeError("no calibration images given")
    h, w = input_hw
    crops, matrices, boxes, image, annotated = [], [], [], [], []
    for source in sources:
        for path, found, where in _people(source):
            picture = read_image(path)
            if found is None:
                found = (detector([picture])[0][:, :4] if detector is not None else
                         np.zeros((0, 4)))
                if not len(found):          # nobody found (or no detector): the whole image
                    found = np.array([[0, 0, picture.shape[1], picture.shape[0]]], np.float64)
            found = np.asarray(found, np.float64)
            centers, sizes = boxes_to_crops(found, w / h)
            cut, m = crop_people(picture, centers, sizes, (w, h))
            crops.append(cut)
            matrices.append(m)
            boxes.append(found)
            image += [len(annotated)] * len(found)
            annotated.append(where)
    return People(np.concatenate(crops), np.concatenate(matrices), np.concatenate(boxes),
                  np.array(image, np.int64), annotated)


def mirrored(crops: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Crops each also mirrored, as flip test feeds them; at most `limit`, drawn evenly."""
    both = np.concatenate([crops, crops[:, :, ::-1]])
    return np.ascontiguousarray(both[draw_evenly(range(len(both)), limit, seed)])


def person_crops(sources: Sequence[str], input_hw: tuple[int, int],
                 detector: Detector | None = None, limit: int = 300,
                 seed: int = 0) -> np.ndarray:
    """uint8 RGB crops (n, H, W, 3) of the people in `sources`, each also mirrored; at most
    `limit`, drawn evenly from all of them (a fixed seed: the same crops every run)."""
    return mirrored(cut_people(sources, input_hw, detector).crops, limit, seed)


def held_out(people: People, want: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rows held out to verify on, rows to calibrate on), split by image so that no held-out
    person's image is seen in calibration: images drawn with a fixed seed until `want`
    people, or a fifth of them, are held out (a small calibration set needs most of its
    people to calibrate on: holding out 7 of coco-tiny + mpii-tiny + ochuman-tiny's 22
    people (a third) rather than 5 (a fifth) cost PP-TinyPose INT8 0.015 AP on
    coco-mini-train, 0.534 against 0.549). A single image cannot be split: then both are
    every row (the caller says so)."""
    images = np.unique(people.image)
    everyone = np.arange(len(people.image))
    if len(images) < 2:
        return everyone, everyone
    target = min(want, max(1, len(everyone) // 5))
    held: list[int] = []
    for i in np.random.default_rng(seed).permutation(images)[:-1]:   # one kept to calibrate
        held += everyone[people.image == i].tolist()
        if len(held) >= target:
            break
    held_rows = np.sort(np.array(held, np.int64))
    return held_rows, np.setdiff1d(everyone, held_rows)


@dataclass
class AnnotatedImages:
    """Images of an annotated data set, with its people: what a bottom-up INT8 export is scored
    on (COCO AP against the fp32 source's)."""

    data: KeypointData
    image_dir: Path

    def paths(self) -> list[Path]:
        return [self.image_dir / self.data.images[i].file_name for i in sorted(self.data.images)]

    def describe(self) -> str:
        return f"{self.data.path.name} ({plural(len(self.data.images), 'image')})"


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
