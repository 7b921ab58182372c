"""What a model family is to the rest of hrpose: one record (`Family`) per (family, kind).

A family's own file defines its network, its architecture type (a frozen dataclass with
`family`, `kind`, `num_joints`, `width`, `create()` and `to_dict()`) and its record;
`models/arch.py`'s `MODEL_FAMILIES` lists the records. Everything else is derived from them:
`arch_from_dict` (checkpoints and cards), a training config's `model:` section
(`config.model_section`: the architecture plus how training starts), and how `hrpose info`
prints the paper's FLOPs. This module imports neither torch nor numpy (`hrpose info` reads
`PAPER_FLOPS` without them).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol


class Arch(Protocol):
    """An architecture: the shape of a model of one family and kind."""

    family: str
    kind: str
    num_joints: int
    width: int

    def create(self): ...          # -> the nn.Module (a TopDownModel or BottomUpModel)

    def to_dict(self) -> dict: ...


@dataclass(frozen=True)
class PaperFlops:
    """How a family's papers count FLOPs, so that `hrpose info` prints their figure beside the
    exact MACs: `divisor` of the official summary tool's count (None: the papers' figures are
    recorded as published, `paper_MFLOPs`), and what that count is."""

    divisor: float | None
    says: str


PAPER_FLOPS = {
    "hrnet": PaperFlops(2**30, "the MACs / 2^30: the figure the HRNet papers print, from the "
                        "official summary tool"),
    "higherhrnet": PaperFlops(1e9, "the official HigherHRNet summary tool: the transposed "
                              "convolution counted over its output positions, 4x, then / 10^9"),
    "torchstat": PaperFlops(None, "the paper's M FLOPs, from the official repo's torchstat "
                            "tool: MACs plus BN and activation elements, each module's last "
                            "call only, / 2^20"),
}


@dataclass(frozen=True)
class Family:
    """One model family of one kind.

    arch: its architecture type. init: a training config's default `model.init` (how its
    published models were trained from: "imagenet", "none", ...). paper_flops: a key of
    PAPER_FLOPS. layouts: the foreign checkpoint layouts its published weights come in
    (models/layouts.py `LAYOUTS` keys), besides hrpose's own."""

    family: str
    kind: str
    arch: type
    init: str
    paper_flops: str
    layouts: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return self.family, self.kind


def field_values(arch: object, base: type, skip: tuple[str, ...] = ()) -> dict:
    """`arch`'s values of `base`'s fields (an architecture type extends its network's config)."""
    return {f.name: getattr(arch, f.name) for f in fields(base) if f.name not in skip}
