"""Test helpers: tiny HRNets with random weights, official-layout tensors, the shared real
data (skipped with the reason when absent), one-image COCO roots, the tiny training run and a
hand-written MindSpore .ckpt."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hrpose.models.arch import HRNetArch
from hrpose.models.heads import TopDownModel
from hrpose.skeletons import COCO

# A training run of seconds: a tiny HRNet on 64x64 crops, 3 iterations an epoch, one thread.
TINY_TRAIN = [
    "model.width=8", "model.stem_channels=16", "model.layer1_channels=8",
    "model.layer1_blocks=1", "model.stage_modules=[1,1,1]", "model.num_blocks=1",
    "model.init=none", "data.input_wh=[64,64]", "data.heatmap_wh=[16,16]", "data.workers=0",
    "train.epochs=2", "train.batch=4", "train.max_iters=3", "train.warmup_iters=2",
    "train.eval_every=1", "train.draw_images=2", "train.threads=1", "train.device=cpu",
    "test.batch=16", "test.flip=false",
]


def tiny_arch(width: int = 8, num_joints: int = 17) -> HRNetArch:
    """All four stages, two modules in stages 3 and 4 (so multi-step fuse paths and a
    single-output last module exist), one block per branch: the official tensor names, tiny."""
    return HRNetArch(width=width, num_joints=num_joints, layer1_blocks=2, num_blocks=1,
                     stage_modules=(1, 2, 2))


def tiny_hrnet(width: int = 8, num_joints: int = 17) -> TopDownModel:
    return tiny_arch(width, num_joints).create()


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights and BN statistics of a useful scale (the official init is near zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * 0.2)
    return model.eval()


def official_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors under the official HRNet names (no `backbone.`/`head.` prefix)."""
    return {k.removeprefix("backbone.").removeprefix("head."): v.clone()
            for k, v in model.state_dict().items()}


SHARED_DATA = Path(os.environ.get(
    "HRPOSE_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
TINYPOSE_XML = "models/tinypose_256x192/model.xml"
PICODET_XML = "models/picodet_s_320_pedestrian/picodet_s_320_lcnet_pedestrian.xml"


# The line a command starts with to say what runs: "hrpose: <model> (top-down 256x192, ...) on
# openvino, cpu, fp32; ..." (inference.backends.describe_model).
STARTUP_LINE = re.compile(r"^hrpose: (training |evaluating |serving )?\S.* on "
                          r"(torch|onnxruntime|openvino), ")


def message_lines(err: str) -> list[str]:
    """A command's stderr lines that carry messages (errors, warnings), without its start-up
    line."""
    return [line for line in err.strip().splitlines() if not STARTUP_LINE.match(line)]


def shared_data(*parts: str) -> Path:
    """A path under the shared real-data folder ($HRPOSE_SHARED_DATA, default ../shared/data
    beside the checkout). When it is absent the test is skipped with the reason, or fails
    with HRPOSE_REQUIRE_DATA=1 (CI: a missing folder must not pass as skips)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"shared real data not found: {path} (set HRPOSE_SHARED_DATA)"
        if os.environ.get("HRPOSE_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def write_coco(root: Path, people: list[list[tuple[float, float, int]]], boxes: list[list[float]],
               image_wh: tuple[int, int] = (320, 240), split: str = "val2017") -> Path:
    """A one-image COCO root with these people (17 joints each) and a real JPEG; returns the
    annotation file."""
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    w, h = image_wh
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    cv2.imwrite(str(root / split / "000000000001.jpg"), image)
    anns = []
    for i, (joints, box) in enumerate(zip(people, boxes)):
        kp = [v for j in joints for v in j]
        anns.append({"id": i + 1, "image_id": 1, "category_id": 1, "bbox": box, "iscrowd": 0,
                     "area": box[2] * box[3], "num_keypoints": sum(j[2] > 0 for j in joints),
                     "keypoints": kp})
    category = {"id": 1, "name": "person", "keypoints": list(COCO.joints),
                "skeleton": [[a + 1, b + 1] for a, b in COCO.links]}
    ann = root / "annotations" / f"person_keypoints_{split}.json"
    ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "000000000001.jpg",
                                            "width": w, "height": h}],
                               "annotations": anns, "categories": [category]}))
    return ann


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def write_mindspore_ckpt(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """MindSpore checkpoint.proto, written by hand: Checkpoint{Value{tag, TensorProto}}."""
    blob = b""
    for tag, array in tensors.items():
        kind = {np.float32: b"Float32", np.int32: b"Int32"}[array.dtype.type]
        tensor = b"".join(_varint(1 << 3) + _varint(d) for d in array.shape)
        tensor += _len_field(2, kind) + _len_field(3, array.tobytes())
        blob += _len_field(1, _len_field(1, tag.encode()) + _len_field(2, tensor))
    path.write_bytes(blob)
