"""A data root from imported labels, and what `hrpose data check` says of one.

`write_data_root` lays imported labels (`importers.Labels`) out as COCO does, so that
training, evaluation and `hrpose data check` take the folder as it is:

    DIR/train2017/, DIR/val2017/                        the images (hard links, else copies)
    DIR/annotations/person_keypoints_{train,val}2017.json
    DIR/annotations/keypoints.yaml                      the keypoint set (data.keypoints)

Images are named by their file names (by their paths below the common folder when two share
a name) and numbered by the number in the name when every name has one and they differ, else
1, 2, ... in name order; files list images, and number people, in name order. Images the
labels put in no split go to val with probability
`val_fraction`, by a hash of the name (so a rerun splits the same way). Coordinates are
written to 0.01 px.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import HrposeError
from ..io import upright_size, write_json
from ..skeletons import Skeleton, describe_flip_pairs, parse_skeleton, write_skeleton_file
from .coco import SET_FILE, KeypointData
from .importers import LabelledImage, Labels

SPLITS = ("train", "val")


def annotation_file(root: Path, split: str) -> Path:
    return root / "annotations" / f"person_keypoints_{split}2017.json"


def _name_hash(name: str) -> float:
    """A name's place in [0, 1), the same on every run and machine."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split_for(name: str, val_fraction: float) -> str:
    """train or val for an image the labels put in no split, from a hash of its name."""
    return "val" if _name_hash(name) < val_fraction else "train"


def root_names(images: Sequence[LabelledImage]) -> list[str]:
    """Each image's name in the data root: its own (the file's, or the one the labelling tool
    gave it), or its path below the images' common folder when two share a name."""
    names = [image.name or image.source.name for image in images]
    if len(set(names)) == len(names):
        return names
    sources = [image.source.resolve() for image in images]
    common = Path(os.path.commonpath([str(p.parent) for p in sources]))
    return [p.relative_to(common).as_posix() for p in sources]


def image_ids(names: Sequence[str]) -> list[int]:
    """The number in each name's stem (COCO's 000000000785.jpg is 785) when every stem has
    exactly one and they are distinct; else 1, 2, ... in name order."""
    numbers = [re.findall(r"\d+", Path(n).stem) for n in names]
    if all(len(found) == 1 for found in numbers):
        ids = [int(found[0]) for found in numbers]
        if len(set(ids)) == len(ids) and all(0 < i < 2**53 for i in ids):
            return ids
    order = {name: i + 1 for i, name in enumerate(sorted(names))}
    return [order[n] for n in names]


def box_from_joints(keypoints: np.ndarray) -> np.ndarray | None:
    """x, y, w, h of the labelled joints' extent; None when none is labelled."""
    seen = keypoints[keypoints[:, 2] > 0, :2]
    if not len(seen):
        return None
    lo, hi = seen.min(0), seen.max(0)
    return np.r_[lo, hi - lo]


def labels_skeleton(labels: Labels, keypoints: Skeleton | None, where: str
                    ) -> tuple[Skeleton, np.ndarray]:
    """(the data root's set, each of its joints' column in the labels). A given set names the
    labels' joints (in any order), or, when the labels have no names, numbers them."""
    if keypoints is None:
        value = {"name": labels.name, "joints": labels.joints,
                 "links": [list(pair) for pair in labels.links]}
        if labels.flip_pairs is not None:
            value["flip_pairs"] = [list(pair) for pair in labels.flip_pairs]
        keypoints = parse_skeleton(value, where)
        return keypoints, np.arange(len(labels.joints))
    if not labels.named:
        if keypoints.num_joints != len(labels.joints):
            raise HrposeError(f"{where}: {len(labels.joints)} joints, the keypoint set "
                              f"{keypoints.name!r} has {keypoints.num_joints}")
        return keypoints, np.arange(keypoints.num_joints)
    missing = [j for j in keypoints.joints if j not in labels.joints]
    extra = [j for j in labels.joints if j not in keypoints.joints]
    if missing or extra:
        raise HrposeError(f"{where}: the labels' joints are not the keypoint set "
                          f"{keypoints.name!r}'s ("
                          + "; ".join(part for part in (
                              f"not labelled: {', '.join(missing[:4])}" if missing else "",
                              f"not in the set: {', '.join(extra[:4])}" if extra else "")
                              if part) + ")")
    return keypoints, np.array([labels.joints.index(j) for j in keypoints.joints])


def write_data_root(labels: Labels, out: str | Path, keypoints: Skeleton | None = None,
                    val_fraction: float = 0.1, source: str = "") -> dict:
    """Writes `labels` as a COCO data root at `out` (an empty or new folder). Returns a
    summary: images and people per split, the set, what was inferred."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HrposeError(f"{out}: not an empty folder; choose a new --out")
    if not 0 <= val_fraction < 1:
        raise HrposeError(f"val fraction {val_fraction} is not in [0, 1)")
    skeleton, columns = labels_skeleton(labels, keypoints, source or "labels")
    names = root_names(labels.images)
    order = sorted(range(len(names)), key=names.__getitem__)      # files list images by name
    images, names = [labels.images[i] for i in order], [names[i] for i in order]
    ids = image_ids(names)
    splits = [image.split or split_for(name, val_fraction) for image, name in zip(images, names)]
    if val_fraction and "val" not in splits and len(splits) > 1:
        # a small set: the first image by hash order goes to val rather than none
        splits[min(range(len(names)), key=lambda i: _name_hash(names[i]))] = "val"
    files = {split: {"images": [], "annotations": [], "categories": [_category(skeleton)]}
             for split in SPLITS}
    skipped = 0
    annotation_id = 0
    for image, name, image_id, split in zip(images, names, ids, splits):
        width, height = image.size or upright_size(image.source)
        files[split]["images"].append({"id": image_id, "file_name": name, "width": width,
                                       "height": height})
        for box, joints in zip(image.boxes, image.keypoints):
            joints = np.asarray(joints, np.float64)[columns]
            box = box if box is not None else box_from_joints(joints)
            if box is None:
                skipped += 1
                continue
            annotation_id += 1
            files[split]["annotations"].append(_annotation(annotation_id, image_id, box,
                                                           joints))
    out.mkdir(parents=True, exist_ok=True)
    for image, name, split in zip(images, names, splits):
        link_or_copy(image.source, out / f"{split}2017" / name)
    for split in SPLITS:
        (out / f"{split}2017").mkdir(exist_ok=True)
        write_json(annotation_file(out, split), files[split])
    note = f"written by hrpose data convert from {source}\n" if source else ""
    if keypoints is None:
        note += ("flip pairs: inferred from the joint names\n" if labels.flip_pairs is None
                 else "") + "sigmas: none stated (each joint gets the default): add them"
    write_skeleton_file(out / "annotations" / SET_FILE, skeleton, note,
                        sigmas=keypoints is not None)
    return {"out": str(out), "keypoint_set": skeleton.name, "joints": list(skeleton.joints),
            "flip_pairs": describe_flip_pairs(skeleton), "links": len(skeleton.links),
            **{f"{split}_images": len(files[split]["images"]) for split in SPLITS},
            **{f"{split}_people": len(files[split]["annotations"]) for split in SPLITS},
            "skipped_people": skipped}


def _category(skeleton: Skeleton) -> dict:
    return {"id": 1, "name": skeleton.name, "supercategory": skeleton.name,
            "keypoints": list(skeleton.joints),
            "skeleton": [[a + 1, b + 1] for a, b in skeleton.links]}


def _annotation(annotation_id: int, image_id: int, box: np.ndarray, keypoints: np.ndarray
                ) -> dict:
    box = [round(float(v), 2) for v in box]
    flat = [round(float(v), 2) if c < 2 else int(v)
            for row in keypoints for c, v in enumerate(row)]
    return {"id": annotation_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "bbox": box, "area": round(box[2] * box[3], 2),
            "num_keypoints": int((keypoints[:, 2] > 0).sum()), "keypoints": flat}


def link_or_copy(source: Path, target: Path) -> None:
    """`source` at `target`: a hard link where the file system allows, else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def data_statistics(data: KeypointData) -> dict:
    """What `hrpose data check` prints of one annotation file: images, people, labelled joints
    per joint name, box sizes, people per image, and the flip pairs whose left / right x order
    disagrees with the rest of the set's."""
    skeleton = data.skeleton
    labelled = data.keypoints[..., 2] > 0
    people = labelled.any(1) & ~data.iscrowd
    per_image = np.bincount(np.searchsorted(sorted(data.images), data.image_ids[people]),
                            minlength=len(data.images)) if len(data.images) else np.zeros(0)
    sides = np.sqrt(np.maximum(data.boxes[people, 2] * data.boxes[people, 3], 0))
    return {
        "file": str(data.path), "keypoint_set": skeleton.name, "images": len(data.images),
        "people": int(people.sum()), "crowd_regions": int(data.iscrowd.sum()),
        "images_without_people": int((per_image == 0).sum()),
        "people_per_image": {"mean": round(float(per_image.mean()), 2) if len(per_image)
                             else 0.0, "max": int(per_image.max()) if len(per_image) else 0},
        "box_side_px": _quantiles(sides),
        "labelled_joints": {name: int(labelled[people, j].sum())
                            for j, name in enumerate(skeleton.joints)},
        "visible_joints": {name: int((data.keypoints[people, j, 2] == 2).sum())
                           for j, name in enumerate(skeleton.joints)},
        "flip_pairs": flip_pair_order(data.keypoints[people], skeleton),
    }


def _quantiles(values: np.ndarray) -> dict:
    if not len(values):
        return {"min": 0.0, "median": 0.0, "max": 0.0}
    return {k: round(float(v), 1) for k, v in zip(
        ("min", "median", "max"), (values.min(), np.median(values), values.max()))}


def flip_pair_order(keypoints: np.ndarray, skeleton: Skeleton) -> list[dict]:
    """Per flip pair: the share of people (both joints labelled) whose left joint lies right
    of its right joint in the image (a person facing the camera), and whether the pair is
    suspicious: on the other side of one half from the set's pooled share, by more than 0.1
    (its names are probably swapped)."""
    rows = []
    total_left, total = 0, 0
    for a, b in skeleton.flip_pairs:
        both = (keypoints[:, a, 2] > 0) & (keypoints[:, b, 2] > 0)
        left_right = int((keypoints[both, a, 0] > keypoints[both, b, 0]).sum())
        rows.append((a, b, left_right, int(both.sum())))
        total_left, total = total_left + left_right, total + int(both.sum())
    pooled = total_left / total if total else 0.5
    out = []
    for a, b, left_right, n in rows:
        share = left_right / n if n else 0.5
        suspicious = bool(n) and (share - 0.5) * (pooled - 0.5) < 0 and abs(share - 0.5) > 0.1
        out.append({"left": skeleton.joints[a], "right": skeleton.joints[b], "people": n,
                    "left_right_of_right": round(share, 3), "suspicious": suspicious})
    return out


def subset_joints(coco: dict, skeleton: Skeleton, sources: dict[str, str]) -> dict:
    """A COCO keypoint file's content with the joints of `skeleton` only, each taken from the
    source joint `sources` names for it (a subset, renamed and reordered): its category is
    the set's, its people keep their boxes; num_keypoints is counted again."""
    category = next(c for c in coco["categories"] if "keypoints" in c)
    names = category["keypoints"]
    missing = [sources.get(j, j) for j in skeleton.joints if sources.get(j, j) not in names]
    if missing:
        raise HrposeError(f"the source set has no joint {', '.join(missing)}")
    rows = [names.index(sources.get(j, j)) for j in skeleton.joints]
    annotations = []
    for ann in coco["annotations"]:
        if ann["category_id"] != category["id"]:
            continue
        keypoints = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)[rows]
        annotations.append({**ann, "category_id": 1, "keypoints": keypoints.ravel().tolist(),
                            "num_keypoints": int((keypoints[:, 2] > 0).sum())})
    return {**coco, "categories": [_category(skeleton)], "annotations": annotations}
