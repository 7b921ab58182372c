"""Architectures as types, one per (family, kind), each with its own defaults, defined in its
family's file beside its network (`HRNetArch` in hrnet.py, `HigherHRNetArch` in
higherhrnet.py, `LiteHRNetArch` in litehrnet.py), with its `Family` record (models/family.py):
what the zoo's specs hold, what checkpoints record (`to_dict`, in the form hrpose has always
written) and what a training config's `model:` section extends with how training starts
(config.py). `MODEL_FAMILIES` lists the records: a new family is its file and one line here."""

from __future__ import annotations

from dataclasses import fields

from ..errors import HrposeError, first_line
from . import higherhrnet, hrnet, litehrnet
from .family import Arch, Family
from .heads import TopDownModel
from .higherhrnet import BottomUpModel, HigherHRNetArch
from .hrnet import HRNetArch
from .litehrnet import LiteHRNetArch

__all__ = ["MODEL_FAMILIES", "Arch", "HRNetArch", "HigherHRNetArch",
           "LiteHRNetArch", "arch_from_dict", "family_of", "find_family", "model_from_arch"]

MODEL_FAMILIES: tuple[Family, ...] = (hrnet.FAMILY, higherhrnet.FAMILY, litehrnet.FAMILY)


def find_family(family: str, kind: str) -> Family | None:
    """The record of a family and kind (read from MODEL_FAMILIES at each call)."""
    return next((f for f in MODEL_FAMILIES if f.key == (family, kind)), None)


def family_of(arch: Arch) -> Family:
    """The record of an architecture's family and kind."""
    found = find_family(arch.family, arch.kind)
    if found is None:
        raise HrposeError(f"no model family {arch.family!r} of kind {arch.kind!r}")
    return found


def arch_from_dict(arch: object) -> Arch:
    """The architecture a checkpoint or config records (`to_dict`'s form; missing fields keep
    their defaults). Every value is checked against its field's type and a sane range first:
    a file's metadata must not build a model of absurd size or fail deep inside torch."""
    if not isinstance(arch, dict):
        raise HrposeError(f"bad model architecture {arch!r}: expected an object of fields")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()}
    # files written before `family` and `kind` existed are top-down HRNets
    key = (values.get("family", "hrnet"), values.get("kind", "topdown"))
    family = find_family(*key)
    if family is None:
        raise HrposeError(f"bad model architecture {arch}: unknown family and kind {key}")
    cls = family.arch
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
        raise HrposeError(f"bad model architecture {arch}: {first_line(e)}") from None
