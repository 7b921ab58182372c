"""Person boxes: IoU, the one box NMS, checks, and boxes read from COCO JSON files.

Boxes are COCO's (x, y, w, h) in image pixels; an optional fifth column is the box's score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.coco import group_by_image, parse_boxes, parse_images
from ..errors import HrposeError
from ..fields import flag, record
from ..io import read_json


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).copy()
    boxes[:, 2:4] -= boxes[:, 0:2]
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU (len(a), len(b)) of two sets of (x, y, w, h) boxes."""
    a, b = np.asarray(a, np.float64)[:, :4], np.asarray(b, np.float64)[:, :4]
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    union = a[:, 2:].prod(-1)[:, None] + b[:, 2:].prod(-1)[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first. A box is
    dropped when its IoU with a kept, higher-scoring box exceeds `iou_threshold`. One row of
    IoU per kept box: memory linear in the boxes."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        order = rest[box_iou(boxes[i : i + 1], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, np.int64)


MAX_BOX_PIXELS = 2**24         # float32 holds every integer up to here


def check_boxes(boxes: object, image_wh: tuple[int, int], name: str) -> np.ndarray:
    """Validated (N, 5) boxes x, y, w, h, score (score 1 when not given) for an image of
    `image_wh`. A box of zero size, or one wholly outside the image, is an error naming `name`
    and the box's index."""
    try:
        array = np.asarray(boxes, np.float64)
    except (TypeError, ValueError):
        raise HrposeError(f"{name}: boxes must be numbers, (N, 4) x, y, w, h or (N, 5) with a "
                          "score") from None
    if array.size == 0:
        return np.zeros((0, 5))
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] not in (4, 5):
        raise HrposeError(f"{name}: boxes must be (N, 4) x, y, w, h or (N, 5) with a score; got "
                          f"shape {array.shape}")
    # Pixels within float32's exact integers: the pipelines compute in float32, where 1e200
    # is infinite and a 1e30 box's keypoints overflow.
    bad = ~(np.isfinite(array[:, :4]) & (np.abs(array[:, :4]) <= MAX_BOX_PIXELS)).all(1)
    if array.shape[1] == 5:
        bad |= ~np.isfinite(array[:, 4])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise HrposeError(f"{name}: box {i} {array[i].tolist()} has a value that is not a "
                          f"finite number, or a coordinate beyond +-{MAX_BOX_PIXELS:,} pixels")
    if array.shape[1] == 4:
        array = np.c_[array, np.ones(len(array))]
    width, height = image_wh
    for i, (x, y, w, h, _) in enumerate(array):
        if w <= 0 or h <= 0:
            raise HrposeError(f"{name}: box {i} [{x:g}, {y:g}, {w:g}, {h:g}] has zero size "
                              "(boxes are x, y, w, h)")
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            raise HrposeError(f"{name}: box {i} [{x:g}, {y:g}, {w:g}, {h:g}] lies outside the "
                              f"{width}x{height} image (boxes are x, y, w, h)")
    return array


def load_box_file(path: str | Path) -> tuple[dict[int, np.ndarray], dict[str, int]]:
    """Person boxes from a COCO detection results file ([{image_id, bbox, score,
    category_id}, ...]) or a COCO annotation file (its people's boxes, score 1).

    Returns boxes by image id, (N, 5) x, y, w, h, score, and the file's image names -> ids (from
    an annotation file's "images"; empty for a results file, whose ids are matched to numbered
    file names such as COCO's 000000000785.jpg, or to video frame numbers)."""
    path = Path(path)
    data = read_json(path)
    names: dict[str, int] = {}
    if isinstance(data, dict):
        if "annotations" not in data:
            raise HrposeError(f"{path}: a box file is a COCO detection list or a COCO "
                              "annotation file with 'annotations'")
        if not isinstance(data.get("annotations"), list):
            raise HrposeError(f"{path}: field 'annotations' must be a list")
        names = {info.file_name: image_id for image_id, info in
                 parse_images(path, data.get("images") or []).items()}
        entries = [a for i, a in enumerate(data["annotations"])
                   if not flag(record(a, f"{path}: annotation #{i}").get(
                       "iscrowd", 0), f"{path}: annotation #{i}", "iscrowd")]
    elif isinstance(data, list):
        entries = data
    else:
        raise HrposeError(f"{path}: a box file is a COCO detection list or annotation file")
    found = parse_boxes(path, entries, 1, "entry ", default_score=1.0)
    ids, rows = group_by_image(found.image_ids)
    return {int(i): np.column_stack([found.boxes[r], found.scores[r]])
            for i, r in zip(ids, rows)}, names
