"""HigherHRNet (Cheng et al., "HigherHRNet: Scale-Aware Representation Learning for Bottom-Up
Human Pose Estimation", CVPR 2020): the HRNet backbone's 1/4-resolution branch, K heatmaps + K
tag maps at 1/4, then a deconvolution module to 1/2 and K more heatmaps there.

Tensor names follow the official pose_higher_hrnet code under `head.` (`final_layers.0`,
`deconv_layers.0.0.0` the transposed convolution, `deconv_layers.0.1.0.conv1` the first basic
block), so the official and mmpose 0.x checkpoints load with a prefix rename.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .family import Family, field_values
from .heads import TopDownModel, init_kaiming, init_tags
from .hrnet import BasicBlock, HRNet, HRNetArch, HRNetConfig


class HigherResolutionHead(nn.Module):
    """`final_layers[0]`: 1x1 conv to K heatmaps + K tags at 1/4. `deconv_layers[0]`: the
    features concatenated with those predictions, a 4x4 stride-2 transposed conv (no bias), BN,
    ReLU, then `num_blocks` basic blocks at 1/2. `final_layers[1]`: 1x1 conv to K heatmaps."""

    def __init__(self, in_channels: int, num_joints: int, deconv_channels: int | None = None,
                 num_blocks: int = 4):
        super().__init__()
        deconv_channels = deconv_channels or in_channels
        self.num_joints = num_joints
        self.final_layers = nn.ModuleList([
            nn.Conv2d(in_channels, 2 * num_joints, 1),
            nn.Conv2d(deconv_channels, num_joints, 1),
        ])
        upsample = nn.Sequential(
            nn.ConvTranspose2d(in_channels + 2 * num_joints, deconv_channels, 4, stride=2,
                               padding=1, bias=False),
            nn.BatchNorm2d(deconv_channels),
            nn.ReLU(inplace=True),
        )
        # Each basic block sits in its own Sequential, as in the official code (tensor names).
        blocks = [nn.Sequential(BasicBlock(deconv_channels, deconv_channels))
                  for _ in range(num_blocks)]
        self.deconv_layers = nn.ModuleList([nn.Sequential(upsample, *blocks)])
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def joint_tensors(self) -> dict[str, tuple[int, int, int]]:
        """As HeatmapHead's: K heatmaps then K tags at 1/4, the deconvolution's input (the
        features, then those 2K maps), K heatmaps at 1/2."""
        features = self.deconv_layers[0][0][0].in_channels - 2 * self.num_joints
        return {"final_layers.0.weight": (0, 0, 2), "final_layers.0.bias": (0, 0, 2),
                "deconv_layers.0.0.0.weight": (0, features, 2),
                "final_layers.1.weight": (0, 0, 1), "final_layers.1.bias": (0, 0, 1)}

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        x = features[0]
        low = self.final_layers[0](x)
        x = self.deconv_layers[0](torch.cat([x, low], 1))
        return [low, self.final_layers[1](x)]


class BottomUpModel(TopDownModel):
    """Whole image `(N, 3, H, W)`, normalised RGB, H and W multiples of 32 -> `[(N, 2K, H/4,
    W/4) heatmaps then tags, (N, K, H/2, W/2) heatmaps]`: the top-down composition of backbone
    and head, with HigherHRNet's head."""

    @property
    def num_joints(self) -> int:
        return self.head.num_joints

    def init_from_scratch(self) -> None:
        init_kaiming(self.backbone)
        init_kaiming(self.head.deconv_layers)       # its head has convolution blocks too
        init_tags(self.head.final_layers[0], self.num_joints)


@dataclass(frozen=True)
class HigherHRNetArch(HRNetArch):
    """HigherHRNet: the HRNet with `deconv_blocks` basic blocks at 1/2 resolution; whole
    images."""

    kind: str = "bottomup"
    deconv_blocks: int = 4

    def create(self) -> BottomUpModel:
        backbone = HRNet(HRNetConfig(**field_values(self, HRNetConfig)))
        channels = backbone.out_channels[0]
        return BottomUpModel(backbone, HigherResolutionHead(channels, self.num_joints, channels,
                                                            self.deconv_blocks))

    def to_dict(self) -> dict:
        return {**super().to_dict(), "kind": "bottomup", "deconv_blocks": self.deconv_blocks}


FAMILY = Family("hrnet", "bottomup", HigherHRNetArch, init="imagenet",
                paper_flops="higherhrnet", layouts=("official", "mmpose0", "imagenet"))
