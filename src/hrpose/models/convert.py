"""`hrpose convert`: a published checkpoint (any layout of models/layouts.py) or an OpenVINO IR
with folded batch norm (PP-TinyPose) -> an hrpose safetensors checkpoint with its model card."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, HrposeError
from ..runtimes import read_openvino
from .checkpoint import read_checkpoint, save_weights
from .layouts import detect_layout, map_tensors
from .loading import guess_model
from .zoo import MODELS, create_model, get_spec


def convert_checkpoint(src: str | os.PathLike, dst: str | os.PathLike,
                       model_name: str | None = None) -> dict[str, str]:
    """Reads `src` in any supported layout and writes an hrpose safetensors checkpoint to `dst`.
    Returns its metadata (model, source layout, ...)."""
    tensors, _ = read_checkpoint(src)
    layout = detect_layout(tensors, str(src))
    if model_name is None:
        model_name = guess_model(tensors, layout, str(src))
    state = map_tensors(create_model(model_name), tensors, layout, str(src))
    if layout in ("imagenet", "backbone"):  # the head was never in the file
        state = {k: v for k, v in state.items() if k.startswith("backbone.")}
    return _save(dst, state, model_name, layout, src)


def _save(dst: str | os.PathLike, state: dict[str, torch.Tensor], model_name: str,
          layout: str, src: str | os.PathLike) -> dict[str, str]:
    """Writes the converted weights with the zoo model's card; returns the metadata."""
    metadata = get_spec(model_name).card().with_extra(
        source_layout=layout, source_file=Path(src).name).to_metadata()
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
        model = read_openvino(path)
    except HrposeError as e:
        raise CheckpointError(str(e)) from None

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
    shape-checked. The model is named, or found from the input size among the zoo's models
    with biased convolutions (PP-TinyPose)."""
    convs, hw = read_openvino_convs(src)
    if model_name is None:
        # zoo models with biased convolutions (batch norm folded in, as published)
        found = [n for n, s in MODELS.items() if getattr(s.arch, "conv_bias", False)
                 and tuple(s.input_hw) == tuple(hw)]
        if len(found) != 1:
            raise CheckpointError(f"{src}: input {hw[0]}x{hw[1]} is no tinypose_* model's; "
                                  "name the architecture with --model")
        model_name = found[0]
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
    return _save(dst, state, model_name, "openvino", src)
