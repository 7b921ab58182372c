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


def pckh(pred: np.ndarray, gt: np.ndarray, head_sizes: np.ndarray,
         joints: tuple[str, ...] | None = None) -> dict:
    """PCKh@0.5 per group (the published table), per joint (`per_joint`, by name when `joints`
    names them) and mean; the mean at 0.1; and at 0.11, which the HRNet code (and the papers
    that report its output) prints as "Mean@0.1" (its threshold list's 12th entry)."""
    per_joint, count = pckh_per_joint(pred, gt, head_sizes, 0.5)
    weight = count.astype(np.float64)
    weight[list(EXCLUDED)] = 0
    weight /= max(weight.sum(), 1)
    table: dict = {name: float(np.mean(per_joint[list(idx)])) for name, idx in GROUPS.items()}
    table["PCKh"] = float((per_joint * weight).sum())
    for name, threshold in (("PCKh@0.1", 0.1), ("PCKh@0.11", 0.11)):
        table[name] = float((pckh_per_joint(pred, gt, head_sizes, threshold)[0] * weight).sum())
    names = joints or tuple(str(j) for j in range(len(per_joint)))
    table["per_joint"] = {name: float(v) for name, v in zip(names, per_joint)}
    return table


def format_pckh(table: dict) -> str:
    """The published table (groups, mean, mean at 0.1), then every joint."""
    names = [*GROUPS, "PCKh", "PCKh@0.1"]
    lines = [" ".join(f"{n:>9}" for n in names),
             " ".join(f"{table[n]:>9.2f}" for n in names)]
    if "per_joint" in table:
        lines.append("per joint: " + ", ".join(f"{name} {value:.2f}"
                                               for name, value in table["per_joint"].items()))
    return "\n".join(lines)
