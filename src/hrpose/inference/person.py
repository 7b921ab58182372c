"""`Person`: what both pipelines (top-down, bottom-up) return for each person they find."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.coco import wholebody_fields
from ..errors import HrposeError
from ..skeletons import COCO_WHOLEBODY, Skeleton


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


def as_confidences(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint and person scores as the people found report them: in [0, 1]. They are heatmap
    peaks, which a model trained on Gaussian targets can overshoot (1.07, say); evaluation
    ranks people by the unclipped values, as the published code does, and only these reports
    are clipped."""
    keypoints = keypoints.copy()
    keypoints[..., 2] = np.clip(keypoints[..., 2], 0.0, 1.0)
    return keypoints, np.clip(scores, 0.0, 1.0)


def coco_result(person: Person, image_id: int, by_part: bool = False) -> dict:
    """One row of COCO keypoint results (the exchange format `hrpose eval --results` reads):
    image_id, category_id 1, keypoints [x, y, score] * K and score, with the box (bbox, x, y,
    w, h) and its detector score; coordinates rounded to 0.01 px. `by_part`: a whole-body
    person's joints in COCO-WholeBody's part fields (keypoints, foot_kpts, face_kpts, ...)."""
    keypoints = np.round(person.keypoints.astype(np.float64), 2)
    return {"image_id": image_id, "category_id": 1,
            **(wholebody_fields(keypoints) if by_part
               else {"keypoints": keypoints.ravel().tolist()}),
            "score": round(person.score, 5),
            "bbox": np.round(person.box.astype(np.float64), 2).tolist(),
            "box_score": round(person.box_score, 5)}


RESULT_LAYOUTS = ("joints", "parts")     # rows of K joints, or COCO-WholeBody's part fields


def check_result_layout(layout: str, skeleton: Skeleton) -> bool:
    """Whether results are written by part; refuses `parts` for a set that is not
    COCO-WholeBody's."""
    if layout not in RESULT_LAYOUTS:
        raise HrposeError(f"unknown results layout {layout!r}; choose {', '.join(RESULT_LAYOUTS)}")
    if layout == "parts" and skeleton.joints != COCO_WHOLEBODY.joints:
        raise HrposeError(f"results layout 'parts' is COCO-WholeBody's (133 joints in part "
                          f"fields); the model's keypoint set is {skeleton.name!r} "
                          f"({skeleton.num_joints} joints)")
    return layout == "parts"
