"""Heads, and the top-down model: a backbone followed by a heatmap head."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class HeatmapHead(nn.Module):
    """One 1x1 convolution from the highest-resolution features to K heatmaps (`final_layer`)."""

    def __init__(self, in_channels: int, num_joints: int, kernel_size: int = 1):
        super().__init__()
        self.final_layer = nn.Conv2d(in_channels, num_joints, kernel_size,
                                     padding=kernel_size // 2)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.final_layer(features[0])

    def joint_tensors(self) -> dict[str, tuple[int, int, int]]:
        """The tensors with a row per joint: name -> (axis, rows before the joints' blocks,
        blocks of K rows). Fine-tuning on another keypoint set carries rows by joint name."""
        return {"final_layer.weight": (0, 0, 1), "final_layer.bias": (0, 0, 1)}


class TopDownModel(nn.Module):
    """Person crop `(N, 3, H, W)`, normalised RGB -> heatmaps `(N, K, H/4, W/4)`. H and W are
    multiples of 32 (the lowest HRNet branch runs at 1/32).

    State-dict keys are `backbone.*` and `head.final_layer.*`, the mmpose 1.x layout.
    """

    def __init__(self, backbone: nn.Module, head: HeatmapHead):
        super().__init__()
        self.backbone = backbone
        self.head = head

    @property
    def num_joints(self) -> int:
        return self.head.final_layer.out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))

    def init_from_scratch(self) -> None:
        """Weights for training from nothing (`model.init: kaiming`)."""
        init_kaiming(self.backbone)


def init_kaiming(module: nn.Module) -> None:
    """He initialisation (fan-out) for training from scratch: the official N(0, 0.001) is meant
    to be overwritten by ImageNet weights, and from scratch it makes Adam's first steps huge
    relative to the weights."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def init_tags(layer: nn.Conv2d, num_joints: int) -> None:
    """He-initialised tag outputs for training from scratch: tags that all start at ~0 sit on
    a saddle of the push loss (exp(-d^2) is flat at d = 0) and stay collapsed for epochs."""
    with torch.no_grad():
        fan_in = layer.weight[num_joints:][0].numel()
        layer.weight[num_joints:].normal_(0, math.sqrt(2 / fan_in))
