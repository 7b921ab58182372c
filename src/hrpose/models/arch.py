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


def arch_from_dict(arch: object) -> Arch:
    """The architecture a checkpoint or config records (`to_dict`'s form; missing fields keep
    their defaults). Every value is checked against its field's type and a sane range first:
    a file's metadata must not build a model of absurd size or fail deep inside torch."""
    if not isinstance(arch, dict):
        raise HrposeError(f"bad model architecture {arch!r}: expected an object of fields")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()}
    key = (values.get("family", "hrnet"), values.get("kind", "topdown"))
    if key not in ARCHS:
        raise HrposeError(f"bad model architecture {arch}: unknown family and kind {key}")
    cls = ARCHS[key]
    for f in fields(cls):
        if f.name in values and not _fits(f.name, f.type, values[f.name]):
            raise HrposeError(f"bad model architecture: field {f.name!r} is "
                              f"{values[f.name]!r}, expected {_expected(f.name, f.type)}")
    try:
        return cls(**values)
    except TypeError as e:
        raise HrposeError(f"bad model architecture {arch}: {e}") from None


# Widths and counts no real HRNet comes near; repeat counts (modules, blocks) are smaller.
_MAX_WIDTH, _MAX_COUNT = 1024, 64
_COUNTS = {"stage_modules", "num_blocks", "layer1_blocks", "deconv_blocks"}


def _fits(name: str, kind: str, value: object) -> bool:
    high = _MAX_COUNT if name in _COUNTS else _MAX_WIDTH
    low = 0 if name == "deconv_blocks" else 1
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "float":
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and 0 < value <= high)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if kind.startswith("tuple"):
        return (isinstance(value, tuple) and len(value) == kind.count("int")
                and all(_fits(name, "int", v) for v in value))
    return True


def _expected(name: str, kind: str) -> str:
    high = _MAX_COUNT if name in _COUNTS else _MAX_WIDTH
    if kind in ("int", "float"):
        return f"a{'n integer' if kind == 'int' else ' number'} in [1, {high}]"
    if kind.startswith("tuple"):
        return f"{kind.count('int')} integers in [1, {high}]"
    return f"a {kind}"


def model_from_arch(arch: dict) -> TopDownModel | BottomUpModel:
    """A freshly initialised model of a recorded architecture."""
    spec = arch_from_dict(arch)
    try:
        return spec.create()
    except (ValueError, RuntimeError) as e:       # e.g. channels that groups cannot divide
        raise HrposeError(f"bad model architecture {arch}: {str(e).splitlines()[0]}") from None
