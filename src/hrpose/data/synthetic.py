"""The synthetic people data set: drawn 17-joint figures, written as a COCO keypoint root (or,
with `SynthConfig.wholebody`, in COCO-WholeBody's layout: feet, face and hands added).

Each figure is a person seen from any direction (yaw), with human proportions, joint angles in
human ranges, clothes and skin colours, a face that shows which way the person looks, and limbs
drawn as thick capsules in depth order. Several people per image, textured backgrounds, occluding
objects and truncation at the border. Visibility flags come from an id buffer drawn alongside the
picture: 2 where the joint's own body part is the front-most thing at the joint, 1 where another
person, an own limb or an object hides it, 0 outside the image and for face points on the far
side of the head (COCO's annotators leave those out too). Boxes and
areas are those of the person's visible pixels, as COCO's come from visible segmentation.

Image i of a split is drawn from `default_rng((seed, split, i))`: the set is deterministic for a
seed whatever the number of worker processes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import HrposeError
from ..io import atomic_path
from ..skeletons import COCO, COCO_WHOLEBODY
from .coco import WHOLEBODY_FIELDS

SPLITS = {"train": 0, "val": 1}
SHIFT = 2                                   # cv2 sub-pixel drawing: coordinates x 4
ONE = 1 << SHIFT

# Body parts (the id buffer stores 1 + 16 * person + part).
HEAD, TORSO, L_UPPER_ARM, L_FOREARM, R_UPPER_ARM, R_FOREARM = 0, 1, 2, 3, 4, 5
L_THIGH, L_SHIN, R_THIGH, R_SHIN = 6, 7, 8, 9
OBJECT_ID = 255
# The parts on which each COCO joint lies: the joint is visible where one of them is in front.
JOINT_PARTS = (
    (HEAD,), (HEAD,), (HEAD,), (HEAD,), (HEAD,),
    (TORSO, L_UPPER_ARM), (TORSO, R_UPPER_ARM), (L_UPPER_ARM, L_FOREARM),
    (R_UPPER_ARM, R_FOREARM), (L_FOREARM,), (R_FOREARM,), (TORSO, L_THIGH), (TORSO, R_THIGH),
    (L_THIGH, L_SHIN), (R_THIGH, R_SHIN), (L_SHIN,), (R_SHIN,),
)
# Face points in the head's frame (forward, left, up), in head radii, and how far towards the
# camera (depth in head radii, negative = nearer) a point must turn to be seen.
FACE = np.array([[1.0, 0.0, -0.15], [0.75, 0.38, 0.2], [0.75, -0.38, 0.2],
                 [-0.05, 1.0, 0.0], [-0.05, -1.0, 0.0]])
FACE_SEEN_BELOW = np.array([-0.2, -0.2, -0.2, 0.3, 0.3])

# Proportions in units of the standing height (anthropometric averages, rounded).
TORSO_LEN, SHOULDER_HALF, HIP_HALF, NECK_LEN = 0.30, 0.115, 0.08, 0.11
UPPER_ARM, FOREARM, THIGH, SHIN = 0.17, 0.15, 0.245, 0.235
HEAD_R, ARM_W, LEG_W, TORSO_DEPTH = 0.08, 0.065, 0.09, 0.16

SKIN = np.array([[255, 224, 196], [241, 194, 150], [224, 172, 105], [198, 134, 66],
                 [141, 85, 36], [92, 58, 40]])
HAIR = np.array([[20, 20, 20], [70, 45, 25], [130, 90, 50], [200, 170, 100], [150, 150, 150]])


@dataclass(frozen=True)
class SynthConfig:
    """What the generator draws; the defaults are the project's data set."""

    image_min: int = 224                   # image sides are drawn from [image_min, image_max]
    image_max: int = 320
    max_people: int = 4
    min_height: float = 0.4                # a standing person's height, fraction of the image
    max_height: float = 0.95
    object_prob: float = 0.2               # chance of occluding objects in front of people
    jpeg_quality: int = 90
    # COCO-WholeBody's layout: feet, face and hands placed on each figure (the pictures and
    # the 17 body joints are the same as without)
    wholebody: bool = False


def _direction(angle: np.ndarray | float) -> np.ndarray:
    """Unit vector(s) at `angle` degrees: 0 points down, 90 right (image axes, y down)."""
    a = np.radians(angle)
    return np.stack([np.sin(a), np.cos(a)], -1)


@dataclass
class Figure:
    """One drawn person: joints (17, 2) image px, face visibility (5,), parts to draw."""

    joints: np.ndarray
    face_seen: np.ndarray
    # (part, depth, start, end, width) capsules; head and torso are drawn by their own code
    limbs: list[tuple[int, float, np.ndarray, np.ndarray, float]]
    torso: np.ndarray                        # (4, 2) l_shoulder, r_shoulder, r_hip, l_hip
    neck: np.ndarray
    pelvis: np.ndarray
    head: np.ndarray                         # centre
    head_radius: float
    facing: float                            # cos(yaw): > 0 faces the camera
    forward_x: float                         # the facing direction's image x component
    height: float


def _arm(rng: np.random.Generator, shoulder: np.ndarray, lean: float, out: float, cy: float,
         s: float) -> tuple[np.ndarray, np.ndarray]:
    """Elbow and wrist: mostly hanging, sometimes raised or anywhere in the shoulder's range."""
    mode = rng.random()
    if mode < 0.5:
        abduct = rng.normal(12, 8)
    elif mode < 0.85:
        abduct = rng.uniform(30, 175)
    else:
        abduct = rng.uniform(-10, 180)
    if abs(cy) < 0.5:                    # seen from the side: the arm swings along forward
        abduct = abduct * abs(cy) + rng.normal(0, 35)
    a_upper = lean + out * abduct
    bend = rng.uniform(0, 130) if rng.random() < 0.6 else rng.uniform(0, 25)
    a_fore = a_upper + rng.choice([-1.0, 1.0]) * bend
    shorten = rng.uniform(0.55, 1.0, 2) if rng.random() < 0.35 else np.ones(2)
    elbow = shoulder + _direction(a_upper) * UPPER_ARM * s * shorten[0]
    return elbow, elbow + _direction(a_fore) * FOREARM * s * shorten[1]


def _leg(rng: np.random.Generator, hip: np.ndarray, lean: float, out: float, cy: float,
         sy: float, forward_x: float, sitting: bool, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Knee and ankle: slightly apart, a stride when seen from the side, sometimes sitting."""
    a_thigh = 0.3 * lean + out * rng.uniform(-6, 28) * max(abs(cy), 0.3)
    a_thigh += rng.normal(0, 22) * abs(sy)
    knee = rng.uniform(0, 35) if rng.random() < 0.8 else rng.uniform(35, 110)
    thigh_len = THIGH * s
    if sitting:
        if abs(sy) > 0.6:                # side view: thigh forward, horizontal-ish
            a_thigh = np.sign(forward_x) * rng.uniform(60, 100)
            knee = abs(a_thigh) - rng.uniform(-10, 20)
        else:                            # front view: thigh towards the camera
            thigh_len *= rng.uniform(0.25, 0.6)
    # knees bend backwards: away from the facing direction when seen from the side
    back = -np.sign(forward_x) if abs(sy) > 0.5 else rng.choice([-1.0, 1.0]) * 0.5
    knee_at = hip + _direction(a_thigh) * thigh_len
    return knee_at, knee_at + _direction(a_thigh + back * knee) * SHIN * s * rng.uniform(0.85, 1.0)


def sample_figure(rng: np.random.Generator, pelvis: np.ndarray, height: float) -> Figure:
    """A random human pose around `pelvis` for a person `height` px tall when standing."""
    s = height
    # most people in photos face the camera, as in COCO; a quarter are seen from anywhere
    yaw = rng.normal(0, 35) if rng.random() < 0.75 else rng.uniform(-180, 180)
    cy, sy = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
    forward_x = -sy                          # forward = (-sin, -cos) in (x, depth)
    lean = float(np.clip(rng.normal(0, 8), -25, 25))
    up, right = _direction(180 + lean), _direction(90 + lean)
    neck = pelvis + up * TORSO_LEN * s
    joints = np.zeros((17, 2))
    depth = {}
    for side, sign in (("l", 1.0), ("r", -1.0)):
        # The person's left is image-right when facing the camera; depth < 0 is nearer.
        sh = 5 if side == "l" else 6
        hp = 11 if side == "l" else 12
        joints[sh] = neck + right * sign * SHOULDER_HALF * s * cy + up * 0.02 * s
        joints[hp] = pelvis + right * sign * HIP_HALF * s * cy
        depth[side] = -sign * sy
    sitting = rng.random() < 0.12
    limbs = []
    for side, sign in (("l", 1.0), ("r", -1.0)):
        out = np.sign(sign * cy) if abs(cy) > 0.3 else rng.choice([-1.0, 1.0])
        sh, el, wr = (5, 7, 9) if side == "l" else (6, 8, 10)
        joints[el], joints[wr] = _arm(rng, joints[sh], lean, out, cy, s)
        hp, kn, an = (11, 13, 15) if side == "l" else (12, 14, 16)
        joints[kn], joints[an] = _leg(rng, joints[hp], lean, out, cy, sy, forward_x, sitting, s)
        d = depth[side] + rng.normal(0, 0.15)
        # Arms hang beside or in front of the body: in front of the torso when facing the
        # camera, behind it when seen from the back, by shoulder depth from the side.
        d_arm = d if abs(cy) < 0.5 else -np.sign(cy) * (1 + 0.1 * sign)
        limbs += [
            (L_UPPER_ARM if side == "l" else R_UPPER_ARM, d_arm, joints[sh], joints[el],
             ARM_W * s),
            (L_FOREARM if side == "l" else R_FOREARM, d_arm - 0.01, joints[el], joints[wr],
             ARM_W * 0.85 * s),
            (L_THIGH if side == "l" else R_THIGH, d * 0.8, joints[hp], joints[kn], LEG_W * s),
            (L_SHIN if side == "l" else R_SHIN, d * 0.8 - 0.01, joints[kn], joints[an],
             LEG_W * 0.8 * s),
        ]
    tilt = float(np.clip(rng.normal(0, 12), -40, 40))
    head_up, head_right = _direction(180 + lean + tilt), _direction(90 + lean + tilt)
    head = neck + head_up * NECK_LEN * s
    r = HEAD_R * s
    fwd = np.array([-sy, -cy])               # (image x, depth) of the head's axes
    left = np.array([cy, -sy])
    face_xd = FACE[:, :1] * fwd + FACE[:, 1:2] * left
    joints[:5] = head + r * (face_xd[:, :1] * head_right + FACE[:, 2:3] * head_up)
    face_seen = face_xd[:, 1] < FACE_SEEN_BELOW

    if rng.random() < 0.06:                  # lying, tumbling, leaning hard
        angle = np.radians(rng.normal(0, 40))
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        joints = (joints - pelvis) @ rot.T + pelvis
        head = (head - pelvis) @ rot.T + pelvis
        neck = (neck - pelvis) @ rot.T + pelvis
        limbs = [(p, d, (a - pelvis) @ rot.T + pelvis, (b - pelvis) @ rot.T + pelvis, w)
                 for p, d, a, b, w in limbs]
    torso = joints[[5, 6, 12, 11]]
    return Figure(joints, face_seen, limbs, torso, neck, pelvis, head, r, cy, forward_x, s)


def _pts(p: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(p) * ONE).astype(np.int32)


def _capsule(images: list[tuple[np.ndarray, tuple]], a: np.ndarray, b: np.ndarray,
             width: float) -> None:
    """A thick segment with round ends on each (image, colour) pair."""
    t = max(2, round(float(width)))
    for image, colour in images:
        aa = cv2.LINE_AA if image.ndim == 3 else cv2.LINE_8
        cv2.line(image, tuple(_pts(a)), tuple(_pts(b)), colour, t, aa, SHIFT)


def _disc(images: list[tuple[np.ndarray, tuple]], c: np.ndarray, radius: float) -> None:
    for image, colour in images:
        aa = cv2.LINE_AA if image.ndim == 3 else cv2.LINE_8
        cv2.circle(image, tuple(_pts(c)), round(float(radius) * ONE), colour, -1, aa, SHIFT)


def _shade(colour: np.ndarray, factor: float) -> tuple[int, ...]:
    return tuple(int(v) for v in np.clip(colour * factor, 0, 255))


def draw_figure(image: np.ndarray, ids: np.ndarray, fig: Figure, person: int,
                rng: np.random.Generator) -> None:
    """Paints one person on the RGB image and its part ids on the id buffer."""
    skin = SKIN[rng.integers(len(SKIN))] * rng.uniform(0.9, 1.05)
    hair = HAIR[rng.integers(len(HAIR))]
    shirt = rng.integers(0, 256, 3).astype(float)
    trousers = rng.integers(0, 200, 3).astype(float)
    sleeves = rng.random() < 0.5
    s = fig.height

    def pid(part: int) -> int:
        return 1 + 16 * person + part

    def colour_of(part: int) -> np.ndarray:
        if part in (L_UPPER_ARM, R_UPPER_ARM):
            return shirt * 0.85             # sleeves a shade darker than the chest
        if part in (L_FOREARM, R_FOREARM):
            return shirt * 0.85 if sleeves else skin
        return trousers

    def paint_limb(part: int, a: np.ndarray, b: np.ndarray, width: float) -> None:
        colour = colour_of(part)
        _capsule([(image, _shade(colour, 0.45)), (ids, pid(part))], a, b, width + 2)
        _capsule([(image, _shade(colour, 1.0))], a, b, width)
        if part in (L_FOREARM, R_FOREARM):             # hand
            hand = b + (b - a) / max(np.linalg.norm(b - a), 1e-6) * 0.035 * s
            _disc([(image, _shade(skin, 0.9)), (ids, pid(part))], hand, 0.032 * s)
        if part in (L_SHIN, R_SHIN):                   # shoe, pointing forward from the side
            toe = b + np.array([0.07 * s * fig.forward_x, 0.015 * s])
            _capsule([(image, (30, 30, 30)), (ids, pid(part))], b, toe, 0.045 * s)

    def paint_torso() -> None:
        for colour, grow in ((_shade(shirt, 0.45), 2), (_shade(shirt, 1.0), 0)):
            _capsule([(image, colour), (ids, pid(TORSO))], fig.neck, fig.pelvis,
                     TORSO_DEPTH * s + grow)
            centre = fig.torso.mean(0)
            corners = fig.torso + np.sign(fig.torso - centre) * grow
            cv2.fillConvexPoly(image, _pts(corners), colour, cv2.LINE_AA, SHIFT)
            cv2.fillConvexPoly(ids, _pts(corners), pid(TORSO), cv2.LINE_8, SHIFT)
        belt = (fig.torso[2] + fig.torso[3]) / 2
        _capsule([(image, _shade(trousers, 0.8))], fig.torso[3] + (belt - fig.torso[3]) * 0.1,
                 fig.torso[2] + (belt - fig.torso[2]) * 0.1, 0.05 * s)
        if fig.facing > 0.3:           # a neckline and a row of buttons show the front
            _disc([(image, _shade(skin, 0.95))], fig.neck + (fig.pelvis - fig.neck) * 0.08,
                  0.035 * s)
            for t in (0.3, 0.5, 0.7):
                _disc([(image, _shade(shirt, 0.5))], fig.neck + (fig.pelvis - fig.neck) * t,
                      max(1.0, 0.012 * s))
        _capsule([(image, _shade(skin, 0.9)), (ids, pid(TORSO))], fig.neck, fig.head,
                 0.045 * s)

    def paint_head() -> None:
        r = fig.head_radius
        _disc([(image, _shade(hair, 0.6)), (ids, pid(HEAD))], fig.head, r + 1)
        _disc([(image, _shade(hair, 1.0))], fig.head, r)
        # the face: a skin disc shifted towards where the person looks
        nose = fig.joints[0]
        if fig.facing > -0.2:
            face_centre = fig.head + (nose - fig.head) * 0.35
            _disc([(image, _shade(skin, 1.0))], face_centre, r * 0.78)
        for j in range(1, 5):
            if fig.face_seen[j]:
                if j < 3:
                    _disc([(image, (25, 25, 25))], fig.joints[j], max(1.0, 0.16 * r))
                else:
                    _disc([(image, _shade(skin, 0.85))], fig.joints[j], max(1.2, 0.22 * r))
        if fig.face_seen[0]:
            _disc([(image, _shade(skin, 0.7))], nose, max(1.0, 0.17 * r))

    # far limbs, torso, near limbs, head: the id buffer keeps whatever is drawn last
    order = sorted(fig.limbs, key=lambda limb: -limb[1])
    behind = [limb for limb in order if limb[1] > 0]
    front = [limb for limb in order if limb[1] <= 0]
    for part, _, a, b, width in behind:
        paint_limb(part, a, b, width)
    paint_torso()
    for part, _, a, b, width in front:
        paint_limb(part, a, b, width)
    paint_head()


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour field, a floor, clutter and sensor noise."""
    base = rng.uniform(30, 225, 3)
    coarse = rng.normal(0, rng.uniform(10, 45), (rng.integers(2, 6), rng.integers(2, 6), 3))
    image = base + cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.7:
        horizon = int(rng.uniform(0.3, 0.8) * h)
        image[horizon:] = image[horizon:] * rng.uniform(0.6, 1.0) + rng.uniform(-30, 30, 3)
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(0, 8)):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = rng.integers(0, w), rng.integers(0, h)
        kind = rng.integers(3)
        if kind == 0:
            cv2.rectangle(image, (int(x), int(y)), (int(x + rng.integers(10, w // 2)),
                          int(y + rng.integers(10, h // 2))), colour, -1)
        elif kind == 1:
            cv2.line(image, (int(x), int(y)), (int(rng.integers(0, w)), int(rng.integers(0, h))),
                     colour, int(rng.integers(1, 6)), cv2.LINE_AA)
        else:
            cv2.circle(image, (int(x), int(y)), int(rng.integers(4, 30)), colour, -1, cv2.LINE_AA)
    return image


def draw_image(rng: np.random.Generator, config: SynthConfig = SynthConfig()
               ) -> tuple[np.ndarray, list[dict]]:
    """One image (RGB uint8) and its people: COCO annotation fields (keypoints, bbox, area,
    num_keypoints), people that ended up fully hidden left out."""
    w, h = (int(v) for v in rng.integers(config.image_min, config.image_max + 1, 2))
    image = background(rng, h, w)
    ids = np.zeros((h, w), np.uint8)
    n = int(rng.choice(np.arange(1, config.max_people + 1),
                       p=_people_weights(config.max_people)))
    figures = []
    # People stand side by side, each in a slot of the width, jittered so that neighbours
    # overlap now and then; the order of the slots is shuffled so depth order is random.
    slots = rng.permutation(n)
    for i in range(n):
        height = rng.uniform(config.min_height, config.max_height) * h
        if n > 1:
            height *= rng.uniform(0.75, 1.0)
        edge = rng.random() < 0.15                     # truncation at a border
        centre = (slots[i] + 0.5) / n + rng.normal(0, 0.08 / n)
        x = rng.uniform(-0.05, 1.05) * w if edge else np.clip(centre, 0.12, 0.88) * w
        y = (rng.uniform(0.55, 1.0) if edge else rng.uniform(0.42, 0.62)) * h
        y = max(y, (TORSO_LEN + NECK_LEN) * height) if not edge else y
        figures.append(sample_figure(rng, np.array([x, y]), height))
    for person, fig in enumerate(figures):               # drawn back to front
        draw_figure(image, ids, fig, person, rng)
    if rng.random() < config.object_prob:
        for _ in range(rng.integers(1, 3)):
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            cx, cy = rng.uniform(0, w), rng.uniform(0.3, 1.0) * h
            axes = (int(rng.uniform(0.04, 0.15) * w), int(rng.uniform(0.04, 0.2) * h))
            if rng.random() < 0.5:
                pts = (int(cx - axes[0]), int(cy - axes[1])), (int(cx + axes[0]), int(cy + axes[1]))
                cv2.rectangle(image, *pts, colour, -1)
                cv2.rectangle(ids, *pts, OBJECT_ID, -1)
            else:
                cv2.ellipse(image, (int(cx), int(cy)), axes, 0, 0, 360, colour, -1, cv2.LINE_AA)
                cv2.ellipse(ids, (int(cx), int(cy)), axes, 0, 0, 360, OBJECT_ID, -1)
    if rng.random() < 0.5:                                # sensor noise
        noise = rng.normal(0, rng.uniform(2, 8), (h, w, 1))
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
    return image, [p for p in (_annotate(fig, i, ids, config.wholebody)
                               for i, fig in enumerate(figures)) if p]


def _face_template() -> np.ndarray:
    """The 68 iBUG face points of a frontal face, x to the image's right, y down, in units of
    the face's half-width: jaw, brows, nose bridge, nostrils, eyes, outer and inner lips."""
    t = np.arange(17) * np.pi / 16
    jaw = np.stack([-np.cos(t), -0.1 + 1.1 * np.sin(t)], 1)
    arc = -0.55 - 0.1 * np.sin(np.linspace(0, np.pi, 5))
    brows = [np.stack([np.linspace(-0.8, -0.15, 5), arc], 1),
             np.stack([np.linspace(0.15, 0.8, 5), arc], 1)]
    bridge = np.stack([np.zeros(4), np.linspace(-0.35, 0.1, 4)], 1)
    nostrils = np.stack([np.linspace(-0.25, 0.25, 5), [0.22, 0.25, 0.27, 0.25, 0.22]], 1)

    def ring(cx: float, cy: float, rx: float, ry: float, angles: list[float]) -> np.ndarray:
        a = np.radians(angles)
        return np.stack([cx + rx * np.cos(a), cy - ry * np.sin(a)], 1)

    eyes = [ring(-0.4, -0.3, 0.18, 0.07, [180, 120, 60, 0, -60, -120]),
            ring(0.4, -0.3, 0.18, 0.07, [180, 120, 60, 0, -60, -120])]
    lips = [ring(0, 0.55, 0.4, 0.15, [180, 150, 120, 90, 60, 30, 0, -30, -60, -90, -120,
                                      -150]),
            ring(0, 0.55, 0.3, 0.07, [180, 135, 90, 45, 0, -45, -90, -135])]
    return np.concatenate([jaw, *brows, bridge, nostrils, *eyes, *lips])


FACE_68 = _face_template()
# The body part each extra whole-body point lies on: feet on the shins' shoes, face on the
# head, hands on the forearms' hands (visibility as for the body joints).
WHOLEBODY_POINT_PARTS = ((L_SHIN,) * 3 + (R_SHIN,) * 3 + (HEAD,) * 68 + (L_FOREARM,) * 21
                         + (R_FOREARM,) * 21)


def wholebody_points(fig: Figure) -> np.ndarray:
    """COCO-WholeBody's 116 points beyond the body's 17 (feet, face, hands), (116, 2) image
    px, placed on the drawn figure: toes at the shoe's end, the face on the head's skin disc,
    fingers fanning out of the hand."""
    s, j = fig.height, fig.joints
    feet = []
    for ankle, side in ((j[15], 1.0), (j[16], -1.0)):
        toe = ankle + np.array([0.07 * s * fig.forward_x, 0.015 * s])
        across = np.array([0.012 * s * side * max(abs(fig.facing), 0.3), 0.0])
        feet += [toe - across, ankle + (toe - ankle) * 0.8 + across,
                 ankle + np.array([-0.02 * s * fig.forward_x, 0.02 * s])]
    up = fig.head - fig.neck
    up = up / max(np.linalg.norm(up), 1e-6)
    right, down = np.array([-up[1], up[0]]), -up
    centre = fig.head + (j[0] - fig.head) * 0.35
    width = 0.7 * fig.head_radius * max(fig.facing, 0.25)
    face = (centre + FACE_68[:, :1] * width * right
            + FACE_68[:, 1:] * 0.75 * fig.head_radius * down)
    hands = []
    for elbow, wrist, side in ((j[7], j[9], 1.0), (j[8], j[10], -1.0)):
        along = wrist - elbow
        along = along / max(np.linalg.norm(along), 1e-6)
        root = wrist + along * 0.005 * s
        hands.append(root)
        for spread in (-45.0, -18.0, 0.0, 16.0, 32.0):
            a = np.radians(spread * side)
            direction = np.array([along[0] * np.cos(a) - along[1] * np.sin(a),
                                  along[0] * np.sin(a) + along[1] * np.cos(a)])
            base = root + direction * 0.028 * s
            hands += [base + direction * 0.012 * s * i for i in range(4)]
    return np.concatenate([np.array(feet), face, np.array(hands)])


def _people_weights(k: int) -> np.ndarray:
    weights = np.array([0.45, 0.3, 0.15, 0.1][:k] + [0.1] * max(0, k - 4))
    return weights / weights.sum()


def _annotate(fig: Figure, person: int, ids: np.ndarray, wholebody: bool = False
              ) -> dict | None:
    h, w = ids.shape
    visible_pixels = (ids >= 1) & (ids < OBJECT_ID) & ((ids - 1) // 16 == person)
    area = int(visible_pixels.sum())
    if area < 16:
        return None
    ys, xs = np.nonzero(visible_pixels)
    x0, y0 = int(xs.min()), int(ys.min())
    box = [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]
    keypoints = np.zeros((17, 3))
    for j, (x, y) in enumerate(fig.joints):
        if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
            continue                                  # outside the image: not labelled
        owner = int(ids[round(float(y)), round(float(x))])
        own = owner in {1 + 16 * person + p for p in JOINT_PARTS[j]}
        if j < 5 and not fig.face_seen[j]:
            continue                # the far side of the head: not labelled, as in COCO
        keypoints[j] = (round(float(x), 2), round(float(y), 2), 2 if own else 1)
    out = {"keypoints": keypoints.ravel().tolist(), "bbox": box, "area": area,
           "num_keypoints": int((keypoints[:, 2] > 0).sum())}
    if wholebody:
        out |= _wholebody_fields(fig, person, ids)
    return out


def _wholebody_fields(fig: Figure, person: int, ids: np.ndarray) -> dict:
    """The feet, face and hands in COCO-WholeBody's fields (with part boxes and validity);
    face points only when the face is seen."""
    h, w = ids.shape
    rows = np.zeros((len(WHOLEBODY_POINT_PARTS), 3))
    for i, ((x, y), part) in enumerate(zip(wholebody_points(fig), WHOLEBODY_POINT_PARTS)):
        if not (0 <= x <= w - 1 and 0 <= y <= h - 1) or (part == HEAD and not (
                fig.face_seen[0] and fig.facing > 0.2)):
            continue
        own = int(ids[round(float(y)), round(float(x))]) == 1 + 16 * person + part
        rows[i] = (round(float(x), 2), round(float(y), 2), 2 if own else 1)
    out = {}
    body = COCO_WHOLEBODY.parts[0][2]
    for part, (_, start, stop) in zip(WHOLEBODY_FIELDS[1:], COCO_WHOLEBODY.parts[1:]):
        points = rows[start - body : stop - body]
        out[part.keypoints] = points.ravel().tolist()
        labelled = points[points[:, 2] > 0, :2]
        out[part.valid] = bool(len(labelled))
        if part.part != "foot":                  # face_box, lefthand_box, righthand_box
            lo, hi = ((labelled.min(0), labelled.max(0)) if len(labelled)
                      else (np.zeros(2), np.zeros(2)))
            out[part.valid.replace("_valid", "_box")] = np.round([*lo, *(hi - lo)], 2).tolist()
    return out


def _encode(image: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def _make(job: tuple[int, int, int, Path, SynthConfig]) -> tuple[int, int, int, list[dict]]:
    seed, split, index, folder, config = job
    rng = np.random.default_rng((seed, split, index))
    image, people = draw_image(rng, config)
    (folder / f"{index + 1:012d}.jpg").write_bytes(_encode(image, config.jpeg_quality))
    return index, image.shape[1], image.shape[0], people


def write_split(out: str | Path, split: str, count: int, seed: int = 0,
                config: SynthConfig = SynthConfig(), workers: int | None = None,
                progress: bool = True) -> Path:
    """Draws `count` images into OUT/{split}2017/ and writes
    OUT/annotations/person_keypoints_{split}2017.json; returns the annotation file."""
    out = Path(out)
    folder = out / f"{split}2017"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(seed, SPLITS[split], i, folder, config) for i in range(count)]
    workers = workers or min(os.cpu_count() or 1, 8)
    images, annotations = [], []
    bar = tqdm(total=count, desc=f"synth {split}", unit="img", disable=not progress)
    if workers > 1 and count > 64:
        with get_context("spawn").Pool(workers) as pool:
            made = list(_progress(pool.imap(_make, jobs, chunksize=16), bar))
    else:
        made = list(_progress(map(_make, jobs), bar))
    bar.close()
    for index, w, h, people in made:
        image_id = index + 1
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": w,
                       "height": h})
        for person in people:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": 1, "iscrowd": 0, "segmentation": [],
                                **person})
    category = {"id": 1, "name": "person", "supercategory": "person",
                "keypoints": list(COCO.joints),
                "skeleton": [[a + 1, b + 1] for a, b in COCO.links]}
    ann = out / "annotations" / f"person_keypoints_{split}2017.json"
    with atomic_path(ann) as tmp:
        tmp.write_text(json.dumps({"info": {"description": f"hrpose synthetic people, seed "
                                            f"{seed}"},
                                   "images": images, "annotations": annotations,
                                   "categories": [category]}))
    return ann


def _progress(items, bar):
    for item in items:
        bar.update()
        yield item


def write_dataset(out: str | Path, train: int, val: int, seed: int = 0,
                  config: SynthConfig = SynthConfig(), workers: int | None = None,
                  progress: bool = True) -> Path:
    """A COCO keypoint root with `train` and `val` images. A folder that already holds a data set
    (an annotation file or images of a split) is refused before anything is written."""
    out = Path(out)
    for split, count in (("train", train), ("val", val)):
        ann = out / "annotations" / f"person_keypoints_{split}2017.json"
        images = out / f"{split}2017"
        if count and (ann.exists() or (images.is_dir() and any(images.iterdir()))):
            raise HrposeError(f"{out}: already holds a data set ({ann if ann.exists() else images}"
                              "); write the synthetic set to an empty folder")
    for split, count in (("train", train), ("val", val)):
        if count:
            write_split(out, split, count, seed, config, workers, progress)
    return Path(out)
