"""Person detectors: anything that maps images to person boxes, and one real implementation that
runs an exported detector (PicoDet's layout) through the same backends as the pose models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..data.transforms import normalize
from ..errors import HrposeError
from ..models.zoo import (
    DETECTORS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_detector,
    detector_file,
)
from .backends import open_exported
from .boxes import nms, xyxy_to_xywh
from .options import RuntimeOptions


class Detector(Protocol):
    def __call__(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """RGB uint8 images -> per image, person boxes (N, 5) x, y, w, h, score in image
        pixels, best first."""
        ...


class ExportedDetector:
    """An exported single-class (or person-first) detector in PicoDet's deployment layout:

    input: the whole image resized to the model's input size (no aspect ratio kept), RGB,
    normalised by `mean`/`std`; outputs: boxes (N, M, 4) x1, y1, x2, y2 in input pixels and
    scores (N, C, M) with the person class at `class_index`; no NMS inside the model. `runtime`:
    how it runs (default: by its file, precision auto, every core)."""

    def __init__(self, path: str | Path, runtime: RuntimeOptions = RuntimeOptions(),
                 score_threshold: float = 0.5,
                 iou_threshold: float = 0.6, class_index: int = 0,
                 mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD) -> None:
        check_detector(str(path))
        if str(path) in DETECTORS:             # a zoo detector: its cached (downloaded) file
            path = detector_file(str(path))
        self.runner = open_exported(path, runtime, heatmaps=False)
        shapes = self.runner.output_shapes
        boxes = [i for i, s in enumerate(shapes) if len(s) == 3 and s[2] == 4]
        scores = [i for i, s in enumerate(shapes) if len(s) == 3 and i not in boxes]
        if len(boxes) != 1 or len(scores) != 1:
            raise HrposeError(f"{path}: not a person detector: expected outputs boxes "
                              f"[N, M, 4] and scores [N, C, M]; got {shapes}")
        self.box_output, self.score_output = boxes[0], scores[0]
        self.input_hw = self.runner.input_hw
        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold
        self.class_index, self.mean, self.std = class_index, mean, std

    def __call__(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not len(images):
            return []
        h, w = self.input_hw
        resized = np.stack([cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR)
                            for im in images])
        outputs = self.runner.run_all(normalize(resized, self.mean, self.std))
        all_boxes, all_scores = outputs[self.box_output], outputs[self.score_output]
        found = []
        for image, boxes, scores in zip(images, all_boxes, all_scores):
            scores = scores[self.class_index]
            keep = scores >= self.score_threshold
            boxes, scores = boxes[keep].astype(np.float64), scores[keep]
            boxes *= np.array([image.shape[1] / w, image.shape[0] / h] * 2)
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, image.shape[1])
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, image.shape[0])
            xywh = xyxy_to_xywh(boxes)
            ok = (xywh[:, 2] > 1) & (xywh[:, 3] > 1)
            xywh, scores = xywh[ok], scores[ok]
            kept = nms(xywh, scores, self.iou_threshold)
            found.append(np.c_[xywh[kept], scores[kept]])
        return found
