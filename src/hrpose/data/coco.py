"""Keypoint annotation files -> validated arrays: COCO `person_keypoints_*.json` (and any
COCO-format keypoint file: CrowdPose, OCHuman, custom sets), COCO-WholeBody's (its parts in
separate fields, joined into 133 joints), MPII in its common json form, and COCO detection
files (`COCO_val2017_detections_AP_H_56_person.json`).

Every problem is one line naming the file, the annotation id and the field.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import HrposeError, plural
from ..fields import (
    COORDINATE_LIMIT,
    fail,
    flag,
    integer,
    number,
    numbers,
    of_category,
    record,
    required,
    string,
)
from ..io import read_json
from ..skeletons import (
    COCO,
    COCO_WHOLEBODY,
    FROM_ANNOTATIONS,
    FROM_DATA,
    MPII,
    Skeleton,
    builtin_for_names,
    load_skeleton_file,
    skeleton_from_category,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageInfo:
    id: int
    file_name: str
    width: int | None = None
    height: int | None = None
    crowd_index: float | None = None     # CrowdPose: the image's crowdIndex in [0, 1]


@dataclass(frozen=True)
class PartField:
    """Where one part of a whole-body person lives in COCO-WholeBody's records: its keypoints'
    field, its validity flag (annotations) and its score (results, as xtcocotools reads it)."""

    part: str
    keypoints: str
    valid: str | None
    score: str


# COCO-WholeBody's layout, in its joints' order (annotations and the reference results).
WHOLEBODY_FIELDS = (PartField("body", "keypoints", None, "score"),
                    PartField("foot", "foot_kpts", "foot_valid", "foot_score"),
                    PartField("face", "face_kpts", "face_valid", "face_score"),
                    PartField("left_hand", "lefthand_kpts", "lefthand_valid", "lefthand_score"),
                    PartField("right_hand", "righthand_kpts", "righthand_valid",
                              "righthand_score"))
WHOLEBODY_SCORE = "wholebody_score"      # the whole person's score in the reference results


def is_wholebody_record(entry: object) -> bool:
    """Whether an annotation or result is in COCO-WholeBody's layout (parts in fields)."""
    return isinstance(entry, dict) and WHOLEBODY_FIELDS[1].keypoints in entry


def wholebody_keypoints(entry: dict, where: str) -> np.ndarray:
    """A COCO-WholeBody record's parts joined into (133, 3) rows, in the set's order."""
    rows = []
    for part, (_, start, stop) in zip(WHOLEBODY_FIELDS, COCO_WHOLEBODY.parts):
        rows.append(numbers(required(entry, part.keypoints, where), where, part.keypoints,
                            3 * (stop - start)).reshape(-1, 3))
    return np.concatenate(rows)


def wholebody_fields(keypoints: np.ndarray) -> dict[str, list[float]]:
    """A person's (133, 3) rows as COCO-WholeBody's part fields (`wholebody_keypoints`'s
    inverse)."""
    return {f.keypoints: keypoints[start:stop].ravel().tolist()
            for f, (_, start, stop) in zip(WHOLEBODY_FIELDS, COCO_WHOLEBODY.parts)}


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
    head_source: str | None = None   # MPII: where the head sizes come from
    categories: list[dict] = field(default_factory=list)
    # Segmentations (polygons or RLE) of the people bottom-up training ignores: crowd regions
    # and people without keypoints, by row.
    ignore_segmentations: dict[int, object] = field(default_factory=dict)
    # COCO-WholeBody's layout, read with its 133-joint set: results are written in it too.
    wholebody: bool = False

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, image_ids: Sequence[int]) -> KeypointData:
        """The same file's people and images, of `image_ids` only (scoring part of a set)."""
        rows = np.flatnonzero(np.isin(self.image_ids, np.asarray(image_ids, np.int64)))
        new_row = {int(r): i for i, r in enumerate(rows)}
        arrays = {name: getattr(self, name)[rows] for name in (
            "ids", "image_ids", "boxes", "keypoints", "iscrowd", "areas", "num_keypoints")}
        return replace(self, images={i: self.images[i] for i in image_ids}, **arrays,
                       head_sizes=None if self.head_sizes is None else self.head_sizes[rows],
                       ignore_segmentations={new_row[r]: v for r, v in
                                             self.ignore_segmentations.items()
                                             if r in new_row})


def find_dataset(root: str | Path, ann: str | Path | None = None,
                 images: str | Path | None = None) -> tuple[Path, Path]:
    """(annotation file, image folder) of a data root: COCO's `annotations/
    person_keypoints_val2017.json` + `val2017/` (or the one other `person_keypoints_<split>.json`
    + `<split>/`, or COCO-WholeBody's one `coco_wholebody_<split>_v1.0.json` + `<split>2017/`),
    or the root's single .json file + the root (or its `images/`)."""
    root = Path(root)
    if not root.is_dir():
        raise HrposeError(f"{root}: data root is not a folder")
    if ann is None:
        coco = root / "annotations" / "person_keypoints_val2017.json"
        found = ([coco] if coco.is_file() else
                 sorted((root / "annotations").glob("person_keypoints_*.json"))
                 or sorted((root / "annotations").glob("coco_wholebody_*.json"))
                 or sorted(root.glob("*.json")))
        found = [f for f in found if "det" not in f.name.lower()]
        if len(found) != 1:
            raise HrposeError(f"{root}: cannot tell the annotation file (found "
                              f"{[f.name for f in found] or 'none'}); pass --ann FILE")
        ann = found[0]
    if images is None:
        split = Path(ann).stem.removeprefix("person_keypoints_")    # train2017, val2017
        if split.startswith("coco_wholebody_"):       # coco_wholebody_train_v1.0: train2017
            split = split.split("_")[2] + "2017"
        candidates = [root / split, root / "val2017", root / "images", root]
        images = next(p for p in candidates if p.is_dir())
    return Path(ann), Path(images)


def check_images(data: KeypointData, image_dir: Path, what: str, allow_missing: bool = False
                 ) -> None:
    """Every image `data` names is a file in `image_dir`: checked before a run starts, so that a
    wrong folder is found at once. `allow_missing` (training, which skips an unreadable image)
    refuses only a folder that holds none of them."""
    if not image_dir.is_dir():
        raise HrposeError(f"{image_dir}: {what} image folder not found")
    names = [info.file_name for info in data.images.values()]
    missing = [name for name in names if not (image_dir / name).is_file()]
    if missing and (not allow_missing or len(missing) == len(names)):
        raise HrposeError(f"{image_dir}: {len(missing):,} of the {plural(len(names), 'image')} "
                          f"{data.path.name} names are not there (first: {missing[0]}); "
                          f"is this the {what} image folder?")
    if missing:
        log.warning("%s: %d of the %s %s names are missing; their people are skipped",
                    image_dir, len(missing), plural(len(names), "image"), data.path.name)


def load_coco(path: str | Path, keypoints: Skeleton | str = FROM_DATA) -> KeypointData:
    """Read a COCO keypoint file with its keypoint set (`keypoint_set_for`: a set, FROM_DATA or
    FROM_ANNOTATIONS). A set whose joints are the category's in another order reorders the
    file's joints to the set's.

    Every field is checked (types, lengths, finite values, flags, segmentations) and ids must
    be unique and resolve; annotations of other categories are skipped, as COCO's API does."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise HrposeError(f"{path}: expected a COCO object with 'images', 'annotations' and "
                          "'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise HrposeError(f"{path}: missing list field {key!r}")
    category = _keypoint_category(path, data["categories"])
    wholebody = any(is_wholebody_record(a) for a in data["annotations"][:64])
    if wholebody:
        category = _wholebody_category(path, category)
    names = category["keypoints"]
    skeleton = keypoint_set_for(path, category, keypoints)
    k = skeleton.num_joints
    order = _joint_order(path, names, skeleton, subset=wholebody)
    cat_id = category["id"]
    images = parse_images(path, data["images"])

    anns = [ann for _, ann in of_category(data["annotations"], cat_id, f"{path}: annotation #")]
    m = len(anns)
    ids = np.zeros(m, np.int64)
    image_ids = np.zeros(m, np.int64)
    boxes = np.zeros((m, 4))
    keypoints = np.zeros((m, k, 3))
    iscrowd = np.zeros(m, bool)
    areas = np.zeros(m)
    num_kp = np.zeros(m, np.int64)
    ignore: dict[int, object] = {}
    seen: dict[int, int] = {}
    for i, ann in enumerate(anns):
        ids[i] = integer(required(ann, "id", f"{path}: annotation #{i}"),
                         f"{path}: annotation #{i}", "id")
        where = f"{path}: annotation {ids[i]}"
        if int(ids[i]) in seen:
            raise fail(where, f"the id is used twice (annotations #{seen[int(ids[i])]} "
                              f"and #{i}); ids must be unique")
        seen[int(ids[i])] = i
        image_ids[i] = integer(required(ann, "image_id", where), where, "image_id")
        if image_ids[i] not in images:
            raise fail(where, f"image_id {image_ids[i]} is not in 'images'")
        boxes[i] = numbers(required(ann, "bbox", where), where, "bbox", 4)
        if boxes[i, 2] < 0 or boxes[i, 3] < 0:
            raise fail(where, f"field 'bbox' {boxes[i].tolist()} has a negative width or "
                              "height")
        kp = (_wholebody_rows(ann, where) if wholebody else numbers(
            required(ann, "keypoints", where), where, "keypoints", len(names) * 3
        ).reshape(-1, 3))[order]
        if not np.isin(kp[:, 2], (0, 1, 2)).all():
            raise fail(where, "field 'keypoints' has a visibility flag other than 0, 1, 2")
        keypoints[i] = kp
        iscrowd[i] = flag(ann.get("iscrowd", 0), where, "iscrowd")
        areas[i] = (number(ann["area"], where, "area", low=0) if "area" in ann
                    else boxes[i, 2] * boxes[i, 3])
        # COCO-WholeBody's num_keypoints counts the body only: count the rows read.
        num_kp[i] = (integer(ann["num_keypoints"], where, "num_keypoints", 0, k)
                     if "num_keypoints" in ann and not wholebody
                     else int((kp[:, 2] > 0).sum()))
        if ann.get("segmentation"):
            info = images[int(image_ids[i])]
            segmentation = check_segmentation(ann["segmentation"], where, info)
            if iscrowd[i] or num_kp[i] == 0:
                ignore[i] = segmentation
    return KeypointData(path, skeleton, images, ids, image_ids, boxes,
                        keypoints.astype(np.float32), iscrowd, areas, num_kp, int(cat_id),
                        categories=list(data["categories"]), ignore_segmentations=ignore,
                        wholebody=wholebody and skeleton.parts == COCO_WHOLEBODY.parts)


def _wholebody_category(path: Path, category: dict) -> dict:
    """A COCO-WholeBody file's category names the 17 body joints; its rows are all 133."""
    if list(category["keypoints"]) != list(COCO.joints):
        raise HrposeError(f"{path}: its annotations have COCO-WholeBody's part fields "
                          "(foot_kpts, face_kpts, ...) but its category's joints are not "
                          "COCO's 17 body joints")
    return {**category, "keypoints": list(COCO_WHOLEBODY.joints)}


def _wholebody_rows(ann: dict, where: str) -> np.ndarray:
    """A whole-body annotation's 133 rows; a part flagged not valid is unlabelled."""
    rows = wholebody_keypoints(ann, where)
    for part, (_, start, stop) in zip(WHOLEBODY_FIELDS, COCO_WHOLEBODY.parts):
        if part.valid and part.valid in ann and not flag(ann[part.valid], where, part.valid):
            rows[start:stop] = 0
    return rows


def keypoint_set_for(path: Path, category: dict, keypoints: Skeleton | str = FROM_DATA
                     ) -> Skeleton:
    """The keypoint set of annotation file `path` (whose keypoint category is `category`):
    `keypoints` when it is a set; FROM_ANNOTATIONS: the category's names and links, flip pairs
    from the names; FROM_DATA: the set file beside the annotations (keypoints.yaml, as
    `hrpose data convert` writes it, in the file's folder or the one above), else the built-in
    set with the category's joint names."""
    if isinstance(keypoints, Skeleton):
        return keypoints
    if keypoints == FROM_ANNOTATIONS:
        return skeleton_from_category(category, f"{path}: category {category['id']}")
    if keypoints != FROM_DATA:
        raise HrposeError(f"keypoint set {keypoints!r} is not resolved")
    for folder in (path.parent, path.parent.parent):
        if (folder / SET_FILE).is_file():
            return load_skeleton_file(folder / SET_FILE)
    names = category["keypoints"]
    builtin = builtin_for_names(names)
    if builtin is None:
        raise HrposeError(
            f"{path}: its joints ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}) "
            f"are no built-in set's and no {SET_FILE} is beside it; set data.keypoints to "
            f"{FROM_ANNOTATIONS} (names and links from the file, flip pairs from the names), a "
            "set file or a set (joints, flip_pairs, links, sigmas)")
    return builtin


# The set file that `hrpose data convert` writes beside a data root's annotations.
SET_FILE = "keypoints.yaml"


def _joint_order(path: Path, names: list[str], skeleton: Skeleton, subset: bool = False
                 ) -> np.ndarray:
    """Rows of the file's joints in the set's order: the file must name the set's joints
    (`subset`: the set may take some of them, as a body model trained on whole-body files)."""
    if list(names) == list(skeleton.joints):
        return np.arange(len(names))
    if sorted(names) == sorted(skeleton.joints) or (
            subset and set(skeleton.joints) <= set(names)):
        return np.array([names.index(j) for j in skeleton.joints])
    missing = [j for j in skeleton.joints if j not in names]
    extra = [j for j in names if j not in skeleton.joints]
    what = "; ".join(part for part in (
        f"the set's {', '.join(missing[:4])} not in the file" if missing else "",
        f"the file's {', '.join(extra[:4])} not in the set" if extra else "") if part)
    raise HrposeError(f"{path}: its {len(names)} joints are not the keypoint set "
                      f"{skeleton.name!r} ({len(skeleton.joints)} joints: {what})")


def _keypoint_category(path: Path, categories: list) -> dict:
    """The first category with keypoints, checked: an integer id, a list of joint names."""
    for i, category in enumerate(categories):
        where = f"{path}: category #{i}"
        category = record(category, where)
        if "keypoints" in category:
            names = category["keypoints"]
            if not isinstance(names, list) or not names or not all(
                    isinstance(n, str) for n in names):
                raise fail(where, "field 'keypoints' must be a list of joint names")
            cat_id = integer(category.get("id", 1), where, "id")
            return {**category, "id": cat_id}
    raise HrposeError(f"{path}: no category has 'keypoints'; is this a keypoint file?")


def parse_images(path: Path, entries: list) -> dict[int, ImageInfo]:
    """The 'images' list by id: ids unique, file names given, sizes positive when stated."""
    images: dict[int, ImageInfo] = {}
    position: dict[int, int] = {}
    for i, img in enumerate(entries):
        where = f"{path}: image #{i}"
        img = record(img, where)
        image_id = integer(required(img, "id", where), where, "id")
        where = f"{path}: image {image_id}"
        if image_id in images:
            raise fail(where, f"the id is used twice (images #{position[image_id]} and "
                              f"#{i}: {images[image_id].file_name}, {img.get('file_name')}); "
                              "merged data sets need distinct ids")
        position[image_id] = i
        size = [None if img.get(key) is None else
                integer(img[key], where, key, 1, MAX_SIDE) for key in ("width", "height")]
        crowd = (None if img.get("crowdIndex") is None else
                 number(img["crowdIndex"], where, "crowdIndex", low=0, high=1))
        images[image_id] = ImageInfo(image_id, string(required(
            img, "file_name", where), where, "file_name"), *size, crowd)
    return images


# Any stated image side above this is garbage (io.MAX_IMAGE_PIXELS bounds what is decoded).
MAX_SIDE = 1 << 16


def check_segmentation(value: object, where: str, image: ImageInfo) -> object:
    """A COCO segmentation, checked before pycocotools' C code sees it: polygons (lists of at
    least 3 finite x, y points) or an RLE ({counts: list or COCO string, size: [h, w]}) whose
    runs cover exactly h x w pixels and whose size is the image's when that is stated."""
    if isinstance(value, list):
        polygons = []
        for j, polygon in enumerate(value):
            coords = numbers(polygon, where, f"segmentation[{j}]")
            if coords.size < 6 or coords.size % 2:
                raise fail(where, f"field 'segmentation[{j}]' is not a polygon (it "
                                  f"needs 3 or more x, y pairs; it has {coords.size} numbers)")
            polygons.append(coords.tolist())
        return polygons
    if not isinstance(value, dict):
        raise fail(where, "field 'segmentation' must be polygons or an RLE object")
    size = value.get("size")
    if not isinstance(size, list) or len(size) != 2:
        raise fail(where, "field 'segmentation.size' must be [height, width]")
    h, w = (integer(v, where, "segmentation.size", 1, MAX_SIDE) for v in size)
    if image.width is not None and image.height is not None and (h, w) != (image.height,
                                                                           image.width):
        raise fail(where, f"field 'segmentation.size' {[h, w]} is not its image's "
                          f"[{image.height}, {image.width}]")
    counts = value.get("counts")
    if isinstance(counts, str):
        runs = rle_string_counts(counts, where)
    elif isinstance(counts, list):
        runs = [integer(c, where, "segmentation.counts", 0) for c in counts]
    else:
        raise fail(where, "field 'segmentation.counts' must be a list or an RLE string")
    if sum(runs) != h * w:
        raise fail(where, f"field 'segmentation.counts' covers {sum(runs)} pixels, its "
                          f"size {h}x{w} has {h * w}")
    return {"counts": counts, "size": [h, w]}


def rle_string_counts(text: str, where: str) -> list[int]:
    """The runs of COCO's compressed RLE string (pycocotools' rleFrString: 5 bits a character
    from '0', a continuation bit, a sign bit, runs after the second stored as differences)."""
    runs: list[int] = []
    p = 0
    while p < len(text):
        x = k = 0
        more = True
        while more:
            if p >= len(text):
                raise fail(where, "field 'segmentation.counts' is a truncated RLE string")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise fail(where, "field 'segmentation.counts' is not an RLE string "
                                  f"(character {text[p]!r})")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            raise fail(where, "field 'segmentation.counts' has a negative run")
        runs.append(x)
    return runs


# MPII's ground-truth file of the validation people, as mmpose and the HRNet code name it.
HEADBOX_FILES = ("mpii_gt_val.mat", "gt_valid.mat")
HEAD_FALLBACK = "upper neck to head top (not the published protocol)"
SC_BIAS = 0.6          # MPII's head size: this x the head box's diagonal


def load_mpii(path: str | Path, headboxes: str | Path | None = None) -> KeypointData:
    """Read MPII in the json form of mmpose and the HRNet code: one entry per person with
    `image`, `center`, `scale` (box side / 200), `joints` (16 x 2) and `joints_vis`.

    MPII's coordinates are 1-based (MATLAB); they are shifted to hrpose's 0-based pixels. The
    person box is the official one: centre moved down by 15 * scale, side 200 * scale. The PCKh
    normaliser is 0.6 x the head box diagonal, the head boxes read from `headboxes` (MPII's
    `mpii_gt_val.mat`; when not given, such a file beside `path` with one box per entry) or
    from the entries' `headbox` [[x1, y1], [x2, y2]]; else the head segment (upper neck to head
    top), which is not the published protocol (`head_source` says which)."""
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
    has_headbox = np.zeros(m, bool)
    for i, entry in enumerate(data):
        where = f"{path}: entry #{i}"
        entry = record(entry, where)
        name = string(required(entry, "image", where), where, "image")
        info = images.setdefault(name, ImageInfo(len(images) + 1, name))
        center = numbers(required(entry, "center", where), where, "center", 2)
        scale = number(required(entry, "scale", where), where, "scale",
                       low=1e-6, high=COORDINATE_LIMIT / 200)
        joints = numbers(required(entry, "joints", where), where, "joints",
                         2 * k).reshape(k, 2)
        vis = (numbers(entry["joints_vis"], where, "joints_vis", k)
               if entry.get("joints_vis") is not None else np.ones(k))
        center = center + np.array([0.0, 15 * scale]) - 1
        side = 200 * scale
        image_ids[i] = info.id
        boxes[i] = [center[0] - side / 2, center[1] - side / 2, side, side]
        keypoints[i, :, :2] = joints - 1
        keypoints[i, :, 2] = np.where(vis > 0, 2, 0)
        if entry.get("headbox") is not None:
            hb = numbers(entry["headbox"], where, "headbox", 4)
            head_sizes[i] = SC_BIAS * math.hypot(hb[2] - hb[0], hb[3] - hb[1])
            has_headbox[i] = True
        else:
            head_sizes[i] = float(np.linalg.norm(joints[9] - joints[8]))
    head_source = ("the entries' headbox" if has_headbox.all() and m else
                   f"the entries' headbox where given, else {HEAD_FALLBACK}"
                   if has_headbox.any() else HEAD_FALLBACK)
    found = _headbox_file(path, m, headboxes)
    if found is not None:
        head_sizes = _headbox_sizes(*found, keypoints, path)
        head_source = f"{found[0].name} head boxes"
    zero = (head_sizes <= 0) & (keypoints[..., 2] > 0).any(-1)
    if zero.any():
        raise fail(f"{path}: entry #{int(np.argmax(zero))}",
                   f"the head size (PCKh's normaliser, from {head_source}) is 0")
    by_id = {info.id: info for info in images.values()}
    return KeypointData(path, MPII, by_id, np.arange(1, m + 1), image_ids, boxes, keypoints,
                        np.zeros(m, bool), boxes[:, 2] * boxes[:, 3],
                        (keypoints[..., 2] > 0).sum(-1), 1, head_sizes, kind="mpii",
                        head_source=head_source)


# What PCKh reads of mpii_gt_val.mat: head boxes (2 x 2 x people) and, to check that the file
# pairs with the json, the joints (16 x 2 x people, 1-based).
MAT_VARIABLES = ("headboxes_src", "pos_gt_src")


def _headbox_file(path: Path, people: int, given: str | Path | None
                  ) -> tuple[Path, dict[str, np.ndarray]] | None:
    """The head box file to use and its arrays: `given`, else one of HEADBOX_FILES beside
    `path` that holds one box per person of it (a training file beside the validation boxes
    keeps its own)."""
    if given is not None:
        return Path(given), _mat_arrays(Path(given), MAT_VARIABLES)
    for name in HEADBOX_FILES:
        candidate = path.parent / name
        if candidate.is_file():
            arrays = _mat_arrays(candidate, MAT_VARIABLES)
            boxes = arrays.get("headboxes_src")
            if boxes is not None and boxes.ndim == 3 and boxes.shape[-1] == people:
                return candidate, arrays
    return None


# scipy.io.loadmat runs in a child process: on some damaged files its C reader crashes the
# process instead of raising. The child hands back numeric arrays only (.npz, no pickles).
_READ_MAT = """
import sys
import numpy as np
from scipy.io import loadmat
try:
    mat = loadmat(sys.argv[1], variable_names=sys.argv[3:])
    arrays = {k: np.asarray(mat[k], np.float64) for k in sys.argv[3:] if k in mat}
except Exception as e:
    sys.exit(f"{type(e).__name__}: {e}")
np.savez(sys.argv[2], **arrays)
"""


def _mat_arrays(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Numeric variables of a MATLAB file, read with scipy.io.loadmat (no code in the file
    runs); variables it does not have are left out."""
    if not path.is_file():
        raise HrposeError(f"{path}: no such file")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "arrays.npz"
        try:
            done = subprocess.run([sys.executable, "-c", _READ_MAT, str(path), str(out), *keys],
                                  capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise HrposeError(f"{path}: reading it took over 2 minutes; is it a .mat file?"
                              ) from None
        if done.returncode != 0 or not out.is_file():
            why = (done.stderr.strip().splitlines() or ["its reader crashed"])[-1]
            raise HrposeError(f"{path}: not a MATLAB .mat file scipy can read ({why})")
        with np.load(out, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}


def _headbox_sizes(mat: Path, arrays: dict[str, np.ndarray], keypoints: np.ndarray,
                   json_path: Path) -> np.ndarray:
    """Head sizes (0.6 x head box diagonal) from MPII's ground-truth file, one per person of
    `json_path` in order. When the file also has the joints (pos_gt_src), they must agree with
    the json's: a file of another split or order is refused rather than mis-scored."""
    if "headboxes_src" not in arrays:
        raise HrposeError(f"{mat}: has no numeric variable 'headboxes_src'; MPII's "
                          "mpii_gt_val.mat has it (2 x 2 x people)")
    boxes = arrays["headboxes_src"]
    people = len(keypoints)
    if boxes.ndim != 3 or boxes.shape[:2] != (2, 2):
        raise HrposeError(f"{mat}: headboxes_src has shape {list(boxes.shape)}, expected "
                          "[2, 2, people]")
    if boxes.shape[2] != people:
        raise HrposeError(f"{mat}: {boxes.shape[2]} head boxes for the {people} people of "
                          f"{json_path.name}; give the head boxes of this split")
    if not np.isfinite(boxes).all():
        raise HrposeError(f"{mat}: headboxes_src has values that are not finite")
    positions = arrays.get("pos_gt_src")                  # (16, 2, people), 1-based
    if positions is not None and positions.shape == (keypoints.shape[1], 2, people):
        ours = keypoints[..., :2].transpose(1, 2, 0) + 1
        both = (keypoints[..., 2].T > 0) & np.isfinite(positions).all(1) & (positions > 0).all(1)
        gap = np.linalg.norm(ours - positions, axis=1)[both]
        if gap.size and float(np.median(gap)) > 1.0:
            raise HrposeError(f"{mat}: its joints are not those of {json_path.name} (median "
                              f"distance {float(np.median(gap)):.1f} px); the head boxes belong "
                              "to another file or order")
    return SC_BIAS * np.linalg.norm(boxes[1] - boxes[0], axis=0)


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
    degenerate = []
    for where, entry in of_category(entries, category_id, f"{path}: {label}"):
        image_id = integer(required(entry, "image_id", where), where, "image_id")
        box = numbers(required(entry, "bbox", where), where, "bbox", 4)
        score = (default_score if default_score is not None and entry.get("score") is None
                 else number(required(entry, "score", where), where, "score"))
        if box[2] < 0 or box[3] < 0:
            raise fail(where, f"field 'bbox' {box.tolist()} has a negative width or "
                              "height")
        if images is not None and image_id not in images[0]:
            raise fail(where, f"image_id {image_id} is not in {images[1]}")
        if box[2] == 0 and box[3] == 0:          # a point: nothing to crop
            degenerate.append(where.rsplit(": ", 1)[-1])
            continue
        image_ids.append(image_id)
        boxes.append(box)
        scores.append(score)
    if degenerate:
        log.warning("%s: skipped %d boxes of zero width and height (%s)", path,
                    len(degenerate), ", ".join(degenerate[:5]))
    return Detections(np.asarray(image_ids, np.int64),
                      np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64))


def load_keypoints(path: str | Path, keypoints: Skeleton | str = FROM_DATA,
                   headboxes: str | Path | None = None) -> KeypointData:
    """COCO (with `keypoints`: see `load_coco`) or MPII (whose set is MPII's; `headboxes`: see
    `load_mpii`), by the file's content."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
    except OSError as e:
        raise HrposeError(f"{path}: cannot read ({e.strerror})") from None
    if head.startswith(b"["):
        if isinstance(keypoints, Skeleton) and keypoints != MPII:
            raise HrposeError(f"{path}: an MPII file has MPII's 16 joints, not the keypoint set "
                              f"{keypoints.name!r}")
        return load_mpii(path, headboxes)
    if headboxes is not None:
        raise HrposeError(f"{path}: head boxes are for MPII files; this is a COCO-format file")
    return load_coco(path, keypoints)
