"""Heatmap losses: the joints MSE with target weights, and online hard keypoint mining."""

from __future__ import annotations

import torch
from torch import Tensor


def joints_mse(pred: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """Per-sample, per-joint loss (N, K): 0.5 x mean squared error over the heatmap, with each
    joint's prediction and target scaled by its weight (0 for unlabelled joints), as in the
    official code."""
    w = weights[:, :, None, None]
    return 0.5 * ((pred * w - target * w) ** 2).flatten(2).mean(-1)


def heatmap_loss(pred: Tensor, target: Tensor, weights: Tensor, kind: str = "mse",
                 topk: int = 8) -> Tensor:
    """`mse`: the mean over samples and joints. `ohkm`: per sample, the mean of its `topk`
    largest joint losses, then the mean over samples (Chen et al., CPN 2018)."""
    per_joint = joints_mse(pred.float(), target, weights)
    if kind == "mse":
        return per_joint.mean()
    if kind == "ohkm":
        k = min(topk, per_joint.shape[1])
        return torch.topk(per_joint, k, dim=1).values.mean()
    raise ValueError(f"unknown loss {kind!r}")
