"""LiteHRNet (Yu et al., "Lite-HRNet: A Lightweight High-Resolution Network", CVPR 2021).

A stem with a shuffle block, then three stages of parallel branches (1/8 to 1/64 after the
stem's 1/4) whose blocks are conditional channel weighting (LITE: cross-resolution weighting,
depthwise conv, spatial weighting on half the channels) or shuffle units (NAIVE), a
multi-resolution fusion after each module, and an iterative head that folds the low
resolutions into the highest one. The top-down model adds the usual 1x1 heatmap layer.

Tensor names are the official code's under `backbone.` (`stem.conv1.conv.weight`,
`stage0.0.layers.0.cross_resolution_weighting.conv1.bn.weight`, `head_layer.projects.0...`), so
official / mmpose checkpoints load with the mmpose prefix rename.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .family import Family, field_values
from .heads import HeatmapHead, TopDownModel


@dataclass(frozen=True)
class LiteHRNetConfig:
    """The shape of a LiteHRNet. Defaults are LiteHRNet-18 as published; LiteHRNet-30 has
    `stage_modules` (3, 8, 3); the Naive variants use shuffle units (`naive`), width 30, and the
    Wider-Naive width 40 (PP-TinyPose)."""

    width: int = 40                     # branch i of the stages has width * 2**i channels
    stem_channels: int = 32
    expand_ratio: float = 1.0
    stage_modules: tuple[int, int, int] = (2, 4, 2)
    num_blocks: int = 2
    naive: bool = False                 # shuffle units instead of channel weighting blocks
    reduce_ratio: int = 8
    # Batch norm folded away (PP-TinyPose's OpenVINO graph): every conv gets a bias, no BN.
    conv_bias: bool = False

    def stage_channels(self, stage: int) -> list[int]:
        """Channels of each branch of stage 0, 1 or 2 (2, 3, 4 branches)."""
        return [self.width * 2**i for i in range(stage + 2)]


class ConvModule(nn.Module):
    """Conv (no bias) + BN + activation, with the official `conv` / `bn` names. Without `norm`
    the conv has a bias; `bias` forces one (folded BN)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 stride: int = 1, groups: int = 1, act: str | None = "relu",
                 norm: bool = True, bias: bool = False):
        super().__init__()
        norm = norm and not bias
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              kernel_size // 2, groups=groups, bias=bias or not norm)
        self.bn = nn.BatchNorm2d(out_channels) if norm else None
        self.act = {"relu": nn.ReLU(inplace=True), "sigmoid": nn.Sigmoid(),
                    None: nn.Identity()}[act]

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
            groups: int = 1, bias: bool = False) -> list[nn.Module]:
    """A bare conv and its BN (or a biased conv when BN is folded), for the Sequential-indexed
    transition and fusion layers."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                     groups=groups, bias=bias)
    return [conv, nn.Identity() if bias else nn.BatchNorm2d(out_channels)]


def channel_shuffle(x: Tensor, groups: int = 2) -> Tensor:
    # Channels and size as constants and the batch as -1: an exported graph holds the shuffle as
    # Reshape-Transpose-Reshape with constant shapes (which OpenVINO fuses into ShuffleChannels)
    # instead of 9 shape-arithmetic nodes per shuffle. A model's input size is fixed.
    c, h, w = (int(d) for d in x.shape[1:])
    return x.reshape(-1, groups, c // groups, h, w).transpose(1, 2).reshape(-1, c, h, w)


class SpatialWeighting(nn.Module):
    """Squeeze-and-excitation on one branch (its convs have biases, no BN)."""

    def __init__(self, channels: int, ratio: int = 4):
        super().__init__()
        self.conv1 = ConvModule(channels, channels // ratio, norm=False)
        self.conv2 = ConvModule(channels // ratio, channels, act="sigmoid", norm=False)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.conv2(self.conv1(F.adaptive_avg_pool2d(x, 1)))


class CrossResolutionWeighting(nn.Module):
    """Weights for every branch's channels from all branches pooled to the lowest resolution."""

    def __init__(self, channels: list[int], ratio: int, bias: bool = False):
        super().__init__()
        self.channels = channels
        total = sum(channels)
        self.conv1 = ConvModule(total, total // ratio, bias=bias)
        self.conv2 = ConvModule(total // ratio, total, act="sigmoid", bias=bias)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        # Branch i is 2^(n-1-i) times the lowest resolution: adaptive pooling to its size is
        # plain average pooling by that factor (which the ONNX exporter takes as a constant).
        factors = [2 ** (len(xs) - 1 - i) for i in range(len(xs))]
        pooled = [F.avg_pool2d(x, f) if f > 1 else x for x, f in zip(xs, factors)]
        weights = self.conv2(self.conv1(torch.cat(pooled, 1))).split(self.channels, 1)
        return [x * (F.interpolate(w, scale_factor=f, mode="nearest") if f > 1 else w)
                for x, w, f in zip(xs, weights, factors)]


class ConditionalChannelWeighting(nn.Module):
    """LITE block: half of each branch's channels pass; the other half is weighted across
    resolutions, depthwise-convolved and spatially weighted; then the halves are shuffled."""

    def __init__(self, channels: list[int], reduce_ratio: int, bias: bool = False):
        super().__init__()
        half = [c // 2 for c in channels]
        self.cross_resolution_weighting = CrossResolutionWeighting(half, reduce_ratio, bias)
        self.depthwise_convs = nn.ModuleList(
            ConvModule(c, c, 3, groups=c, act=None, bias=bias) for c in half)
        self.spatial_weighting = nn.ModuleList(SpatialWeighting(c) for c in half)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        halves = [x.chunk(2, 1) for x in xs]
        kept, weighted = [h[0] for h in halves], [h[1] for h in halves]
        weighted = self.cross_resolution_weighting(weighted)
        weighted = [sw(dw(x)) for x, dw, sw in zip(weighted, self.depthwise_convs,
                                                    self.spatial_weighting)]
        return [channel_shuffle(torch.cat([a, b], 1)) for a, b in zip(kept, weighted)]


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's stride-1 unit (NAIVE blocks): half the channels through 1x1, depthwise
    3x3, 1x1; concatenated with the other half and shuffled."""

    def __init__(self, channels: int, bias: bool = False):
        super().__init__()
        half = channels // 2
        self.branch2 = nn.Sequential(
            ConvModule(half, half, bias=bias),
            ConvModule(half, half, 3, groups=half, act=None, bias=bias),
            ConvModule(half, half, bias=bias),
        )

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, 1)
        return channel_shuffle(torch.cat([a, self.branch2(b)], 1))


class Stem(nn.Module):
    """3x3 stride-2 conv, then a stride-2 shuffle block: 1/4 resolution."""

    def __init__(self, stem_channels: int = 32, out_channels: int = 32,
                 expand_ratio: float = 1.0, bias: bool = False):
        super().__init__()
        mid = round(stem_channels * expand_ratio)
        branch = stem_channels // 2
        inc = out_channels - branch if stem_channels == out_channels else (
            out_channels - stem_channels)
        self.out_channels = out_channels
        self.conv1 = ConvModule(3, stem_channels, 3, 2, bias=bias)
        self.branch1 = nn.Sequential(
            ConvModule(branch, branch, 3, 2, groups=branch, act=None, bias=bias),
            ConvModule(branch, inc, bias=bias),
        )
        self.expand_conv = ConvModule(branch, mid, bias=bias)
        self.depthwise_conv = ConvModule(mid, mid, 3, 2, groups=mid, act=None, bias=bias)
        self.linear_conv = ConvModule(
            mid, branch if stem_channels == out_channels else stem_channels, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        a, b = x.chunk(2, 1)
        b = self.linear_conv(self.depthwise_conv(self.expand_conv(b)))
        return channel_shuffle(torch.cat([self.branch1(a), b], 1))


def fuse_path(channels: list[int], i: int, j: int, bias: bool = False) -> nn.Module:
    """Branch j -> output i: 1x1 conv + BN + nearest upsampling from lower resolutions;
    depthwise stride-2 3x3 + BN + 1x1 + BN steps (ReLU between them) from higher ones."""
    if j == i:
        return nn.Identity()
    if j > i:
        return nn.Sequential(*conv_bn(channels[j], channels[i], 1, bias=bias),
                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"))
    steps = []
    for k in range(i - j):
        last = k == i - j - 1
        out = channels[i] if last else channels[j]
        layers = [*conv_bn(channels[j], channels[j], 3, 2, groups=channels[j], bias=bias),
                  *conv_bn(channels[j], out, 1, bias=bias)]
        if not last:
            layers.append(nn.ReLU(inplace=True))
        steps.append(nn.Sequential(*layers))
    return nn.Sequential(*steps)


class LiteHRModule(nn.Module):
    """Blocks over all branches, then every output fuses every branch."""

    def __init__(self, channels: list[int], config: LiteHRNetConfig):
        super().__init__()
        bias = config.conv_bias
        if config.naive:
            self.layers = nn.ModuleList(
                nn.Sequential(*(ShuffleUnit(c, bias) for _ in range(config.num_blocks)))
                for c in channels)
        else:
            self.layers = nn.Sequential(*(
                ConditionalChannelWeighting(channels, config.reduce_ratio, bias)
                for _ in range(config.num_blocks)))
        n = len(channels)
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(fuse_path(channels, i, j, bias) for j in range(n)) for i in range(n))
        self.relu = nn.ReLU()
        for paths in self.fuse_layers[1:]:
            for m in paths[0].modules():
                if isinstance(m, nn.Conv2d):
                    m.official_calls = 2

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        if isinstance(self.layers, nn.ModuleList):
            xs = [layer(x) for layer, x in zip(self.layers, xs)]
        else:
            xs = self.layers(xs)
        # The official fusion, reproduced for weight compatibility. It starts each output from
        # branch 0's path and then loops over all branches, 0 included, so branch 0 counts
        # twice; and output 0 accumulates in place into branch 0's own tensor, so the later
        # outputs read that fused, pre-activation sum as their branch 0:
        #   x0' = 2 x0 + sum_j>0 path_0j(x_j);  out_i = 2 path_i0(x0') + sum_j>0 (...)
        # PaddleDetection's graph of PP-TinyPose computes exactly this. The official code runs
        # path_i0 twice; hrpose runs it once and doubles it (same result, fewer MACs: see
        # `official_calls`, which lets models/complexity.py count the official figure).
        x0 = xs[0] + xs[0]
        for path, x in zip(self.fuse_layers[0][1:], xs[1:]):
            x0 = x0 + path(x)
        outs = [self.relu(x0)]
        for i, paths in enumerate(self.fuse_layers[1:], start=1):
            y0 = paths[0](x0)
            y = y0 + y0
            for j, (path, x) in enumerate(zip(paths[1:], xs[1:]), start=1):
                y = y + (x if j == i else path(x))
            outs.append(self.relu(y))
        return outs


def transition(previous: list[int], channels: list[int], bias: bool = False) -> nn.ModuleList:
    """Changes a branch's width with depthwise 3x3 + 1x1 (Identity when it keeps it) and adds
    the new branch from the lowest one with depthwise stride-2 steps."""
    layers: list[nn.Module] = []
    for i, c in enumerate(channels):
        if i < len(previous):
            p = previous[i]
            layers.append(nn.Identity() if p == c else nn.Sequential(
                *conv_bn(p, p, 3, groups=p, bias=bias), *conv_bn(p, c, 1, bias=bias),
                nn.ReLU()))
            continue
        steps = []
        for k in range(i + 1 - len(previous)):
            p = previous[-1]
            out = c if k == i - len(previous) else p
            steps.append(nn.Sequential(*conv_bn(p, p, 3, 2, groups=p, bias=bias),
                                       *conv_bn(p, out, 1, bias=bias), nn.ReLU()))
        layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


class DepthwiseSeparable(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, bias: bool = False):
        super().__init__()
        self.depthwise_conv = ConvModule(in_channels, in_channels, 3, groups=in_channels,
                                         act=None, bias=bias)
        self.pointwise_conv = ConvModule(in_channels, out_channels, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class IterativeHead(nn.Module):
    """From the lowest resolution up: upsample (bilinear, align_corners) the previous result,
    add it, and project to the next branch's width; returns the highest resolution first."""

    def __init__(self, channels: list[int], bias: bool = False):
        super().__init__()
        rev = channels[::-1]
        self.projects = nn.ModuleList(
            DepthwiseSeparable(c, rev[i + 1] if i + 1 < len(rev) else c, bias)
            for i, c in enumerate(rev))

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        out: list[Tensor] = []
        last = None
        for x, project in zip(xs[::-1], self.projects):
            if last is not None:
                x = x + F.interpolate(last, size=x.shape[-2:], mode="bilinear",
                                      align_corners=True)
            last = project(x)
            out.append(last)
        return out[::-1]


class LiteHRNet(nn.Module):
    """Stem, then transitions and stages 0-2 and the iterative head; `forward` returns
    `[highest-resolution features]` (width channels at 1/4), like HRNet's."""

    def __init__(self, config: LiteHRNetConfig = LiteHRNetConfig()):
        super().__init__()
        self.config = config
        bias = config.conv_bias
        self.stem = Stem(config.stem_channels, config.stem_channels, config.expand_ratio, bias)
        previous = [self.stem.out_channels]
        for stage, num_modules in enumerate(config.stage_modules):
            channels = config.stage_channels(stage)
            setattr(self, f"transition{stage}", transition(previous, channels, bias))
            setattr(self, f"stage{stage}", nn.Sequential(
                *(LiteHRModule(channels, config) for _ in range(num_modules))))
            previous = channels
        self.head_layer = IterativeHead(previous, bias)
        self.out_channels = previous[:1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def stages(self) -> list[list[nn.Module]]:
        """The stem, then each stage with the transition into it, as HRNet.stages."""
        return [[self.stem], *([getattr(self, f"transition{s}"), getattr(self, f"stage{s}")]
                               for s in range(len(self.config.stage_modules)))]

    def forward(self, x: Tensor) -> list[Tensor]:
        xs = [self.stem(x)]
        for stage in range(len(self.config.stage_modules)):
            layers = getattr(self, f"transition{stage}")
            xs = [t(xs[i] if i < len(xs) else xs[-1]) for i, t in enumerate(layers)]
            xs = getattr(self, f"stage{stage}")(xs)
        return self.head_layer(xs)[:1]


def litehrnet_topdown(config: LiteHRNetConfig, num_joints: int) -> TopDownModel:
    """A LiteHRNet with the 1x1 heatmap layer (`head.final_layer`, with bias)."""
    backbone = LiteHRNet(config)
    return TopDownModel(backbone, HeatmapHead(backbone.out_channels[0], num_joints))


@dataclass(frozen=True)
class LiteHRNetArch(LiteHRNetConfig):
    """A LiteHRNet (LiteHRNetConfig's fields; defaults LiteHRNet-18) with a heatmap head."""

    num_joints: int = 17
    family: str = "litehrnet"
    kind: str = "topdown"

    def create(self) -> TopDownModel:
        return litehrnet_topdown(LiteHRNetConfig(**field_values(self, LiteHRNetConfig)),
                                 self.num_joints)

    def to_dict(self) -> dict:
        return {"family": "litehrnet", **field_values(self, LiteHRNetConfig),
                "num_joints": self.num_joints}


# trained from the official random init as published
FAMILY = Family("litehrnet", "topdown", LiteHRNetArch, init="none", paper_flops="torchstat",
                layouts=("mmpose0", "paddle", "openvino"))
