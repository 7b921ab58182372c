"""Keypoint annotation files -> validated arrays: COCO `person_keypoints_*.json` (and any
COCO-format keypoint file: CrowdPose, OCHuman, custom sets), MPII in its common json form, and
COCO detection files (`COCO_val2017_detections_AP_H_56_person.json`).

Every problem is one line naming the file, the annotation id and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import HrposeError
from ..io import read_json
from ..skeletons import MPII, Skeleton, skeleton_for


@dataclass(frozen=True)
class ImageInfo:
    id: int
    file_name: str
    width: int | None = None
    height: int | None = None


@dataclass
class KeypointData:
    """People of one keypoint file, as arrays indexed by person (M of them)."""

    path: Path
    skeleton: Skeleton
    images: dict[int, ImageInfo]
    ids: np.ndarray                  # (M,) annotation ids
    image_ids: np.ndarray            # (M,)
    boxes: np.ndarray                # (M, 4) x, y, w, h
    keypoints: np.ndarray            # (M, K, 3) x, y, visibility (0 none, 1 occluded, 2 seen)
    iscrowd: np.ndarray              # (M,) bool
    areas: np.ndarray                # (M,) segmentation area (COCO) or box area
    num_keypoints: np.ndarray        # (M,)
    category_id: int = 1
    head_sizes: np.ndarray | None = None    # (M,) MPII only: the PCKh normaliser
    kind: str = "coco"               # "coco" (scored by OKS AP) or "mpii" (scored by PCKh)
    categories: list[dict] = field(default_factory=list)
    # Segmentations (polygons or RLE) of the people bottom-up training ignores: crowd regions
    # and people without keypoints, by row.
    ignore_segmentations: dict[int, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


def _fail(path: Path, where: str, message: str) -> HrposeError:
    return HrposeError(f"{path}: {where}: {message}")


def find_dataset(root: str | Path, ann: str | Path | None = None,
                 images: str | Path | None = None) -> tuple[Path, Path]:
    """(annotation file, image folder) of a data root: COCO's `annotations/
    person_keypoints_val2017.json` + `val2017/` (or the one other `person_keypoints_<split>.json`
    + `<split>/`), or the root's single .json file + the root (or its `images/`)."""
    root = Path(root)
    if not root.is_dir():
        raise HrposeError(f"{root}: data root is not a folder")
    if ann is None:
        coco = root / "annotations" / "person_keypoints_val2017.json"
        found = ([coco] if coco.is_file() else
                 sorted((root / "annotations").glob("person_keypoints_*.json"))
                 or sorted(root.glob("*.json")))
        found = [f for f in found if "det" not in f.name.lower()]
        if len(found) != 1:
            raise HrposeError(f"{root}: cannot tell the annotation file (found "
                              f"{[f.name for f in found] or 'none'}); pass --ann FILE")
        ann = found[0]
    if images is None:
        split = Path(ann).stem.removeprefix("person_keypoints_")    # train2017, val2017
        candidates = [root / split, root / "val2017", root / "images", root]
        images = next(p for p in candidates if p.is_dir())
    return Path(ann), Path(images)


def _numbers(path: Path, where: str, name: str, value: object, length: int | None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(path, where, f"field {name!r} must be a list of numbers") from None
    if arr.ndim != 1 or (length is not None and arr.size != length):
        expected = f"{length} numbers" if length is not None else "a flat list"
        raise _fail(path, where, f"field {name!r} has {arr.size} numbers, expected {expected}")
    if not np.isfinite(arr).all():
        raise _fail(path, where, f"field {name!r} has a non-finite number")
    return arr


def load_coco(path: str | Path, skeleton: Skeleton | None = None) -> KeypointData:
    """Read a COCO keypoint file. The keypoint set is `skeleton`, or the built-in one whose joint
    names equal the category's (COCO-17, CrowdPose-14)."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise HrposeError(f"{path}: expected a COCO object with 'images', 'annotations' and "
                          "'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise HrposeError(f"{path}: missing list field {key!r}")
    keypoint_cats = [c for c in data["categories"] if isinstance(c, dict) and "keypoints" in c]
    if not keypoint_cats:
        raise HrposeError(f"{path}: no category has 'keypoints'; is this a keypoint file?")
    category = keypoint_cats[0]
    if skeleton is None:
        skeleton = skeleton_for(len(category["keypoints"]), category["keypoints"])
    k = skeleton.num_joints
    if len(category["keypoints"]) != k:
        raise HrposeError(f"{path}: category {category.get('id')} has "
                          f"{len(category['keypoints'])} keypoints, the keypoint set "
                          f"{skeleton.name!r} has {k}")
    cat_id = category.get("id", 1)

    images: dict[int, ImageInfo] = {}
    for i, img in enumerate(data["images"]):
        where = f"image #{i}"
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise _fail(path, where, "needs fields 'id' and 'file_name'")
        images[int(img["id"])] = ImageInfo(int(img["id"]), str(img["file_name"]),
                                           img.get("width"), img.get("height"))

    anns = [a for a in data["annotations"]
            if isinstance(a, dict) and a.get("category_id", cat_id) == cat_id]
    m = len(anns)
    ids = np.zeros(m, np.int64)
    image_ids = np.zeros(m, np.int64)
    boxes = np.zeros((m, 4))
    keypoints = np.zeros((m, k, 3))
    iscrowd = np.zeros(m, bool)
    areas = np.zeros(m)
    num_kp = np.zeros(m, np.int64)
    ignore: dict[int, object] = {}
    for i, ann in enumerate(anns):
        if "id" not in ann:
            raise _fail(path, f"annotation #{i}", "missing field 'id'")
        where = f"annotation {ann['id']}"
        for key in ("image_id", "bbox", "keypoints"):
            if key not in ann:
                raise _fail(path, where, f"missing field {key!r}")
        if ann["image_id"] not in images:
            raise _fail(path, where, f"image_id {ann['image_id']} is not in 'images'")
        box = _numbers(path, where, "bbox", ann["bbox"], 4)
        if box[2] < 0 or box[3] < 0:
            raise _fail(path, where, f"field 'bbox' {box.tolist()} has a negative width or "
                        "height")
        kp = _numbers(path, where, "keypoints", ann["keypoints"], 3 * k).reshape(k, 3)
        if not np.isin(kp[:, 2], (0, 1, 2)).all():
            raise _fail(path, where, "field 'keypoints' has a visibility flag other than 0, 1, 2")
        ids[i], image_ids[i] = ann["id"], ann["image_id"]
        boxes[i], keypoints[i] = box, kp
        iscrowd[i] = bool(ann.get("iscrowd", 0))
        areas[i] = float(ann["area"]) if "area" in ann else box[2] * box[3]
        num_kp[i] = int(ann["num_keypoints"]) if "num_keypoints" in ann else int((kp[:, 2] > 0)
                                                                                 .sum())
        if (iscrowd[i] or num_kp[i] == 0) and ann.get("segmentation"):
            ignore[i] = ann["segmentation"]
    return KeypointData(path, skeleton, images, ids, image_ids, boxes,
                        keypoints.astype(np.float32), iscrowd, areas, num_kp, int(cat_id),
                        categories=list(data["categories"]), ignore_segmentations=ignore)


def load_mpii(path: str | Path) -> KeypointData:
    """Read MPII in the json form of mmpose and the HRNet code: one entry per person with
    `image`, `center`, `scale` (box side / 200), `joints` (16 x 2) and `joints_vis`.

    MPII's coordinates are 1-based (MATLAB); they are shifted to hrpose's 0-based pixels. The
    person box is the official one: centre moved down by 15 * scale, side 200 * scale. The PCKh
    normaliser is 0.6 x the head box diagonal when an entry has `headbox` [[x1, y1], [x2, y2]],
    else the head segment length (upper neck to head top), PCKh's definition."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise HrposeError(f"{path}: expected a list of MPII entries")
    k = MPII.num_joints
    m = len(data)
    images: dict[str, ImageInfo] = {}
    image_ids = np.zeros(m, np.int64)
    boxes = np.zeros((m, 4))
    keypoints = np.zeros((m, k, 3), np.float32)
    head_sizes = np.zeros(m)
    for i, entry in enumerate(data):
        where = f"entry #{i}"
        if not isinstance(entry, dict):
            raise _fail(path, where, "must be an object")
        for key in ("image", "center", "scale", "joints"):
            if key not in entry:
                raise _fail(path, where, f"missing field {key!r}")
        name = str(entry["image"])
        info = images.setdefault(name, ImageInfo(len(images) + 1, name))
        center = _numbers(path, where, "center", entry["center"], 2)
        scale = float(_numbers(path, where, "scale", [entry["scale"]], 1)[0])
        if scale <= 0:
            raise _fail(path, where, f"field 'scale' must be positive, got {scale}")
        joints = _numbers(path, where, "joints", np.ravel(entry["joints"]), 2 * k).reshape(k, 2)
        vis = _numbers(path, where, "joints_vis", entry.get("joints_vis", [1] * k), k)
        center = center + np.array([0.0, 15 * scale]) - 1
        side = 200 * scale
        image_ids[i] = info.id
        boxes[i] = [center[0] - side / 2, center[1] - side / 2, side, side]
        keypoints[i, :, :2] = joints - 1
        keypoints[i, :, 2] = np.where(vis > 0, 2, 0)
        if "headbox" in entry:
            hb = _numbers(path, where, "headbox", np.ravel(entry["headbox"]), 4)
            head_sizes[i] = 0.6 * math.hypot(hb[2] - hb[0], hb[3] - hb[1])
        else:
            head_sizes[i] = float(np.linalg.norm(joints[9] - joints[8]))
    by_id = {info.id: info for info in images.values()}
    return KeypointData(path, MPII, by_id, np.arange(1, m + 1), image_ids, boxes, keypoints,
                        np.zeros(m, bool), boxes[:, 2] * boxes[:, 3],
                        (keypoints[..., 2] > 0).sum(-1), 1, head_sizes, kind="mpii")


def group_by_image(image_ids: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(distinct image ids, the row indices of each), rows kept in their original order."""
    order = np.argsort(image_ids, kind="stable")
    ids = image_ids[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
    return ids[starts], np.split(order, starts[1:]) if len(ids) else []


@dataclass
class Detections:
    image_ids: np.ndarray        # (D,)
    boxes: np.ndarray            # (D, 4) x, y, w, h
    scores: np.ndarray           # (D,)


def load_detections(path: str | Path, data: KeypointData, min_score: float = 0.0) -> Detections:
    """Person boxes from a COCO detection results file, kept when category_id is the keypoint
    category (when given) and score >= min_score."""
    path = Path(path)
    dets = read_json(path)
    if not isinstance(dets, list):
        raise HrposeError(f"{path}: expected a list of detections")
    found = parse_boxes(path, dets, data.category_id, "detection #",
                        images=(data.images, data.path.name))
    keep = found.scores >= min_score
    return Detections(found.image_ids[keep], found.boxes[keep], found.scores[keep])


def parse_boxes(path: Path, entries: list, category_id: int, label: str, *,
                images: tuple[dict, str] | None = None, default_score: float | None = None
                ) -> Detections:
    """The one parser of person boxes in COCO files: detection results ({image_id, bbox,
    score, category_id}) or annotations. Entries of another category are skipped; `images`
    (when given): the ids an entry may name and the file they are from; `default_score` stands
    in for a missing score.
    A bad entry is one line naming the file and `label` + its index."""
    image_ids, boxes, scores = [], [], []
    for i, entry in enumerate(entries):
        where = f"{label}{i}"
        try:
            if entry.get("category_id", category_id) != category_id:
                continue
            image_id = int(entry["image_id"])
            box = [float(v) for v in entry["bbox"]]
            score = float(entry["score"] if default_score is None
                          else entry.get("score", default_score))
            if len(box) != 4 or not np.isfinite([*box, score]).all():
                raise ValueError
        except (KeyError, TypeError, ValueError, AttributeError):
            raise HrposeError(f"{path}: {where} needs image_id, bbox [x, y, w, h] and a numeric "
                              "score") from None
        if box[2] < 0 or box[3] < 0:
            raise _fail(path, where, f"field 'bbox' {box} has a negative width or height")
        if images is not None and image_id not in images[0]:
            raise _fail(path, where, f"image_id {image_id} is not in {images[1]}")
        image_ids.append(image_id)
        boxes.append(box)
        scores.append(score)
    return Detections(np.asarray(image_ids, np.int64),
                      np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64))


def load_keypoints(path: str | Path, skeleton: Skeleton | None = None) -> KeypointData:
    """COCO or MPII, by the file's content."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
    except OSError as e:
        raise HrposeError(f"{path}: cannot read ({e.strerror})") from None
    if head.startswith(b"["):
        return load_mpii(path)
    return load_coco(path, skeleton)
