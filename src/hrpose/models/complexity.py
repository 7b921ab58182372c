"""Parameter and multiply-accumulate counts, measured with forward hooks on the meta device.

Conventions (both shown by `hrpose info`):
- MACs: multiply-accumulates of convolution, transposed convolution and linear layers, every call
  counted, per sample. A convolution costs (output elements) x (in_channels / groups) x kh x kw;
  a transposed convolution costs (input elements) x (out_channels / groups) x kh x kw.
- "paper GFLOPs": what the official summary tools print under the name GFLOPs. The HRNet tool
  prints the MACs / 2**30 (7.1 for W32 256x192 where the MACs are 7.65e9). The HigherHRNet tool
  counts a transposed convolution over its output positions (4x for stride 2) and divides by
  10**9 (47.9 for HigherHRNet-W32 512, whose MACs are 46.20e9): `paper_macs` and `paper_unit`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Complexity:
    params: int                       # learnable parameters
    macs: int                         # per sample
    input_shape: tuple[int, ...]
    output_shapes: list[tuple[int, ...]]
    paper_macs: int = 0               # transposed convolutions counted over output positions
    paper_unit: float = 2**30
    official_macs: int = 0            # the official code's count where it repeats a call


    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def paper_gflops(self) -> float:
        return (self.paper_macs or self.macs) / self.paper_unit


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _layer_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output[0].numel() * module.in_channels // module.groups * kh * kw
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = module.kernel_size
        return inputs[0][0].numel() * module.out_channels // module.groups * kh * kw
    if isinstance(module, nn.Linear):
        return output[0].numel() * module.in_features
    return 0


def measure(model: nn.Module, input_shape: tuple[int, ...], paper_unit: float = 2**30
            ) -> Complexity:
    """Counts `model` (any device; best built on the meta device) on one input of `input_shape`
    (C, H, W) or (1, C, H, W). `paper_unit`: the divisor of the official summary tool."""
    if len(input_shape) == 3:
        input_shape = (1, *input_shape)
    total = paper = official = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total, paper, official
        macs = _layer_macs(module, inputs, output)
        total += macs
        # A layer whose result the official code computes twice (LiteHRNet's fusion).
        official += macs * getattr(module, "official_calls", 1)
        if isinstance(module, nn.ConvTranspose2d):
            macs = macs * output[0][0].numel() // inputs[0][0][0].numel()
        paper += macs

    counted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, counted)]
    device = next(model.parameters()).device
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(input_shape, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    outputs = out if isinstance(out, (list, tuple)) else [out]
    return Complexity(
        params=count_params(model),
        macs=total,
        input_shape=tuple(input_shape),
        output_shapes=[tuple(o.shape) for o in outputs],
        paper_macs=paper,
        paper_unit=paper_unit,
        official_macs=official,
    )
