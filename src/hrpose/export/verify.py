"""How closely one runner reproduces another on the same crops: the largest heatmap difference
and how many joints land within one heatmap pixel (what `hrpose export` prints after every
export and `hrpose bench` uses to accept a bf16 or INT8 path)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..codecs.heatmap import HeatmapCodec
from ..inference.backends import Runner


@dataclass(frozen=True)
class Agreement:
    crops: int
    max_abs: float        # largest |heatmap difference| over all crops, joints and pixels
    peak: float           # mean heatmap maximum of the reference: the scale of max_abs
    within_1px: float     # fraction of joints decoded within 1 heatmap pixel of the reference
    mean_px: float        # mean distance of the decoded joints, heatmap pixels

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def describe(self) -> str:
        return (f"{self.crops} crops: max |heatmap difference| {self.max_abs:.2e} "
                f"(heatmap peaks {self.peak:.3f}); joints within 1 heatmap px "
                f"{100 * self.within_1px:.2f}%, mean distance {self.mean_px:.3f} px")


def run_batched(runner: Runner, x: np.ndarray, batch: int = 8) -> np.ndarray:
    return np.concatenate([runner(x[i : i + batch]) for i in range(0, len(x), batch)])


def heatmap_positions(heatmaps: np.ndarray) -> np.ndarray:
    """(N, K, h, w) -> (N, K, 2) decoded joint positions in heatmap pixels (argmax with the
    quarter-pixel shift, as the classic decoding does)."""
    wh = (heatmaps.shape[3], heatmaps.shape[2])
    return HeatmapCodec(wh, wh).decode(heatmaps)[0]


def compare(reference: Runner, candidate: Runner, x: np.ndarray, batch: int = 8,
            reference_heatmaps: np.ndarray | None = None) -> Agreement:
    """`x`: normalised float32 crops (N, 3, H, W). `reference_heatmaps` skips running the
    reference again."""
    ref = run_batched(reference, x, batch) if reference_heatmaps is None else reference_heatmaps
    out = run_batched(candidate, x, batch)
    distance = np.linalg.norm(heatmap_positions(ref) - heatmap_positions(out), axis=-1)
    return Agreement(len(x), float(np.abs(ref - out).max()),
                     float(ref.reshape(*ref.shape[:2], -1).max(-1).mean()),
                     float((distance <= 1.0).mean()), float(distance.mean()))
