"""`Person`: what both pipelines (top-down, bottom-up) return for each person they find."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Person:
    """One person found in an image."""

    box: np.ndarray            # (4,) x, y, w, h in image pixels
    keypoints: np.ndarray      # (K, 3) x, y in image pixels, joint score
    score: float               # box score x mean of the joint scores above 0.2 (as published)
    box_score: float = 1.0
    track_id: int | None = None   # set by video tracking
