"""Knowledge distillation: a student learns from the ground truth and from a frozen teacher.

loss = (1 - weight) x joints MSE to the ground-truth heatmaps + weight x MSE to the teacher's
heatmaps on the same crops (every joint: the teacher has an opinion where the annotation has
none). The teacher is any heatmap model with the student's output size: a training config
with its weights, a zoo name (its published weights by default) or an hrpose checkpoint. It is
frozen, in eval mode, runs without gradients and optionally in bf16.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import HrposeError
from .losses import heatmap_loss, joints_mse


@dataclass
class DistillConfig:
    """The `distill:` section (or `hrpose train --teacher T --teacher-weights W`)."""

    teacher: str = ""                  # a config YAML, a zoo name or an hrpose checkpoint
    teacher_weights: str = ""          # for a config or zoo name ("published" by default)
    weight: float = 0.5                # share of the loss that is the MSE to the teacher
    amp: str = "none"                  # the teacher's precision: none | bf16


def load_teacher(config: DistillConfig, device: torch.device) -> nn.Module:
    """The frozen teacher module, in eval mode, on `device`."""
    from ..models.convert import load_weights, read_checkpoint
    from ..models.zoo import MODELS, build_model, model_from_arch

    source, weights = config.teacher, config.teacher_weights or None
    if source.endswith((".yaml", ".yml")):
        from ..config import load_config

        if weights is None:
            raise HrposeError(f"distill.teacher {source}: a teacher config needs "
                              "distill.teacher_weights (--teacher-weights)")
        model = model_from_arch(load_config(source).model.arch())
        load_weights(model, weights)
    elif source in MODELS:
        model = build_model(source, weights or "published")
    elif Path(source).is_file():
        _, metadata = read_checkpoint(source)
        if metadata.get("model") in MODELS:
            model = build_model(metadata["model"], source)
        elif "arch" in metadata:
            model = model_from_arch(json.loads(metadata["arch"]))
            load_weights(model, source)
        else:
            raise HrposeError(f"distill.teacher {source}: the checkpoint does not state its "
                              "architecture; give the teacher's config and --teacher-weights")
    else:
        raise HrposeError(f"distill.teacher {source!r}: not a config file, a zoo model or a "
                          "checkpoint")
    model = model.to(device).eval()
    model.requires_grad_(False)
    return model


class Teacher:
    """Runs the frozen teacher on a normalised batch; checks its output size once."""

    def __init__(self, config: DistillConfig, device: torch.device,
                 student_out: tuple[int, ...], input_hw: tuple[int, int]) -> None:
        if config.amp not in ("none", "bf16"):
            raise HrposeError(f"distill.amp {config.amp!r}: choose none or bf16")
        self.model = load_teacher(config, device)
        self.weight = config.weight
        self.dtype = torch.bfloat16 if config.amp == "bf16" else None
        self.device = device
        probe = self(torch.zeros(1, 3, *input_hw, device=device))
        if tuple(probe.shape[1:]) != tuple(student_out):
            raise HrposeError(f"distill.teacher {config.teacher}: its heatmaps are "
                              f"{list(probe.shape[1:])}, the student's {list(student_out)}; "
                              "the two need the same joints and output size")

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            out = self.model(x)
        return out.float()


def distill_loss(student: Tensor, target: Tensor, weights: Tensor, teacher: Tensor,
                 weight: float, kind: str = "mse", topk: int = 8) -> Tensor:
    """(1 - weight) x the ground-truth loss + weight x the MSE to the teacher, all joints."""
    ground_truth = heatmap_loss(student, target, weights, kind, topk)
    to_teacher = joints_mse(student.float(), teacher, torch.ones_like(weights)).mean()
    return (1 - weight) * ground_truth + weight * to_teacher
