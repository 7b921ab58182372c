"""Labelling tools' exports written as each tool documents them, from one COCO keypoint file:
the ultralytics YOLO-pose layout, CVAT for images 1.1 XML (skeletons) and its COCO Keypoints
JSON, a Label Studio JSON export and DeepLabCut's CollectedData CSV / HDF5. The import tests
read them back and compare joint by joint."""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import yaml

from hrpose.data.dataroot import link_or_copy, split_for


def _people(coco: dict) -> dict[int, list[dict]]:
    people: dict[int, list[dict]] = {image["id"]: [] for image in coco["images"]}
    for ann in coco["annotations"]:
        people[ann["image_id"]].append(ann)
    return people


def _joints(ann: dict) -> np.ndarray:
    return np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)


def write_yolo(coco: dict, images: Path, out: Path, flip_idx: list[int],
               val_fraction: float) -> Path:
    """data.yaml, images/{train,val}/, labels/{train,val}/*.txt (class cx cy w h, then x y v
    per joint, divided by the image size, 6 decimals as ultralytics writes them)."""
    category = coco["categories"][0]
    k = len(category["keypoints"])
    people = _people(coco)
    for image in coco["images"]:
        split = split_for(image["file_name"], val_fraction)
        link_or_copy(images / image["file_name"], out / "images" / split / image["file_name"])
        w, h = image["width"], image["height"]
        lines = []
        for ann in people[image["id"]]:
            x, y, bw, bh = ann["bbox"]
            values = [(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h]
            for jx, jy, v in _joints(ann):
                values += [jx / w, jy / h, v]
            lines.append("0 " + " ".join(f"{v:.6f}" for v in values))
        label = out / "labels" / split / Path(image["file_name"]).with_suffix(".txt")
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("\n".join(lines) + ("\n" if lines else ""))
    config = {"path": ".", "train": "images/train", "val": "images/val", "kpt_shape": [k, 3],
              "flip_idx": flip_idx, "names": {0: category["name"]},
              "kpt_names": {0: list(category["keypoints"])}}
    (out / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return out / "data.yaml"


def write_cvat_xml(coco: dict, images: Path, out: Path) -> Path:
    """annotations.xml (CVAT for images 1.1): a skeleton label whose <svg> names its nodes
    and edges, and per image a <skeleton> of <points> (outside="1" where unlabelled) with a
    <box> of the same group_id; images/ beside it."""
    category = coco["categories"][0]
    names = category["keypoints"]
    svg = "".join(f'<line x1="0" y1="0" x2="1" y2="1" data-type="edge" data-node-from="{a}" '
                  f'data-node-to="{b}"></line>' for a, b in category["skeleton"])
    svg += "".join(f'<circle r="1.5" cx="{j}" cy="{j}" data-type="element node" '
                   f'data-element-id="{j + 1}" data-node-id="{j + 1}" '
                   f'data-label-name="{name}"></circle>' for j, name in enumerate(names))
    escaped = svg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<annotations>",
             "  <version>1.1</version>", "  <meta>", "    <task>", "      <labels>",
             "        <label>", f"          <name>{category['name']}</name>",
             "          <type>skeleton</type>", f"          <svg>{escaped}</svg>",
             "        </label>"]
    lines += [f"        <label><name>{name}</name><type>points</type>"
              f"<parent>{category['name']}</parent></label>" for name in names]
    lines += ["      </labels>", "    </task>", "  </meta>"]
    people = _people(coco)
    for i, image in enumerate(coco["images"]):
        link_or_copy(images / image["file_name"], out / "images" / image["file_name"])
        lines.append(f'  <image id="{i}" name={quoteattr(image["file_name"])} '
                     f'width="{image["width"]}" height="{image["height"]}">')
        for group, ann in enumerate(people[image["id"]], 1):
            x, y, w, h = ann["bbox"]
            lines.append(f'    <box label="{category["name"]}" source="manual" occluded="0" '
                         f'xtl="{x:.2f}" ytl="{y:.2f}" xbr="{x + w:.2f}" ybr="{y + h:.2f}" '
                         f'z_order="0" group_id="{group}"></box>')
            lines.append(f'    <skeleton label="{category["name"]}" source="manual" '
                         f'z_order="0" group_id="{group}">')
            for name, (jx, jy, v) in zip(names, _joints(ann)):
                lines.append(f'      <points label="{name}" source="manual" '
                             f'outside="{int(v == 0)}" occluded="{int(v == 1)}" '
                             f'points="{jx:.2f},{jy:.2f}"></points>')
            lines.append("    </skeleton>")
        lines.append("  </image>")
    lines.append("</annotations>")
    (out / "annotations.xml").write_text("\n".join(lines) + "\n")
    return out / "annotations.xml"


def write_cvat_coco(coco: dict, images: Path, out: Path) -> Path:
    """CVAT's COCO Keypoints 1.0 export: annotations/person_keypoints_default.json and
    images/."""
    for image in coco["images"]:
        link_or_copy(images / image["file_name"], out / "images" / image["file_name"])
    path = out / "annotations" / "person_keypoints_default.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(coco))
    return path


def write_labelstudio(coco: dict, images: Path, out: Path) -> Path:
    """A Label Studio JSON export: a task per image (uploaded as /data/upload/1/<8 hex>-<name>),
    its first annotation a rectangle per person and a keypoint per labelled joint, in percent
    of the original size, each keypoint joined to its rectangle by a relation."""
    names = coco["categories"][0]["keypoints"]
    people = _people(coco)
    tasks = []
    for t, image in enumerate(coco["images"], 1):
        link_or_copy(images / image["file_name"], out / "upload" / f"{t:08x}-{image['file_name']}")
        w, h = image["width"], image["height"]
        size = {"original_width": w, "original_height": h, "image_rotation": 0,
                "from_name": "label", "to_name": "image"}
        result = []
        for p, ann in enumerate(people[image["id"]]):
            x, y, bw, bh = ann["bbox"]
            result.append({**size, "id": f"r{p}", "type": "rectanglelabels",
                           "value": {"x": 100 * x / w, "y": 100 * y / h, "width": 100 * bw / w,
                                     "height": 100 * bh / h, "rotation": 0,
                                     "rectanglelabels": ["face"]}})
            for j, (jx, jy, v) in enumerate(_joints(ann)):
                if v == 0:
                    continue
                result.append({**size, "id": f"k{p}_{j}", "type": "keypointlabels",
                               "from_name": "kp", "value": {
                                   "x": 100 * jx / w, "y": 100 * jy / h, "width": 0.4,
                                   "keypointlabels": [names[j]]}})
                result.append({"type": "relation", "from_id": f"r{p}", "to_id": f"k{p}_{j}",
                               "direction": "right"})
        tasks.append({"id": t, "data": {"image": f"/data/upload/1/{t:08x}-{image['file_name']}"},
                      "annotations": [{"id": t, "result": result, "was_cancelled": False}]})
    (out / "export.json").write_text(json.dumps(tasks))
    return out / "export.json"


def write_dlc(coco: dict, images: Path, out: Path, h5: bool = False) -> Path:
    """A multi-animal DeepLabCut project's labelled frames: config.yaml (its skeleton) and
    labeled-data/frames/CollectedData_tester.csv (or .h5), columns scorer / individuals /
    bodyparts / coords, rows indexed (labeled-data, frames, image), unlabelled joints NaN."""
    import pandas as pd

    category = coco["categories"][0]
    names = category["keypoints"]
    people = _people(coco)
    animals = max(len(p) for p in people.values())
    individuals = [f"animal{i + 1}" for i in range(animals)]
    columns = pd.MultiIndex.from_product(
        [["tester"], individuals, names, ["x", "y"]],
        names=["scorer", "individuals", "bodyparts", "coords"])
    index = pd.MultiIndex.from_tuples([("labeled-data", "frames", image["file_name"])
                                       for image in coco["images"]])
    values = np.full((len(coco["images"]), len(columns)), np.nan)
    for r, image in enumerate(coco["images"]):
        frames = out / "labeled-data" / "frames"
        link_or_copy(images / image["file_name"], frames / image["file_name"])
        for a, ann in enumerate(people[image["id"]]):
            for j, (jx, jy, v) in enumerate(_joints(ann)):
                if v > 0:
                    c = (a * len(names) + j) * 2
                    values[r, c : c + 2] = jx, jy
    frame = pd.DataFrame(values, index=index, columns=columns)
    folder = out / "labeled-data" / "frames"
    skeleton = [[names[a - 1], names[b - 1]] for a, b in category["skeleton"]]
    (out / "config.yaml").write_text(yaml.safe_dump({
        "Task": "faces", "scorer": "tester", "multianimalproject": True,
        "individuals": individuals, "multianimalbodyparts": names, "skeleton": skeleton}))
    if h5:
        frame.to_hdf(folder / "CollectedData_tester.h5", key="df_with_missing", mode="w")
        return folder / "CollectedData_tester.h5"
    frame.to_csv(folder / "CollectedData_tester.csv")
    return folder / "CollectedData_tester.csv"
