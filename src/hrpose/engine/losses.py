"""Heatmap losses: the joints MSE with target weights, and online hard keypoint mining."""

from __future__ import annotations

import torch
from torch import Tensor

from ..codecs.associative_embedding import STRIDES


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


def masked_heatmap_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Bottom-up heatmap loss: squared error where `mask` (N, H, W) is 1, the mean over joints
    and pixels per image, then over the batch (the official HigherHRNet HeatmapLoss)."""
    return ((pred.float() - target) ** 2 * mask[:, None]).mean(dim=(1, 2, 3)).mean()


def associative_embedding_loss(tags: Tensor, joints: Tensor) -> tuple[Tensor, Tensor]:
    """Pull and push losses of associative embedding (Newell et al. 2017), batched.

    `tags` (N, K, H, W), one tag per joint type; `joints` (N, M, K, 2): each person's joint
    pixel indices into the flattened (K, H, W) tags and a valid flag. Pull: the mean over
    people of the variance of their joints' tags around the person's mean tag. Push: over pairs
    of distinct people, the mean of exp(-(difference of mean tags)^2); both averaged over the
    images, and zero for an image without (two) people."""
    n = tags.shape[0]
    flat = tags.float().reshape(n, -1)
    index, valid = joints[..., 0], joints[..., 1].float()            # (N, M, K)
    values = torch.gather(flat, 1, index.reshape(n, -1)).reshape(index.shape)
    count = valid.sum(-1)                                            # (N, M) joints per person
    present = (count > 0).float()
    mean = (values * valid).sum(-1) / count.clamp(min=1)            # (N, M)
    spread = (((values - mean[..., None]) ** 2) * valid).sum(-1) / count.clamp(min=1)
    people = present.sum(-1)                                         # (N,)
    pull = (spread * present).sum(-1) / people.clamp(min=1)
    diff = mean[:, :, None] - mean[:, None, :]
    pair = present[:, :, None] * present[:, None, :]
    pair = pair * (1 - torch.eye(pair.shape[-1], device=pair.device))
    pairs = people * (people - 1)
    push = (torch.exp(-diff**2) * pair).sum((1, 2)) / pairs.clamp(min=1) * 0.5
    return pull.mean(), push.mean()


def bottomup_loss(outputs: list[Tensor], batch: dict[str, Tensor], num_joints: int,
                  strides: tuple[int, ...] = STRIDES, heatmap_weight: float = 1.0,
                  pull_weight: float = 1e-3, push_weight: float = 1e-3
                  ) -> tuple[Tensor, dict[str, float]]:
    """HigherHRNet's loss: masked heatmap MSE at each resolution plus the tag pull / push loss
    at the first (published weights 1, 1e-3, 1e-3). Returns the total and its parts."""
    parts: dict[str, Tensor] = {}
    for output, stride in zip(outputs, strides):
        parts[f"heatmap_{stride}"] = heatmap_weight * masked_heatmap_mse(
            output[:, :num_joints], batch[f"heatmaps_{stride}"], batch[f"mask_{stride}"])
    pull, push = associative_embedding_loss(outputs[0][:, num_joints:], batch["joints"])
    parts["pull"], parts["push"] = pull_weight * pull, push_weight * push
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}
