"""ONNX export: a PyTorch heatmap model -> a checked, simplified ONNX file with hrpose metadata;
FP16 (half weights and arithmetic, float32 input and output); INT8 by NNCF's post-training
quantisation (QDQ for ONNX Runtime's int8 kernels, per-channel int8 weights, int8 activations
calibrated on real crops)."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import HrposeError
from ..io import atomic_path
from ..models.pact import export_mode, is_pact
from .openvino import nncf_quantize

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "image", "heatmaps"
# A bottom-up model's outputs: heatmaps then tags at 1/4 of the input, heatmaps at 1/2.
BOTTOMUP_OUTPUTS = ("heatmaps_tags", "heatmaps_half")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise HrposeError("exporting needs onnx: pip install 'hrpose[export]'") from None
    return onnx


class _HalfModel(nn.Module):
    """fp16 weights and arithmetic behind a float32 input and output, so callers feed the same
    arrays to every export."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).half()

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        out = self.model(x.half())
        return [o.float() for o in out] if isinstance(out, (list, tuple)) else out.float()


def export_onnx(model: nn.Module, input_hw: tuple[int, int], path: str | Path,
                metadata: dict[str, str], *, fp16: bool = False, dynamic_batch: bool = True,
                batch: int = 1, simplify: bool = True, opset: int = OPSET,
                bottomup: bool = False) -> Path:
    """Writes `model` (eval mode, CPU) as ONNX: input "image" (N, 3, H, W) float32, output
    "heatmaps"; batch dynamic, or fixed at `batch`. A `bottomup` model's input height and width
    are dynamic too (whole images keep their aspect) and it has two outputs,
    `BOTTOMUP_OUTPUTS`. Batch norm is folded into the convolutions. The file is checked,
    simplified with onnxslim and given `metadata`; written atomically."""
    onnx = _onnx()
    path = Path(path)
    model = copy.deepcopy(model).cpu().float().eval()
    pact = is_pact(model)
    if pact and fp16:
        raise HrposeError("a PACT model is int8 already; export it without --fp16")
    if fp16:
        model = _HalfModel(model)
    example = torch.zeros(1 if dynamic_batch else batch, 3, *input_hw)
    outputs = list(BOTTOMUP_OUTPUTS) if bottomup else [OUTPUT_NAME]
    axes = _dynamic_axes(outputs, dynamic_batch, bottomup)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript; for these plain convolutional models both give the same graph.
        warnings.simplefilter("ignore")
        # A PACT model's fake-quantise ops become QuantizeLinear / DequantizeLinear pairs.
        with export_mode(model):
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=outputs,
                              dynamic_axes=axes or None, do_constant_folding=True)
        proto = onnx.load(str(tmp))
        onnx.checker.check_model(proto)
        if simplify:
            proto = simplify_onnx(proto)
        if pact:
            fold_weight_quantizers(proto)
            compact_tensor_names(proto)
        set_onnx_metadata(proto, metadata)
        onnx.save(proto, str(tmp))
    return path


def _dynamic_axes(outputs: list[str], batch: bool, spatial: bool) -> dict:
    """torch.onnx's dynamic_axes: the batch, and with `spatial` the height and width of the
    input and of every output (a map of stride s is (H / s, W / s))."""
    axes: dict[str, dict[int, str]] = {}
    for i, name in enumerate([INPUT_NAME, *outputs]):
        stride = "" if i == 0 else f"_{name}"
        axes[name] = ({0: "batch"} if batch else {}) | (
            {2: f"height{stride}", 3: f"width{stride}"} if spatial else {})
    return {name: dims for name, dims in axes.items() if dims}


def simplify_onnx(proto: object) -> object:
    """onnxslim's constant folding and dead-node removal (the model's outputs do not change)."""
    try:
        import onnxslim
    except ImportError:
        raise HrposeError("--simplify needs onnxslim: pip install 'hrpose[export]' (or pass "
                          "--no-simplify)") from None
    return onnxslim.slim(proto)


def fold_weight_quantizers(proto: object) -> int:
    """Stores quantised weights as int8: each QuantizeLinear of a constant (a float weight, as
    a fake-quantised PACT layer exports it) is computed now, as the runtime would (round half
    to even, saturate), and its DequantizeLinear reads the int8 tensor. The graph computes the
    same; the weights take a quarter of the bytes. Returns how many were folded."""
    from onnx import numpy_helper

    graph = proto.graph  # type: ignore[attr-defined]
    constants = {t.name: t for t in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    folded = []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or len(node.input) < 3 or \
                not all(n in constants for n in node.input[:3]):
            continue
        w, scale, zero = (numpy_helper.to_array(constants[n]) for n in node.input[:3])
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * w.ndim
        if scale.ndim:                                  # per channel along `axis`
            shape[axis] = -1
        info = np.iinfo(zero.dtype)
        q = np.clip(np.rint(w / scale.reshape(shape)) + zero.reshape(shape).astype(np.int64),
                    info.min, info.max).astype(zero.dtype)
        graph.initializer.append(numpy_helper.from_array(q, node.output[0]))
        folded.append(node)
        for name in node.input[:3]:
            uses[name] -= 1
    for node in folded:
        graph.node.remove(node)
    unused = [t for t in graph.initializer if uses.get(t.name, 1) == 0]
    for t in unused:
        graph.initializer.remove(t)
    return len(folded)


def compact_tensor_names(proto: object) -> None:
    """Short names (t0, t1, ...) for the tensors between nodes, and no stored intermediate
    shapes (the runtimes infer them): a quantised graph's four nodes per convolution each
    carried 100-character scoped names, more bytes than its int8 weights. Node names, the
    graph's inputs and outputs keep theirs (profiles and errors name the nodes)."""
    graph = proto.graph  # type: ignore[attr-defined]
    kept = {v.name for v in (*graph.input, *graph.output)}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in kept:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for t in graph.initializer:
        t.name = short(t.name)
    for node in graph.node:
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    del graph.value_info[:]


def set_onnx_metadata(proto: object, metadata: dict[str, str]) -> None:
    """Replaces the model's metadata_props with `metadata` (what `backends._described` reads)."""
    del proto.metadata_props[:]  # type: ignore[attr-defined]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()  # type: ignore[attr-defined]
        entry.key, entry.value = key, str(value)


def load_onnx(path: str | Path) -> object:
    """An ONNX file, with a one-line error for a file that is not one."""
    onnx = _onnx()
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as e:  # onnx raises DecodeError, ValidationError, ...
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise HrposeError(f"{path}: not a valid ONNX model ({first})") from None
    return proto


def copy_onnx(source: str | Path, path: str | Path, metadata: dict[str, str],
              simplify: bool = True) -> Path:
    """An ONNX file from elsewhere, simplified and given hrpose metadata."""
    onnx = _onnx()
    proto = load_onnx(source)
    if simplify:
        proto = simplify_onnx(proto)
    set_onnx_metadata(proto, metadata)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
    return Path(path)


def _float_scope(proto: object) -> dict | None:
    """What stays float in a model with depthwise convolutions (LiteHRNet, PP-TinyPose), as in
    the OpenVINO path: the depthwise convolutions and the branch sums. ONNX Runtime's own
    static quantisation of everything cost PP-TinyPose nearly all its AP (0.81 -> 0.02 on
    coco-tiny); models without depthwise convolutions are quantised whole."""
    depthwise = [n.name for n in proto.graph.node  # type: ignore[attr-defined]
                 if n.op_type == "Conv" and any(a.name == "group" and a.i > 1
                                                for a in n.attribute)]
    return {"names": depthwise, "types": ["Add"]} if depthwise else None


def quantize_onnx(source: str | Path, path: str | Path, calibration: Iterable[np.ndarray],
                  metadata: dict[str, str]) -> Path:
    """INT8 by NNCF's post-training quantisation of the ONNX graph: QDQ pairs that ONNX
    Runtime runs on its int8 kernels, per-channel int8 weights, int8 activations with ranges
    from `calibration` (normalised float32 batches), and NNCF's fast bias correction, which
    ONNX Runtime's own quantiser lacks (PP-TinyPose on coco-mini-train: AP 0.43 with it, 0.52
    with NNCF, fp32 0.58)."""
    onnx = _onnx()
    proto = load_onnx(source)
    name = proto.graph.input[0].name  # type: ignore[attr-defined]
    quantized = nncf_quantize(proto, [{name: b} for b in calibration], _float_scope(proto))
    fold_weight_quantizers(quantized)
    compact_tensor_names(quantized)
    set_onnx_metadata(quantized, metadata)
    with atomic_path(path) as tmp:
        onnx.save(quantized, str(tmp))
    return Path(path)
