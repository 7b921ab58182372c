"""Bottom-up test time: a whole image -> every person's keypoints, no detector.

Each scale resizes the image keeping its aspect: the short side becomes `input_size * scale`
and the long side is rounded up to a multiple of 64 (the image sits at the top left, padding
right and below). The model's two heatmap outputs (1/4 and 1/2) and its 1/4 tags are upsampled
to that input size; with the flip test the mirrored image runs in the same batch, its maps are
flipped back (joints swapped left/right), heatmaps averaged and tags kept side by side. Scales
are then brought to the scale-1 input size: heatmaps averaged, tags concatenated. Grouping runs
there (codecs/associative_embedding.py) and the people are mapped back to image pixels.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..codecs.associative_embedding import GroupingSettings, group, resize_matrix
from ..data.transforms import apply_affine, invert_affine, normalize
from ..errors import HrposeError
from ..models.card import ModelCard
from ..skeletons import Skeleton
from .backends import Runner, check_finite
from .person import Person, as_confidences

SIDE_MULTIPLE = 64


def scale_matrix(image_hw: tuple[int, int], short_side: float
                 ) -> tuple[np.ndarray, tuple[int, int]]:
    """The image -> input matrix (2, 3) and input (w, h) for a resize whose short side is
    `short_side` and whose sides are multiples of 64 (area-aligned: pixel centres at integers)."""
    h, w = image_hw
    if h < 1 or w < 1:
        raise HrposeError(f"empty image ({w}x{h})")
    r = short_side / min(h, w)
    out_w = int(np.ceil(w * r / SIDE_MULTIPLE) * SIDE_MULTIPLE)
    out_h = int(np.ceil(h * r / SIDE_MULTIPLE) * SIDE_MULTIPLE)
    return resize_matrix(r), (out_w, out_h)


@dataclass
class StageTimes:
    """Seconds in each stage of the bottom-up pipeline, summed over calls (`hrpose bench`)."""

    resize: float = 0.0        # the image to the model's input: resize, normalise, mirror
    model: float = 0.0
    maps: float = 0.0          # the outputs to the input size; flip and scales merged
    grouping: float = 0.0      # NMS, top-k, matching, refinement, back to image pixels

    def lap(self, stage: str, since: float) -> float:
        """Adds the time from `since` to `stage`; returns now."""
        now = time.perf_counter()
        setattr(self, stage, getattr(self, stage) + now - since)
        return now

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def run_scale(runner: Runner, image: np.ndarray, short_side: float, mean: Sequence[float],
              std: Sequence[float], flip_index: np.ndarray | None, times: StageTimes
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """One scale: heatmaps (K, h, w) and tags (K, h, w, L) at this scale's input size (L = 1,
    or 2 with the flip test)."""
    start = time.perf_counter()
    matrix, (w, h) = scale_matrix(image.shape[:2], short_side)
    resized = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT)
    x = normalize(resized[None], mean, std)
    if flip_index is not None:
        x = np.concatenate([x, x[..., ::-1]])
    x = np.ascontiguousarray(x)
    start = times.lap("resize", start)
    low, high = (check_finite(o) for o in runner.run_all(x)[:2])
    start = times.lap("model", start)
    low, high = torch.from_numpy(low), torch.from_numpy(high)
    k = high.shape[1]
    size = (h, w)
    heat = (F.interpolate(low[:, :k], size, mode="bilinear", align_corners=False)
            + F.interpolate(high, size, mode="bilinear", align_corners=False)) / 2
    tags = F.interpolate(low[:, k:], size, mode="bilinear", align_corners=False)
    if flip_index is not None:
        index = torch.from_numpy(np.asarray(flip_index))
        heat = (heat[0] + heat[1, index].flip(-1)) / 2
        tags = torch.stack([tags[0], tags[1, index].flip(-1)], -1)
    else:
        heat, tags = heat[0], tags[0, ..., None]
    times.lap("maps", start)
    return heat, tags


def _to_base(maps: torch.Tensor, scale: float, base_hw: tuple[int, int]) -> torch.Tensor:
    """Maps (1, C, h, w) at `scale` x the base input size -> (1, C, *base_hw): base pixel u
    samples (u + 0.5) * scale - 0.5, whatever padding each scale's size got."""
    out = F.interpolate(maps, scale_factor=1 / scale, mode="bilinear", align_corners=False,
                        recompute_scale_factor=False)[..., : base_hw[0], : base_hw[1]]
    pad_h, pad_w = base_hw[0] - out.shape[-2], base_hw[1] - out.shape[-1]
    return F.pad(out, (0, pad_w, 0, pad_h)) if pad_h or pad_w else out


def bottomup_keypoints(runner: Runner, image: np.ndarray, mean: Sequence[float],
                       std: Sequence[float], input_size: int,
                       flip_index: np.ndarray | None = None,
                       scales: Sequence[float] = (1.0,),
                       settings: GroupingSettings = GroupingSettings(),
                       order: Sequence[int] | None = None, times: StageTimes | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """An RGB uint8 image (H, W, 3) -> people (P, K, 3) x, y in image pixels and joint score,
    and person scores (P,), strongest first; joint types are grouped in `order` (the keypoint
    set's). `times` adds up each stage's seconds."""
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise HrposeError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    if not scales or min(scales) <= 0:
        raise HrposeError(f"scales must be positive, got {list(scales)}")
    times = times if times is not None else StageTimes()
    base_matrix, (base_w, base_h) = scale_matrix(image.shape[:2], input_size)
    heat_sum, all_tags = None, []
    for scale in sorted(scales, reverse=True):
        heat, tags = run_scale(runner, image, input_size * scale, mean, std, flip_index, times)
        start = time.perf_counter()
        if scale != 1.0:
            heat = _to_base(heat[None], scale, (base_h, base_w))[0]
            k, h, w, n = tags.shape
            tags = _to_base(tags.permute(0, 3, 1, 2).reshape(1, k * n, h, w), scale,
                            (base_h, base_w))
            tags = tags.reshape(k, n, base_h, base_w).permute(0, 2, 3, 1)
        heat_sum = heat if heat_sum is None else heat_sum + heat
        all_tags.append(tags)
        times.lap("maps", start)
    start = time.perf_counter()
    heat = heat_sum / len(scales)
    # Nobody stands in the padding: joints found or refined there would be outside the image.
    h, w = image.shape[:2]
    inside = apply_affine(base_matrix, np.array([w - 0.5, h - 0.5]))
    heat[:, int(np.ceil(inside[1])):, :] = 0
    heat[:, :, int(np.ceil(inside[0])):] = 0
    tags = torch.cat(all_tags, -1)
    start = times.lap("maps", start)
    people, scores = group(heat[None], tags[None], settings, order)[0]
    if len(people):
        people[..., :2] = apply_affine(invert_affine(base_matrix), people[..., :2])
        order = np.argsort(-scores, kind="stable")
        people, scores = people[order], scores[order]
    times.lap("grouping", start)
    return people.astype(np.float32), scores


class BottomUpEstimator:
    """Every person of each image in one pass, no boxes: `scales` for the multi-scale test,
    `grouping` for the tag grouping. A person's box is the extent of its found joints."""

    codec = None                     # the grouping is the codec; there are no heatmap crops

    def __init__(self, runner: Runner, card: ModelCard, skeleton: Skeleton, *, flip: bool,
                 scales: Sequence[float], grouping: GroupingSettings) -> None:
        self.runner, self.mean, self.std, self.skeleton = runner, card.mean, card.std, skeleton
        self.flip, self.scales, self.grouping = flip, tuple(scales), grouping

    def predict(self, images: Sequence[np.ndarray], boxes: Sequence[object] | None,
                names: Sequence[str]) -> list[list[Person]]:
        self.preprocess(images, boxes, names)
        return [self.postprocess(*self.run(image)) for image in images]

    def preprocess(self, images: Sequence[np.ndarray], boxes: Sequence[object] | None,
                   names: Sequence[str]) -> None:
        """Checks only: the model takes whole images as they are."""
        if boxes is not None and any(b is not None for b in boxes):
            raise HrposeError("a bottom-up model finds people itself; it takes no boxes")
        for image, name in zip(images, names):
            if min(image.shape[:2]) < 1:
                raise HrposeError(f"{name}: the image is empty ({image.shape[1]}x"
                                  f"{image.shape[0]})")

    def run(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flip_index = self.skeleton.flip_index if self.flip else None
        return bottomup_keypoints(self.runner, image, self.mean, self.std,
                                  self.runner.input_hw[0], flip_index, self.scales,
                                  self.grouping, self.skeleton.order)

    def postprocess(self, keypoints: np.ndarray, scores: np.ndarray) -> list[Person]:
        keypoints, scores = as_confidences(keypoints, scores)
        people = []
        for kp, score in zip(keypoints, scores):
            seen = kp[kp[:, 2] > 0, :2]
            lo, hi = seen.min(0), seen.max(0)
            people.append(Person(np.r_[lo, hi - lo].astype(np.float32), kp, float(score),
                                 skeleton=self.skeleton))
        return people
