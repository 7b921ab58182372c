"""Keypoint labels from labelling tools, read into one form (`Labels`) that `dataroot.py`
writes as a COCO data root.

One reader per format, in the `IMPORTERS` table:

- `yolo`: the ultralytics YOLO-pose layout: a data YAML (`kpt_shape`, `flip_idx`, `names`,
  `kpt_names`) and `labels/*.txt` beside `images/`, coordinates normalised to the image size.
- `cvat`: CVAT's "CVAT for images 1.1" XML with skeletons, or its "COCO Keypoints 1.0" JSON.
- `labelstudio`: a Label Studio JSON export: rectangles and keypoint labels, in percent of
  the image size.
- `dlc`: DeepLabCut's `CollectedData_<scorer>.csv` or `.h5` (single- and multi-animal), read
  with pandas, which is what DeepLabCut writes them with (the `dlc` extra: pandas, tables).

The YOLO, CVAT and Label Studio readers are written here: the one maintained reader of all
three (sleap-io) keeps points but drops the person boxes and the occluded flags a COCO file
carries, and pulls some twenty dependencies. Every problem is one line naming the file and,
where there is one, the line, task or image.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np

from ..errors import HrposeError, first_line
from ..fields import fail
from ..io import IMAGE_SUFFIXES, read_json, read_yaml, upright_size
from ..skeletons import FROM_ANNOTATIONS


@dataclass
class LabelledImage:
    """One image and the people labelled in it, in image pixels."""

    source: Path                                  # the image file
    split: str = ""                               # train | val | "" (split by fraction)
    name: str = ""                                # its own name, when not the file's
    size: tuple[int, int] | None = None           # (width, height) when the labels state it
    boxes: list[np.ndarray | None] = field(default_factory=list)   # x, y, w, h; None: joints'
    keypoints: list[np.ndarray] = field(default_factory=list)      # (K, 3) x, y, visibility


@dataclass
class Labels:
    """What a labelling tool's export says: the joints (in its order), the images, and what
    it states of the keypoint set (flip pairs and links by joint name; None: not stated)."""

    joints: list[str]
    images: list[LabelledImage]
    name: str = "custom"
    flip_pairs: list[tuple[str, str]] | None = None
    links: list[tuple[str, str]] = field(default_factory=list)
    named: bool = True                # False: joint names made up (YOLO without kpt_names)


@dataclass(frozen=True)
class Importer:
    read: Callable[[Path, Path | None], Labels]   # (SRC, image folder or None) -> Labels
    source: str                                   # what SRC is, for --help and errors


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise fail(where, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise fail(where, f"{text!r} is not a finite number")
    return value


def _image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class ImageFinder:
    """Image files under a folder, by relative path or, failing that, by file name."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise HrposeError(f"{root}: image folder not found (give --images DIR)")
        self.root = root
        self.by_name: dict[str, list[Path]] = {}
        for path in _image_files(root):
            self.by_name.setdefault(path.name, []).append(path)

    def find(self, name: str, where: str, *alternatives: str) -> Path:
        for candidate in (name, *alternatives):
            path = self.root / candidate
            if candidate and path.is_file():
                return path
        for candidate in (name, *alternatives):
            found = self.by_name.get(Path(candidate).name, [])
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise fail(where, f"{Path(candidate).name} is one of {len(found)} files of "
                                   f"that name under {self.root}; give --images DIR")
        raise fail(where, f"image {name} not found under {self.root} (give --images DIR)")


# --- ultralytics YOLO-pose ----------------------------------------------------------------------

def read_yolo(src: Path, images: Path | None = None) -> Labels:
    """A YOLO-pose data set from its data YAML. `path` (the data root; relative to the YAML's
    folder), `train` and `val` (image folders or .txt lists, relative to it), `kpt_shape`
    [K, 2 or 3], `flip_idx`, `names` (one class) and `kpt_names` (class -> joint names).
    Each image's labels are `labels/<name>.txt` where the image is under `images/`: a line per
    person, `class cx cy w h` then K (x, y[, visibility]), all divided by the image size."""
    config = _yaml(src)
    shape = config.get("kpt_shape")
    if (not isinstance(shape, list) or len(shape) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in shape)
            or shape[0] < 1 or shape[1] not in (2, 3)):
        raise fail(src, f"kpt_shape must be [joints, 2 or 3], got {shape!r}")
    k, ndim = shape
    names = config.get("names", {0: "object"})
    classes = dict(enumerate(names)) if isinstance(names, list) else names
    if not isinstance(classes, dict) or len(classes) != 1:
        raise fail(src, f"names: hrpose trains one keypoint category; this set has "
                         f"{len(classes) if isinstance(classes, dict) else names!r} classes")
    (class_id, class_name), = classes.items()
    joints = _yolo_joint_names(src, config.get("kpt_names"), class_id, k)
    flips = _yolo_flips(src, config.get("flip_idx"), joints)
    root = Path(config.get("path") or ".")
    root = root if root.is_absolute() else src.parent / root
    found = []
    for split in ("train", "val"):
        if config.get(split) is None:
            continue
        entries = config[split] if isinstance(config[split], list) else [config[split]]
        for entry in entries:
            for image in _yolo_images(src, root, str(entry)):
                found.append(_yolo_labels(image, split, k, ndim))
    if not found:
        raise fail(src, "no images under its train and val entries")
    return Labels(joints, found, str(class_name), flips, [], named=joints != _generic(k))


def _yaml(path: Path) -> dict:
    value = read_yaml(path)
    if not isinstance(value, dict):
        raise HrposeError(f"{path}: expected a mapping of keys")
    return value


def _generic(k: int) -> list[str]:
    return [f"joint_{j}" for j in range(k)]


def _yolo_joint_names(src: Path, value: object, class_id: object, k: int) -> list[str]:
    if value is None:
        return _generic(k)
    names = value.get(class_id, value.get(str(class_id))) if isinstance(value, dict) else value
    if not isinstance(names, list) or len(names) != k or not all(
            isinstance(n, str) and n for n in names):
        raise fail(src, f"kpt_names: expected {k} joint names for class {class_id}")
    return names


def _yolo_flips(src: Path, value: object, joints: list[str]) -> list[tuple[str, str]] | None:
    """flip_idx: the joint each one becomes when the image is mirrored (an involution)."""
    if value is None:
        return None
    k = len(joints)
    if not isinstance(value, list) or sorted(value) != list(range(k)) or any(
            value[value[j]] != j for j in range(k)):
        raise fail(src, f"flip_idx must map each of the {k} joints to its mirror twin and "
                         "back, got " + repr(value))
    return [(joints[j], joints[i]) for j, i in enumerate(value) if j < i]


def _yolo_images(src: Path, root: Path, entry: str) -> list[Path]:
    path = Path(entry) if Path(entry).is_absolute() else root / entry
    if path.is_dir():
        return _image_files(path)
    if path.suffix == ".txt" and path.is_file():
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        return [Path(p) if Path(p).is_absolute() else (root / p).resolve()
                for p in lines if p and not p.startswith("#")]
    raise fail(src, f"{entry}: neither an image folder nor a .txt list under {root}")


def _yolo_labels(image: Path, split: str, k: int, ndim: int) -> LabelledImage:
    parts = list(image.parts)
    if "images" not in parts:
        raise fail(image, "a YOLO image lies under an images/ folder (its labels under "
                           "labels/)")
    i = len(parts) - 1 - parts[::-1].index("images")
    label = Path(*parts[:i], "labels", *parts[i + 1:]).with_suffix(".txt")
    out = LabelledImage(image, split)
    if not label.is_file():                 # an image with nobody in it
        return out
    width, height = out.size = upright_size(image)
    for n, line in enumerate(label.read_text(encoding="utf-8").splitlines(), 1):
        values = line.split()
        if not values:
            continue
        where = f"{label}:{n}"
        if len(values) != 5 + k * ndim:
            raise fail(where, f"{len(values)} values; a pose line has 5 + {k} x {ndim} "
                               "(class, box, joints)")
        numbers = np.array([_number(v, where) for v in values[1:]])
        cx, cy, w, h = numbers[:4] * [width, height, width, height]
        joints = numbers[4:].reshape(k, ndim)
        keypoints = np.zeros((k, 3))
        keypoints[:, :2] = joints[:, :2] * [width, height]
        if ndim == 3:
            if not np.isin(joints[:, 2], (0, 1, 2)).all():
                raise fail(where, "a visibility other than 0, 1, 2")
            keypoints[:, 2] = joints[:, 2]
        else:
            keypoints[:, 2] = np.where((joints[:, :2] != 0).any(1), 2, 0)
        keypoints[keypoints[:, 2] == 0, :2] = 0
        out.boxes.append(np.array([cx - w / 2, cy - h / 2, w, h]))
        out.keypoints.append(keypoints)
    return out


# --- CVAT ---------------------------------------------------------------------------------

def read_cvat(src: Path, images: Path | None = None) -> Labels:
    """CVAT's "CVAT for images 1.1" XML (skeletons of points, `outside` for unlabelled and
    `occluded` flags; a box of the skeleton's group is the person's box) or its "COCO
    Keypoints 1.0" JSON. Images are looked up under `images` (default: the export's
    `images/` folder)."""
    if src.suffix.lower() == ".json":
        return _read_cvat_coco(src, images)
    try:
        root = ET.parse(src).getroot()
    except ET.ParseError as e:
        raise fail(src, f"not valid XML ({e})") from None
    except OSError:
        raise HrposeError(f"{src}: file not found or unreadable") from None
    if root.tag != "annotations":
        raise fail(src, "not a CVAT for images export (its root is not <annotations>)")
    finder = ImageFinder(images or _export_images(src))
    label, joints, links = _cvat_skeleton_label(src, root)
    found = []
    for element in root.iter("image"):
        name = element.get("name", "")
        where = f"{src}: image {name!r}"
        size = tuple(int(_number(element.get(key, "0"), where)) for key in ("width", "height"))
        out = LabelledImage(finder.find(name, where), "", size if min(size) > 0 else None)
        boxes = {b.get("group_id"): b for b in element.findall("box") if b.get("label") == label}
        skeletons = [s for s in element.findall("skeleton") if s.get("label") == label]
        for skeleton in skeletons:
            keypoints = np.zeros((len(joints), 3))
            for point in skeleton.findall("points"):
                if point.get("label") not in joints:
                    raise fail(where, f"point {point.get('label')!r} is not an element of "
                                       f"the skeleton {label!r}")
                if point.get("outside", "0") == "1":
                    continue
                xy = (point.get("points") or "").split(";")[0].split(",")
                if len(xy) != 2:
                    raise fail(where, f"point {point.get('label')!r} has no x,y")
                j = joints.index(point.get("label"))
                keypoints[j] = [_number(xy[0], where), _number(xy[1], where),
                                1 if point.get("occluded", "0") == "1" else 2]
            group = skeleton.get("group_id")
            box = boxes.get(group) if group is not None else (
                next(iter(boxes.values())) if len(skeletons) == 1 and len(boxes) == 1 else None)
            out.boxes.append(None if box is None else _cvat_box(box, where))
            out.keypoints.append(keypoints)
        found.append(out)
    return Labels(joints, found, label, None, links)


def _export_images(src: Path) -> Path:
    for folder in (src.parent / "images", src.parent.parent / "images", src.parent):
        if folder.is_dir():
            return folder
    return src.parent


def _cvat_skeleton_label(src: Path, root: ET.Element
                         ) -> tuple[str, list[str], list[tuple[str, str]]]:
    """(label, joint names in node order, links) of the export's one skeleton label."""
    labels = [lab for lab in root.iter("label") if lab.findtext("type") == "skeleton"]
    used = sorted({s.get("label", "") for s in root.iter("skeleton")})
    if len(used) > 1:
        raise fail(src, f"skeletons of {len(used)} labels ({', '.join(used)}); hrpose trains "
                         "one keypoint category: export one")
    if not used:
        raise fail(src, "no <skeleton> annotations (annotate with a skeleton label)")
    meta = next((lab for lab in labels if lab.findtext("name") == used[0]), None)
    if meta is None or not meta.findtext("svg"):
        first = next(root.iter("skeleton"))
        return used[0], [p.get("label", "") for p in first.findall("points")], []
    try:
        svg = ET.fromstring(f"<svg>{meta.findtext('svg')}</svg>")
    except ET.ParseError:
        raise fail(src, f"the skeleton {used[0]!r} has an unreadable <svg>") from None
    nodes = {c.get("data-node-id"): c.get("data-label-name") for c in svg.iter("circle")}
    order = sorted(nodes, key=lambda n: int(n or 0))
    joints = [nodes[n] for n in order]
    if not all(joints):
        raise fail(src, f"the skeleton {used[0]!r} has an unnamed node")
    links = [(nodes[line.get("data-node-from")], nodes[line.get("data-node-to")])
             for line in svg.iter("line")
             if line.get("data-node-from") in nodes and line.get("data-node-to") in nodes]
    return used[0], joints, links


def _cvat_box(box: ET.Element, where: str) -> np.ndarray:
    x1, y1, x2, y2 = (_number(box.get(k, "nan"), where) for k in ("xtl", "ytl", "xbr", "ybr"))
    if float(box.get("rotation", "0") or 0):
        raise fail(where, "a rotated box is not a person box")
    return np.array([x1, y1, x2 - x1, y2 - y1])


def _read_cvat_coco(src: Path, images: Path | None) -> Labels:
    from .coco import load_coco

    with warnings.catch_warnings():           # the sigmas are the set's business, not this
        warnings.simplefilter("ignore")
        data = load_coco(src, FROM_ANNOTATIONS)
    finder = ImageFinder(images or _export_images(src))
    found = {}
    for image_id, info in data.images.items():
        found[image_id] = LabelledImage(finder.find(info.file_name, f"{src}: image {image_id}"),
                                        "", (info.width, info.height) if info.width else None)
    for row in range(len(data)):
        if data.iscrowd[row]:
            continue
        found[int(data.image_ids[row])].boxes.append(data.boxes[row].astype(np.float64))
        found[int(data.image_ids[row])].keypoints.append(data.keypoints[row].astype(np.float64))
    s = data.skeleton
    names = s.joints
    return Labels(list(names), list(found.values()), s.name,
                  None, [(names[a], names[b]) for a, b in s.links])


# --- Label Studio -------------------------------------------------------------------------

def read_labelstudio(src: Path, images: Path | None = None) -> Labels:
    """A Label Studio JSON export (a list of tasks). Each task's first annotation: rectangles
    (`rectanglelabels`, the people) and keypoints (`keypointlabels`, the joint name), in
    percent of `original_width` / `original_height`. A keypoint belongs to the rectangle a
    relation joins it to, else the one rectangle that contains it; a task without rectangles
    is one person. Joints are ordered as they first appear (give --keypoints to fix it).
    Label Studio has no occluded flag: a placed keypoint is visible (2)."""
    tasks = read_json(src)
    if not isinstance(tasks, list):
        raise fail(src, "expected a Label Studio JSON export (a list of tasks)")
    finder = ImageFinder(images or src.parent)
    joints: list[str] = []
    found = []
    for t, task in enumerate(tasks):
        where = f"{src}: task {task.get('id', t) if isinstance(task, dict) else t}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise fail(where, "a task has 'data' (the image) and 'annotations'")
        annotations = [a for a in task.get("annotations") or []
                       if isinstance(a, dict) and not a.get("was_cancelled")]
        results = annotations[0].get("result", []) if annotations else []
        if not isinstance(results, list):
            raise fail(where, "'result' must be a list of regions")
        image, name = _labelstudio_image(task, results, finder, where)
        found.append(_labelstudio_people(results, image, joints, where))
        found[-1].name = name
    return _named_to_arrays(Labels(joints, found))


def _labelstudio_image(task: dict, results: list, finder: ImageFinder, where: str
                       ) -> tuple[Path, str]:
    """The task's image file and its name (an upload's, without the prefix Label Studio
    gives it)."""
    key = next((r.get("to_name") for r in results if isinstance(r, dict)
                and r.get("to_name") in task["data"]), None)
    url = task["data"].get(key) if key else next(
        (v for v in task["data"].values() if isinstance(v, str)), None)
    if not isinstance(url, str):
        raise fail(where, "no image in its 'data'")
    parsed = urlparse(url)
    if "d" in parse_qs(parsed.query):                 # /data/local-files/?d=folder/name.jpg
        name = unquote(parse_qs(parsed.query)["d"][0])
        found = finder.find(name, where, name.split("/", 1)[-1])
        return found, found.name
    name = unquote(Path(parsed.path).name)
    # uploads are stored as <8 hex digits>-<original name>
    original = re.sub(r"^[0-9a-f]{8}-", "", name)
    return finder.find(name, where, original), original


def _percent(value: dict, key: str, where: str) -> float:
    v = value.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise fail(where, f"region value {key!r} must be a number, got {v!r}")
    return float(v)


def _labelstudio_people(results: list, image: Path, joints: list[str], where: str
                        ) -> LabelledImage:
    out = LabelledImage(image)
    rects, points, relations = {}, [], []
    for r in results:
        if not isinstance(r, dict):
            continue
        kind, value = r.get("type"), r.get("value") or {}
        if kind == "relation":
            relations.append((r.get("from_id"), r.get("to_id")))
            continue
        if kind not in ("rectanglelabels", "keypointlabels"):
            continue
        w, h = (_percent(r, key, where) for key in ("original_width", "original_height"))
        out.size = (round(w), round(h))
        if kind == "rectanglelabels":
            if value.get("rotation"):
                raise fail(where, "a rotated rectangle is not a person box")
            rects[r.get("id")] = np.array([_percent(value, "x", where) * w / 100,
                                           _percent(value, "y", where) * h / 100,
                                           _percent(value, "width", where) * w / 100,
                                           _percent(value, "height", where) * h / 100])
        else:
            labels = value.get("keypointlabels")
            if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
                raise fail(where, f"keypoint {r.get('id')!r} needs one keypoint label")
            if labels[0] not in joints:
                joints.append(labels[0])
            points.append((r.get("id"), r.get("parentID"), labels[0],
                           _percent(value, "x", where) * w / 100,
                           _percent(value, "y", where) * h / 100))
    owner = {}
    for a, b in relations:
        if a in rects:
            owner[b] = a
        elif b in rects:
            owner[a] = b
    people: dict[object, list] = {rect: [] for rect in rects}
    for point_id, parent, name, x, y in points:
        rect = owner.get(point_id) or (parent if parent in rects else None)
        if rect is None:
            inside = [r for r, (bx, by, bw, bh) in rects.items()
                      if bx <= x <= bx + bw and by <= y <= by + bh]
            rect = inside[0] if len(inside) == 1 else None if rects else "whole image"
        if rect is None:
            raise fail(where, f"keypoint {name!r} at ({x:.1f}, {y:.1f}) belongs to no one "
                               "rectangle (join it with a relation)")
        people.setdefault(rect, []).append((name, x, y))
    for rect, placed in people.items():
        out.boxes.append(rects.get(rect))
        out.keypoints.append(placed)                  # names: made into arrays below
    for placed in out.keypoints:      # (name, x, y) until every task's joints are known
        names = [name for name, _, _ in placed]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise fail(where, f"a person has {', '.join(twice)} twice")
    return out


def _named_to_arrays(labels: Labels) -> Labels:
    """Keypoints read as (name, x, y) lists (the joints are known only once every task is
    read) -> (K, 3) arrays in the joints' order, placed joints visible."""
    for image in labels.images:
        arrays = []
        for placed in image.keypoints:
            keypoints = np.zeros((len(labels.joints), 3))
            for name, x, y in placed:
                keypoints[labels.joints.index(name)] = [x, y, 2]
            arrays.append(keypoints)
        image.keypoints = arrays
    return labels


# --- DeepLabCut ---------------------------------------------------------------------------

_DLC_LEVELS = ("scorer", "individuals", "bodyparts", "coords")


def read_dlc(src: Path, images: Path | None = None) -> Labels:
    """DeepLabCut's labelled frames: `CollectedData_<scorer>.csv` or `.h5` (columns scorer,
    [individuals,] bodyparts, coords x / y; rows the image paths, `labeled-data/<video>/
    <frame>.png`). Multi-animal files give one person per individual (the `single`
    individual's unique body parts are left out). Unlabelled joints (NaN) are 0; DeepLabCut
    has no occluded flag, so a labelled joint is visible (2). The project's config.yaml (two
    folders up), when there, gives the links (`skeleton`)."""
    try:
        import pandas as pd
    except ImportError:
        raise HrposeError("reading DeepLabCut files needs pandas (and tables for .h5): pip "
                          "install 'hrpose[dlc]'") from None
    if src.suffix.lower() == ".h5":
        try:
            frame = pd.read_hdf(src)
        except ImportError:
            raise HrposeError("reading DeepLabCut .h5 files needs PyTables: pip install "
                              "'hrpose[dlc]'") from None
        except (OSError, ValueError, KeyError) as e:
            raise fail(src, f"not a DeepLabCut HDF5 file ({first_line(e, 100)})"
                        ) from None
    else:
        headers, index = _dlc_csv_layout(src)
        frame = pd.read_csv(src, header=list(range(headers)), index_col=list(range(index)))
    return _dlc_frame(src, frame, images)


def _dlc_csv_layout(src: Path) -> tuple[int, int]:
    """(header rows, index columns) of a DeepLabCut CSV."""
    try:
        with open(src, newline="", encoding="utf-8") as f:
            rows = [row for _, row in zip(range(5), csv.reader(f))]
    except (OSError, UnicodeDecodeError):
        raise HrposeError(f"{src}: file not found or unreadable") from None
    headers = 0
    while headers < len(rows) and rows[headers] and rows[headers][0] in _DLC_LEVELS:
        headers += 1
    if headers < 3 or rows[0][0] != "scorer":
        raise fail(src, "not a DeepLabCut CSV (its first rows are scorer, [individuals,] "
                         "bodyparts, coords)")
    index = 1
    while index < len(rows[0]) and rows[0][index] == "":
        index += 1
    return headers, index


def _dlc_frame(src: Path, frame: object, images: Path | None) -> Labels:
    columns = frame.columns  # type: ignore[attr-defined]
    names = [n or "" for n in columns.names]
    if "bodyparts" not in names or "coords" not in names:
        raise fail(src, f"columns are {names}; a DeepLabCut file has bodyparts and coords")
    parts = columns.get_level_values("bodyparts")
    coords = columns.get_level_values("coords")
    individuals = (columns.get_level_values("individuals") if "individuals" in names
                   else ["" for _ in parts])
    joints = list(dict.fromkeys(p for p, i in zip(parts, individuals) if i != "single"))
    animals = list(dict.fromkeys(i for i in individuals if i != "single"))
    project = src.parent.parent.parent
    finder = ImageFinder(images or (project if (project / "labeled-data").is_dir()
                                    else src.parent))
    values = frame.to_numpy(dtype=np.float64)  # type: ignore[attr-defined]
    found = []
    for r, key in enumerate(frame.index):  # type: ignore[attr-defined]
        path = "/".join(str(p) for p in key) if isinstance(key, tuple) else str(key)
        where = f"{src}: row {path}"
        image = LabelledImage(finder.find(path, where, path.removeprefix("labeled-data/")))
        for animal in animals:
            keypoints = np.zeros((len(joints), 3))
            for c, (part, coord, individual) in enumerate(zip(parts, coords, individuals)):
                if individual != animal or coord not in ("x", "y") or part not in joints:
                    continue
                keypoints[joints.index(part), 0 if coord == "x" else 1] = values[r, c]
            labelled = np.isfinite(keypoints[:, :2]).all(1)
            keypoints[~labelled] = 0
            keypoints[labelled, 2] = 2
            if labelled.any():
                image.keypoints.append(keypoints)
                image.boxes.append(None)
        found.append(image)
    return Labels(joints, found, "custom", None, _dlc_links(project, joints))


def _dlc_links(project: Path, joints: list[str]) -> list[tuple[str, str]]:
    config = project / "config.yaml"
    if not config.is_file():
        return []
    skeleton = _yaml(config).get("skeleton") or []
    return [(a, b) for a, b in (pair for pair in skeleton if isinstance(pair, list)
                                and len(pair) == 2) if a in joints and b in joints]


IMPORTERS: dict[str, Importer] = {
    "yolo": Importer(read_yolo, "the ultralytics data YAML (kpt_shape, flip_idx, names)"),
    "cvat": Importer(read_cvat, "CVAT's annotations.xml (CVAT for images 1.1, skeletons) or "
                                "its COCO Keypoints JSON"),
    "labelstudio": Importer(read_labelstudio, "a Label Studio JSON export"),
    "dlc": Importer(read_dlc, "DeepLabCut's CollectedData_<scorer>.csv or .h5"),
}


def read_labels(format: str, src: str | Path, images: str | Path | None = None) -> Labels:
    """`src` in `format` (a key of IMPORTERS) as Labels, keypoints as (K, 3) arrays."""
    if format not in IMPORTERS:
        raise HrposeError(f"unknown label format {format!r}; known: {', '.join(IMPORTERS)}")
    src = Path(src)
    if not src.is_file():
        raise HrposeError(f"{src}: no such file ({format}: {IMPORTERS[format].source})")
    return IMPORTERS[format].read(src, None if images is None else Path(images))
