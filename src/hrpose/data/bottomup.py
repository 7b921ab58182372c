"""Bottom-up training samples: one whole image -> a square input with every person's targets.

A random affine (rotation, zoom, translation, flip) maps the image to the input. Targets, at
each of the model's heatmap resolutions (1/4 and 1/2 for HigherHRNet): Gaussian heatmaps of all
people, and an ignore mask (0 = no loss) over crowd regions, people without keypoints and the
padding outside the image; at 1/4, the joint indices of up to `max_people` people for the tag
loss (codecs/associative_embedding.py has the coordinate convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..codecs.associative_embedding import STRIDES, gaussian_maps, joint_indices, resize_matrix
from ..errors import HrposeError
from .coco import KeypointData
from .topdown import read_sample_image
from .transforms import apply_affine, crop_matrices, warp


@dataclass(frozen=True)
class BottomUpAugmentation:
    """The published HigherHRNet augmentation."""

    rotation: float = 30.0             # degrees, uniform in [-rotation, rotation]
    min_scale: float = 0.75            # zoom: the input covers short side x U(min, max) ...
    max_scale: float = 1.5
    translation: float = 40.0          # ... shifted by up to this many input pixels
    flip_prob: float = 0.5


def stride_matrix(matrix: np.ndarray, stride: int) -> np.ndarray:
    """An image -> input matrix composed with input -> map pixels of `stride`."""
    return resize_matrix(1 / stride) @ np.vstack([matrix, [0.0, 0.0, 1.0]])


def ignore_mask(data: KeypointData, rows: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 mask of an image: 0 over the segmentations (else boxes) of crowd regions
    and of people without keypoints, 1 elsewhere. Segmentations were checked when the file was
    read (data.coco.check_segmentation); an RLE whose size is not the decoded image's falls
    back to its box."""
    import warnings

    from pycocotools import mask as mask_utils

    h, w = hw
    mask = np.ones((h, w), np.float32)
    for row in rows:
        if not (data.iscrowd[row] or data.num_keypoints[row] == 0):
            continue
        segmentation = data.ignore_segmentations.get(int(row))
        if isinstance(segmentation, dict) and list(segmentation["size"]) != [h, w]:
            segmentation = None
        if segmentation:
            warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
            if isinstance(segmentation, list):
                rles = mask_utils.frPyObjects(segmentation, h, w)
                region = mask_utils.decode(mask_utils.merge(rles)) > 0
            else:
                rle = (mask_utils.frPyObjects(segmentation, h, w)
                       if isinstance(segmentation.get("counts"), list) else segmentation)
                region = mask_utils.decode(rle) > 0
            mask[region] = 0
        else:
            x, y, bw, bh = data.boxes[row]
            x0, y0 = max(int(x), 0), max(int(y), 0)       # negative starts would wrap around
            mask[y0: max(int(np.ceil(y + bh)), 0), x0: max(int(np.ceil(x + bw)), 0)] = 0
    return mask


class BottomUpDataset(Dataset):
    """Item: image (3, S, S) uint8, `heatmaps_{s}` (K, S/s, S/s) and `mask_{s}` (S/s, S/s) for
    each stride s in `strides`, `joints` (max_people, K, 2) at the first stride, `valid`.

    Images are those with at least one labelled, non-crowd person. A missing or corrupt image
    gives `valid` False and an all-zero mask (the loss ignores it); it is logged once."""

    def __init__(self, data: KeypointData, image_dir: str | Path, input_size: int = 512,
                 strides: tuple[int, ...] = STRIDES, sigma: float = 2.0, max_people: int = 30,
                 augmentation: BottomUpAugmentation | None = BottomUpAugmentation(),
                 seed: int = 0) -> None:
        if input_size % 64:
            raise HrposeError(f"bottom-up input size {input_size} must be a multiple of 64")
        self.data, self.image_dir = data, Path(image_dir)
        self.input_size, self.strides, self.sigma = input_size, strides, sigma
        self.max_people, self.augmentation, self.seed = max_people, augmentation, seed
        self.epoch = 0
        labelled = (data.keypoints[..., 2] > 0).any(-1) & ~data.iscrowd
        self.image_ids = np.unique(data.image_ids[labelled])
        order = np.argsort(data.image_ids, kind="stable")
        starts = np.searchsorted(data.image_ids[order], self.image_ids)
        ends = np.searchsorted(data.image_ids[order], self.image_ids, side="right")
        self.rows = [order[a:b] for a, b in zip(starts, ends)]
        self.flip_index = data.skeleton.flip_index
        self._bad: set[str] = set()

    def __len__(self) -> int:
        return len(self.image_ids)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def matrix(self, i: int, image_hw: tuple[int, int]) -> tuple[np.ndarray, bool]:
        """The image -> input matrix of item i this epoch, and whether it is flipped."""
        h, w = image_hw
        center, side = np.array([w / 2 - 0.5, h / 2 - 0.5]), float(min(h, w))
        rotation, flip = 0.0, False
        aug = self.augmentation
        if aug is not None:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            side *= rng.uniform(aug.min_scale, aug.max_scale)
            rotation = rng.uniform(-aug.rotation, aug.rotation)
            center = center + rng.uniform(-1, 1, 2) * aug.translation * side / self.input_size
            flip = bool(rng.random() < aug.flip_prob)
        size = (self.input_size, self.input_size)
        matrix = crop_matrices(center, np.array([side, side]), size, False,
                               np.array([rotation]), np.array([flip]))[0]
        return matrix, flip

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rows = self.rows[i]
        info = self.data.images[int(self.image_ids[i])]
        s, k = self.input_size, self.data.skeleton.num_joints
        image = read_sample_image(self.image_dir, info.file_name, self._bad)
        if image is None:
            return self._empty()
        matrix, flip = self.matrix(i, image.shape[:2])
        people = rows[~self.data.iscrowd[rows] & (self.data.num_keypoints[rows] > 0)]
        keypoints = self.data.keypoints[people].astype(np.float64)
        keypoints[..., :2] = apply_affine(matrix, keypoints[..., :2]) if len(people) else 0
        if flip:
            keypoints = keypoints[:, self.flip_index]
        mask = ignore_mask(self.data, rows, image.shape[:2])
        sample = {"image": torch.from_numpy(warp(image, matrix, (s, s))).permute(2, 0, 1),
                  "valid": torch.tensor(True)}
        for stride in self.strides:
            m = s // stride
            sample[f"heatmaps_{stride}"] = torch.from_numpy(
                gaussian_maps(keypoints, (m, m), stride, self.sigma))
            warped = cv2.warpAffine(mask, stride_matrix(matrix, stride), (m, m),
                                    flags=cv2.INTER_LINEAR, borderValue=0)
            sample[f"mask_{stride}"] = torch.from_numpy((warped > 0.5).astype(np.float32))
        m = s // self.strides[0]
        sample["joints"] = torch.from_numpy(joint_indices(keypoints.reshape(-1, k, 3), (m, m),
                                                          self.strides[0], self.max_people))
        return sample

    def _empty(self) -> dict[str, torch.Tensor]:
        s, k = self.input_size, self.data.skeleton.num_joints
        sample = {"image": torch.zeros(3, s, s, dtype=torch.uint8), "valid": torch.tensor(False)}
        for stride in self.strides:
            m = s // stride
            sample[f"heatmaps_{stride}"] = torch.zeros(k, m, m)
            sample[f"mask_{stride}"] = torch.zeros(m, m)
        sample["joints"] = torch.zeros(self.max_people, k, 2, dtype=torch.int64)
        return sample
