"""Keypoint sets as data: joint names, left/right flip pairs, links to draw, OKS sigmas, the
upper-body joints of half-body augmentation and the bottom-up grouping order.

COCO-17, MPII-16, CrowdPose-14 and COCO-WholeBody-133 (with its parts: body, foot, face,
hands) are built in. Any other set is stated, by joint name, in a
config's `data.keypoints`, in a set file (`keypoints.yaml`, as `hrpose data convert` writes it
beside the annotations) or in a model's card; `skeleton_from_category` makes one from a COCO
keypoint category (names and links; flip pairs inferred from the names).

A set's serial form (`Skeleton.to_dict`, `parse_skeleton`) names joints rather than numbering
them, so that a file says which joint is which.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import HrposeError, did_you_mean

# The OKS falloff used for a joint whose sigma a set does not state: COCO's sigma for its most
# precisely placed points (eyes 0.025, nose 0.026). A custom point is taken to be as well
# defined as those, so AP is strict rather than flattering; it is not comparable with AP
# computed with measured sigmas, and hrpose warns whenever it is used.
DEFAULT_SIGMA = 0.025
_SET_FIELDS = ("name", "joints", "flip_pairs", "links", "sigmas", "upper_body",
               "grouping_order", "parts")


@dataclass(frozen=True)
class Skeleton:
    name: str
    joints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]        # (left, right) joint indices, 0-based
    links: tuple[tuple[int, int], ...]             # limbs to draw, 0-based
    sigmas: tuple[float, ...]                      # OKS per-joint falloff (COCO's kappa)
    upper_body: tuple[int, ...] = ()               # joints of the upper half, for half-body crops
    # Bottom-up grouping takes joint types in this order (confident, central joints first);
    # () is the joints' own order.
    grouping_order: tuple[int, ...] = ()
    # Named runs of joints (name, first, stop): the parts a whole-body set is evaluated and
    # drawn by (body, foot, face, hands); () for a set of one part.
    parts: tuple[tuple[str, int, int], ...] = ()

    def __post_init__(self) -> None:
        where = f"keypoint set {self.name!r}"
        k = len(self.joints)
        if not k or not all(isinstance(j, str) and j for j in self.joints):
            raise HrposeError(f"{where}: joints must be a non-empty list of names")
        twice = sorted({j for j in self.joints if self.joints.count(j) > 1})
        if twice:
            raise HrposeError(f"{where}: joint names must be unique ({', '.join(twice)} "
                              "appear twice)")
        if len(self.sigmas) != k:
            raise HrposeError(f"{where}: {len(self.sigmas)} sigmas for {k} joints")
        if not all(math.isfinite(s) and s > 0 for s in self.sigmas):
            raise HrposeError(f"{where}: sigmas must be positive numbers, got "
                              f"{list(self.sigmas)}")
        for pair in (*self.flip_pairs, *self.links):
            if len(pair) != 2 or not all(0 <= j < k for j in pair):
                raise HrposeError(f"{where}: joint pair {list(pair)} is not "
                                  f"two indices in 0..{k - 1}")
        paired: set[int] = set()
        for a, b in self.flip_pairs:
            if a == b:
                raise HrposeError(f"{where}: flip pair [{self.joints[a]}, {self.joints[a]}] "
                                  "pairs a joint with itself")
            again = {a, b} & paired
            if again:
                raise HrposeError(f"{where}: {self.joints[again.pop()]} is in two flip pairs; "
                                  "a joint has at most one mirror twin")
            paired |= {a, b}
        if any(not 0 <= j < k for j in self.upper_body):
            raise HrposeError(f"{where}: upper_body index out of 0..{k - 1}")
        if self.grouping_order and sorted(self.grouping_order) != list(range(k)):
            raise HrposeError(f"{where}: grouping_order must list every joint once")
        covered = [j for _, start, stop in self.parts for j in range(start, stop)]
        if self.parts and (sorted(covered) != covered or len(set(covered)) != len(covered)
                           or not all(0 <= a < b <= k for _, a, b in self.parts)):
            raise HrposeError(f"{where}: parts must be runs of joints in order, each joint in "
                              "one part at most")
        if len({name for name, _, _ in self.parts}) != len(self.parts):
            raise HrposeError(f"{where}: part names must be unique")

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

    @property
    def order(self) -> tuple[int, ...]:
        """The bottom-up grouping order: `grouping_order`, else the joints' own."""
        return self.grouping_order or tuple(range(self.num_joints))

    def to_dict(self) -> dict:
        """The serial form: every pair and list by joint name (what files and configs hold)."""
        names = self.joints
        out = {"name": self.name, "joints": list(names),
               "flip_pairs": [[names[a], names[b]] for a, b in self.flip_pairs],
               "links": [[names[a], names[b]] for a, b in self.links],
               "sigmas": [round(s, 6) for s in self.sigmas],
               "upper_body": [names[j] for j in self.upper_body]}
        if self.grouping_order:
            out["grouping_order"] = [names[j] for j in self.grouping_order]
        if self.parts:
            out["parts"] = {part: [names[a], names[b - 1]] for part, a, b in self.parts}
        return out

    def part_of_joint(self) -> tuple[str, ...]:
        """Each joint's part name ("" for a joint of no part, and for a set without parts)."""
        out = [""] * self.num_joints
        for part, a, b in self.parts:
            out[a:b] = [part] * (b - a)
        return tuple(out)

    @property
    def builtin(self) -> bool:
        """Whether this is the built-in set of its name, unchanged."""
        return SKELETONS.get(self.name) == self



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
    # The official HigherHRNet order: head, shoulders, hips, elbows, knees, wrists, ankles.
    grouping_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
)

MPII = Skeleton(
    "mpii",
    ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis",
     "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder",
     "left_shoulder", "left_elbow", "left_wrist"),
    ((5, 0), (4, 1), (3, 2), (15, 10), (14, 11), (13, 12)),
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
    # COCO's rule for grouping: head and neck first, then shoulders, hips, elbows, knees,
    # wrists, ankles.
    grouping_order=(12, 13, 0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11),
)

def _wholebody() -> Skeleton:
    """COCO-WholeBody's 133 joints (Jin et al., ECCV 2020), in its files' order: COCO's 17
    body joints, 6 foot, 68 face (the iBUG 300-W points) and 21 per hand. Names, flip pairs
    and sigmas as COCO-WholeBody's evaluation and mmpose's dataset definition state them."""
    feet = tuple(f"{side}_{point}" for side in ("left", "right")
                 for point in ("big_toe", "small_toe", "heel"))
    face = tuple(f"face-{i}" for i in range(68))
    fingers = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")
    hands = tuple(name for side in ("left", "right") for name in (
        f"{side}_hand_root", *(f"{side}_{f}{i}" for f in fingers for i in range(1, 5))))
    joints = COCO.joints + feet + face + hands
    foot, face0, left_hand, right_hand = 17, 23, 91, 112
    # Face points mirrored (subject's left, right), by iBUG number: jaw, brows, lower nose,
    # eyes, lips (the lower lip's points run from the subject's left corner back to the
    # right); the nose bridge, chin and lip midpoints are their own mirror.
    face_mirror = ([(16 - i, i) for i in range(8)] + [(26 - i, 17 + i) for i in range(5)]
                   + [(35, 31), (34, 32), (45, 36), (44, 37), (43, 38), (42, 39), (47, 40),
                      (46, 41), (54, 48), (53, 49), (52, 50), (55, 59), (56, 58), (64, 60),
                      (63, 61), (65, 67)])
    flips = (COCO.flip_pairs + tuple((foot + i, foot + 3 + i) for i in range(3))
             + tuple((face0 + a, face0 + b) for a, b in face_mirror)
             + tuple((left_hand + i, right_hand + i) for i in range(21)))

    def chain(first: int, last: int, closed: bool = False) -> list[tuple[int, int]]:
        out = [(j, j + 1) for j in range(first, last)]
        return out + [(last, first)] if closed else out

    face_links = [(face0 + a, face0 + b) for a, b in (
        chain(0, 16) + chain(17, 21) + chain(22, 26) + chain(27, 30) + chain(31, 35)
        + [(30, 33)] + chain(36, 41, True) + chain(42, 47, True) + chain(48, 59, True)
        + chain(60, 67, True))]
    hand_links = [(root + a, root + b) for root in (left_hand, right_hand)
                  for f in range(5) for a, b in [(0, 4 * f + 1)] + chain(4 * f + 1, 4 * f + 4)]
    links = (COCO.links + tuple((ankle, foot + 3 * s + i) for s, ankle in enumerate((15, 16))
                                for i in range(3))
             + tuple(face_links) + ((9, left_hand), (10, right_hand)) + tuple(hand_links))
    sigmas = (COCO.sigmas + (0.068, 0.066, 0.066, 0.092, 0.094, 0.094) + (
        0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029, 0.032,
        0.037, 0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011,
        0.011, 0.013, 0.015, 0.009, 0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.010,
        0.017, 0.011, 0.009, 0.011, 0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.010, 0.034,
        0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010, 0.008, 0.009, 0.009, 0.009, 0.007,
        0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.010, 0.008)
        + (0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022,
           0.026, 0.017, 0.021, 0.021, 0.032, 0.020, 0.019, 0.022, 0.031) * 2)
    upper = tuple(range(11)) + tuple(range(face0, len(joints)))
    parts = (("body", 0, foot), ("foot", foot, face0), ("face", face0, left_hand),
             ("left_hand", left_hand, right_hand), ("right_hand", right_hand, len(joints)))
    return Skeleton("coco_wholebody", joints, tuple(sorted(flips)), links, sigmas, upper,
                    parts=parts)


COCO_WHOLEBODY = _wholebody()

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (COCO, MPII, CROWDPOSE, COCO_WHOLEBODY)}
# What `data.keypoints` may say besides a built-in name, a set file or a set.
FROM_DATA = ""                           # the set file beside the annotations, else a built-in
FROM_ANNOTATIONS = "from_annotations"    # the annotation category's names and links
SET_FILES = (".yaml", ".yml", ".json")


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        raise HrposeError(f"unknown keypoint set {name!r}{did_you_mean(name, SKELETONS)}; "
                          f"known: {', '.join(SKELETONS)}, or "
                          "a set file (keypoints.yaml) or a set stated in the config") from None


def builtin_for_names(joint_names: Sequence[str]) -> Skeleton | None:
    """The built-in set whose joints are exactly these names, in this order."""
    return next((s for s in SKELETONS.values() if tuple(joint_names) == s.joints), None)


def unnamed_skeleton(num_joints: int) -> Skeleton:
    """What a model file that states no keypoint set runs with: joints numbered, nothing
    paired or linked (no flip test, no limbs drawn)."""
    return Skeleton("unnamed", tuple(f"joint_{j}" for j in range(num_joints)), (), (),
                    (DEFAULT_SIGMA,) * num_joints)


# Side words a joint name may carry, as whole words or at camel-case boundaries: left_eye,
# eye_left, l_eye, eye_l, LeftEye, eyeL, lefteye (DeepLabCut's style).
_SIDE_WORD = re.compile(r"left|right", re.IGNORECASE)
_SIDE_LETTER = re.compile(r"(?<![A-Za-z])[lLrR](?![a-z])|(?<=[a-z])[LR](?![a-z])")
_OTHER = {"left": "right", "right": "left", "l": "r", "r": "l"}


def _other_side(word: str) -> str:
    other = _OTHER[word.lower()]
    if word.isupper():
        return other.upper()
    return other.capitalize() if word[0].isupper() else other


def _mirrored(name: str) -> list[tuple[str, bool]]:
    """(the name with one side word swapped, whether `name` is the left one) for each side
    word in it."""
    out = []
    for pattern in (_SIDE_WORD, _SIDE_LETTER):
        for m in pattern.finditer(name):
            word = m.group()
            out.append((name[: m.start()] + _other_side(word) + name[m.end():],
                        word.lower() in ("left", "l")))
    return out


def infer_flip_pairs(joints: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """(left, right) index pairs of joints whose names differ only in a side word: left_/right_,
    l_/r_, _left/_right, _l/_r, Left/Right in camel case, a left/right prefix. A joint pairs
    with at most one other; one with several candidates pairs with the first."""
    index = {name: j for j, name in enumerate(joints)}
    pairs, taken = [], set()
    for j, name in enumerate(joints):
        for other, left in _mirrored(name):
            i = index.get(other)
            if i is None or i == j or i in taken or j in taken:
                continue
            pairs.append((j, i) if left else (i, j))
            taken |= {i, j}
            break
    return tuple(sorted(pairs))


def left_first(pair: tuple[int, int], joints: Sequence[str]) -> tuple[int, int]:
    """A flip pair as (left, right) when its names say which is which, else as given."""
    a, b = pair
    if any(other == joints[b] and not left for other, left in _mirrored(joints[a])):
        return b, a
    return a, b


def describe_flip_pairs(skeleton: Skeleton) -> str:
    """"eye_l <-> eye_r, ear_l <-> ear_r" (or "none"), for logs and messages."""
    names = skeleton.joints
    return ", ".join(f"{names[a]} <-> {names[b]}" for a, b in skeleton.flip_pairs) or "none"


def _name_list(value: object, where: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v
                                                       for v in value):
        raise HrposeError(f"{where}: expected a list of joint names, got {value!r}")
    return list(value)


def _name_pairs(value: object, where: str, index: dict[str, int]) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, (list, tuple)):
        raise HrposeError(f"{where}: expected a list of [joint, joint] pairs, got {value!r}")
    pairs = []
    for i, pair in enumerate(value):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise HrposeError(f"{where}[{i}]: expected two joint names, got {pair!r}")
        pairs.append(tuple(_joint(index, name, f"{where}[{i}]") for name in pair))
    return tuple(pairs)


def _joint(index: dict[str, int], name: object, where: str) -> int:
    if not isinstance(name, str) or name not in index:
        known = ", ".join(list(index)[:8]) + (", ..." if len(index) > 8 else "")
        raise HrposeError(f"{where}: {name!r} is not a joint of the set ({known})")
    return index[name]


def _parts(value: object, where: str, index: dict[str, int]
           ) -> tuple[tuple[str, int, int], ...]:
    """`{part: [first joint, last joint]}` -> (part, first, stop) runs."""
    if not isinstance(value, Mapping):
        raise HrposeError(f"{where}: expected part -> [first joint, last joint], got {value!r}")
    parts = []
    for part, run in value.items():
        if not isinstance(run, (list, tuple)) or len(run) != 2:
            raise HrposeError(f"{where}.{part}: expected [first joint, last joint], got {run!r}")
        first, last = (_joint(index, name, f"{where}.{part}") for name in run)
        parts.append((str(part), first, last + 1))
    return tuple(parts)


def _sigmas(value: object, where: str, joints: list[str]) -> tuple[float, ...]:
    """A list of one sigma per joint, or a mapping joint name -> sigma naming every joint."""
    if isinstance(value, Mapping):
        index = {name: j for j, name in enumerate(joints)}
        for name in value:
            _joint(index, name, where)
        missing = [j for j in joints if j not in value]
        if missing:
            raise HrposeError(f"{where}: no sigma for {', '.join(missing)}")
        value = [value[j] for j in joints]
    if not isinstance(value, (list, tuple)) or len(value) != len(joints):
        raise HrposeError(f"{where}: expected {len(joints)} sigmas (one per joint), got "
                          f"{value!r}")
    out = []
    for i, s in enumerate(value):
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not (
                math.isfinite(s) and 0 < s <= 10):
            raise HrposeError(f"{where}[{i}]: expected a positive number, got {s!r}")
        out.append(float(s))
    return tuple(out)


def parse_skeleton(value: object, where: str = "keypoints") -> Skeleton:
    """A set from its serial form: `joints` (names, required), `name`, `flip_pairs` and
    `links` ([name, name] lists; flip pairs are inferred from the names when absent),
    `sigmas` (a list, or name -> sigma; DEFAULT_SIGMA with a warning when absent),
    `upper_body` and `grouping_order` (names). Each error is one line naming the field."""
    if not isinstance(value, Mapping):
        raise HrposeError(f"{where}: expected a keypoint set (joints, flip_pairs, links, "
                          f"sigmas, upper_body), got {value!r}")
    for key in value:
        if key not in _SET_FIELDS:
            raise HrposeError(f"{where}.{key}: unknown key (known: {', '.join(_SET_FIELDS)})")
    name = value.get("name", "custom")
    if not isinstance(name, str) or not name.strip():
        raise HrposeError(f"{where}.name: expected a name, got {name!r}")
    if "joints" not in value:
        raise HrposeError(f"{where}.joints: missing (the joint names, in the model's order)")
    joints = _name_list(value["joints"], f"{where}.joints")
    index: dict[str, int] = {}
    for j, joint in enumerate(joints):
        if joint in index:
            raise HrposeError(f"{where}.joints: {joint!r} appears twice")
        index[joint] = j
    flips = (tuple(left_first(pair, joints) for pair in _name_pairs(
        value["flip_pairs"], f"{where}.flip_pairs", index))
        if "flip_pairs" in value else infer_flip_pairs(joints))
    links = _name_pairs(value.get("links", []), f"{where}.links", index)
    if "sigmas" in value:
        sigmas = _sigmas(value["sigmas"], f"{where}.sigmas", joints)
    else:
        warnings.warn(f"{where}: no sigmas given; every joint gets {DEFAULT_SIGMA} (COCO's "
                      "sigma for eyes), so OKS AP is not comparable with AP from measured "
                      "sigmas", stacklevel=2)
        sigmas = (DEFAULT_SIGMA,) * len(joints)
    upper = tuple(_joint(index, n, f"{where}.upper_body")
                  for n in _name_list(value.get("upper_body", []), f"{where}.upper_body"))
    order = tuple(_joint(index, n, f"{where}.grouping_order")
                  for n in _name_list(value.get("grouping_order", []),
                                      f"{where}.grouping_order"))
    parts = _parts(value.get("parts", {}), f"{where}.parts", index)
    try:
        skeleton = Skeleton(name, tuple(joints), flips, links, sigmas, upper, order, parts)
    except HrposeError as e:
        raise HrposeError(f"{where}: {str(e).split(': ', 1)[-1]}") from None
    return _as_builtin(skeleton, where)


def _as_builtin(skeleton: Skeleton, where: str) -> Skeleton:
    """A set named like a built-in one must be it (its sigmas to the serial form's 6 places)."""
    builtin = SKELETONS.get(skeleton.name)
    if builtin is None:
        return skeleton
    same = (builtin.joints, builtin.flip_pairs, builtin.links, builtin.parts) == (
        skeleton.joints, skeleton.flip_pairs, skeleton.links, skeleton.parts) and np.allclose(
        builtin.sigmas, skeleton.sigmas, rtol=0, atol=1e-6)
    if not same:
        raise HrposeError(f"{where}.name: {skeleton.name!r} is a built-in set's name and these "
                          "joints, pairs or sigmas differ from it; give the set another name")
    return builtin


def skeleton_from_category(category: Mapping, where: str = "keypoint category") -> Skeleton:
    """A set from a COCO keypoint category: its joint names, its `skeleton` links (1-based, as
    COCO has them), flip pairs inferred from the names and default sigmas (with a warning). A
    category whose names are a built-in set's is that set."""
    joints = _name_list(category.get("keypoints"), f"{where}: field 'keypoints'")
    builtin = builtin_for_names(joints)
    if builtin is not None:
        return builtin
    links = category.get("skeleton") or []
    if not isinstance(links, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(
                isinstance(j, int) and not isinstance(j, bool) and 1 <= j <= len(joints)
                for j in p) for p in links):
        raise HrposeError(f"{where}: field 'skeleton' must be [a, b] pairs of joint numbers "
                          f"1..{len(joints)}")
    name = category.get("name") or "custom"
    value = {"name": str(name) if str(name) not in SKELETONS else f"{name}_custom",
             "joints": joints, "links": [[joints[a - 1], joints[b - 1]] for a, b in links]}
    return parse_skeleton(value, where)


def load_skeleton_file(path: str | Path) -> Skeleton:
    """A set file: YAML or JSON holding the serial form (what `hrpose data convert` writes as
    keypoints.yaml), either alone or under a `keypoints:` key."""
    from .io import read_yaml  # io loads the image codecs: only when a file is read

    value = read_yaml(path, "keypoint set file")
    if isinstance(value, dict) and "keypoints" in value and "joints" not in value:
        value = value["keypoints"]
    return parse_skeleton(value, str(path))


def write_skeleton_file(path: str | Path, skeleton: Skeleton, comment: str = "",
                        sigmas: bool = True) -> None:
    """The set as YAML (atomically), optionally under a comment that says where it came from;
    without its sigmas when they are the default rather than stated (so that every use of
    the file warns again)."""
    import yaml

    from .io import atomic_path

    value = skeleton.to_dict()
    if not sigmas:
        del value["sigmas"]
    text = yaml.safe_dump(value, sort_keys=False, default_flow_style=None, width=100)
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(head + text, encoding="utf-8")


def resolve_skeleton_option(value: str | Mapping | Skeleton, where: str = "keypoints"
                            ) -> Skeleton | str:
    """A `keypoints` option as far as it resolves without the data: a Skeleton for a set, a
    built-in name or a set file; FROM_DATA and FROM_ANNOTATIONS are left for the data to
    resolve (`data.coco.keypoint_set_for`)."""
    if isinstance(value, Skeleton):
        return value
    if isinstance(value, Mapping):
        return parse_skeleton(value, where)
    if value in (FROM_DATA, FROM_ANNOTATIONS):
        return value
    if value in SKELETONS:
        return SKELETONS[value]
    if Path(value).suffix.lower() in SET_FILES:
        if not Path(value).is_file():
            raise HrposeError(f"{where}: keypoint set file {value} not found")
        return load_skeleton_file(value)
    raise HrposeError(f"{where}: {value!r} is not a built-in set"
                      f"{did_you_mean(value, SKELETONS)} ({', '.join(SKELETONS)}), "
                      f"{FROM_ANNOTATIONS!r}, a set file (.yaml, .json) or a set")
