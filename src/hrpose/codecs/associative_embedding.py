"""Bottom-up keypoints with associative embedding (Newell et al. 2017; HigherHRNet, Cheng et al.
2020): heatmaps find every joint of every person, a tag per joint says whose it is.

Coordinates: image pixel centres at integers, and a map of stride s sees input pixel x at
(x + 0.5) / s - 0.5, the convention of area-aligned resizing (bilinear, align_corners=False). So
heatmaps of any stride upsampled to the input size keep their peaks on the joints.

Encoding (training targets) is per image, in numpy. Decoding is batched in torch (heatmap NMS,
top-k, gathering tags) and then greedy per image: joint types are taken in the keypoint set's
grouping order (COCO's: head first, then shoulders, hips, elbows, knees, wrists, ankles), each
joint type's candidates matched to the
people found so far by tag distance and heatmap value with the Hungarian algorithm; unmatched
candidates start new people. Positions get a quarter-pixel shift toward the higher neighbour, and
joints a person lacks are filled in from the heatmap where the tags agree with the person's mean
tag (refinement).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

# HigherHRNet's two outputs: heatmaps and tags at 1/4 of the input, heatmaps at 1/2.
STRIDES = (4, 2)


@dataclass
class GroupingSettings:
    """Test-time settings of the official HigherHRNet code."""

    det_threshold: float = 0.1         # candidates below this heatmap value are dropped
    tag_threshold: float = 1.0         # tag distance beyond which a candidate starts a person
    nms_kernel: int = 5                # max-pool window of the heatmap NMS (input pixels)
    max_people: int = 30               # candidates per joint type, and people per image
    adjust: bool = True                # quarter-pixel shift toward the higher neighbour
    refine: bool = True                # fill a person's missing joints from its mean tag


def resize_matrix(factor: float) -> np.ndarray:
    """The bottom-up path's one pixel convention, as a (2, 3) matrix: an area-aligned resize by
    `factor` maps x to (x + 0.5) * factor - 0.5 (a map of stride s is a resize by 1 / s; the
    test-time input a resize of the image)."""
    shift = 0.5 * factor - 0.5
    return np.array([[factor, 0.0, shift], [0.0, factor, shift]])


def map_coords(points: np.ndarray, stride: float) -> np.ndarray:
    """Input pixels -> map pixels of a map with this stride: `resize_matrix(1 / stride)`."""
    return (points + 0.5) / stride - 0.5


def gaussian_maps(keypoints: np.ndarray, map_wh: tuple[int, int], stride: float,
                  sigma: float = 2.0) -> np.ndarray:
    """(P, K, 3) keypoints in input pixels -> (K, h, w) float32 heatmaps: per joint type the
    maximum of unnormalised Gaussians (peak 1, `sigma` in map pixels) at every labelled joint
    inside the map."""
    w, h = map_wh
    k = keypoints.shape[1]
    maps = np.zeros((k, h, w), np.float32)
    radius = int(np.ceil(3 * sigma)) + 1
    offsets = np.arange(-radius, radius + 1)
    for person in keypoints:
        xy = map_coords(person[:, :2], stride)
        for j in np.flatnonzero(person[:, 2] > 0):
            x, y = xy[j]
            if not (-0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5):
                continue
            cx, cy = round(x), round(y)
            xs, ys = cx + offsets, cy + offsets
            xs, ys = xs[(xs >= 0) & (xs < w)], ys[(ys >= 0) & (ys < h)]
            g = np.exp(-((xs[None] - x) ** 2 + (ys[:, None] - y) ** 2) / (2 * sigma**2))
            patch = maps[j, ys[0]: ys[-1] + 1, xs[0]: xs[-1] + 1]
            np.maximum(patch, g, out=patch)
    return maps


def joint_indices(keypoints: np.ndarray, map_wh: tuple[int, int], stride: float,
                  max_people: int) -> np.ndarray:
    """(max_people, K, 2) int64: for each person's labelled joints inside the map, the index of
    its pixel in the flattened (K, h, w) tag maps, and 1 where valid. Only the first
    `max_people` people are kept."""
    w, h = map_wh
    k = keypoints.shape[1]
    out = np.zeros((max_people, k, 2), np.int64)
    people = keypoints[:max_people]
    xy = np.rint(map_coords(people[..., :2], stride)).astype(np.int64)
    inside = ((people[..., 2] > 0) & (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0)
              & (xy[..., 1] < h))
    joint = np.arange(k)[None]
    index = joint * h * w + xy[..., 1] * w + xy[..., 0]
    out[: len(people), :, 0] = np.where(inside, index, 0)
    out[: len(people), :, 1] = inside
    return out


def heatmap_nms(heatmaps: torch.Tensor, kernel: int) -> torch.Tensor:
    """Keeps only the values that are the maximum of their `kernel` window; zeros elsewhere.

    The window maximum is OpenCV's dilation of each map on the CPU (a max pool's exact values,
    the border left out as the pool's padding is, about 6x faster than torch's max pool at a
    bottom-up input size), torch's max pool elsewhere."""
    if heatmaps.device.type != "cpu" or heatmaps.dtype != torch.float32 or kernel % 2 == 0:
        peaks = F.max_pool2d(heatmaps, kernel, 1, kernel // 2)
        return heatmaps * (peaks == heatmaps)
    maps = heatmaps.contiguous().numpy()
    peaks = np.empty_like(maps)
    window = np.ones((kernel, kernel), np.uint8)
    for m, p in zip(maps.reshape(-1, *maps.shape[-2:]), peaks.reshape(-1, *maps.shape[-2:])):
        cv2.dilate(m, window, dst=p)
    return torch.from_numpy(maps * (peaks == maps))


def top_candidates(heatmaps: torch.Tensor, tags: torch.Tensor, settings: GroupingSettings
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, K, H, W) heatmaps and (N, K, H, W, L) tags -> per joint type the `max_people`
    strongest peaks: positions (N, K, M, 2) x, y; values (N, K, M); tags (N, K, M, L)."""
    n, k, h, w = heatmaps.shape
    peaks = heatmap_nms(heatmaps, settings.nms_kernel).reshape(n, k, -1)
    m = min(settings.max_people, h * w)
    values, index = peaks.topk(m, dim=2)
    flat_tags = tags.reshape(n, k, h * w, -1)
    picked = torch.gather(flat_tags, 2, index[..., None].expand(-1, -1, -1, flat_tags.shape[-1]))
    xy = torch.stack([index % w, index // w], -1)
    return xy.cpu().numpy(), values.float().cpu().numpy(), picked.float().cpu().numpy()


def match_people(xy: np.ndarray, values: np.ndarray, tags: np.ndarray, order: tuple[int, ...],
                 settings: GroupingSettings) -> np.ndarray:
    """One image's candidates (K, M, 2), (K, M), (K, M, L) -> people (P, K, 3) x, y, value.

    Joint types are taken in `order`. A candidate joins the person whose mean tag is nearest
    when that distance is below the tag threshold; the assignment minimises, over all candidates
    of the joint type at once, round(distance) * 100 - value (so tag distance decides and the
    heatmap value breaks ties), as the official code does."""
    k = xy.shape[0]
    people: list[np.ndarray] = []          # (K, 3) each
    person_tags: list[list[np.ndarray]] = []
    for joint in order:
        keep = values[joint] > settings.det_threshold
        if not keep.any():
            continue
        cand_xy, cand_val, cand_tag = xy[joint][keep], values[joint][keep], tags[joint][keep]
        rows = np.c_[cand_xy, cand_val].astype(np.float32)
        if not people:
            for row, tag in zip(rows, cand_tag):
                _new_person(people, person_tags, k, joint, row, tag)
            continue
        known = min(len(people), settings.max_people)
        means = np.stack([np.mean(t, axis=0) for t in person_tags[:known]])
        distance = np.linalg.norm(cand_tag[:, None] - means[None], axis=2)
        cost = np.round(distance) * 100 - cand_val[:, None]
        assigned_rows, assigned_cols = linear_sum_assignment(cost)
        matched = dict(zip(assigned_rows.tolist(), assigned_cols.tolist()))
        for i, (row, tag) in enumerate(zip(rows, cand_tag)):
            col = matched.get(i)
            if col is not None and distance[i, col] < settings.tag_threshold:
                people[col][joint] = row
                person_tags[col].append(tag)
            else:
                _new_person(people, person_tags, k, joint, row, tag)
    if not people:
        return np.zeros((0, k, 3), np.float32)
    return np.stack(people)


def _new_person(people: list, person_tags: list, k: int, joint: int, row: np.ndarray,
                tag: np.ndarray) -> None:
    person = np.zeros((k, 3), np.float32)
    person[joint] = row
    people.append(person)
    person_tags.append([tag])


def quarter_offset(heatmaps: np.ndarray, people: np.ndarray) -> np.ndarray:
    """Moves each found joint (P, K, 3) of one image 0.25 px toward its higher neighbour in x
    and in y of its (K, H, W) heatmap."""
    if not len(people):
        return people
    _, h, w = heatmaps.shape
    out = people.copy()
    found = people[..., 2] > 0
    p_idx, j_idx = np.nonzero(found)
    x = people[p_idx, j_idx, 0].astype(np.int64)
    y = people[p_idx, j_idx, 1].astype(np.int64)
    right = heatmaps[j_idx, y, np.minimum(x + 1, w - 1)]
    left = heatmaps[j_idx, y, np.maximum(x - 1, 0)]
    down = heatmaps[j_idx, np.minimum(y + 1, h - 1), x]
    up = heatmaps[j_idx, np.maximum(y - 1, 0), x]
    out[p_idx, j_idx, 0] += np.where(right > left, 0.25, -0.25)
    out[p_idx, j_idx, 1] += np.where(down > up, 0.25, -0.25)
    return out


def refine_missing(heatmaps: torch.Tensor, tags: torch.Tensor, people: np.ndarray,
                   adjust: bool = True) -> np.ndarray:
    """Fills the joints a person lacks: for each missing joint type, the pixel maximising
    heatmap - round(distance of its tag to the person's mean tag). `heatmaps` (K, H, W), `tags`
    (K, H, W, L) of one image; `people` (P, K, 3) with integer positions of found joints.

    One joint type at a time for every person who lacks it (a map's pass serves them all;
    per person, as the official code loops, it took most of the grouping time with many
    people). Each person's values are computed by the same operations, so the result is
    the same."""
    w = heatmaps.shape[-1]
    out = people.copy()
    found = people[..., 2] > 0
    todo = np.flatnonzero(found.any(1) & ~found.all(1))
    if not len(todo):
        return out
    means = torch.stack([_mean_tag(tags, person) for person in people[todo]])    # (n, L)
    for j in range(people.shape[1]):
        lacking = ~found[todo, j]
        if not lacking.any():
            continue
        who = todo[lacking]
        distance = (tags[j][None] - means[torch.from_numpy(np.flatnonzero(lacking))][
            :, None, None]).norm(dim=-1)                                         # (n, H, W)
        score = (heatmaps[j][None] - distance.round()).reshape(len(who), -1)
        best = torch.from_numpy(score.cpu().numpy().argmax(1))   # NumPy: the same first max,
        # about 15x faster than torch's on these rows
        y, x = best // w, best % w
        value = heatmaps[j].reshape(-1)[best]
        rows = np.c_[x.numpy(), y.numpy(), value.float().numpy()].astype(np.float32)
        if adjust:
            rows = quarter_offset(heatmaps[j][None].float().numpy(), rows[:, None])[:, 0]
        keep = rows[:, 2] > 0
        out[who[keep], j] = rows[keep]
    return out


def _mean_tag(tags: torch.Tensor, person: np.ndarray) -> torch.Tensor:
    """The mean (L,) of the tags at a person's found joints."""
    found = np.flatnonzero(person[:, 2] > 0)
    xs, ys = person[found, 0].astype(np.int64), person[found, 1].astype(np.int64)
    return tags[torch.from_numpy(found), torch.from_numpy(ys), torch.from_numpy(xs)].mean(0)


def group(heatmaps: torch.Tensor, tags: torch.Tensor,
          settings: GroupingSettings = GroupingSettings(), order: tuple[int, ...] | None = None
          ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batched decoding: (N, K, H, W) heatmaps and (N, K, H, W, L) tags (L tag values per joint:
    flipped and multi-scale tags stacked), joint types matched in `order` (the keypoint set's
    `Skeleton.order`; None: their own order) -> per image (people (P, K, 3) x, y, score in map
    pixels; person scores (P,), the mean joint value before refinement)."""
    n, k = heatmaps.shape[:2]
    order = tuple(order) if order else tuple(range(k))
    xy, values, cand_tags = top_candidates(heatmaps, tags, settings)
    out = []
    for i in range(n):
        people = match_people(xy[i], values[i], cand_tags[i], order, settings)
        people = people[: settings.max_people]
        scores = people[..., 2].mean(1) if len(people) else np.zeros(0, np.float32)
        integer = people.copy()
        if settings.adjust:
            people = quarter_offset(heatmaps[i].float().numpy(), people)
        if settings.refine and len(people):
            refined = refine_missing(heatmaps[i].float(), tags[i].float(), integer,
                                     settings.adjust)
            missing = people[..., 2] == 0
            people[missing] = refined[missing]
        out.append((people, scores.astype(np.float32)))
    return out
