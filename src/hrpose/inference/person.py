"""`Person`: what both pipelines (top-down, bottom-up) return for each person they find."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..skeletons import Skeleton


@dataclass
class Person:
    """One person found in an image."""

    box: np.ndarray            # (4,) x, y, w, h in image pixels
    keypoints: np.ndarray      # (K, 3) x, y in image pixels, joint score
    score: float               # box score x mean of the joint scores above 0.2 (as published)
    box_score: float = 1.0
    track_id: int | None = None   # set by video tracking
    # The keypoint set the joints are in (the model's): what drawing them uses.
    skeleton: Skeleton | None = field(default=None, repr=False, compare=False)


def coco_result(person: Person, image_id: int) -> dict:
    """One row of COCO keypoint results (the exchange format `hrpose eval --results` reads):
    image_id, category_id 1, keypoints [x, y, score] * K and score, with the box (bbox, x, y,
    w, h) and its detector score; coordinates rounded to 0.01 px."""
    return {"image_id": image_id, "category_id": 1,
            "keypoints": np.round(person.keypoints.astype(np.float64), 2).ravel().tolist(),
            "score": round(person.score, 5),
            "bbox": np.round(person.box.astype(np.float64), 2).tolist(),
            "box_score": round(person.box_score, 5)}
