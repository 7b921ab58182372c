"""PACT quantisation-aware training (Choi et al., "PACT: Parameterized Clipping Activation for
Quantized Neural Networks", 2018): every convolution sees int8 weights (symmetric, per output
channel) and an int8 input clipped to a learnable [-alpha, alpha].

Training uses straight-through rounding; alpha gets PACT's gradient through the clip. Exported
(`export_mode`), the same arithmetic is written with torch's fake-quantise ops, which the ONNX
exporter turns into QuantizeLinear / DequantizeLinear pairs: an INT8 QDQ model that ONNX
Runtime and OpenVINO run in integer arithmetic and whose outputs equal the fake-quantised
PyTorch model's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

LEVELS = 127                           # symmetric int8: -127..127


def _round_ste(x: Tensor) -> Tensor:
    return x + (torch.round(x) - x).detach()


class PACTConv2d(nn.Conv2d):
    """A convolution with int8 fake-quantised weights (per output channel) and input (PACT).
    Its state dict is the float convolution's plus `alpha`."""

    exporting = False
    enabled = True                     # False: a float convolution (calibration)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.alpha = nn.Parameter(torch.tensor(6.0))
        # Inputs >= 0 (after a ReLU, found by calibration): uint8 levels 0..255.
        self.register_buffer("unsigned", torch.tensor(False))

    @classmethod
    def from_float(cls, conv: nn.Conv2d) -> PACTConv2d:
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                conv.padding, conv.dilation, conv.groups, conv.bias is not None,
                device=conv.weight.device)
        q.load_state_dict(conv.state_dict(), strict=False)
        if hasattr(conv, "official_calls"):            # the float layer's counting hint
            q.official_calls = conv.official_calls
        return q

    def weight_scale(self) -> Tensor:
        return self.weight.detach().abs().amax(dim=(1, 2, 3)).clamp(min=1e-8) / LEVELS

    def forward(self, x: Tensor) -> Tensor:
        if not self.enabled:
            return super().forward(x)
        x = x.float()                    # quantise in fp32 under autocast too, as exported
        scale = self.weight_scale()
        if self.exporting:
            alpha = float(self.alpha.detach().abs())
            if bool(self.unsigned):
                x = torch.fake_quantize_per_tensor_affine(x, alpha / 255, 0, 0, 255)
            else:
                x = torch.fake_quantize_per_tensor_affine(x, alpha / LEVELS, 0, -128, 127)
            w = torch.fake_quantize_per_channel_affine(
                self.weight, scale.float(), torch.zeros_like(scale, dtype=torch.int32), 0,
                -128, 127)
        else:
            alpha = self.alpha.abs()
            # PACT clip to the grid of the exported QuantizeLinear: step alpha / 127 and levels
            # -128..127, or step alpha / 255 and levels 0..255 for non-negative inputs.
            unsigned = bool(self.unsigned)
            step = alpha / (255 if unsigned else LEVELS)
            low = torch.zeros_like(alpha) if unsigned else -128 * step
            x = torch.minimum(torch.maximum(x, low), alpha)
            x = _round_ste(x / step) * step
            w = _round_ste(self.weight / scale[:, None, None, None]) * scale[:, None, None, None]
        return self._conv_forward(x, w, self.bias)


def prepare_pact(model: nn.Module, alpha: float = 6.0) -> nn.Module:
    """Replaces every nn.Conv2d of `model` in place by a PACTConv2d with the same weights."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Conv2d) and not isinstance(child, PACTConv2d):
            q = PACTConv2d.from_float(child)
            with torch.no_grad():
                q.alpha.fill_(alpha)
            setattr(model, name, q)
        else:
            prepare_pact(child, alpha)
    return model


@torch.no_grad()
def calibrate(model: nn.Module, x: Tensor, percentile: float = 99.99) -> None:
    """Sets each PACT clip to a percentile of its input's magnitude on batch `x` (float
    forward: the clips do not see each other's rounding)."""
    layers = [m for m in model.modules() if isinstance(m, PACTConv2d)]
    seen: dict[PACTConv2d, float] = {}

    def hook(module: PACTConv2d, inputs: tuple, _: Tensor) -> None:
        values = inputs[0].detach().flatten().float()
        if values.numel() > 1_000_000:
            values = values[torch.randperm(values.numel(), device=values.device)[:1_000_000]]
        unsigned = bool(values.min() >= 0)
        module.unsigned.fill_(unsigned)
        levels = 255 if unsigned else LEVELS
        magnitude = values.abs()
        # The clip with the least squared quantisation error among high percentiles.
        best, best_error = 1e-3, float("inf")
        for q in (percentile, 99.999, 100.0):
            alpha = max(float(torch.quantile(magnitude, min(q, 100.0) / 100)), 1e-3)
            step = alpha / levels
            low = 0.0 if unsigned else -128 * step
            error = float(((torch.round(values.clamp(low, alpha) / step) * step - values) ** 2)
                          .mean())
            if error < best_error:
                best, best_error = alpha, error
        seen[module] = best

    handles = [m.register_forward_hook(hook) for m in layers]
    for m in layers:
        m.enabled = False                        # a float forward while measuring
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for m in layers:
            m.enabled = True
        for h in handles:
            h.remove()
    for m in layers:
        if m in seen:
            m.alpha.fill_(seen[m])


def is_pact(model: nn.Module) -> bool:
    return any(isinstance(m, PACTConv2d) for m in model.modules())


@contextmanager
def export_mode(model: nn.Module) -> Iterator[nn.Module]:
    """PACT layers write torch's fake-quantise ops (ONNX QuantizeLinear / DequantizeLinear)."""
    layers = [m for m in model.modules() if isinstance(m, PACTConv2d)]
    for m in layers:
        m.exporting = True
    try:
        yield model
    finally:
        for m in layers:
            m.exporting = False
