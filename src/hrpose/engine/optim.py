"""Optimiser and learning-rate schedule of the published recipe: Adam, linear warm-up, steps.
AdamW, and SGD with momentum 0.9 (the other common pose recipe), are the alternatives."""

from __future__ import annotations

import bisect

import torch

from ..config import TrainConfig


def make_optimizer(model: torch.nn.Module, config: TrainConfig, lr: float
                   ) -> torch.optim.Optimizer:
    """The optimiser of the trainable parameters; with `head_lr_factor` the heatmap head's
    (`head.*`) are a group of their own whose `lr_factor` scales the scheduled lr."""
    params: list | list[dict] = [p for p in model.parameters() if p.requires_grad]
    if config.head_lr_factor != 1.0:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        params = [{"params": [p for n, p in named if not n.startswith("head.")]},
                  {"params": [p for n, p in named if n.startswith("head.")],
                   "lr": lr * config.head_lr_factor, "lr_factor": config.head_lr_factor}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=config.weight_decay)


def base_lr(config: TrainConfig, world_size: int) -> float:
    """The configured lr, scaled by global batch / base_batch when `scale_lr` is on."""
    if config.scale_lr:
        return config.lr * config.batch * world_size / config.base_batch
    return config.lr


def lr_at(config: TrainConfig, lr: float, step: int, epoch: int) -> float:
    """Step decay by epoch (x lr_factor at each of lr_steps), times a linear warm-up over the
    first warmup_iters iterations from warmup_ratio. A pure function of (step, epoch), so a
    resumed run needs no scheduler state beyond its position."""
    decay = config.lr_factor ** bisect.bisect_right(sorted(config.lr_steps), epoch)
    if step < config.warmup_iters:
        ratio = config.warmup_ratio
        decay *= ratio + (1 - ratio) * step / config.warmup_iters
    return lr * decay
