"""Mutation fuzzing of every reader of user files: the mutators, the targets and the contract.

The contract: a reader given any file returns valid data (finite arrays of the promised shapes,
samples and metrics without NaN) or raises `HrposeError` - nothing else: no other exception, no
crash, no hang, bounded memory. `ContractBroken` is raised when an accepted file gave invalid
data (a silent wrong answer).

A case is `target.case(workdir, rnd)`: `rnd` (a `random.Random`) decides the mutation, so the
property tests hand it hypothesis' controlled randoms (shrinkable) and
`benchmarks/fuzz_campaign.py` a seeded one (replayable: target + seed).
"""

from __future__ import annotations

import copy
import io
import json
import math
import pickle
import random
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

from hrpose.errors import HrposeError


class ContractBroken(AssertionError):
    """An accepted input gave data that breaks the reader's promise (NaN, wrong shape...)."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise ContractBroken(what)


def finite(array: object, what: str) -> None:
    check(bool(np.isfinite(np.asarray(array, np.float64)).all()), f"{what}: not finite")


# ---- mutators -------------------------------------------------------------------------------

HOSTILE_VALUES = [None, "", "x", "12", -1, 0, 1, 1.5, -1e9, 1e308, 2**63, -(2**63) - 1, True,
                  [], {}, [None], [[]], {"a": 1}, [1, 2], "\u0000", "../../etc/passwd",
                  [1e308, 1e308, 1e308, 1e308], [-5e5, -5e5, 10, 10], [0, 0, 0, 0],
                  [1e6, 1e6, 50, 50]]


def json_paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys / indices) into a JSON tree, the root included."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:40]):       # long numeric lists: their first entries do
            out += json_paths(v, (*prefix, i))
    return out


def _get(obj: object, path: tuple) -> object:
    for key in path:
        obj = obj[key]
    return obj


def mutate_tree(tree: object, rnd: random.Random, count: int | None = None) -> object:
    """1-3 structural mutations of a JSON tree: a value replaced by a hostile one, a key
    deleted, a list entry duplicated (duplicate ids), dropped, or its list cut or lengthened."""
    tree = copy.deepcopy(tree)
    for _ in range(count or rnd.randint(1, 3)):
        paths = [p for p in json_paths(tree) if p]
        if not paths:
            return rnd.choice(HOSTILE_VALUES)
        path = rnd.choice(paths)
        parent, key = _get(tree, path[:-1]), path[-1]
        op = rnd.randrange(6)
        if op == 0 or op == 5:
            parent[key] = copy.deepcopy(rnd.choice(HOSTILE_VALUES))
        elif op == 1:
            del parent[key]
        elif op == 2 and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif op == 3 and isinstance(parent[key], list) and parent[key]:
            del parent[key][rnd.randrange(len(parent[key])):]
        elif op == 4 and isinstance(parent[key], list):
            parent[key] = parent[key] + [rnd.choice([0, 1.0, -3, "a", None])] * rnd.randint(1, 4)
        elif isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = parent[key] * rnd.choice([-1, 0, 1e6, 1e300])
        else:
            parent[key] = copy.deepcopy(rnd.choice(HOSTILE_VALUES))
    return tree


def mutate_bytes(data: bytes, rnd: random.Random) -> bytes:
    """One byte-level mutation: bit flips, truncation, a deleted, repeated, zeroed or random
    range."""
    data = bytearray(data)
    n = len(data)
    if n == 0:
        return bytes(rnd.randbytes(rnd.randint(1, 64)))
    op = rnd.randrange(6)
    if op == 0:
        for _ in range(rnd.randint(1, 8)):
            i = rnd.randrange(n)
            data[i] ^= 1 << rnd.randrange(8)
    elif op == 1:
        del data[rnd.randrange(n):]
    elif op == 2:
        a = rnd.randrange(n)
        del data[a : a + rnd.randint(1, 256)]
    elif op == 3:
        a = rnd.randrange(n)
        data[a:a] = data[a : a + rnd.randint(1, 256)] * rnd.randint(1, 4)
    elif op == 4:
        a = rnd.randrange(n)
        data[a : a + rnd.randint(1, 64)] = bytes([rnd.choice([0, 0xFF])]) * rnd.randint(1, 64)
    else:
        a = rnd.randrange(n)
        data[a : a + 16] = rnd.randbytes(16)
    return bytes(data)


def dump_json(tree: object) -> bytes:
    # allow_nan: NaN and Infinity reach the file as a careless writer would put them there.
    return json.dumps(tree, allow_nan=True).encode()


def _mutated_file(tree: object, workdir: Path, name: str, rnd: random.Random,
                  structure: float = 1.0) -> Path:
    """`tree` written to workdir/name as JSON after structural mutations (with probability
    `structure`) and, one time in seven, a byte mutation."""
    if rnd.random() < structure:
        tree = mutate_tree(tree, rnd)
    data = dump_json(tree)
    if rnd.random() < 0.15:
        data = mutate_bytes(data, rnd)
    path = workdir / name
    path.write_bytes(data)
    return path


# ---- the base files -------------------------------------------------------------------------

def _image(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.full((h, w, 3), 90, np.uint8)
    cv2.circle(image, (w // 2, h // 3), h // 6, (200, 150, 120), -1)
    return image + rng.integers(0, 30, image.shape, dtype=np.uint8)


def _person(rng: np.random.Generator, x: float, y: float, w: float, h: float) -> list[float]:
    kp = np.zeros((17, 3))
    kp[:, 0] = x + rng.uniform(0.1, 0.9, 17) * w
    kp[:, 1] = y + rng.uniform(0.1, 0.9, 17) * h
    kp[:, 2] = rng.choice([0, 1, 2], 17, p=[0.2, 0.2, 0.6])
    kp[kp[:, 2] == 0] = 0
    return np.round(kp, 2).ravel().tolist()


def coco_base(root: Path) -> dict:
    """Three small JPEGs and their people: labelled people, a crowd region with an RLE mask,
    a keypoint-less person with a polygon. Writes the images; returns the annotation tree."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i, (w, h) in enumerate([(96, 80), (120, 90), (80, 100)], start=1):
        cv2.imwrite(str(root / "images" / f"{i:012d}.jpg"), _image(w, h, i))
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h})
        for j in range(2):
            box = [5.0 + 30 * j, 8.0, w / 2, h * 0.7]
            kp = _person(rng, *box)
            anns.append({"id": 10 * i + j, "image_id": i, "category_id": 1, "bbox": box,
                         "area": box[2] * box[3] * 0.6, "iscrowd": 0,
                         "num_keypoints": int(sum(v > 0 for v in kp[2::3])), "keypoints": kp,
                         "segmentation": [[box[0], box[1], box[0] + box[2], box[1],
                                           box[0] + box[2], box[1] + box[3]]]})
    anns.append({"id": 90, "image_id": 1, "category_id": 1, "bbox": [60.0, 40.0, 20.0, 20.0],
                 "area": 300.0, "iscrowd": 1, "num_keypoints": 0, "keypoints": [0] * 51,
                 "segmentation": {"counts": [4860, 20, 60, 20, 60, 20, 2640], "size": [80, 96]}})
    anns.append({"id": 91, "image_id": 2, "category_id": 1, "bbox": [70.0, 50.0, 30.0, 30.0],
                 "area": 500.0, "iscrowd": 0, "num_keypoints": 0, "keypoints": [0] * 51,
                 "segmentation": [[70, 50, 100, 50, 100, 80, 70, 80]]})
    from hrpose.skeletons import COCO

    category = {"id": 1, "name": "person", "supercategory": "person",
                "keypoints": list(COCO.joints),
                "skeleton": [[a + 1, b + 1] for a, b in COCO.links]}
    return {"images": images, "annotations": anns, "categories": [category]}


# Targeted mutations: the classes of bad data real sets hold (found by the first campaign).
def _targeted_coco(tree: dict, rnd: random.Random) -> dict:
    tree = copy.deepcopy(tree)
    anns, images = tree["annotations"], tree["images"]
    ann = rnd.choice(anns)
    choice = rnd.randrange(9)
    if choice == 0:                     # box wholly outside its image
        ann["bbox"] = [rnd.choice([500.0, -400.0]), rnd.choice([300.0, -300.0]), 20.0, 30.0]
    elif choice == 1:                   # malformed RLE on a crowd region
        ann["iscrowd"] = 1
        ann["segmentation"] = {"counts": rnd.choice(["!!!!", "", "\u00ff\u00ff", [1, 2, -5],
                                                     ["a"], 7]),
                               "size": rnd.choice([[1000000, 1000000], [80, 96], [-1, 5],
                                                   [0, 0], "x", [80]])}
    elif choice == 2:                   # malformed polygon
        ann["num_keypoints"] = 0
        ann["segmentation"] = rnd.choice([[[1, 2, 3]], [[]], [["a", 1, 2, 3, 4, 5]], [1, 2, 3],
                                          [[1e308, 1e308, -1e308, 5, 6, 7]], "poly", {}])
    elif choice == 3:                   # two images with one id (merged data sets)
        images.append({**copy.deepcopy(rnd.choice(images)), "file_name": "other.jpg"})
    elif choice == 4:                   # two annotations with one id
        anns.append(copy.deepcopy(ann))
    elif choice == 5:                   # stated image size that is absurd
        img = rnd.choice(images)
        img[rnd.choice(["width", "height"])] = rnd.choice([0, -5, 10**9, 1.5, "80", None])
    elif choice == 6:                   # joints far outside, or huge numbers
        ann["keypoints"] = [rnd.choice([1e300, -1e300, 1e6, v]) if i % 3 != 2 else v
                            for i, v in enumerate(ann["keypoints"])]
    elif choice == 7:                   # a dangling image id
        ann["image_id"] = rnd.choice([999, -1, "1", 1.0, None])
    else:                               # tiny and degenerate boxes
        ann["bbox"] = rnd.choice([[10, 10, 0, 0], [10, 10, 1e-9, 1e-9], [10, 10, 0.5, 400]])
    return tree


@dataclass
class Target:
    """One kind of input file: `case(workdir, rnd)` writes a mutated file there and feeds it
    through hrpose's readers, checking the contract. `setup(workdir)` builds what every case
    shares (base files, models) once."""

    name: str
    setup: Callable[[Path], dict]
    run: Callable[[dict, Path, random.Random], str]

    def case(self, context: dict, workdir: Path, rnd: random.Random) -> str:
        """'accepted' or 'error' (a clean HrposeError); anything else propagates."""
        try:
            return self.run(context, workdir, rnd)
        except HrposeError as e:
            message = str(e)
            check("\n" not in message.strip(), f"a multi-line error: {message[:200]!r}")
            return "error"


# ---- target: COCO keypoint files through loader, training samples, crops and the metric ----

def _setup_coco(root: Path) -> dict:
    from hrpose.codecs.heatmap import HeatmapCodec

    return {"tree": coco_base(root), "images": root / "images",
            "codec": HeatmapCodec((48, 64), (12, 16))}


def _run_coco(ctx: dict, workdir: Path, rnd: random.Random) -> str:
    from hrpose.data.bottomup import BottomUpAugmentation, BottomUpDataset
    from hrpose.data.coco import load_keypoints
    from hrpose.data.topdown import ImageCrops, TopDownDataset, ground_truth_boxes
    from hrpose.metrics.coco import KeypointResults, evaluate_keypoints

    tree = _targeted_coco(ctx["tree"], rnd) if rnd.random() < 0.5 else ctx["tree"]
    data = load_keypoints(_mutated_file(tree, workdir, "person_keypoints.json", rnd,
                                        structure=0.6))
    n = len(data)
    for name in ("boxes", "keypoints", "areas"):
        finite(getattr(data, name), f"data.{name}")
    check(len(set(data.ids.tolist())) == n, "duplicate annotation ids accepted")
    check(set(data.image_ids.tolist()) <= set(data.images), "dangling image id accepted")
    dataset = TopDownDataset(data, ctx["images"], ctx["codec"], seed=rnd.randrange(100))
    for i in range(min(len(dataset), 3)):
        sample = dataset[i]
        finite(sample["heatmaps"], "top-down heatmaps")
        finite(sample["weights"], "top-down weights")
    bottomup = BottomUpDataset(data, ctx["images"], input_size=64, max_people=4,
                               augmentation=BottomUpAugmentation())
    for i in range(min(len(bottomup), 2)):
        sample = bottomup[i]
        for key, value in sample.items():
            if value.is_floating_point():
                finite(value, f"bottom-up {key}")
    boxes = ground_truth_boxes(data)
    finite(boxes.boxes, "ground-truth boxes")
    check(bool((boxes.boxes[:, 2:] > 0).any(1).all()), "a ground-truth box without extent")
    crops = ImageCrops(boxes, data.images, ctx["images"], (48, 64))
    for i in range(min(len(crops), 2)):
        finite(crops[i][1], "crop matrices")
    guess = data.keypoints.copy()
    guess[..., 2] = 0.9
    results = KeypointResults(data.image_ids, guess, np.ones(n))
    stats = evaluate_keypoints(data, results)
    check(all(math.isfinite(v) for v in stats.values()), "a non-finite metric")
    return "accepted"


# ---- target: MPII json ------------------------------------------------------------------

def _setup_mpii(root: Path) -> dict:
    from hrpose.codecs.heatmap import HeatmapCodec

    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    entries = []
    for i in range(3):
        cv2.imwrite(str(root / "images" / f"{i}.jpg"), _image(90, 90, i))
        joints = np.round(rng.uniform(20, 70, (16, 2)), 1).tolist()
        entries.append({"image": f"{i}.jpg", "center": [45.0, 45.0], "scale": 0.3,
                        "joints": joints, "joints_vis": [1] * 16,
                        "headbox": [[30, 20], [50, 40]] if i else None})
    entries[0].pop("headbox")
    return {"tree": entries, "images": root / "images",
            "codec": HeatmapCodec((48, 64), (12, 16))}


def _run_mpii(ctx: dict, workdir: Path, rnd: random.Random) -> str:
    from hrpose.data.coco import load_keypoints
    from hrpose.data.topdown import TopDownDataset
    from hrpose.metrics.pckh import pckh

    data = load_keypoints(_mutated_file(ctx["tree"], workdir, "mpii.json", rnd))
    for name in ("boxes", "keypoints", "head_sizes"):
        finite(getattr(data, name), f"data.{name}")
    dataset = TopDownDataset(data, ctx["images"], ctx["codec"])
    for i in range(min(len(dataset), 2)):
        finite(dataset[i]["heatmaps"], "heatmaps")
    table = pckh(data.keypoints[..., :2], data.keypoints, data.head_sizes)
    values = [v for v in table.values() if not isinstance(v, dict)]
    check(all(math.isfinite(v) for v in [*values, *table["per_joint"].values()]),
          "a non-finite PCKh")
    return "accepted"


# ---- targets: detections, results and box files ------------------------------------------

def _setup_boxes(root: Path) -> dict:
    from hrpose.data.coco import load_coco

    tree = coco_base(root)
    (root / "ann.json").write_text(json.dumps(tree))
    data = load_coco(root / "ann.json")
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
            for a in tree["annotations"]]
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
                "score": 0.8} for a in tree["annotations"]]
    return {"tree": tree, "data": data, "dets": dets, "results": results,
            "images": root / "images"}





def _run_detections(ctx: dict, workdir: Path, rnd: random.Random) -> str:
    from hrpose.data.coco import load_detections
    from hrpose.data.topdown import ImageCrops

    found = load_detections(_mutated_file(ctx["dets"], workdir, "dets.json", rnd), ctx["data"])
    finite(found.boxes, "detection boxes")
    finite(found.scores, "detection scores")
    crops = ImageCrops(found, ctx["data"].images, ctx["images"], (48, 64))
    for i in range(min(len(crops), 2)):
        finite(crops[i][1], "crop matrices")
    return "accepted"


def _run_results(ctx: dict, workdir: Path, rnd: random.Random) -> str:
    from hrpose.metrics.coco import evaluate_keypoints, load_results, nms_per_image

    results = load_results(_mutated_file(ctx["results"], workdir, "results.json", rnd), 17)
    finite(results.keypoints, "result keypoints")
    finite(results.scores, "result scores")
    areas = np.ones(len(results)) * 1000
    results = nms_per_image(results, areas, ctx["data"].skeleton.sigmas)
    stats = evaluate_keypoints(ctx["data"], results)
    check(all(math.isfinite(v) for v in stats.values()), "a non-finite metric")
    return "accepted"


def _run_box_file(ctx: dict, workdir: Path, rnd: random.Random) -> str:
    from hrpose.inference.boxes import load_box_file

    base = ctx["tree"] if rnd.random() < 0.5 else ctx["dets"]
    boxes, names = load_box_file(_mutated_file(base, workdir, "boxes.json", rnd))
    for value in boxes.values():
        check(value.ndim == 2 and value.shape[1] == 5, "box rows are not (N, 5)")
        finite(value, "boxes")
    check(all(isinstance(v, int) for v in names.values()), "image ids are not integers")
    return "accepted"


# ---- target: image files ------------------------------------------------------------------

def _setup_images(root: Path) -> dict:
    base = _image(64, 48, 0)
    files = {}
    for ext in (".jpg", ".png", ".bmp", ".tif", ".webp"):
        _, data = cv2.imencode(ext, base[:, :, ::-1])
        files[ext] = data.tobytes()
    _, data = cv2.imencode(".png", (base[..., 0].astype(np.uint16) * 257))
    files["16-bit.png"] = data.tobytes()
    _, data = cv2.imencode(".png", np.dstack([base, base[..., :1]]))
    files["rgba.png"] = data.tobytes()
    files["exif.jpg"] = _with_exif(files[".jpg"], 6)
    return {"files": files}


def _with_exif(jpeg: bytes, orientation: int) -> bytes:
    """A JPEG with an APP1 EXIF block stating `orientation`."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + b"\x00\x00\x00\x00"
    app1 = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def _huge_header(data: bytes, rnd: random.Random) -> bytes:
    """The image's stated size patched to a decompression bomb's."""
    data = bytearray(data)
    w, h = rnd.choice([(65535, 65535), (40000, 30000), (1, 65535), (0, 0)])
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        data[16:24] = struct.pack(">II", w, h)
    elif data[:2] == b"\xff\xd8":
        i = data.find(b"\xff\xc0")
        if i > 0:
            data[i + 5 : i + 9] = struct.pack(">HH", h, w)
    elif data[:2] == b"BM":
        data[18:26] = struct.pack("<ii", w, h)
    return bytes(data)


def _run_images(ctx: dict, workdir: Path, rnd: random.Random) -> str:
    from hrpose.io import read_image

    kind = rnd.choice(sorted(ctx["files"]))
    data = ctx["files"][kind]
    data = _huge_header(data, rnd) if rnd.random() < 0.2 else mutate_bytes(data, rnd)
    path = workdir / ("image" + Path(kind).suffix)
    path.write_bytes(data)
    image = read_image(path)
    check(image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3,
          f"image of dtype {image.dtype}, shape {image.shape}")
    check(min(image.shape[:2]) > 0, "an empty image accepted")
    return "accepted"


# ---- target: video files ---------------------------------------------------------------

def _setup_videos(root: Path) -> dict:
    path = root / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (48, 32))
    for i in range(6):
        writer.write(_image(48, 32, i))
    writer.release()
    return {"data": path.read_bytes()}


def _run_videos(ctx: dict, workdir: Path, rnd: random.Random) -> str:
    from hrpose.inference.video import VideoReader

    path = workdir / rnd.choice(["clip.mp4", "clip.avi"])
    path.write_bytes(mutate_bytes(ctx["data"], rnd))
    reader = VideoReader(path)
    check(reader.fps > 0 and reader.frame_count >= 0, "fps or frame count")
    for frame in reader:
        check(frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3,
              f"a frame of shape {frame.shape}")
    return "accepted"


# ---- target: checkpoints of every container and layout -------------------------------------

class _Payload:
    """A pickle that would run code on load: creates the marker file named in its state."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _setup_checkpoints(root: Path) -> dict:
    from hrpose.models.card import ModelCard
    from hrpose.models.checkpoint import save_weights
    from hrpose.skeletons import COCO
    from tests.helpers import (
        official_state,
        randomize,
        tiny_arch,
        tiny_hrnet,
        write_mindspore_ckpt,
    )

    model = randomize(tiny_hrnet())
    card = ModelCard(arch=tiny_arch().to_dict(), input_hw=(64, 48), keypoints=COCO)
    files: dict[str, bytes] = {}
    save_weights(root / "w.safetensors", model.state_dict(), card.to_metadata())
    files["hrpose.safetensors"] = (root / "w.safetensors").read_bytes()
    buffer = io.BytesIO()
    torch.save(official_state(model), buffer)
    files["official.pth"] = buffer.getvalue()
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "meta": {"epoch": 3}}, buffer)
    files["mmpose.pth"] = buffer.getvalue()
    files["numpy.pdparams"] = pickle.dumps({k: v.numpy() for k, v in
                                            model.state_dict().items()}, protocol=2)
    for layout in ("paddle", "mindspore"):          # the foreign layouts, by their own names
        named = _named(model, layout)
        if layout == "paddle":
            files["paddle.pdparams"] = pickle.dumps(named, protocol=2)
        else:
            write_mindspore_ckpt(root / "w.ckpt", named)
            files["mindspore.ckpt"] = (root / "w.ckpt").read_bytes()
    return {"files": files, "model": model}


def _named(model: torch.nn.Module, layout: str) -> dict[str, np.ndarray]:
    from hrpose.models.layouts import source_name

    state = model.state_dict()
    bn = {k[: -len(".running_mean")] for k in state if k.endswith(".running_mean")}
    named = {}
    for key, value in state.items():
        name = source_name(layout, key, bn)
        if name is not None:
            named[("network." if layout == "mindspore" else "") + name] = value.numpy()
    return named


def _structured_checkpoint(ctx: dict, rnd: random.Random, marker: Path) -> tuple[str, bytes]:
    """A checkpoint with valid container but hostile content: non-finite or absurd tensors,
    garbage metadata, code in a pickle."""
    from safetensors.torch import save

    state = {k: v.clone() for k, v in ctx["model"].state_dict().items()}
    choice = rnd.randrange(5)
    key = rnd.choice([k for k, v in state.items() if v.is_floating_point()])
    if choice == 0:
        state[key].view(-1)[0] = rnd.choice([math.nan, math.inf, -math.inf])
    elif choice == 1:
        state[key] = torch.zeros(rnd.choice([(0,), (1, 1, 1, 1, 1), (300, 300)]))
    elif choice == 2:
        state[key] = state[key].to(rnd.choice([torch.float16, torch.int8, torch.bool]))
    elif choice == 3:
        meta = {"arch": rnd.choice(['{"family": "hrnet", "width": -3}', "[1, 2]", "{", "null",
                                    '{"family": "x"}', '{"width": 1e309}']),
                "input_hw": rnd.choice(["256x192", "0x0", "[1e9, 1e9]", "abc", "[]"]),
                "keypoints": rnd.choice(["coco", "none", "17", ""])}
        return "meta.safetensors", save(state, metadata=meta)
    else:
        payload = _Payload(str(marker))
        obj = rnd.choice([{"state_dict": payload}, {key: payload}, payload,
                          {**{k: v.numpy() for k, v in state.items()}, "x": payload}])
        ext = rnd.choice([".pth", ".pdparams"])
        if ext == ".pth":
            buffer = io.BytesIO()
            torch.save(obj, buffer)
            return "payload.pth", buffer.getvalue()
        return "payload.pdparams", pickle.dumps(obj, protocol=2)
    name = rnd.choice(["t.safetensors", "t.pth"])
    if name.endswith(".pth"):
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return name, buffer.getvalue()
    return name, save(state)


def _run_checkpoints(ctx: dict, workdir: Path, rnd: random.Random) -> str:
    from hrpose.models.layouts import load_weights
    from hrpose.models.loading import load_model
    from tests.helpers import tiny_hrnet

    marker = workdir / "code-ran"
    marker.unlink(missing_ok=True)
    if rnd.random() < 0.4:
        name, data = _structured_checkpoint(ctx, rnd, marker)
    else:
        name = rnd.choice(sorted(ctx["files"]))
        data = mutate_bytes(ctx["files"][name], rnd)
    path = workdir / name
    path.write_bytes(data)
    try:
        if name.startswith(("hrpose", "meta")):
            model, _ = load_model(path)
        else:
            model = tiny_hrnet()
            load_weights(model, path)
    finally:
        check(not marker.exists(), f"{name}: code in the file ran")
    for key, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            finite(tensor, f"loaded tensor {key}")
    return "accepted"


# ---- target: exported models (ONNX, OpenVINO IR) -----------------------------------------

def _setup_exported(root: Path) -> dict:
    legacy = Path(__file__).resolve().parent / "data" / "legacy"
    return {"files": {name: (legacy / name).read_bytes()
                      for name in ("tiny.onnx", "tiny_fp16.xml", "tiny_fp16.bin")}}


def _run_exported(ctx: dict, workdir: Path, rnd: random.Random) -> str:
    from hrpose.inference.backends import open_model

    files = dict(ctx["files"])
    name = rnd.choice(sorted(files))
    files[name] = mutate_bytes(files[name], rnd)
    for file_name, data in files.items():
        (workdir / file_name).write_bytes(data)
    model = workdir / ("tiny.onnx" if name.endswith(".onnx") else "tiny_fp16.xml")
    loaded = open_model(str(model))
    h, w = loaded.card.input_hw
    check(h > 0 and w > 0, f"input size {h}x{w}")
    from hrpose.inference.estimator import PoseEstimator

    estimator = PoseEstimator(str(model), detector=None)
    with warnings.catch_warnings():            # "the pose found is unsure": expected here
        warnings.simplefilter("ignore")
        people = estimator(_image(64, 48, 0), color="rgb")
    for person in people:
        finite(person.keypoints, "keypoints")
        finite(person.box, "box")
    return "accepted"


# ---- target: YAML configs ------------------------------------------------------------------

def _setup_configs(root: Path) -> dict:
    repo = Path(__file__).resolve().parents[1]
    paths = sorted((repo / "configs").rglob("*.yaml"))
    return {"trees": [yaml.safe_load(p.read_text()) for p in paths],
            "texts": [p.read_bytes() for p in paths]}


def _run_configs(ctx: dict, workdir: Path, rnd: random.Random) -> str:
    from hrpose.config import load_config

    i = rnd.randrange(len(ctx["trees"]))
    if rnd.random() < 0.7:
        text = yaml.safe_dump(mutate_tree(ctx["trees"][i], rnd)).encode()
    else:
        text = mutate_bytes(ctx["texts"][i], rnd)
    path = workdir / "config.yaml"
    path.write_bytes(text)
    config = load_config(path)
    check(config.train.batch >= 1 and config.train.epochs >= 1, "a count below 1 accepted")
    finite([config.train.lr, *config.data.input_wh], "config numbers")
    return "accepted"


TARGETS = {t.name: t for t in [
    Target("annotations", _setup_coco, _run_coco),
    Target("mpii", _setup_mpii, _run_mpii),
    Target("detections", _setup_boxes, _run_detections),
    Target("results", _setup_boxes, _run_results),
    Target("box_files", _setup_boxes, _run_box_file),
    Target("images", _setup_images, _run_images),
    Target("videos", _setup_videos, _run_videos),
    Target("checkpoints", _setup_checkpoints, _run_checkpoints),
    Target("exported", _setup_exported, _run_exported),
    Target("configs", _setup_configs, _run_configs),
]}
