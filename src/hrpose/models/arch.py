"""Architectures as types, one per (family, kind), each with its own defaults: what the zoo's
specs hold, what checkpoints record (`to_dict`, in the form hrpose has always written) and what
a training config's `model:` section extends with how training starts (config.py)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import HrposeError
from .heads import HeatmapHead, TopDownModel
from .higherhrnet import BottomUpModel, HigherResolutionHead
from .hrnet import HRNet, HRNetConfig
from .litehrnet import LiteHRNetConfig, litehrnet_topdown

FAMILIES = ("hrnet", "litehrnet")


def _values(arch: object, base: type, skip: tuple[str, ...] = ()) -> dict:
    return {f.name: getattr(arch, f.name) for f in fields(base) if f.name not in skip}


@dataclass(frozen=True)
class HRNetArch(HRNetConfig):
    """A top-down HRNet (HRNetConfig's fields; defaults HRNet-W32) with a heatmap head."""

    num_joints: int = 17
    family: str = "hrnet"
    kind: str = "topdown"              # person crops

    def create(self) -> TopDownModel:
        backbone = HRNet(HRNetConfig(**_values(self, HRNetConfig)))
        return TopDownModel(backbone, HeatmapHead(backbone.out_channels[0], self.num_joints))

    def to_dict(self) -> dict:
        return {**_values(self, HRNetConfig, ("multi_scale_output",)),
                "num_joints": self.num_joints}


@dataclass(frozen=True)
class HigherHRNetArch(HRNetArch):
    """HigherHRNet: the HRNet with `deconv_blocks` basic blocks at 1/2 resolution; whole
    images."""

    kind: str = "bottomup"
    deconv_blocks: int = 4

    def create(self) -> BottomUpModel:
        backbone = HRNet(HRNetConfig(**_values(self, HRNetConfig)))
        channels = backbone.out_channels[0]
        return BottomUpModel(backbone, HigherResolutionHead(channels, self.num_joints, channels,
                                                            self.deconv_blocks))

    def to_dict(self) -> dict:
        return {**super().to_dict(), "kind": "bottomup", "deconv_blocks": self.deconv_blocks}


@dataclass(frozen=True)
class LiteHRNetArch(LiteHRNetConfig):
    """A LiteHRNet (LiteHRNetConfig's fields; defaults LiteHRNet-18) with a heatmap head."""

    num_joints: int = 17
    family: str = "litehrnet"
    kind: str = "topdown"

    def create(self) -> TopDownModel:
        return litehrnet_topdown(LiteHRNetConfig(**_values(self, LiteHRNetConfig)),
                                 self.num_joints)

    def to_dict(self) -> dict:
        return {"family": "litehrnet", **_values(self, LiteHRNetConfig),
                "num_joints": self.num_joints}


Arch = HRNetArch | HigherHRNetArch | LiteHRNetArch
ARCHS: dict[tuple[str, str], type] = {
    ("hrnet", "topdown"): HRNetArch, ("hrnet", "bottomup"): HigherHRNetArch,
    ("litehrnet", "topdown"): LiteHRNetArch}


def arch_from_dict(arch: dict) -> Arch:
    """The architecture a checkpoint or config records (`to_dict`'s form; missing fields keep
    their defaults)."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()}
    key = (values.get("family", "hrnet"), values.get("kind", "topdown"))
    try:
        return ARCHS[key](**values)
    except (KeyError, TypeError, ValueError) as e:
        reason = f"unknown family and kind {key}" if isinstance(e, KeyError) else e
        raise HrposeError(f"bad model architecture {arch}: {reason}") from None


def model_from_arch(arch: dict) -> TopDownModel | BottomUpModel:
    """A freshly initialised model of a recorded architecture."""
    return arch_from_dict(arch).create()
