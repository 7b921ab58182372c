"""Drawings of predicted people: limbs coloured by body side, joints above a score threshold,
line widths that scale with the image so a drawing is legible at any size. A set with parts
(COCO-WholeBody) draws each part in its style: face and hands in thinner lines and smaller dots,
in colours of their own, so 133 points stay readable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..data.coco import KeypointData
from ..data.transforms import apply_affine, boxes_to_crops, crop_matrices, warp
from ..errors import HrposeError
from ..io import read_image
from ..skeletons import Skeleton, get_skeleton
from .images import to_rgb
from .person import Person

LEFT, RIGHT, CENTRE = (0, 200, 255), (255, 140, 0), (60, 220, 60)   # RGB


@dataclass(frozen=True)
class PartStyle:
    """How one part of a keypoint set is drawn, relative to the body's lines and dots."""

    colour: tuple[int, int, int] | None     # None: by body side (left, right, centre)
    width: float                            # line width, a fraction of the body's
    dot: float                              # joint radius, a fraction of the body's
    outlined: bool                          # joints ringed in white (the body's large dots)


# By part name ("" for a set without parts); a part not named here draws as the body.
PART_STYLES = {"": PartStyle(None, 1.0, 1.0, True),
               "foot": PartStyle(None, 0.7, 0.7, True),
               "face": PartStyle((255, 255, 255), 0.35, 0.4, False),
               "left_hand": PartStyle((120, 235, 255), 0.5, 0.5, False),
               "right_hand": PartStyle((255, 200, 90), 0.5, 0.5, False)}


@dataclass(frozen=True)
class Style:
    """A set's drawing, per link and per joint: colours (RGB), and sizes as fractions of the
    body's (line width, dot radius)."""

    link_colours: tuple[tuple[int, int, int], ...]
    link_widths: tuple[float, ...]
    joint_colours: tuple[tuple[int, int, int], ...]
    joint_sizes: tuple[float, ...]
    joint_outlined: tuple[bool, ...]


def _side(skeleton: Skeleton, joint: int) -> str:
    name = skeleton.joints[joint]
    if name.startswith(("left", "l_")) or any(joint == a for a, _ in skeleton.flip_pairs):
        return "left"
    if name.startswith(("right", "r_")) or any(joint == b for _, b in skeleton.flip_pairs):
        return "right"
    return "centre"


def _side_colour(sides: set[str]) -> tuple[int, int, int]:
    return LEFT if sides == {"left"} else RIGHT if sides == {"right"} else CENTRE


@lru_cache(maxsize=16)
def drawing_style(skeleton: Skeleton) -> Style:
    """Joints in their part's colour (or their body side's); a link in the thinner style of
    its two ends' parts, coloured by it (or by side: both ends left, both right, or else)."""
    parts = skeleton.part_of_joint()
    styles = [PART_STYLES.get(part, PART_STYLES[""]) for part in parts]
    sides = [_side(skeleton, j) for j in range(skeleton.num_joints)]
    joint_colours = tuple(st.colour or _side_colour({side}) for st, side in zip(styles, sides))
    link_colours, link_widths = [], []
    for a, b in skeleton.links:
        st = min(styles[a], styles[b], key=lambda st: st.width)
        link_colours.append(st.colour or _side_colour({sides[a], sides[b]}))
        link_widths.append(st.width)
    return Style(tuple(link_colours), tuple(link_widths), joint_colours,
                 tuple(st.dot for st in styles), tuple(st.outlined for st in styles))


def draw_people(image: np.ndarray, keypoints: np.ndarray, skeleton: Skeleton,
                threshold: float = 0.3, boxes: np.ndarray | None = None,
                scores: Sequence[float] | None = None,
                track_ids: Sequence[int | None] | None = None) -> np.ndarray:
    """A copy of the RGB `image` with each person's skeleton (keypoints (P, K, 3): x, y, score);
    joints and limbs under `threshold` are left out. Boxes are (P, 4) x, y, w, h, labelled with
    the person's score and track id when given."""
    out = np.ascontiguousarray(image.copy())
    thick = line_width(out)
    style = drawing_style(skeleton)
    widths = [max(1, round((thick + 1) * w)) for w in style.link_widths]
    radii = [max(1, round((thick + 1) * d)) for d in style.joint_sizes]
    for p, person in enumerate(np.asarray(keypoints, np.float64)):
        seen = person[:, 2] >= threshold
        if boxes is not None:
            x, y, bw, bh = (round(float(v)) for v in boxes[p][:4])
            cv2.rectangle(out, (x, y), (x + bw, y + bh), (255, 255, 255), thick, cv2.LINE_AA)
            label = " ".join(
                ([f"#{track_ids[p]}"] if track_ids is not None and track_ids[p] is not None
                 else []) + ([f"{scores[p]:.2f}"] if scores is not None else []))
            if label:
                draw_text(out, label, (x, y - 2 * thick))
        for (a, b), colour, width in zip(skeleton.links, style.link_colours, widths):
            if seen[a] and seen[b]:
                cv2.line(out, _pt(person[a]), _pt(person[b]), colour, width, cv2.LINE_AA)
        for j in np.flatnonzero(seen):
            radius = radii[j]
            if style.joint_outlined[j]:
                cv2.circle(out, _pt(person[j]), radius, (255, 255, 255), -1, cv2.LINE_AA)
                radius = max(1, radius - 1)
            cv2.circle(out, _pt(person[j]), radius, style.joint_colours[j], -1, cv2.LINE_AA)
    return out


# People scoring under this are left out of drawings (bottom-up grouping's fragments).
PERSON_THRESHOLD = 0.1


def draw_found(image: np.ndarray, people: Sequence[Person], skeleton: Skeleton,
               keypoint_threshold: float = 0.3, person_threshold: float = PERSON_THRESHOLD
               ) -> np.ndarray:
    """A copy of the RGB `image` with the people an estimator found: boxes labelled with score
    and track id, joints at or above `keypoint_threshold`. People scoring under
    `person_threshold` are left out: bottom-up grouping leaves low-scoring fragments, which
    results keep (COCO scoring ranks by score) and drawings do not."""
    people = [p for p in people if p.score >= person_threshold]
    if not people:
        return image.copy()
    return draw_people(image, np.stack([p.keypoints for p in people]), skeleton,
                       keypoint_threshold, np.stack([p.box for p in people]),
                       [p.score for p in people], [p.track_id for p in people])


def line_width(image: np.ndarray) -> int:
    """Lines 1 px wide per 250 px of the image's longer side, so drawings read at any size."""
    return max(1, round(max(image.shape[:2]) / 250))


def draw_text(image: np.ndarray, text: str, origin: tuple[int, int]) -> None:
    """White text on a dark band, in place; `origin` is the text's bottom-left (kept inside the
    image), its size scaled like the lines."""
    thick = line_width(image)
    scale = 0.4 * thick
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x = min(max(0, int(origin[0])), max(0, image.shape[1] - w))
    y = min(max(h + base, int(origin[1])), image.shape[0] - base)
    cv2.rectangle(image, (x, y - h - base), (x + w, y + base), (0, 0, 0), -1)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick,
                cv2.LINE_AA)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def tile(images: Sequence[np.ndarray], height: int = 320, columns: int = 4) -> np.ndarray:
    """Images scaled to one height and laid out in rows of `columns` (RGB uint8)."""
    scaled = [cv2.resize(im, (max(1, round(im.shape[1] * height / im.shape[0])), height),
                         interpolation=cv2.INTER_AREA) for im in images]
    rows = []
    for i in range(0, len(scaled), columns):
        row = np.concatenate(scaled[i : i + columns], 1)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate(rows, 0)


def draw(image: object, people: Sequence[object] | np.ndarray,
         skeleton: Skeleton | str | None = None, *, threshold: float = 0.3,
         boxes: bool = True, color: str = "rgb") -> np.ndarray:
    """A drawing of `people` on a copy of `image`, RGB uint8: the public drawing API.

    image: a path, a numpy array (`color` says its channel order, RGB by default) or a PIL
    image. people: `Person` objects from `PoseEstimator`, or keypoints (P, K, 3) x, y, score.
    skeleton: a `Skeleton` (`PoseEstimator.skeleton`) or a built-in set's name ("coco",
    "mpii", "crowdpose", "coco_wholebody"); None: the keypoint set the people were found in
    (Person objects carry their model's). Joints and limbs scoring under `threshold` are left out;
    with `boxes`, each Person's box is drawn with its score."""
    if not 0 <= threshold <= 1:
        raise HrposeError(f"threshold must be in [0, 1], got {threshold}")
    rgb = to_rgb(image, color)
    objects = not isinstance(people, np.ndarray) and len(people) > 0 and hasattr(
        people[0], "keypoints")
    keypoints = (np.stack([p.keypoints for p in people]) if objects  # type: ignore[attr-defined]
                 else np.asarray(people, np.float32).reshape(-1, *np.shape(people)[-2:])
                 if len(people) else np.zeros((0, 0, 3), np.float32))
    if keypoints.ndim != 3 or keypoints.shape[-1] != 3:
        raise HrposeError(f"people: expected Person objects or keypoints (P, K, 3), got shape "
                          f"{keypoints.shape}")
    if not len(keypoints):
        return rgb.copy()
    if skeleton is None:
        skeleton = people[0].skeleton if objects else None  # type: ignore[attr-defined]
        if skeleton is None:
            raise HrposeError("skeleton: give the people's keypoint set (a Skeleton such as "
                              "PoseEstimator.skeleton, or a built-in set's name)")
    elif isinstance(skeleton, str):
        skeleton = get_skeleton(skeleton)
    if skeleton.num_joints != keypoints.shape[1]:
        raise HrposeError(f"people have {keypoints.shape[1]} joints, skeleton "
                          f"{skeleton.name!r} has {skeleton.num_joints}")
    box_array = (np.stack([p.box for p in people]) if objects and boxes  # type: ignore[attr-defined]
                 else None)
    scores = [p.score for p in people] if box_array is not None else None  # type: ignore[attr-defined]
    return draw_people(rgb, keypoints, skeleton, threshold, box_array, scores)


def contact_sheet(data: KeypointData, image_dir: Path, count: int = 16, seed: int = 0,
                  size_wh: tuple[int, int] = (192, 256)) -> np.ndarray:
    """Up to `count` labelled people of a data set (drawn at random with `seed`), each cropped
    around its box (padded as training pads it), its labelled joints and the set's links drawn,
    tiled four to a row: what a person looks at before training on a data set."""
    people = np.flatnonzero((data.keypoints[..., 2] > 0).any(1) & ~data.iscrowd)
    chosen = np.sort(np.random.default_rng(seed).permutation(people)[:count])
    tiles = []
    for row in chosen:
        info = data.images[int(data.image_ids[row])]
        image = read_image(image_dir / info.file_name)
        centers, sizes = boxes_to_crops(data.boxes[row : row + 1], size_wh[0] / size_wh[1])
        matrix = crop_matrices(centers, sizes, size_wh)[0]
        keypoints = data.keypoints[row : row + 1].astype(np.float64).copy()
        keypoints[..., :2] = apply_affine(matrix, keypoints[..., :2])
        keypoints[..., 2] = keypoints[..., 2] > 0            # labelled joints drawn
        crop = draw_people(warp(image, matrix, size_wh), keypoints, data.skeleton, 0.5)
        draw_text(crop, f"{info.file_name} #{int(data.ids[row])}", (2, size_wh[1] - 4))
        tiles.append(crop)
    if not tiles:
        raise HrposeError(f"{data.path}: no labelled people to draw")
    return tile(tiles, height=size_wh[1])
