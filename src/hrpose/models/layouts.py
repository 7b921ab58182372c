"""Foreign name layouts: where each hrpose tensor lives in a checkpoint of the official
HRNet code, mmpose 0.x and 1.x, PaddleDetection, MindSpore (MindPose) and the ImageNet-pretrained
HRNet. Every tensor the model has is looked up under the layout's name for it and
shape-checked; anything missing, left over or of the wrong shape is one line naming the file.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError
from .checkpoint import Tensors, read_checkpoint

LAYOUTS = {
    "hrpose": "hrpose / mmpose 1.x",
    "backbone": "hrpose backbone only",
    "official": "official HRNet / HigherHRNet",
    "mmpose0": "mmpose 0.x",
    "imagenet": "official HRNet backbone (ImageNet-pretrained)",
    "paddle": "PaddleDetection",
    "mindspore": "MindSpore / MindPose",
    "openvino": "OpenVINO IR with folded batch norm",
}


def detect_layout(keys: list[str] | set[str], source: str = "checkpoint") -> str:
    keys = set(keys)

    def any_start(*prefixes: str) -> bool:
        return any(k.startswith(prefixes) for k in keys)

    if any(k.endswith(("._mean", "._variance")) for k in keys) or any_start(
            "backbone.conv_layer1_1.", "final_conv."):
        return "paddle"
    if any(k.endswith((".gamma", ".moving_mean", ".moving_variance")) for k in keys):
        return "mindspore"
    if any_start("keypoint_head."):
        return "mmpose0"
    if any_start("incre_modules.", "downsamp_modules.", "classifier."):
        return "imagenet"
    if any_start("backbone."):
        return "hrpose" if any_start("head.") else "backbone"
    if "conv1.weight" in keys and ("final_layer.weight" in keys
                                   or "final_layers.0.weight" in keys):   # HRNet, HigherHRNet
        return "official"
    if "conv1.weight" in keys and "layer1.0.conv1.weight" in keys:
        return "imagenet"  # an official-names backbone without the classifier
    sample = ", ".join(sorted(keys)[:3])
    raise CheckpointError(f"{source}: unrecognised checkpoint layout (keys such as {sample})")


_PADDLE_PARAM = {"weight": "weight", "bias": "bias", "running_mean": "_mean",
                 "running_var": "_variance"}


def _paddle_name(key: str) -> str | None:
    """The PaddleDetection TopDownHRNet name of an hrpose tensor (1-based structured names)."""
    path, param = key.rsplit(".", 1)
    if param not in _PADDLE_PARAM:
        return None  # num_batches_tracked: Paddle keeps none
    if path == "head.final_layer":
        return f"final_conv.{param}"
    p = path.split(".")[1:]
    n = [int(x) + 1 if x.isdigit() else x for x in p]  # Paddle counts from 1
    layer = None
    match p:
        case ["conv1" | "bn1" as m]:
            layer = f"conv_layer1_1.{'conv' if m == 'conv1' else 'norm'}"
        case ["conv2" | "bn2" as m]:
            layer = f"conv_layer1_2.{'conv' if m == 'conv2' else 'norm'}"
        case ["layer1", _, "downsample", i]:
            layer = f"la1.block_layer2_{n[1]}.conv_down.{'conv' if i == '0' else 'norm'}"
        case ["layer1", _, m]:
            layer = f"la1.block_layer2_{n[1]}.conv{m[-1]}.{'conv' if m[:-1] == 'conv' else 'norm'}"
        case [t, _, "0", i] | [t, _, i] if t.startswith("transition"):
            t = t[len("transition"):]
            layer = f"tr{t}.transition_tr{t}_layer_{n[1]}.{'conv' if i == '0' else 'norm'}"
        case [s, _, "branches", _, _, m] if s.startswith("stage"):
            st = f"st{s[5:]}_{n[1]}"
            layer = (f"st{s[5:]}.stage_{st}.branches_func.bb_{st}_branch_layer_{n[3]}_{n[4]}"
                     f".conv{m[-1]}.{'conv' if m[:-1] == 'conv' else 'norm'}")
        case [s, _, "fuse_layers", _, _, i] if s.startswith("stage"):
            st = f"st{s[5:]}_{n[1]}"
            layer = (f"st{s[5:]}.stage_{st}.fuse_func.residual_{st}_layer_{n[3]}_{n[4]}"
                     f".{'conv' if i == '0' else 'norm'}")
        case [s, _, "fuse_layers", _, _, _, i] if s.startswith("stage"):
            st = f"st{s[5:]}_{n[1]}"
            layer = (f"st{s[5:]}.stage_{st}.fuse_func.residual_{st}_layer_{n[3]}_{n[4]}_{n[5]}"
                     f".{'conv' if i == '0' else 'norm'}")
    if layer is None:
        raise CheckpointError(f"no PaddleDetection name for the hrpose tensor {key}")
    return f"backbone.{layer}.{_PADDLE_PARAM[param]}"


_MINDSPORE_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
                 "running_var": "moving_variance"}


def _mindspore_name(key: str, bn_layers: set[str]) -> str | None:
    """MindPose names: `down_sample`, BN gamma/beta/moving_*, the head conv at `head.head`."""
    path, param = key.rsplit(".", 1)
    if param == "num_batches_tracked":
        return None
    if path in bn_layers:
        param = _MINDSPORE_BN[param]
    if path == "head.final_layer":
        path = "head.head"
    return f"{path.replace('.downsample.', '.down_sample.')}.{param}"


def _paddle_lite_name(key: str, bn_layers: set[str]) -> str | None:
    """PaddleDetection's LiteHRNet names: the official structure, with `norm` for the conv
    modules' `bn`, BN statistics as `_mean` / `_variance`, the heatmap layer as `final_conv`."""
    path, param = key.rsplit(".", 1)
    if param == "num_batches_tracked":
        return None
    if path == "head.final_layer":
        return f"final_conv.{param}"
    if path in bn_layers:
        param = _PADDLE_PARAM[param]
        if path.endswith(".bn"):
            path = path[: -len("bn")] + "norm"
    return f"{path}.{param}"


def source_name(layout: str, key: str, bn_layers: set[str]) -> str | None:
    """Where hrpose tensor `key` is stored in a file of `layout`; None where that layout has no
    such tensor by design (the model keeps its own value)."""
    backbone = key.startswith("backbone.")
    if layout == "hrpose":
        return key
    if layout == "backbone":
        return key if backbone else None
    if layout == "official":
        return key[len("backbone."):] if backbone else key[len("head."):]
    if layout == "mmpose0":
        return key if backbone else "keypoint_head." + key[len("head."):]
    if layout == "imagenet":
        return key[len("backbone."):] if backbone else None
    if layout == "paddle":
        if "backbone.stem.conv1.bn" in bn_layers:          # a LiteHRNet
            return _paddle_lite_name(key, bn_layers)
        return _paddle_name(key)
    if layout == "mindspore":
        return _mindspore_name(key, bn_layers)
    raise ValueError(f"unknown layout {layout!r}")


def _ignorable(layout: str, name: str) -> bool:
    """File tensors that are expected to go unused."""
    if name.endswith("num_batches_tracked") or name.startswith("data_preprocessor."):
        return True
    if layout == "imagenet" and name.startswith(
            ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")):
        return True
    # Fuse layers toward lower-resolution outputs of the last module, present in checkpoints
    # trained with multi-scale output (ImageNet, some mmpose configs); the heads never use them.
    parts = name.split(".")
    if "fuse_layers" in parts:
        i = parts.index("fuse_layers")
        return i + 1 < len(parts) and parts[i + 1] != "0" and parts[i - 2].endswith("stage4")
    return False


def layout_tensors(tensors: Tensors, layout: str) -> Tensors:
    """A file's tensors under the names `source_name` gives: MindSpore files lose their
    optimiser state and training wrappers (`network.`, `net.`); other layouts are as read."""
    return _normalise_mindspore_keys(tensors) if layout == "mindspore" else tensors


def _normalise_mindspore_keys(tensors: Tensors) -> Tensors:
    """Drops optimiser state and strips training wrappers (`network.`, `net.`) from tags."""
    optimiser = {"moment1", "moment2", "moments", "accum", "adam_m", "adam_v", "vhat"}
    out: Tensors = {}
    for tag, value in tensors.items():
        parts = tag.split(".")
        if parts[0] in optimiser:
            continue
        starts = [i for i, p in enumerate(parts) if p in ("backbone", "head")]
        if starts:
            out[".".join(parts[starts[0]:])] = value
    return out


def _width_hint(tensors: Tensors, layout: str) -> str:
    name = source_name(layout, "backbone.transition1.0.0.weight", set())
    if name and name in tensors and np.ndim(tensors[name]) == 4:
        return f"; the file looks like HRNet-W{tensors[name].shape[0]}"
    return ""


def _names(items: list[str], limit: int = 4) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def map_tensors(model: nn.Module, tensors: Tensors, layout: str, source: str = "checkpoint"
                ) -> dict[str, torch.Tensor]:
    """The model's full state dict filled from `tensors` of `layout`; CheckpointError on any
    missing, unexpected, mis-shaped or non-finite tensor. A model on the meta device gets the
    shape checks alone."""
    expected = model.state_dict()
    bn_layers = {k[: -len(".running_mean")] for k in expected if k.endswith(".running_mean")}
    tensors = layout_tensors(tensors, layout)
    state: dict[str, torch.Tensor] = {}
    claimed: set[str] = set()
    missing: list[str] = []
    mismatched: list[tuple[str, tuple, tuple]] = []
    for key, target in expected.items():
        name = source_name(layout, key, bn_layers)
        if name is None or (key.endswith("num_batches_tracked") and name not in tensors):
            state[key] = target
            continue
        if name not in tensors:
            missing.append(key)
            continue
        claimed.add(name)
        shape = tuple(np.shape(tensors[name]))
        if shape != tuple(target.shape):
            mismatched.append((key, shape, tuple(target.shape)))
            continue
        if target.is_meta:                # a shape check only (guess_model, load_model)
            state[key] = target
            continue
        value = torch.as_tensor(np.array(tensors[name]) if isinstance(tensors[name], np.ndarray)
                                else tensors[name])
        value = value.to(dtype=target.dtype)
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{source}: tensor {name} holds NaN or infinite values (or "
                                  "ones too large for its type); the file is corrupt or from "
                                  "a diverged run")
        state[key] = value.to(device=target.device)
    unexpected = sorted(k for k in tensors if k not in claimed and not _ignorable(layout, k))
    kind = LAYOUTS[layout]
    if mismatched:
        key, got, want = mismatched[0]
        if key == "head.final_layer.weight" and len(mismatched) <= 2:
            raise CheckpointError(
                f"{source}: the checkpoint predicts {got[0]} joints but the model predicts "
                f"{want[0]} ({key}: {list(got)} in the file, {list(want)} in the model)")
        raise CheckpointError(
            f"{source}: {len(mismatched)} tensors do not fit the model ({kind} layout), e.g. "
            f"{key}: {list(got)} in the file, {list(want)} in the model"
            f"{_width_hint(tensors, layout)}")
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} model tensors missing from the file "
                         f"({_names(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} file tensors unused by the model "
                         f"({_names(unexpected)})")
        raise CheckpointError(f"{source}: wrong architecture for a {kind} checkpoint: "
                              + "; ".join(parts))
    return state


def load_weights(model: nn.Module, path: str | os.PathLike) -> str:
    """Loads a checkpoint of any supported layout into `model`; returns the layout's name."""
    tensors, _ = read_checkpoint(path)
    layout = detect_layout(tensors, str(path))
    model.load_state_dict(map_tensors(model, tensors, layout, str(path)), strict=True)
    return layout
