"""HRNet backbone (Sun et al., "Deep High-Resolution Representation Learning for Human Pose
Estimation", CVPR 2019).

The module tree reproduces the official pose_hrnet code, so its tensor names are the official
ones under a `backbone.` prefix: `conv1`, `bn1`, `layer1.0.downsample.0`, `transition1.1.0.0`,
`stage2.0.branches.1.3.conv2`, `stage3.3.fuse_layers.2.0.1.0`, ... Published checkpoints
therefore load with a plain key rename (see models/convert.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from .family import Family, field_values
from .heads import HeatmapHead, TopDownModel


@dataclass(frozen=True)
class HRNetConfig:
    """The shape of an HRNet. Defaults are HRNet-W32 as published.

    Branch i of stages 2-4 has `width * 2**i` channels; stages 2, 3, 4 have 2, 3, 4 branches and
    `stage_modules` high-resolution modules each; every branch of every module has `num_blocks`
    basic blocks. Tests shrink `width`, `num_blocks` and `stage_modules` for speed; the tensor
    names do not change.
    """

    width: int = 32
    stem_channels: int = 64
    layer1_blocks: int = 4
    layer1_channels: int = 64          # Bottleneck width of layer1 (its output is 4x this)
    stage_modules: tuple[int, int, int] = (1, 4, 3)
    num_blocks: int = 4
    # The top-down and HigherHRNet heads use only the highest-resolution output of stage 4.
    multi_scale_output: bool = False

    def stage_channels(self, stage: int) -> list[int]:
        """Channels of each branch of stage 2, 3 or 4."""
        return [self.width * 2**i for i in range(stage)]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, channels: int, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def make_blocks(block: type[BasicBlock | Bottleneck], in_channels: int, channels: int,
                num_blocks: int) -> nn.Sequential:
    """`num_blocks` residual blocks; the first gets a 1x1 projection when channels change."""
    out_channels = channels * block.expansion
    downsample = None
    if in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
    layers = [block(in_channels, channels, downsample)]
    layers += [block(out_channels, channels) for _ in range(num_blocks - 1)]
    return nn.Sequential(*layers)


def fuse_layer(channels: list[int], i: int, j: int) -> nn.Module:
    """The path from branch j to output i of a high-resolution module.

    Lower resolution (j > i): 1x1 conv, BN, nearest upsampling. Higher resolution (j < i): i - j
    stride-2 3x3 convs, with ReLU between them and the channel change in the last one.
    """
    if j == i:
        return nn.Identity()
    if j > i:
        return nn.Sequential(
            nn.Conv2d(channels[j], channels[i], 1, bias=False),
            nn.BatchNorm2d(channels[i]),
            nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
        )
    steps: list[nn.Module] = []
    for k in range(i - j):
        if k == i - j - 1:
            steps.append(nn.Sequential(conv3x3(channels[j], channels[i], 2),
                                       nn.BatchNorm2d(channels[i])))
        else:
            steps.append(nn.Sequential(conv3x3(channels[j], channels[j], 2),
                                       nn.BatchNorm2d(channels[j]), nn.ReLU(inplace=True)))
    return nn.Sequential(*steps)


class HighResolutionModule(nn.Module):
    """Parallel branches of basic blocks, then every output sums all branches (fuse layers)."""

    def __init__(self, channels: list[int], num_blocks: int, multi_scale_output: bool = True):
        super().__init__()
        self.branches = nn.ModuleList(
            make_blocks(BasicBlock, c, c, num_blocks) for c in channels
        )
        num_outputs = len(channels) if multi_scale_output else 1
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(fuse_layer(channels, i, j) for j in range(len(channels)))
            for i in range(num_outputs)
        ) if len(channels) > 1 else nn.ModuleList()
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if len(xs) == 1:
            return xs
        outputs = []
        for paths in self.fuse_layers:
            y = paths[0](xs[0])
            for path, x in zip(paths[1:], xs[1:]):
                y = y + path(x)
            outputs.append(self.relu(y))
        return outputs


def transition_layer(in_channels: list[int], out_channels: list[int]) -> nn.ModuleList:
    """Adapts the branches of one stage to the next and adds the new, lower-resolution branch.

    An existing branch passes unchanged (Identity, no tensors) unless its width changes; the new
    branch comes from the lowest-resolution one through stride-2 3x3 convs.
    """
    layers: list[nn.Module] = []
    for i, c_out in enumerate(out_channels):
        if i < len(in_channels):
            if in_channels[i] == c_out:
                layers.append(nn.Identity())
            else:
                layers.append(nn.Sequential(conv3x3(in_channels[i], c_out), nn.BatchNorm2d(c_out),
                                            nn.ReLU(inplace=True)))
            continue
        steps = []
        for k in range(i + 1 - len(in_channels)):
            c_in = in_channels[-1]
            c_step = c_out if k == i - len(in_channels) else c_in
            steps.append(nn.Sequential(conv3x3(c_in, c_step, 2), nn.BatchNorm2d(c_step),
                                       nn.ReLU(inplace=True)))
        layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


class HRNet(nn.Module):
    """Stem (two stride-2 3x3 convs), layer1 (Bottlenecks), then stages 2-4 with transitions.

    `forward` returns the list of branch outputs of stage 4: only the 1/4-resolution one unless
    `config.multi_scale_output`.
    """

    def __init__(self, config: HRNetConfig = HRNetConfig()):
        super().__init__()
        self.config = config
        stem = config.stem_channels
        self.conv1 = conv3x3(3, stem, 2)
        self.bn1 = nn.BatchNorm2d(stem)
        self.conv2 = conv3x3(stem, stem, 2)
        self.bn2 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_blocks(Bottleneck, stem, config.layer1_channels, config.layer1_blocks)

        previous = [config.layer1_channels * Bottleneck.expansion]
        for stage, num_modules in zip((2, 3, 4), config.stage_modules):
            channels = config.stage_channels(stage)
            setattr(self, f"transition{stage - 1}", transition_layer(previous, channels))
            modules = [
                HighResolutionModule(
                    channels, config.num_blocks,
                    multi_scale_output=(stage < 4 or config.multi_scale_output
                                        or m < num_modules - 1),
                )
                for m in range(num_modules)
            ]
            setattr(self, f"stage{stage}", nn.Sequential(*modules))
            previous = channels
        self.out_channels = previous if config.multi_scale_output else previous[:1]
        self.init_weights()

    def init_weights(self) -> None:
        # The official initialisation: N(0, 0.001) convolutions, unit BN.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stages(self) -> list[list[nn.Module]]:
        """The stem, then stages 1-4 (each with the transition into it), from the input on:
        what fine-tuning freezes (train.freeze_stages)."""
        return [[self.conv1, self.bn1, self.conv2, self.bn2], [self.layer1],
                *([getattr(self, f"transition{s - 1}"), getattr(self, f"stage{s}")]
                  for s in (2, 3, 4))]

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for stage in (2, 3, 4):
            transition = getattr(self, f"transition{stage - 1}")
            xs = [t(xs[i] if i < len(xs) else xs[-1]) for i, t in enumerate(transition)]
            xs = getattr(self, f"stage{stage}")(xs)
        return xs



@dataclass(frozen=True)
class HRNetArch(HRNetConfig):
    """A top-down HRNet (HRNetConfig's fields; defaults HRNet-W32) with a heatmap head."""

    num_joints: int = 17
    family: str = "hrnet"
    kind: str = "topdown"              # person crops

    def create(self) -> TopDownModel:
        backbone = HRNet(HRNetConfig(**field_values(self, HRNetConfig)))
        return TopDownModel(backbone, HeatmapHead(backbone.out_channels[0], self.num_joints))

    def to_dict(self) -> dict:
        return {**field_values(self, HRNetConfig, ("multi_scale_output",)),
                "num_joints": self.num_joints}


FAMILY = Family("hrnet", "topdown", HRNetArch, init="imagenet", paper_flops="hrnet",
                layouts=("official", "mmpose0", "imagenet", "paddle", "mindspore"))
