"""Top-down samples: one person box -> one crop of the model's input size.

Training samples come from ground-truth boxes with the published augmentation; evaluation crops
come from ground-truth boxes or detections, all crops of one image decoded once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..codecs.heatmap import HeatmapCodec
from ..errors import HrposeError
from ..io import read_image
from .coco import Detections, KeypointData, group_by_image
from .transforms import BOX_PADDING, apply_affine, boxes_to_crops, crop_matrices, warp

log = logging.getLogger(__name__)


def read_sample_image(image_dir: Path, file_name: str, bad: set[str]) -> np.ndarray | None:
    """A training sample's image, or None when it is missing or corrupt (logged once per file,
    remembered in `bad`): training goes on without it."""
    try:
        return read_image(image_dir / file_name)
    except HrposeError as e:
        if file_name not in bad:
            bad.add(file_name)
            log.warning("skipping sample: %s", e)
        return None


def person_boxes(data: KeypointData) -> tuple[np.ndarray, np.ndarray]:
    """People used for training and for ground-truth-box evaluation, and their boxes clipped to
    their image: not crowd, with at least one labelled joint and a box that keeps some extent
    once clipped. People whose box lies outside their image (or is a point) are skipped with a
    warning naming them (once per file: evaluation asks again every epoch)."""
    labelled = (data.keypoints[..., 2] > 0).any(-1)
    candidates = np.flatnonzero(~data.iscrowd & labelled & (data.boxes[:, 2] > 0)
                                & (data.boxes[:, 3] > 0))
    boxes = clip_boxes(data, candidates)
    extent = (boxes[:, 2:] > 0).any(1)
    if not extent.all() and data.path not in _WARNED:
        _WARNED.add(data.path)
        bad = data.ids[candidates[~extent]]
        log.warning("%s: skipped %d people whose box lies outside their image or has no "
                    "extent (annotation ids %s%s)", data.path, len(bad),
                    ", ".join(map(str, bad[:5].tolist())), ", ..." if len(bad) > 5 else "")
    return candidates[extent], boxes[extent]


_WARNED: set[Path] = set()


def clip_boxes(data: KeypointData, index: np.ndarray) -> np.ndarray:
    """Boxes clipped to their image (the official HRNet rule: x2 <= width - 1); images without
    a stated size are left as they are."""
    boxes = data.boxes[index].copy()
    size = np.array([[data.images[int(i)].width or np.inf, data.images[int(i)].height or np.inf]
                     for i in data.image_ids[index]]).reshape(-1, 2)
    lo = np.maximum(boxes[:, :2], 0.0)
    hi = np.minimum(size - 1.0, lo + np.maximum(boxes[:, 2:] - 1, 0.0))
    known = np.isfinite(size).all(1)
    boxes[known] = np.c_[lo, np.maximum(hi - lo, 0.0)][known]
    return boxes


def ground_truth_boxes(data: KeypointData) -> Detections:
    """Evaluation with ground-truth boxes: every person `person_boxes` keeps, score 1."""
    index, boxes = person_boxes(data)
    return Detections(data.image_ids[index], boxes, np.ones(len(index)))


@dataclass(frozen=True)
class Augmentation:
    """The published top-down augmentation (HRNet, Sun et al. 2019)."""

    scale_factor: float = 0.35          # scale ~ clip(N(1, 0.35), 0.65, 1.35)
    rotation: float = 45.0              # degrees ~ clip(N(0, 45), -90, 90) ...
    rotation_prob: float = 0.6          # ... with this probability, else 0
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8       # only people with more labelled joints than this
    half_body_padding: float = 1.5


class TopDownDataset(Dataset):
    """Training samples: the crop (uint8, 3 x H x W, RGB), heatmap targets and joint weights.

    A sample whose image is missing or corrupt comes back with `valid` False and zero weights, so
    the loss ignores it and the loop counts it; it is logged once per file."""

    def __init__(self, data: KeypointData, image_dir: str | Path, codec: HeatmapCodec,
                 augmentation: Augmentation | None = Augmentation(), seed: int = 0,
                 padding: float = BOX_PADDING) -> None:
        self.data, self.image_dir, self.codec = data, Path(image_dir), codec
        self.augmentation, self.seed, self.padding = augmentation, seed, padding
        self.epoch = 0
        self.people, self.boxes = person_boxes(data)
        self.flip_index = data.skeleton.flip_index
        upper = np.zeros(data.skeleton.num_joints, bool)
        upper[list(data.skeleton.upper_body)] = True
        self.upper = upper
        self._bad: set[str] = set()

    def __len__(self) -> int:
        return len(self.people)

    def set_epoch(self, epoch: int) -> None:
        """Each epoch draws new augmentation; the same (seed, epoch, index) draws the same."""
        self.epoch = epoch

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        plan = self.plan(i)
        if plan is None:
            return self.invalid(i)
        image, matrix, keypoints = plan
        out_w, out_h = self.codec.input_wh
        crop = warp(image, matrix, (out_w, out_h))
        heatmaps, weights = self.codec.encode(keypoints[None])
        return {"image": torch.from_numpy(crop).permute(2, 0, 1),
                "heatmaps": torch.from_numpy(heatmaps[0]), "weights": torch.from_numpy(weights[0]),
                "valid": torch.tensor(True), "index": torch.tensor(i)}

    def invalid(self, i: int) -> dict[str, torch.Tensor]:
        """The sample of a missing or corrupt image: zero weights, `valid` False."""
        k = self.data.skeleton.num_joints
        (out_w, out_h), (w, h) = self.codec.input_wh, self.codec.heatmap_wh
        return {"image": torch.zeros(3, out_h, out_w, dtype=torch.uint8),
                "heatmaps": torch.zeros(k, h, w), "weights": torch.zeros(k),
                "valid": torch.tensor(False), "index": torch.tensor(i)}

    def plan(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Sample `i` before rendering: the decoded image, its image -> crop matrix (the
        augmentation drawn) and the keypoints in crop pixels (flipped); None: no image. The
        crop and targets are rendered from these on the CPU (`__getitem__`) or on the training
        device (data/device_augment.py)."""
        person = self.people[i]
        info = self.data.images[int(self.data.image_ids[person])]
        out_w, out_h = self.codec.input_wh
        keypoints = self.data.keypoints[person].astype(np.float64)
        image = read_sample_image(self.image_dir, info.file_name, self._bad)
        if image is None:
            return None
        center, size = boxes_to_crops(self.boxes[i : i + 1], out_w / out_h, self.padding)
        center, size = center[0], size[0]
        rotation, flip = 0.0, False
        aug = self.augmentation
        if aug is not None:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            labelled = keypoints[:, 2] > 0
            if labelled.sum() > aug.half_body_min_joints and rng.random() < aug.half_body_prob:
                center, size = self._half_body(keypoints, labelled, rng, center, size)
            size = size * np.clip(rng.normal() * aug.scale_factor + 1,
                                  1 - aug.scale_factor, 1 + aug.scale_factor)
            if rng.random() <= aug.rotation_prob:
                rotation = float(np.clip(rng.normal() * aug.rotation, -2 * aug.rotation,
                                         2 * aug.rotation))
            flip = bool(rng.random() < aug.flip_prob)

        matrix = crop_matrices(center, size, (out_w, out_h), self.codec.udp,
                               np.array([rotation]), np.array([flip]))[0]
        keypoints[:, :2] = apply_affine(matrix, keypoints[:, :2])
        if flip:
            keypoints = keypoints[self.flip_index]
        return image, matrix, keypoints

    def _half_body(self, keypoints: np.ndarray, labelled: np.ndarray, rng: np.random.Generator,
                   center: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A box around the labelled upper or lower body joints (half and half), padded 1.5x."""
        upper, lower = labelled & self.upper, labelled & ~self.upper
        chosen = upper if (rng.random() < 0.5 and upper.sum() > 2) else (
            lower if lower.sum() > 2 else upper)
        if chosen.sum() < 2:
            return center, size
        pts = keypoints[chosen, :2]
        lo, hi = pts.min(0), pts.max(0)
        box = np.array([[lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]]])
        out_w, out_h = self.codec.input_wh
        _, size = boxes_to_crops(box, out_w / out_h, self.augmentation.half_body_padding)
        return pts.mean(0), size[0]


class ImageCrops(Dataset):
    """Evaluation and inference: item i = all crops of the i-th image that has boxes, decoded
    once. Yields crops (n, H, W, 3) uint8 RGB, their matrices (n, 2, 3) and box indices (n,)."""

    def __init__(self, boxes: Detections, images: dict, image_dir: str | Path,
                 input_wh: tuple[int, int], udp: bool = False,
                 padding: float = BOX_PADDING) -> None:
        self.images, self.image_dir = images, Path(image_dir)
        self.input_wh, self.udp = input_wh, udp
        self.image_ids, self.groups = group_by_image(boxes.image_ids)
        aspect = input_wh[0] / input_wh[1]
        self.centers, self.sizes = boxes_to_crops(boxes.boxes, aspect, padding)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index = self.groups[i]
        info = self.images[int(self.image_ids[i])]
        image = read_image(self.image_dir / info.file_name)
        crops, matrices = crop_people(image, self.centers[index], self.sizes[index],
                                      self.input_wh, self.udp)
        return crops, matrices, index


def crop_people(image: np.ndarray, centers: np.ndarray, sizes: np.ndarray,
                input_wh: tuple[int, int], udp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Crops (n, H, W, 3) of one image and their image -> crop matrices (n, 2, 3)."""
    matrices = crop_matrices(centers, sizes, input_wh, udp)
    crops = np.stack([warp(image, m, input_wh) for m in matrices]) if len(matrices) else \
        np.zeros((0, input_wh[1], input_wh[0], 3), np.uint8)
    return crops, matrices


def _as_is(item: object) -> object:
    return item


def crop_batches(dataset: ImageCrops, batch_size: int, workers: int = 0
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Full batches of crops across images (the last may be short), images decoded in workers."""
    loader = DataLoader(dataset, batch_size=None, num_workers=workers,
                        collate_fn=_as_is)
    crops, matrices, index = [], [], []
    count = 0
    for c, m, i in loader:
        crops.append(c)
        matrices.append(m)
        index.append(i)
        count += len(c)
        while count >= batch_size:
            all_c, all_m, all_i = (np.concatenate(x) for x in (crops, matrices, index))
            yield all_c[:batch_size], all_m[:batch_size], all_i[:batch_size]
            crops, matrices, index = [all_c[batch_size:]], [all_m[batch_size:]], [
                all_i[batch_size:]]
            count -= batch_size
    if count:
        yield np.concatenate(crops), np.concatenate(matrices), np.concatenate(index)
