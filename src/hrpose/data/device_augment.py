"""Top-down training crops and heatmap targets rendered on the training device.

The CPU pipeline (data/topdown.py) warps each crop with cv2 and encodes its targets in numpy
inside the loader workers; on a GPU those two steps are what keeps the workers from feeding it.
Here the workers only decode and draw the augmentation (`TopDownDataset.plan`); whole images
travel to the device (padded to the batch's largest, pinned), and one `grid_sample` call warps
every crop of the batch while the targets are encoded in torch beside it. The same plan gives
the same sample as the CPU path: the crop to interpolation rounding (cv2 samples uint8 at 1/32
pixel), the targets to float rounding (tests/test_speed_paths.py).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..codecs.heatmap import HeatmapCodec
from .topdown import TopDownDataset


class TopDownSources(Dataset):
    """A `TopDownDataset`'s samples before rendering: {"source": the decoded image (H, W, 3)
    uint8, "matrix": image -> crop (2, 3), "keypoints": (K, 3) in crop pixels, "valid",
    "index"}. Batch them with `collate_sources`, render with `render_batch`."""

    def __init__(self, dataset: TopDownDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        plan = self.dataset.plan(i)
        k = self.dataset.data.skeleton.num_joints
        if plan is None:
            return {"source": torch.zeros(1, 1, 3, dtype=torch.uint8),
                    "matrix": torch.zeros(2, 3, dtype=torch.float64),
                    "keypoints": torch.zeros(k, 3, dtype=torch.float64),
                    "valid": torch.tensor(False), "index": torch.tensor(i)}
        image, matrix, keypoints = plan
        return {"source": torch.from_numpy(np.ascontiguousarray(image)),
                "matrix": torch.from_numpy(matrix), "keypoints": torch.from_numpy(keypoints),
                "valid": torch.tensor(True), "index": torch.tensor(i)}


def collate_sources(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Sources zero-padded to the batch's largest image (the padding is the black border the
    CPU warp draws outside the image), the rest stacked."""
    h = max(item["source"].shape[0] for item in items)
    w = max(item["source"].shape[1] for item in items)
    sources = torch.zeros(len(items), h, w, 3, dtype=torch.uint8)
    for i, item in enumerate(items):
        image = item["source"]
        sources[i, : image.shape[0], : image.shape[1]] = image
    out = {key: torch.stack([item[key] for item in items])
           for key in ("matrix", "keypoints", "valid", "index")}
    return {"source": sources, **out}


def warp_batch(sources: torch.Tensor, matrices: torch.Tensor, out_wh: tuple[int, int]
               ) -> torch.Tensor:
    """uint8 images (B, H, W, 3) and image -> crop matrices (B, 2, 3) -> float crops
    (B, 3, h, w) in 0..255: bilinear, zero outside the image, pixel centres at integers (as
    cv2.warpAffine). One `affine_grid` + `grid_sample` over the batch."""
    b, h, w, _ = sources.shape
    out_w, out_h = out_wh
    dev = sources.device
    # theta maps normalised crop coordinates to normalised source coordinates
    # (align_corners=False: pixel i spans [i - 0.5, i + 0.5], normalised (2i + 1) / n - 1)
    m = torch.zeros(b, 3, 3, dtype=torch.float64, device=dev)
    m[:, :2] = matrices.to(dev, torch.float64)
    m[:, 2, 2] = 1
    inverse = torch.linalg.inv(m)                              # crop -> image pixels

    out_px = torch.tensor([[out_w / 2, 0, (out_w - 1) / 2], [0, out_h / 2, (out_h - 1) / 2],
                           [0, 0, 1]], dtype=torch.float64, device=dev)  # normalised -> px
    src_n = torch.tensor([[2 / w, 0, 1 / w - 1], [0, 2 / h, 1 / h - 1], [0, 0, 1]],
                         dtype=torch.float64, device=dev)                    # px -> normalised
    theta = (src_n @ inverse @ out_px)[:, :2]
    grid = F.affine_grid(theta.float(), [b, 3, out_h, out_w], align_corners=False)
    images = sources.permute(0, 3, 1, 2).float()
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def encode_batch(codec: HeatmapCodec, keypoints: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """`HeatmapCodec.encode` in torch on the keypoints' device: (B, K, 3) crop pixels +
    visibility -> heatmaps (B, K, h, w) float32, weights (B, K)."""
    kp = keypoints.to(torch.float64)
    dev = kp.device
    w, h = codec.heatmap_wh
    stride = torch.as_tensor(codec.stride, dtype=torch.float64, device=dev)
    mu = kp[..., :2] / stride
    centre = torch.floor(mu + 0.5)
    if codec.method == "classic":
        mu = centre
    radius = 3 * codec.sigma
    lo, hi = centre - radius, centre + radius
    weights = (kp[..., 2] > 0) & (hi[..., 0] >= 0) & (hi[..., 1] >= 0) \
        & (lo[..., 0] <= w - 1) & (lo[..., 1] <= h - 1)
    xs = torch.arange(w, dtype=torch.float64, device=dev)
    ys = torch.arange(h, dtype=torch.float64, device=dev)
    gx = torch.exp(-((xs - mu[..., :1]) ** 2) / (2 * codec.sigma**2))
    gy = torch.exp(-((ys - mu[..., 1:]) ** 2) / (2 * codec.sigma**2))
    if codec.method != "dark":
        gx = gx * ((xs - centre[..., :1]).abs() <= radius)
        gy = gy * ((ys - centre[..., 1:]).abs() <= radius)
    gx = gx * weights[..., None]
    heatmaps = gy[..., :, None].float() * gx[..., None, :].float()
    return heatmaps, weights.float()


def render_batch(batch: dict[str, torch.Tensor], codec: HeatmapCodec,
                 device: torch.device | str) -> dict[str, torch.Tensor]:
    """A `collate_sources` batch -> what the CPU loader gives ("image" float 0..255 here,
    "heatmaps", "weights", "valid", "index"), made on `device`. Invalid samples get zero
    weights, as on the CPU."""
    source = batch["source"].to(device, non_blocking=True)
    valid = batch["valid"].to(device)
    crops = warp_batch(source, batch["matrix"], codec.input_wh)
    heatmaps, weights = encode_batch(codec, batch["keypoints"].to(device))
    weights = weights * valid[:, None]
    return {"image": crops, "heatmaps": heatmaps * valid[:, None, None, None],
            "weights": weights, "valid": valid, "index": batch["index"]}
