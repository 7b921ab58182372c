"""Keypoint evaluation by OKS: results JSON, rescoring, OKS-NMS and the COCOeval AP.

`evaluate_keypoints` is pycocotools' COCOeval for iouType "keypoints" (same matching, same
interpolated precision, same ten numbers), vectorised over images: its Python loop runs over
detection ranks (at most 20) instead of over images x thresholds x detections, and every OKS is
computed once, as a table of (result, person of its image) pairs that the matching looks up.
Other benchmarks' rules (CrowdPose's OKS area and crowd split, xtcocotools' conventions for
OCHuman, COCO-WholeBody's parts) are a `metrics.protocols.Protocol` passed to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.coco import (
    WHOLEBODY_FIELDS,
    WHOLEBODY_SCORE,
    KeypointData,
    group_by_image,
    is_wholebody_record,
    wholebody_fields,
    wholebody_keypoints,
)
from ..errors import HrposeError
from ..fields import integer, number, number_rows, numbers, of_category, required
from ..io import read_json, write_json
from ..skeletons import COCO_WHOLEBODY
from .protocols import AUTO, COCO, Protocol, choose_protocol

NMS_METHODS = ("oks", "soft", "none")     # OKS-NMS, soft-OKS-NMS, none
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = {"all": (0.0, 1e10), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}


@dataclass
class KeypointResults:
    """Predictions in COCO's results form, as arrays: P people, K joints."""

    image_ids: np.ndarray      # (P,)
    keypoints: np.ndarray      # (P, K, 3) x, y, joint score, image pixels
    scores: np.ndarray         # (P,) person score
    category_id: int = 1
    # COCO-WholeBody results may score each part ("foot_score", "wholebody_score"): (P,)
    # by key, NaN where a result gives none (its person score stands in, as in xtcocotools).
    part_scores: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.image_ids)

    def part_score(self, part: str) -> np.ndarray:
        """The scores that order the results when `part` is scored ("" the whole person)."""
        key = _SCORE_KEYS.get(part, "score")
        given = self.part_scores.get(key)
        return self.scores if given is None else np.where(np.isnan(given), self.scores, given)

    def to_json(self, wholebody: bool = False) -> list[dict]:
        """COCO's results; `wholebody`: COCO-WholeBody's layout (the parts in their fields)."""
        kps = np.round(self.keypoints.astype(np.float64), 3)
        out = []
        for p, (i, s) in enumerate(zip(self.image_ids.tolist(), self.scores.tolist())):
            entry = {"image_id": int(i), "category_id": self.category_id}
            entry |= (wholebody_fields(kps[p]) if wholebody
                      else {"keypoints": kps[p].ravel().tolist()})
            entry["score"] = float(s)
            for key, values in self.part_scores.items():
                if not np.isnan(values[p]):
                    entry[key] = float(values[p])
            out.append(entry)
        return out

    def save(self, path: str | Path, wholebody: bool = False) -> None:
        """Write the COCO results JSON atomically (`wholebody`: in COCO-WholeBody's layout)."""
        write_json(path, self.to_json(wholebody))


_SCORE_KEYS = {**{f.part: f.score for f in WHOLEBODY_FIELDS}, "": WHOLEBODY_SCORE}
WHOLEBODY_JOINTS = COCO_WHOLEBODY.num_joints


def load_results(source: str | Path | Sequence[dict], num_joints: int,
                 category_id: int = 1) -> KeypointResults:
    """A COCO keypoint results file (or its parsed list); entries of other categories are
    dropped, as COCOeval ignores them. With 133 joints an entry may also be in
    COCO-WholeBody's layout (the parts in their fields, each part's score optional)."""
    name = str(source) if isinstance(source, (str, Path)) else "results"
    if isinstance(source, (str, Path)):
        source = read_json(source)
    if not isinstance(source, list):
        raise HrposeError(f"{name}: expected a list of results")
    part_keys = [key for key in _SCORE_KEYS.values() if key != "score"]
    # The usual file, every entry a result of this category, takes the fast path.
    ours = all(type(e) is dict and type(e.get("category_id", category_id)) is int
               and e.get("category_id", category_id) == category_id for e in source)
    results = _bulk_results(source, num_joints, part_keys) if ours else None
    if results is None:
        entries = list(of_category(source, category_id, f"{name}: result #"))
        results = _checked_results(entries, num_joints, part_keys)
    image_ids, keypoints, scores, part_scores = results
    return KeypointResults(image_ids, keypoints.reshape(-1, num_joints, 3), scores,
                           category_id, {k: v for k, v in part_scores.items()
                                         if not np.isnan(v).all()})


_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]


def _checked_results(entries: list[tuple[str, dict]], num_joints: int,
                     part_keys: list[str]) -> _Arrays:
    """Entry by entry, every field checked: the error names the first bad one."""
    image_ids, keypoints, scores = [], [], []
    part_scores: dict[str, list[float]] = {key: [] for key in part_keys}
    for where, entry in entries:
        image_ids.append(integer(required(entry, "image_id", where), where, "image_id"))
        if num_joints == WHOLEBODY_JOINTS and is_wholebody_record(entry):
            keypoints.append(wholebody_keypoints(entry, where).ravel())
        else:
            keypoints.append(numbers(required(entry, "keypoints", where), where,
                                     "keypoints", 3 * num_joints))
        scores.append(number(required(entry, "score", where), where, "score"))
        for key, values in part_scores.items():
            values.append(number(entry[key], where, key) if key in entry else np.nan)
    return (np.asarray(image_ids, np.int64),
            np.asarray(keypoints, np.float64).reshape(-1, 3 * num_joints),
            np.asarray(scores, np.float64),
            {k: np.asarray(v, np.float64) for k, v in part_scores.items()})


def _bulk_results(entries: list[dict], num_joints: int, part_keys: list[str]
                  ) -> _Arrays | None:
    """The usual well-formed file as arrays in a few whole-array steps; None when any entry
    needs the checked path (which then names it)."""
    wholebody = num_joints == WHOLEBODY_JOINTS and bool(entries) and is_wholebody_record(
        entries[0])
    fields = ([(f.keypoints, 3 * (stop - start)) for f, (_, start, stop)
               in zip(WHOLEBODY_FIELDS, COCO_WHOLEBODY.parts)] if wholebody
              else [("keypoints", 3 * num_joints)])
    if not all(type(e.get("image_id")) is int and type(e.get("score")) in (int, float)
               for e in entries):
        return None
    columns = [number_rows([e.get(f) for e in entries], n) for f, n in fields]
    if any(c is None for c in columns):
        return None
    keypoints = np.concatenate(columns, 1)
    image_ids = np.array([e["image_id"] for e in entries], np.int64).reshape(-1)
    scores = np.array([e["score"] for e in entries], np.float64).reshape(-1)
    if not np.isfinite(scores).all():
        return None
    part_scores = {}
    for key in part_keys:
        values = [e.get(key) for e in entries]
        if not all(v is None or type(v) in (int, float) for v in values):
            return None
        part_scores[key] = np.array([np.nan if v is None else v for v in values],
                                    np.float64).reshape(-1)
        if np.isinf(part_scores[key]).any():
            return None
    return image_ids, keypoints, scores, part_scores


def rescore(box_scores: np.ndarray, joint_scores: np.ndarray,
            threshold: float = 0.2) -> np.ndarray:
    """The published person score: box score x mean of the joint scores above `threshold`
    (0 when none is)."""
    above = joint_scores > threshold
    count = above.sum(-1)
    mean = np.where(count > 0, (joint_scores * above).sum(-1) / np.maximum(count, 1), 0.0)
    return box_scores * mean


def pairwise_oks(a: np.ndarray, b: np.ndarray, areas_a: np.ndarray, areas_b: np.ndarray,
                 sigmas: np.ndarray) -> np.ndarray:
    """OKS between two sets of predictions (NMS form: area = mean of the two, all joints)."""
    var = (2 * np.asarray(sigmas)) ** 2
    d2 = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(-1)
    area = (areas_a[:, None] + areas_b[None, :]) / 2 + np.spacing(1)
    return np.exp(-d2 / var / area[..., None] / 2).mean(-1)


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray,
            sigmas: Sequence[float], threshold: float = 0.9) -> np.ndarray:
    """Greedy OKS-NMS on one image's people: indices kept, best score first. Each pick is
    compared with the people left only (one row of OKS at a time): memory is linear in the
    people, so a detector's thousands of boxes in one image cannot exhaust it."""
    order = np.argsort(-scores, kind="stable")
    sigmas = np.asarray(sigmas)
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        oks = pairwise_oks(keypoints[i : i + 1], keypoints[rest], areas[i : i + 1],
                           areas[rest], sigmas)[0]
        order = rest[oks <= threshold]
    return np.asarray(keep, np.int64)


def soft_oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray,
                 sigmas: Sequence[float], sigma: float = 0.9, max_people: int = 20
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian soft-NMS with OKS (Bodla et al. 2017): each pick decays the others' scores by
    exp(-oks^2 / sigma). Returns kept indices and their decayed scores, best first. One row of
    OKS per pick: memory linear in the people."""
    sigmas = np.asarray(sigmas)
    current = scores.astype(np.float64).copy()
    left = np.ones(len(scores), bool)
    keep, kept_scores = [], []
    while left.any() and len(keep) < max_people:
        candidates = np.flatnonzero(left)
        best = int(candidates[np.argmax(current[candidates])])    # first of ties, as max()
        keep.append(best)
        kept_scores.append(current[best])
        left[best] = False
        rest = np.flatnonzero(left)
        if rest.size:
            oks = pairwise_oks(keypoints[best : best + 1], keypoints[rest],
                               areas[best : best + 1], areas[rest], sigmas)[0]
            current[rest] *= np.exp(-(oks**2) / sigma)
    return np.asarray(keep, np.int64), np.asarray(kept_scores)


def nms_per_image(results: KeypointResults, areas: np.ndarray, sigmas: Sequence[float],
                  threshold: float = 0.9, soft: bool = False) -> KeypointResults:
    """OKS-NMS (or soft-OKS-NMS) within each image."""
    keep, new_scores = [], []
    for group in group_by_image(results.image_ids)[1]:
        kp, sc, ar = results.keypoints[group], results.scores[group], areas[group]
        if soft:
            k, s = soft_oks_nms(kp, sc, ar, sigmas, threshold)
        else:
            k = oks_nms(kp, sc, ar, sigmas, threshold)
            s = sc[k]
        keep.append(group[k])
        new_scores.append(s)
    if not keep:
        return results
    index, scores = np.concatenate(keep), np.concatenate(new_scores)
    return KeypointResults(results.image_ids[index], results.keypoints[index], scores,
                           results.category_id)


def choose_data_protocol(data: KeypointData, asked: str = AUTO) -> tuple[Protocol, str]:
    """The protocol that scores `data` (`asked`: a name or "auto") and how it was chosen."""
    has_crowd_index = any(info.crowd_index is not None for info in data.images.values())
    return choose_protocol(asked, data.kind, has_crowd_index, data.path.name, data.wholebody)


def evaluate_keypoints(gt: KeypointData, results: KeypointResults, protocol: Protocol = COCO,
                       sigmas: Sequence[float] | None = None) -> dict[str, float]:
    """OKS AP / AR as `protocol` computes them: by default COCO's ten numbers
    (COCOeval.summarize()), by name; CrowdPose's nine with its OKS area and crowd split;
    COCO-WholeBody's ten for the whole person and ten per part ("foot_AP")."""
    sigmas = np.asarray(gt.skeleton.sigmas if sigmas is None else sigmas, np.float64)
    image_list = np.array(sorted(gt.images), np.int64)
    unknown = ~np.isin(results.image_ids, image_list)
    if unknown.any():
        raise HrposeError(f"results: image_id {int(results.image_ids[unknown][0])} is not in "
                          f"{gt.path.name}")
    if protocol.by_part and not gt.skeleton.parts:
        raise HrposeError(f"{gt.path.name}: the {protocol.name} protocol scores a keypoint set "
                          "with parts")
    whole = ("", 0, gt.skeleton.num_joints)
    parts = (whole, *gt.skeleton.parts) if protocol.by_part else (whole,)
    gt_area = _gt_areas(gt, protocol)
    # Every part's OKS of every result and person of an image, in one pass over the joints.
    table = _PartOks(gt, results, image_list, [slice(a, b) for _, a, b in parts], sigmas,
                     gt_area)
    # A result's area is its joints' extent; by part, its body joints' in every part's
    # evaluation (xtcocotools takes it from the results' 'keypoints' field).
    _, start, stop = parts[1] if protocol.by_part else whole
    dt_area = _extent_area(results.keypoints[:, start:stop])
    stats: dict[str, float] = {}
    for p, (part, start, stop) in enumerate(parts):
        matches = _part_matches(gt, results, protocol, image_list, slice(start, stop),
                                results.part_score(part), dt_area, gt_area, table.provider(p))
        precision, recall = matches.accumulate()
        if protocol.crowd_bounds is not None:
            stats = _summarize_crowd(precision, recall)
            # Matching is per image: a split accumulates the matches of its images.
            for name, images in crowd_splits(gt, protocol.crowd_bounds).items():
                stats[name] = _mean(matches.accumulate(images)[0][:, :, 0])
            return stats
        prefix = f"{part}_" if part else ""
        stats |= {prefix + k: v for k, v in _summarize(precision, recall).items()}
    return stats


# (result rows, person rows) -> their OKS: (n, R) and (n, G) index blocks -> (n, R, G)
PairOks = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _gt_areas(gt: KeypointData, protocol: Protocol) -> np.ndarray:
    """The people's OKS areas by the protocol: a factor of the box's, or the annotation's."""
    if protocol.box_area_factor:
        return protocol.box_area_factor * gt.boxes[:, 2] * gt.boxes[:, 3]
    return gt.areas.astype(np.float64)


class _PartOks:
    """The OKS of every (result, person of its image) pair for each of several runs of joints,
    computed in one pass over the joints (the parts share their distances); looked up by the
    matching of each part."""

    def __init__(self, gt: KeypointData, results: KeypointResults, image_list: np.ndarray,
                 parts: list[slice], sigmas: np.ndarray, gt_area: np.ndarray) -> None:
        gt_img = np.searchsorted(image_list, gt.image_ids)
        by_image = np.argsort(gt_img, kind="stable")
        count = np.bincount(gt_img, minlength=len(image_list))
        first = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        self.position = np.empty(len(gt_img), np.int64)              # within its image
        self.position[by_image] = np.arange(len(gt_img)) - first[gt_img[by_image]]
        dt_img = np.searchsorted(image_list, results.image_ids)
        pairs = count[dt_img]                                       # people per result
        self.start = (np.cumsum(pairs) - pairs).astype(np.int64)     # first pair per result
        dets = np.repeat(np.arange(len(results)), pairs)
        within = np.arange(len(dets)) - np.repeat(self.start, pairs)
        people = by_image[np.repeat(first[dt_img], pairs) + within]
        self.table = np.zeros((len(dets) + 1, len(parts)))         # a last row for padding
        for c in range(0, len(dets), 8192):
            d, g = dets[c : c + 8192], people[c : c + 8192]
            self.table[c : c + len(d)] = _pair_part_oks(
                results.keypoints[d].astype(np.float64), gt.keypoints[g].astype(np.float64),
                gt_area[g], gt.boxes[g].astype(np.float64), sigmas, parts)

    def provider(self, part: int) -> PairOks:
        def lookup(dets: np.ndarray, people: np.ndarray) -> np.ndarray:
            rows = self.start[dets][:, :, None] + self.position[people][:, None, :]
            return self.table[np.minimum(rows, len(self.table) - 1), part]
        return lookup


def _pair_part_oks(dt: np.ndarray, gt: np.ndarray, gt_area: np.ndarray, gt_box: np.ndarray,
                   sigmas: np.ndarray, parts: list[slice]) -> np.ndarray:
    """COCOeval.computeOks of pairs (dt (c, K, 3) with gt (c, K, 3)) over each run of joints
    in `parts` -> (c, len(parts)). A person without labelled joints in a part is compared
    there through its box grown by its size on each side: a result's distance is how far its
    joints fall outside that box."""
    var = (2 * sigmas) ** 2
    scale = (gt_area + np.spacing(1))[:, None]
    vis = gt[..., 2] > 0
    d2 = (dt[..., 0] - gt[..., 0]) ** 2 + (dt[..., 1] - gt[..., 1]) ** 2
    near = np.exp(-(d2 / var / scale / 2)) * vis
    x0, x1 = (gt_box[:, 0] - gt_box[:, 2])[:, None], (gt_box[:, 0] + 2 * gt_box[:, 2])[:, None]
    y0, y1 = (gt_box[:, 1] - gt_box[:, 3])[:, None], (gt_box[:, 1] + 2 * gt_box[:, 3])[:, None]
    out = np.empty((len(dt), len(parts)))
    for p, joints in enumerate(parts):
        labelled = vis[:, joints].sum(1)
        out[:, p] = near[:, joints].sum(1) / np.maximum(labelled, 1)
        none = np.flatnonzero(labelled == 0)
        if none.size:
            xs, ys = dt[none, joints, 0], dt[none, joints, 1]
            dx = np.maximum(0, x0[none] - xs) + np.maximum(0, xs - x1[none])
            dy = np.maximum(0, y0[none] - ys) + np.maximum(0, ys - y1[none])
            e = (dx**2 + dy**2) / var[joints] / scale[none] / 2
            out[none, p] = np.exp(-e).mean(1)
    return out


def _part_matches(gt: KeypointData, results: KeypointResults, protocol: Protocol,
                  image_list: np.ndarray, joints: slice, scores: np.ndarray,
                  dt_area: np.ndarray, gt_area: np.ndarray, pair_oks: PairOks) -> _Matches:
    """The matching of one evaluation over `joints` of every person, with `scores` ordering
    the results; `pair_oks`: their OKS by (result, person) rows."""
    keep = np.flatnonzero((results.keypoints[:, joints, 2] > 0).any(-1)
                          if protocol.drop_unscored else np.ones(len(results), bool))
    labelled = ((gt.keypoints[:, joints, 2] > 0).sum(-1) if protocol.ignore_by_flags
                else gt.num_keypoints)
    return _match_images(gt, results.image_ids[keep], scores[keep], dt_area[keep], image_list,
                         gt_area, labelled, protocol.max_dets,
                         lambda dets, people: pair_oks(keep[dets], people))


def _extent_area(keypoints: np.ndarray) -> np.ndarray:
    """w x h of the joints' extent, as COCO's API takes a result's area."""
    x, y = keypoints[..., 0].astype(np.float64), keypoints[..., 1].astype(np.float64)
    return (x.max(-1) - x.min(-1)) * (y.max(-1) - y.min(-1))


def crowd_splits(gt: KeypointData, bounds: tuple[float, float]) -> dict[str, np.ndarray]:
    """Image ids by crowd level, as CrowdPose splits them: crowdIndex below the first bound is
    easy, below the second medium, the rest hard."""
    missing = [i for i, info in gt.images.items() if info.crowd_index is None]
    if missing:
        raise HrposeError(f"{gt.path}: image {missing[0]} has no 'crowdIndex', which the "
                          "CrowdPose evaluation needs for every image")
    ids = np.array(sorted(gt.images), np.int64)
    index = np.array([gt.images[int(i)].crowd_index for i in ids], np.float64)
    return {"AP_easy": ids[index < bounds[0]],
            "AP_medium": ids[(index >= bounds[0]) & (index < bounds[1])],
            "AP_hard": ids[index >= bounds[1]]}


@dataclass
class _Matches:
    """COCOeval's per-image matching of one evaluation: (area range, threshold, detection)
    matched / ignored for the kept detections in score order, with their images, and the
    ground truth's ignore flags per area range with its images."""

    matched: np.ndarray
    dt_ignored: np.ndarray
    dt_image: np.ndarray            # (D,) image id of each detection
    gt_ign_area: np.ndarray         # (A, M)
    gt_image: np.ndarray            # (M,)

    def accumulate(self, images: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """COCOeval.accumulate's precision (threshold, recall point, area) and recall
        (threshold, area) over all images, or over `images` (ids)."""
        if images is None:
            return _accumulate(self.matched, self.dt_ignored, self.gt_ign_area)
        dt, gt = np.isin(self.dt_image, images), np.isin(self.gt_image, images)
        return _accumulate(self.matched[..., dt], self.dt_ignored[..., dt],
                           self.gt_ign_area[:, gt])


def _match_images(gt: KeypointData, dt_image_ids: np.ndarray, dt_scores: np.ndarray,
                  dt_areas: np.ndarray, image_list: np.ndarray, gt_area: np.ndarray,
                  labelled: np.ndarray, max_dets: int, pair_oks: PairOks) -> _Matches:
    """Match every image's detections to its ground truth; `labelled`: labelled joints by the
    protocol's count (0: the person is ignored); `pair_oks` by (detection, person) rows of
    the arrays given."""
    n_img = len(image_list)
    # Detections: per image by score (ties keep file order), at most max_dets each.
    dt_img = np.searchsorted(image_list, dt_image_ids)
    order = np.lexsort((np.arange(len(dt_img)), -dt_scores, dt_img))
    dt_img_sorted = dt_img[order]
    first = np.searchsorted(dt_img_sorted, dt_img_sorted, side="left")
    rank = np.arange(len(order)) - first
    kept = order[rank < max_dets]
    dt_rank, dt_img = rank[rank < max_dets], dt_img[kept]
    dt_area = dt_areas[kept]

    # Ground truth: per image in file order.
    gt_img = np.searchsorted(image_list, gt.image_ids)
    gt_order = np.argsort(gt_img, kind="stable")
    gt_img = gt_img[gt_order]
    gt_area = gt_area[gt_order]
    gt_crowd = gt.iscrowd[gt_order].astype(bool)
    gt_ignore = gt_crowd | (labelled[gt_order] == 0)
    gt_ign_area = np.stack([gt_ignore | (gt_area < lo) | (gt_area > hi)
                            for lo, hi in AREA_RANGES.values()])
    matched, dt_ignored = _match(
        dt_img, dt_area, gt_img, gt_crowd, gt_ign_area, n_img,
        lambda dets, people: pair_oks(kept[dets], gt_order[people]))
    # Accumulation order: all kept detections by score (ties: image order, then rank).
    global_order = np.lexsort((dt_rank, dt_img, -dt_scores[kept]))
    return _Matches(matched[..., global_order], dt_ignored[..., global_order],
                    image_list[dt_img[global_order]], gt_ign_area, image_list[gt_img])


def _match(dt_img: np.ndarray, dt_area: np.ndarray, gt_img: np.ndarray, gt_crowd: np.ndarray,
           gt_ign_area: np.ndarray, n_img: int, pair_oks: PairOks
           ) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's greedy matching, (area range, threshold, detection) -> matched, ignored;
    image by image, in buckets of equal padded ground-truth count. Detections and people are
    in image order; `pair_oks` takes their rows."""
    n_area, n_thr = len(gt_ign_area), len(IOU_THRESHOLDS)
    gt_count = np.bincount(gt_img, minlength=n_img)
    gt_start = np.concatenate([[0], np.cumsum(gt_count)[:-1]])
    dt_count = np.bincount(dt_img, minlength=n_img)
    dt_start = np.concatenate([[0], np.cumsum(dt_count)[:-1]])
    matched = np.zeros((n_area, n_thr, len(dt_img)), bool)
    dt_ignored = np.zeros((n_area, n_thr, len(dt_img)), bool)
    both = np.flatnonzero((gt_count > 0) & (dt_count > 0))
    bucket = np.ceil(np.log2(gt_count[both])).astype(int)
    thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, :, None, None]
    for b in np.unique(bucket):
        imgs = both[bucket == b]
        g_pad, r_pad = int(gt_count[imgs].max()), int(dt_count[imgs].max())
        g_idx = gt_start[imgs, None] + np.arange(g_pad)
        g_ok = np.arange(g_pad) < gt_count[imgs, None]
        g_idx = np.where(g_ok, g_idx, 0)
        d_idx = dt_start[imgs, None] + np.arange(r_pad)
        d_ok = np.arange(r_pad) < dt_count[imgs, None]
        d_idx = np.where(d_ok, d_idx, 0)
        ious = pair_oks(d_idx, g_idx)
        ign = gt_ign_area[:, g_idx]                                 # (A, n, G)
        crowd = gt_crowd[g_idx]
        taken = np.zeros((n_area, n_thr, len(imgs), g_pad), bool)
        rows = np.arange(len(imgs))
        for r in range(r_pad):
            iou = np.where(g_ok, ious[:, r, :], -1.0)[None, None]    # (1, 1, n, G)
            cand = (iou >= thr) & (~taken | crowd)
            best_n = _last_argmax(np.where(cand & ~ign[:, None], iou, -np.inf))
            best_i = _last_argmax(np.where(cand & ign[:, None], iou, -np.inf))
            has_n = (cand & ~ign[:, None]).any(-1)
            has_i = (cand & ign[:, None]).any(-1)
            m = np.where(has_n, best_n, best_i)
            hit = (has_n | has_i) & d_ok[:, r]
            a_i, t_i, n_i = np.nonzero(hit)
            taken[a_i, t_i, n_i, m[a_i, t_i, n_i]] = True
            dets = d_idx[rows, r]
            matched[a_i, t_i, dets[n_i]] = True
            dt_ignored[a_i, t_i, dets[n_i]] = ign[a_i, n_i, m[a_i, t_i, n_i]]
    for a, (lo, hi) in enumerate(AREA_RANGES.values()):
        outside = (dt_area < lo) | (dt_area > hi)
        dt_ignored[a] |= ~matched[a] & outside
    return matched, dt_ignored


def _accumulate(matched: np.ndarray, dt_ignored: np.ndarray, gt_ign_area: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Precision (threshold, recall point, area) and recall (threshold, area) of detections
    already in score order, as COCOeval.accumulate computes them."""
    n_area, n_thr = len(gt_ign_area), len(IOU_THRESHOLDS)
    precision = -np.ones((n_thr, len(RECALL_THRESHOLDS), n_area))
    recall = -np.ones((n_thr, n_area))
    for a in range(n_area):
        n_pos = int((~gt_ign_area[a]).sum())
        if n_pos == 0:
            continue
        tm, ti = matched[a], dt_ignored[a]
        tp = np.cumsum(tm & ~ti, axis=1, dtype=np.float64)
        fp = np.cumsum(~tm & ~ti, axis=1, dtype=np.float64)
        nd = tp.shape[1]
        for t in range(n_thr):
            rc = tp[t] / n_pos
            pr = tp[t] / (fp[t] + tp[t] + np.spacing(1))
            recall[t, a] = rc[-1] if nd else 0
            pr = np.maximum.accumulate(pr[::-1])[::-1]      # precision made monotone
            idx = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
            q = np.zeros(len(RECALL_THRESHOLDS))
            ok = idx < nd
            q[ok] = pr[idx[ok]]
            precision[t, :, a] = q
    return precision, recall


def _last_argmax(values: np.ndarray) -> np.ndarray:
    """Argmax over the last axis; ties go to the last index (COCOeval keeps the later gt)."""
    g = values.shape[-1]
    return g - 1 - np.argmax(values[..., ::-1], axis=-1)


def _mean(values: np.ndarray) -> float:
    """COCOeval.summarize's mean: over the entries that are not -1 (no ground truth), else -1."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else -1.0


def _summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    all_, med, large = 0, 1, 2
    return {
        "AP": _mean(precision[:, :, all_]), "AP50": _mean(precision[0, :, all_]),
        "AP75": _mean(precision[5, :, all_]), "APm": _mean(precision[:, :, med]),
        "APl": _mean(precision[:, :, large]), "AR": _mean(recall[:, all_]),
        "AR50": _mean(recall[0, all_]), "AR75": _mean(recall[5, all_]),
        "ARm": _mean(recall[:, med]), "ARl": _mean(recall[:, large]),
    }


def _summarize_crowd(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """CrowdPose's first six numbers (all people, no area ranges)."""
    return {"AP": _mean(precision[:, :, 0]), "AP50": _mean(precision[0, :, 0]),
            "AP75": _mean(precision[5, :, 0]), "AR": _mean(recall[:, 0]),
            "AR50": _mean(recall[0, 0]), "AR75": _mean(recall[5, 0])}


# How each number is printed: (title, OKS thresholds, people) by name, as COCOeval and
# CrowdPose's evaluation print them.
_ROWS = {"AP": ("Average Precision", "0.50:0.95", "all"), "AP50": ("Average Precision", "0.50",
                                                                   "all"),
         "AP75": ("Average Precision", "0.75", "all"),
         "APm": ("Average Precision", "0.50:0.95", "medium"),
         "APl": ("Average Precision", "0.50:0.95", "large"),
         "AR": ("Average Recall", "0.50:0.95", "all"), "AR50": ("Average Recall", "0.50", "all"),
         "AR75": ("Average Recall", "0.75", "all"),
         "ARm": ("Average Recall", "0.50:0.95", "medium"),
         "ARl": ("Average Recall", "0.50:0.95", "large"),
         "AP_easy": ("Average Precision", "0.50:0.95", "easy"),
         "AP_medium": ("Average Precision", "0.50:0.95", "medium"),
         "AP_hard": ("Average Precision", "0.50:0.95", "hard")}


def format_stats(stats: dict[str, float]) -> str:
    """The numbers as COCOeval (areas) or CrowdPose's evaluation (crowd levels) prints them."""
    label = "type" if "AP_easy" in stats else "area"
    lines = []
    for name in (n for n in _ROWS if n in stats):
        title, iou, people = _ROWS[name]
        short = "AP" if title.endswith("Precision") else "AR"
        lines.append(f" {title:<18} ({short}) @[ OKS={iou:<9} | {label}={people:>6} | "
                     f"maxDets= 20 ] = {stats[name]:.3f}")
    parts = [k.removesuffix("_AP") for k in stats if k.endswith("_AP") and k != "AP"]
    if parts:
        names = [n for n in _ROWS if n in stats]
        lines.append(f" {'part':<11}" + "".join(f"{n:>7}" for n in names))
        lines += [f" {part:<11}" + "".join(f"{stats[f'{part}_{n}']:7.3f}" for n in names)
                  for part in parts]
    return "\n".join(lines)
