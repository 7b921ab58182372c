"""Checkpoint import: published HRNet weights of the official code, mmpose 0.x and 1.x,
PaddleDetection, MindSpore (MindPose) and the ImageNet-pretrained HRNet, mapped onto hrpose names.

Reading never runs code from the file: safetensors, `torch.load(weights_only=True)`, a restricted
unpickler for Paddle's `.pdparams` (numpy arrays and plain containers only), and a protobuf
wire-format reader for MindSpore `.ckpt`. Every tensor the model has is looked up under the
layout's name for it and shape-checked; anything missing, left over or of the wrong shape is
reported in one line that names the file.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError

Tensors = dict[str, "np.ndarray | torch.Tensor"]

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

# ----------------------------------------------------------------------------------------------
# Reading containers


_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"refusing to decode bytes as {encoding!r}")
    return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """Admits numpy arrays, dtypes, scalars and plain containers; any other global is refused."""

    _ALLOWED: ClassVar[dict[str, object]] = {
        "_reconstruct": np.ndarray(0).__reduce__()[0],
        "ndarray": np.ndarray,
        "dtype": np.dtype,
        "scalar": np.float32(0).__reduce__()[0],
    }

    def find_class(self, module: str, name: str) -> object:
        if module.split(".")[0] == "numpy" and name in self._ALLOWED:
            return self._ALLOWED[name]
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        if (module, name) == ("_codecs", "encode"):  # protocol 2 stores bytes this way
            return _latin1_bytes
        raise pickle.UnpicklingError(f"refusing to unpickle the global {module}.{name}")


# Numpy data (arrays, scalars, dtypes) that training checkpoints keep in their metadata, such as
# mmcv's best score: plain data, admitted by torch.load(weights_only=True) as well.
_NUMPY_DATA = [*_ArrayUnpickler._ALLOWED.values(),
               *(type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int8,
                                             np.int16, np.int32, np.int64, np.uint8, np.bool_))]


def _torch_load(path: Path) -> object:
    with torch.serialization.safe_globals(_NUMPY_DATA):
        return torch.load(path, map_location="cpu", weights_only=True)


_MS_DTYPES = {
    "Float16": np.float16, "Float32": np.float32, "Float64": np.float64,
    "Int8": np.int8, "Int16": np.int16, "Int32": np.int32, "Int64": np.int64,
    "UInt8": np.uint8, "Bool": np.bool_,
}


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _proto_fields(buf: memoryview):
    """Yields (field number, value) of a protobuf message: int for varints, bytes otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated message")
        yield field, value


def _read_mindspore(data: bytes) -> Tensors:
    """MindSpore .ckpt: `Checkpoint {repeated Value value = 1}`, `Value {string tag = 1;
    TensorProto tensor = 2}`, `TensorProto {repeated int64 dims = 1; string tensor_type = 2;
    bytes tensor_content = 3}`. A large tensor may be split over several values with one tag."""
    parts: dict[str, list] = {}
    for field, value in _proto_fields(memoryview(data)):
        if field != 1:
            continue
        tag, tensor = None, None
        for f, v in _proto_fields(value):
            if f == 1:
                tag = bytes(v).decode()
            elif f == 2:
                tensor = v
        if tag is None or tensor is None:
            continue  # map tensors and other entries carry no weights
        dims: list[int] = []
        dtype, content = "", b""
        for f, v in _proto_fields(tensor):
            if f == 1 and isinstance(v, int):
                dims.append(v)
            elif f == 1:  # packed
                pos = 0
                while pos < len(v):
                    d, pos = _varint(v, pos)
                    dims.append(d)
            elif f == 2:
                dtype = bytes(v).decode()
            elif f == 3:
                content = bytes(v)
        parts.setdefault(tag, []).append((dims, dtype, content))
    tensors: Tensors = {}
    for tag, chunks in parts.items():
        dims, dtype, _ = chunks[0]
        raw = b"".join(c for _, _, c in chunks)
        if dtype == "BFloat16":
            bits = np.frombuffer(raw, np.uint16).astype(np.uint32) << 16
            array = bits.view(np.float32)
        elif dtype in _MS_DTYPES:
            array = np.frombuffer(raw, _MS_DTYPES[dtype])
        else:
            raise ValueError(f"tensor {tag!r} has unsupported type {dtype!r}")
        shape = dims if int(np.prod(dims)) == array.size else [-1, *dims[1:]]
        tensors[tag] = array.reshape(shape)
    if not tensors:
        raise ValueError("no tensors found")
    return tensors


def _unwrap(obj: object) -> dict:
    """The state dict inside a training checkpoint (`{'state_dict': ...}`, `{'model': ...}`)."""
    while isinstance(obj, dict):
        inner = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), dict)),
                     None)
        if inner is None:
            return obj
        obj = inner
    raise ValueError(f"expected a dict of tensors, found {type(obj).__name__}")


def read_checkpoint(path: str | os.PathLike) -> tuple[Tensors, dict[str, str]]:
    """(tensors by name, metadata) from any supported container, without running its code."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(16)  # enough to tell the formats apart; each reader reads the file once
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror})") from None
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    metadata: dict[str, str] = {}
    try:
        header = struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else 0
        if head[8:9] == b"{" and 8 + header <= size:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                metadata = dict(f.metadata() or {})
                obj = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        elif head[:4] == b"PK\x03\x04" or head.startswith(_TORCH_LEGACY_MAGIC):
            obj = _torch_load(path)
        elif head[:1] == b"\x80":
            obj = _ArrayUnpickler(io.BytesIO(path.read_bytes())).load()
        elif head[:1] == b"\x0a":
            obj = _read_mindspore(path.read_bytes())
        else:
            raise CheckpointError(
                f"{path}: not a checkpoint (neither safetensors, PyTorch, Paddle .pdparams "
                "nor MindSpore .ckpt)")
        state = _unwrap(obj)
    except pickle.UnpicklingError as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "Weights only load failed" in str(e):
            refused = re.search(r"GLOBAL ([\w.]+)", str(e))
            what = f" ({refused.group(1)})" if refused else ""
            msg = (f"it holds a Python object{what} besides tensors, which is never unpickled; "
                   "save the state dict alone")
        raise CheckpointError(f"{path}: unsafe or corrupt pickle: {msg}") from None
    except (EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: the file is truncated or corrupt ({e})") from None
    except (RuntimeError, ValueError, KeyError, struct.error, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: the file is truncated or corrupt ({first})") from None
    tensors = {
        k: v for k, v in state.items() if isinstance(v, (torch.Tensor, np.ndarray))
    }
    if not tensors:
        raise CheckpointError(f"{path}: the file holds no tensors")
    if all(k.startswith("module.") for k in tensors):  # saved from DataParallel
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors, metadata


# ----------------------------------------------------------------------------------------------
# Layouts: where each hrpose tensor lives in a foreign file


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
    missing, unexpected or mis-shaped tensor."""
    expected = model.state_dict()
    bn_layers = {k[: -len(".running_mean")] for k in expected if k.endswith(".running_mean")}
    if layout == "mindspore":
        tensors = _normalise_mindspore_keys(tensors)
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
        value = torch.as_tensor(np.array(tensors[name]) if isinstance(tensors[name], np.ndarray)
                                else tensors[name])
        if tuple(value.shape) != tuple(target.shape):
            mismatched.append((key, tuple(value.shape), tuple(target.shape)))
            continue
        state[key] = value.to(dtype=target.dtype, device=target.device)
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


def guess_model(tensors: Tensors, layout: str, source: str = "checkpoint") -> str:
    """The first zoo model whose tensors all fit the file (architecture and joints)."""
    from .zoo import MODELS, create_model

    for name in MODELS:
        try:
            map_tensors(create_model(name, device="meta"), tensors, layout)
            return name
        except CheckpointError:
            continue
    raise CheckpointError(
        f"{source}: matches no zoo model ({', '.join(MODELS)}); name one with --model")


def convert_checkpoint(src: str | os.PathLike, dst: str | os.PathLike,
                       model_name: str | None = None) -> dict[str, str]:
    """Reads `src` in any supported layout and writes an hrpose safetensors checkpoint to `dst`.
    Returns its metadata (model, source layout, ...)."""
    from ..engine.checkpoint import save_weights
    from .zoo import create_model, get_spec

    tensors, _ = read_checkpoint(src)
    layout = detect_layout(tensors, str(src))
    if model_name is None:
        model_name = guess_model(tensors, layout, str(src))
    spec = get_spec(model_name)
    state = map_tensors(create_model(model_name), tensors, layout, str(src))
    if layout in ("imagenet", "backbone"):  # the head was never in the file
        state = {k: v for k, v in state.items() if k.startswith("backbone.")}
    metadata = {
        "model": model_name,
        "source_layout": layout,
        "source_file": Path(src).name,
        "num_joints": str(spec.num_joints),
        "keypoints": spec.keypoints,
        "input_hw": f"{spec.input_hw[0]}x{spec.input_hw[1]}",
    }
    save_weights(dst, state, metadata)
    return metadata


# ----------------------------------------------------------------------------------------------
# OpenVINO IR: a graph with batch norm folded into its convolutions (PP-TinyPose)


def read_openvino_convs(path: str | os.PathLike) -> tuple[list[tuple[np.ndarray, np.ndarray]],
                                                         tuple[int, int]]:
    """(weight, bias) of every convolution of an OpenVINO IR in the order its source framework
    built them, and the input (h, w). PaddleDetection exports name each folded batch norm's
    Add `batch_norm2d_<n>` with n in construction order; a convolution without one (the
    biased heatmap layer) comes last. Constants are read as float32 (FP16 IRs decompressed)."""
    try:
        import openvino as ov  # noqa: F401
    except ImportError:
        raise CheckpointError("reading an OpenVINO model needs openvino: pip install "
                              "'hrpose[runtimes]'") from None
    from ..inference.backends import openvino_core

    try:
        model = openvino_core().read_model(str(path))
    except Exception as e:  # OpenVINO raises RuntimeError with long multi-line text
        raise CheckpointError(f"{path}: cannot read the OpenVINO model "
                              f"({str(e).strip().splitlines()[0]})") from None

    def constant(output: object) -> np.ndarray:
        node = output.get_node()
        while node.get_type_name() == "Convert":
            node = node.input(0).get_source_output().get_node()
        if node.get_type_name() != "Constant":
            raise CheckpointError(f"{path}: a convolution's weights are not a constant "
                                  f"({node.get_type_name()})")
        return np.asarray(node.get_data(), np.float32)

    convs = []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in ("Convolution", "GroupConvolution"):
            continue
        weight = constant(op.input(1).get_source_output())
        if op.get_type_name() == "GroupConvolution":       # (G, O/G, I/G, kh, kw)
            weight = weight.reshape(-1, *weight.shape[2:])
        users = [t.get_node() for t in op.output(0).get_target_inputs()]
        add = next((u for u in users if u.get_type_name() == "Add"), None)
        if add is None:
            raise CheckpointError(f"{path}: a convolution has no bias Add after it")
        bias = constant(next(i.get_source_output() for i in add.inputs()
                             if i.get_source_output().get_node() is not op)).reshape(-1)
        match = re.match(r"batch_norm2d_(\d+)", add.get_friendly_name())
        convs.append((int(match.group(1)) if match else 1 << 30, weight, bias))
    convs.sort(key=lambda c: c[0])
    shape = model.inputs[0].get_partial_shape()
    hw = tuple(d.get_length() if d.is_static else 0 for d in shape)[2:]
    return [(w, b) for _, w, b in convs], hw  # type: ignore[return-value]


def convert_openvino(src: str | os.PathLike, dst: str | os.PathLike,
                     model_name: str | None = None) -> dict[str, str]:
    """An OpenVINO IR of a zoo architecture with folded batch norm (PP-TinyPose) -> an hrpose
    checkpoint: every convolution's weight and bias, matched in construction order and
    shape-checked. The model is named, or found from the input size among tinypose_*."""
    from ..engine.checkpoint import save_weights
    from .zoo import MODELS, create_model, get_spec

    convs, hw = read_openvino_convs(src)
    if model_name is None:
        found = [n for n, s in MODELS.items() if n.startswith("tinypose")
                 and tuple(s.input_hw) == tuple(hw)]
        if len(found) != 1:
            raise CheckpointError(f"{src}: input {hw[0]}x{hw[1]} is no tinypose_* model's; "
                                  "name the architecture with --model")
        model_name = found[0]
    spec = get_spec(model_name)
    model = create_model(model_name)
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if len(layers) != len(convs) or any(m.bias is None for _, m in layers):
        raise CheckpointError(f"{src}: {len(convs)} convolutions with folded batch norm; "
                              f"{model_name} has {len(layers)} biased ones")
    state = model.state_dict()
    for (name, layer), (weight, bias) in zip(layers, convs):
        if tuple(weight.shape) != tuple(layer.weight.shape) or len(bias) != layer.out_channels:
            raise CheckpointError(f"{src}: convolution {name} is {list(layer.weight.shape)} in "
                                  f"{model_name}, {list(weight.shape)} in the file")
        state[f"{name}.weight"] = torch.from_numpy(weight)
        state[f"{name}.bias"] = torch.from_numpy(bias)
    metadata = {"model": model_name, "source_layout": "openvino",
                "source_file": Path(src).name, "num_joints": str(spec.num_joints),
                "keypoints": spec.keypoints, "input_hw": f"{spec.input_hw[0]}x{spec.input_hw[1]}"}
    save_weights(dst, state, metadata)
    return metadata
