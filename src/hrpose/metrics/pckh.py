"""MPII PCKh: a joint is correct when it lies within `threshold` x head size of the truth.

As in MPII's evaluation: only labelled joints count; the mean leaves out pelvis and thorax and
weighs joints by how many are labelled; the table groups left and right joints.
"""

from __future__ import annotations

import numpy as np

from ..errors import HrposeError

# Table rows: name -> MPII joint indices averaged (left and right).
GROUPS = {"Head": (9,), "Shoulder": (12, 13), "Elbow": (11, 14), "Wrist": (10, 15),
          "Hip": (2, 3), "Knee": (1, 4), "Ankle": (0, 5)}
EXCLUDED = (6, 7)           # pelvis and thorax: not in MPII's mean


def pckh_per_joint(pred: np.ndarray, gt: np.ndarray, head_sizes: np.ndarray,
                   threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """pred (M, K, 2+), gt (M, K, 3) with visibility, head_sizes (M,) -> per-joint PCKh in %
    (K,) and the labelled count per joint (K,)."""
    if pred.shape[:2] != gt.shape[:2]:
        raise HrposeError(f"PCKh: predictions {pred.shape[:2]} and ground truth {gt.shape[:2]} "
                          "differ in people or joints")
    labelled = gt[..., 2] > 0
    zero = (head_sizes <= 0) & labelled.any(-1)
    if zero.any():
        raise HrposeError(f"PCKh: person #{int(np.argmax(zero))} has head size 0")
    dist = (np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1)
            / np.maximum(head_sizes, np.finfo(np.float64).tiny)[:, None])
    hits = ((dist <= threshold) & labelled).sum(0)
    count = labelled.sum(0)
    return 100 * hits / np.maximum(count, 1), count


def pckh(pred: np.ndarray, gt: np.ndarray, head_sizes: np.ndarray) -> dict[str, float]:
    """PCKh@0.5 per group and mean, and the mean at 0.1, as MPII reports them."""
    per_joint, count = pckh_per_joint(pred, gt, head_sizes, 0.5)
    per_joint_01, _ = pckh_per_joint(pred, gt, head_sizes, 0.1)
    weight = count.astype(np.float64)
    weight[list(EXCLUDED)] = 0
    weight /= max(weight.sum(), 1)
    table = {name: float(np.mean(per_joint[list(idx)])) for name, idx in GROUPS.items()}
    table["PCKh"] = float((per_joint * weight).sum())
    table["PCKh@0.1"] = float((per_joint_01 * weight).sum())
    return table


def format_pckh(table: dict[str, float]) -> str:
    names = [*GROUPS, "PCKh", "PCKh@0.1"]
    head = " ".join(f"{n:>9}" for n in names)
    return head + "\n" + " ".join(f"{table[n]:>9.2f}" for n in names)

