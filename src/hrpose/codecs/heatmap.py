"""Gaussian heatmaps: keypoints in model-input pixels <-> (N, K, h, w) heatmaps, batched.

Three published methods, chosen by `HeatmapCodec.method`:

- "classic" (Xiao et al. 2018, HRNet): targets centred on the nearest heatmap pixel, a 3-sigma
  window; decoding takes the argmax and moves it a quarter pixel towards the higher neighbour.
- "dark" (Zhang et al., CVPR 2020): targets centred at the exact sub-pixel position; decoding
  blurs the heatmap (keeping its maximum), takes its log and refines the argmax with one Newton
  step of a second-order Taylor expansion: offset = -H^-1 * gradient.
- "udp" (Huang et al., CVPR 2020): the unbiased geometry (heatmap = input * (h-1)/(in-1), see
  data/transforms.py), sub-pixel targets in a 3-sigma window and the same Taylor refinement.

The crop geometry must match: "udp" pairs with `crop_matrices(..., udp=True)`, the others with the
classic geometry. `HeatmapCodec.udp` says which.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..errors import HrposeError

METHODS = ("classic", "dark", "udp")


@dataclass(frozen=True)
class HeatmapCodec:
    input_wh: tuple[int, int]
    heatmap_wh: tuple[int, int]
    sigma: float = 2.0
    method: str = "classic"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise HrposeError(f"unknown heatmap decoding {self.method!r}; choose one of "
                              f"{', '.join(METHODS)}")

    @property
    def udp(self) -> bool:
        return self.method == "udp"

    @property
    def stride(self) -> np.ndarray:
        """Input pixels per heatmap pixel, (x, y)."""
        inp, hm = np.asarray(self.input_wh, np.float64), np.asarray(self.heatmap_wh, np.float64)
        return (inp - 1) / (hm - 1) if self.udp else inp / hm

    @property
    def blur_kernel(self) -> int:
        """The DARK modulation kernel: 11 for sigma 2, 17 for sigma 3 (as published)."""
        return int(6 * self.sigma - 1) | 1

    def encode(self, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, K, 3) input pixels + visibility -> heatmaps (N, K, h, w) float32, weights (N, K).

        A joint gets weight 0 when it is not labelled (v = 0) or its 3-sigma window lies wholly
        outside the heatmap; its heatmap is then all zeros."""
        kp = np.asarray(keypoints, np.float64)
        w, h = self.heatmap_wh
        mu = kp[..., :2] / self.stride
        centre = np.floor(mu + 0.5)                          # nearest heatmap pixel
        if self.method == "classic":
            mu = centre
        radius = 3 * self.sigma
        lo, hi = centre - radius, centre + radius            # the window, inclusive
        weights = (kp[..., 2] > 0) & (hi[..., 0] >= 0) & (hi[..., 1] >= 0) \
            & (lo[..., 0] <= w - 1) & (lo[..., 1] <= h - 1)
        xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
        # Separable: exp(-(dx^2 + dy^2) / 2s^2) = exp(-dx^2 / 2s^2) * exp(-dy^2 / 2s^2).
        gx = np.exp(-((xs - mu[..., :1]) ** 2) / (2 * self.sigma**2))
        gy = np.exp(-((ys - mu[..., 1:]) ** 2) / (2 * self.sigma**2))
        if self.method != "dark":                            # DARK's targets are untruncated
            gx *= np.abs(xs - centre[..., :1]) <= radius
            gy *= np.abs(ys - centre[..., 1:]) <= radius
        gx *= weights[..., None]
        heatmaps = gy[..., :, None].astype(np.float32) * gx[..., None, :].astype(np.float32)
        return heatmaps, weights.astype(np.float32)

    def decode(self, heatmaps: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(N, K, h, w) -> keypoints (N, K, 2) in input pixels, scores (N, K) = heatmap maxima."""
        hm = _as_numpy(heatmaps)
        n, k, _h, w = hm.shape
        flat = hm.reshape(n, k, -1)
        index = flat.argmax(-1)
        scores = np.take_along_axis(flat, index[..., None], -1)[..., 0]
        x, y = index % w, index // w
        coords = np.stack([x, y], -1).astype(np.float64)
        if self.method == "classic":
            coords += _quarter_offset(hm, x, y)
        else:
            coords += _taylor_offset(self._modulated_log_around(hm, x, y))
        coords[scores <= 0] = 0                              # nothing found: as published
        return (coords * self.stride).astype(np.float32), scores.astype(np.float32)

    def flip_back(self, heatmaps: np.ndarray | torch.Tensor, flip_index: np.ndarray) -> np.ndarray:
        """Heatmaps of horizontally flipped crops -> heatmaps of the unflipped crops.

        Mirror, swap left and right joints, and with the classic geometry shift one pixel right:
        its heatmaps of a mirrored input sit 0.75 pixel left of the mirror (the published fix)."""
        hm = _as_numpy(heatmaps)[:, flip_index, :, ::-1]
        if not self.udp:
            hm = np.concatenate([hm[..., :1], hm[..., :-1]], axis=-1)
        return np.ascontiguousarray(hm)

    def _modulated_log_around(self, hm: np.ndarray, x: np.ndarray, y: np.ndarray
                              ) -> np.ndarray:
        """DARK's modulated log-heatmap (a Gaussian blur that keeps each map's maximum, then
        the log) in the 3x3 pixels around (x, y), the map's edge repeated beyond it:
        (N, K, 3, 3) float64. Only those pixels feed the Taylor step, so only they are
        taken the log of."""
        n, k, h, w = hm.shape
        blurred = gaussian_blur(hm.astype(np.float32), self.blur_kernel)
        peak = hm.reshape(n, k, -1).max(-1)
        blurred_peak = blurred.reshape(n, k, -1).max(-1)
        gain = np.where(blurred_peak > 0, peak / np.where(blurred_peak > 0, blurred_peak, 1), 0)
        step = np.arange(-1, 2)
        ys = np.clip(y[..., None] + step, 0, h - 1)[..., :, None]         # (N, K, 3, 1)
        xs = np.clip(x[..., None] + step, 0, w - 1)[..., None, :]         # (N, K, 1, 3)
        ni, ki = np.ogrid[:n, :k]
        patch = blurred[ni[..., None, None], ki[..., None, None], ys, xs]
        patch *= gain.astype(patch.dtype)[..., None, None]
        if self.udp:
            return np.log(np.clip(patch, 1e-3, 50.0)).astype(np.float64)
        return np.log(np.maximum(patch, 1e-10)).astype(np.float64)


def gaussian_blur(maps: np.ndarray, size: int) -> np.ndarray:
    """Gaussian blur with cv2's kernel for (size, size) and sigma 0, over the last two axes of
    any stack of maps, as one separable pass per axis.

    Outside the map counts as zero (cv2 and mmpose reflect at the border instead): a heatmap has
    no signal beyond the crop, and reflecting pulls peaks near the border outwards. Measured
    round-trip error 3-5 heatmap pixels from the border: 0.48 heatmap px reflecting, 0.05 with
    zeros; 1-3 px from it: 1.4 against 0.55."""
    s = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    g = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * s * s))
    dtype = np.float64 if maps.dtype == np.float64 else np.float32
    g = (g / g.sum()).astype(dtype)
    pad = size // 2
    *lead, h, w = maps.shape
    # The maps one above the other in one image, `pad` zero rows above and below each, so
    # that the vertical pass cannot reach from one map into the next: one filter call.
    tall = np.zeros((int(np.prod(lead, dtype=np.int64)), h + 2 * pad, w), dtype)
    tall[:, pad : pad + h] = maps.reshape(-1, h, w)
    out = cv2.sepFilter2D(tall.reshape(-1, w), -1, g, g, borderType=cv2.BORDER_CONSTANT)
    return out.reshape(-1, h + 2 * pad, w)[:, pad : pad + h].reshape(*lead, h, w)


def _as_numpy(heatmaps: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(heatmaps, torch.Tensor):
        heatmaps = heatmaps.detach().float().cpu().numpy()
    hm = np.asarray(heatmaps)
    if hm.ndim != 4:
        raise HrposeError(f"heatmaps must be (N, K, h, w), got shape {tuple(hm.shape)}")
    return hm


def _quarter_offset(hm: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """+-0.25 towards the higher neighbour, per axis; only where both neighbours of both axes
    exist with a margin (the published condition 1 < x < w - 1, 1 < y < h - 1)."""
    n, k, h, w = hm.shape
    inside = (x > 1) & (x < w - 1) & (y > 1) & (y < h - 1)
    xc, yc = np.clip(x, 1, w - 2), np.clip(y, 1, h - 2)
    ni, ki = np.ogrid[:n, :k]
    dx = hm[ni, ki, yc, xc + 1] - hm[ni, ki, yc, xc - 1]
    dy = hm[ni, ki, yc + 1, xc] - hm[ni, ki, yc - 1, xc]
    return 0.25 * np.stack([np.sign(dx), np.sign(dy)], -1) * inside[..., None]


def _taylor_offset(patch: np.ndarray) -> np.ndarray:
    """One Newton step at the centre of each 3x3 patch (N, K, 3, 3) of a log-heatmap: -H^-1 *
    grad by central differences, applied only where the Hessian is negative definite, i.e. the
    centre is a true local maximum, and clipped to one pixel: a unimodal peak lies within one
    pixel of its highest sample."""
    def at(dx: int, dy: int) -> np.ndarray:
        return patch[..., 1 + dy, 1 + dx]

    f = at(0, 0)
    gx = 0.5 * (at(1, 0) - at(-1, 0))
    gy = 0.5 * (at(0, 1) - at(0, -1))
    hxx = at(1, 0) - 2 * f + at(-1, 0)
    hyy = at(0, 1) - 2 * f + at(0, -1)
    hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = hxx * hyy - hxy * hxy
    ok = (hxx < 0) & (det > 1e-12)
    safe = np.where(ok, det, 1.0)
    ox = -(hyy * gx - hxy * gy) / safe
    oy = -(hxx * gy - hxy * gx) / safe
    return np.clip(np.stack([ox, oy], -1), -1, 1) * ok[..., None]
