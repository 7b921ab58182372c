"""Knowledge distillation: a student learns from the ground truth and from a frozen teacher.

loss = (1 - weight) x joints MSE to the ground-truth heatmaps + weight x MSE to the teacher's
heatmaps on the same crops (every joint: the teacher has an opinion where the annotation has
none). The teacher is any heatmap model with the student's output size: a training config
with its weights, a zoo name (its published weights by default) or an hrpose checkpoint. It is
frozen, in eval mode, runs without gradients and optionally in bf16.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import CONFIGS, DistillConfig, load_configured
from ..errors import HrposeError
from ..models.loading import load_model
from .losses import heatmap_loss, joints_mse


def load_teacher(config: DistillConfig, device: torch.device) -> nn.Module:
    """The frozen teacher module, in eval mode, on `device`."""
    try:
        load = load_configured if config.teacher.endswith(CONFIGS) else load_model
        model, _ = load(config.teacher, config.teacher_weights or None)
    except HrposeError as e:
        raise HrposeError(f"distill.teacher {config.teacher}: {e}") from None
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
