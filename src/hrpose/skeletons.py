"""Keypoint sets: joint names, left/right flip pairs, limbs to draw and OKS sigmas.

COCO-17, MPII-16 and CrowdPose-14 are built in. Any other set comes from a COCO-format category
(`keypoints`, `skeleton`) plus sigmas and flip pairs from the config
(`Skeleton.from_coco_category`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import HrposeError


@dataclass(frozen=True)
class Skeleton:
    name: str
    joints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]        # (left, right) joint indices, 0-based
    links: tuple[tuple[int, int], ...]             # limbs to draw, 0-based
    sigmas: tuple[float, ...]                      # OKS per-joint falloff (COCO's kappa)
    upper_body: tuple[int, ...] = ()               # joints of the upper half, for half-body crops

    def __post_init__(self) -> None:
        k = len(self.joints)
        if len(self.sigmas) != k:
            raise HrposeError(f"keypoint set {self.name!r}: {len(self.sigmas)} sigmas for "
                              f"{k} joints")
        for pair in (*self.flip_pairs, *self.links):
            if len(pair) != 2 or not all(0 <= j < k for j in pair):
                raise HrposeError(f"keypoint set {self.name!r}: joint pair {list(pair)} is not "
                                  f"two indices in 0..{k - 1}")
        if any(not 0 <= j < k for j in self.upper_body):
            raise HrposeError(f"keypoint set {self.name!r}: upper_body index out of 0..{k - 1}")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def flip_index(self) -> np.ndarray:
        """The permutation that swaps left and right: flipped[:, j] = original[:, flip_index[j]]."""
        index = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return index

    @property
    def lower_body(self) -> tuple[int, ...]:
        return tuple(j for j in range(self.num_joints) if j not in self.upper_body)

    @classmethod
    def from_coco_category(cls, category: dict, sigmas: Sequence[float],
                           flip_pairs: Sequence[Sequence[int]] = (),
                           upper_body: Sequence[int] = ()) -> Skeleton:
        """A custom set from a COCO category; its `skeleton` links are 1-based as in COCO."""
        try:
            joints = tuple(str(j) for j in category["keypoints"])
            links = tuple((int(a) - 1, int(b) - 1) for a, b in category.get("skeleton", []))
            name = str(category.get("name", "custom"))
        except (KeyError, TypeError, ValueError) as e:
            raise HrposeError(f"keypoint category: needs 'keypoints' (names) and 'skeleton' "
                              f"(1-based pairs): {e}") from None
        return cls(name, joints, tuple((int(a), int(b)) for a, b in flip_pairs), links,
                   tuple(float(s) for s in sigmas), tuple(int(j) for j in upper_body))


def _pairs(pairs: Sequence[Sequence[int]], base: int = 0) -> tuple[tuple[int, int], ...]:
    return tuple((a - base, b - base) for a, b in pairs)


COCO = Skeleton(
    "coco",
    ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
     "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
     "left_knee", "right_knee", "left_ankle", "right_ankle"),
    ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    # The `skeleton` of the COCO person category, which is 1-based.
    _pairs([[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
            [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]],
           base=1),
    # COCO keypoint evaluation's per-joint sigmas.
    tuple(s / 10 for s in (.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07,
                           .87, .87, .89, .89)),
    upper_body=tuple(range(11)),
)

MPII = Skeleton(
    "mpii",
    ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis",
     "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder",
     "left_shoulder", "left_elbow", "left_wrist"),
    ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    ((0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (7, 12), (12, 11),
     (11, 10), (7, 13), (13, 14), (14, 15)),
    # MPII has no OKS; these are the sigmas mmpose adapted from COCO, used only for OKS-NMS.
    (0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026, 0.026, 0.026, 0.062, 0.072, 0.179,
     0.179, 0.072, 0.062),
    upper_body=(7, 8, 9, 10, 11, 12, 13, 14, 15),
)

CROWDPOSE = Skeleton(
    "crowdpose",
    ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
     "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head",
     "neck"),
    ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    ((12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (13, 6), (13, 7), (6, 7),
     (6, 8), (8, 10), (7, 9), (9, 11)),
    # CrowdPose's evaluation sigmas (COCO's for the shared joints, .079 for head and neck).
    tuple(s / 10 for s in (.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79,
                           .79)),
    upper_body=(0, 1, 2, 3, 4, 5, 12, 13),
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (COCO, MPII, CROWDPOSE)}


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        raise HrposeError(f"unknown keypoint set {name!r}; known: {', '.join(SKELETONS)}, or "
                          "give a custom set from a COCO category") from None


def skeleton_for(num_joints: int, joint_names: Sequence[str] | None = None) -> Skeleton:
    """The built-in set with these joints (by names when given, else by count)."""
    for s in SKELETONS.values():
        if joint_names is not None and tuple(joint_names) == s.joints:
            return s
    if joint_names is None:
        for s in SKELETONS.values():
            if s.num_joints == num_joints:
                return s
    raise HrposeError(f"no built-in keypoint set has {num_joints} joints"
                      + (f" named {list(joint_names)[:3]}..." if joint_names else "")
                      + "; give sigmas and flip pairs for a custom set")
