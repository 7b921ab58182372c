"""`ModelCard`: what running a model needs besides its weights, as one type.

Training, `hrpose convert` and `hrpose export` write it into their files (safetensors metadata,
ONNX metadata_props, OpenVINO rt_info "hrpose"); every loader reads it back. The file format is
flat string keys; JSON for lists. Files of earlier hrpose versions load: convert's `input_hw`
"256x192", exports without `arch`, checkpoints without `kind`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from ..errors import HrposeError
from ..skeletons import SKELETONS, Skeleton, parse_skeleton

IMAGENET_MEAN = (0.485, 0.456, 0.406)   # RGB in [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)
KINDS = ("topdown", "bottomup")          # person crops | whole images
# The heatmap methods of a top-down model (codecs/heatmap.py) and the bottom-up grouping.
CODECS = ("classic", "dark", "udp", "associative_embedding")
# Keys the card itself owns; anything else in a file's metadata is provenance (`extra`).
# The input sizes a card may state, (height, width) each: what a model can take (the
# network downsamples 32 times) and what fits a machine (4096 x 4096 x 3 floats is 200 MB).
MIN_INPUT_SIDE, MAX_INPUT_SIDE = 32, 4096
_OWN = ("model", "arch", "kind", "input_hw", "keypoints", "keypoint_set", "codec", "mean", "std",
        "quant", "precision")


@dataclass(frozen=True)
class ModelCard:
    arch: dict | None                       # model_from_arch fields; None: an exported graph
    input_hw: tuple[int, int]               # (height, width)
    keypoints: Skeleton | None = None       # the keypoint set; None: the file states none
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    codec: str = "classic"
    kind: str = "topdown"
    name: str = ""                          # the zoo model, when the architecture is one
    quant: str = ""                         # "" | "pact" (fake-quantised int8 convolutions)
    precision: str = "fp32"                 # of the stored weights: fp32 | fp16 | int8
    extra: dict[str, str] = field(default_factory=dict)   # epoch, AP, source file, ...

    def to_metadata(self) -> dict[str, str]:
        """Flat string metadata, as every hrpose file stores it: the keypoint set by name
        (what earlier versions read) and whole (`keypoint_set`, its serial form)."""
        meta = {"model": self.name, "kind": self.kind,
                "input_hw": json.dumps(list(self.input_hw)),
                "keypoints": self.keypoints.name if self.keypoints else "custom",
                "codec": self.codec,
                "mean": json.dumps(list(self.mean)), "std": json.dumps(list(self.std)),
                "precision": self.precision}
        if self.keypoints is not None:
            meta["keypoint_set"] = json.dumps(self.keypoints.to_dict())
        if self.arch is not None:
            meta["arch"] = json.dumps(self.arch)
        if self.quant:
            meta["quant"] = self.quant
        return {**meta, **{k: str(v) for k, v in self.extra.items()}}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], source: str = "model") -> ModelCard:
        """The card a file states; `source` names it in errors. Keys it lacks keep defaults."""
        try:
            arch = json.loads(metadata["arch"]) if metadata.get("arch") else None
            mean = tuple(json.loads(metadata["mean"])) if "mean" in metadata else IMAGENET_MEAN
            std = tuple(json.loads(metadata["std"])) if "std" in metadata else IMAGENET_STD
            input_hw = _hw(metadata.get("input_hw", "[0, 0]"))
        except (ValueError, TypeError) as e:
            raise HrposeError(f"{source}: bad hrpose metadata ({e})") from None
        if "input_hw" in metadata and not all(MIN_INPUT_SIDE <= side <= MAX_INPUT_SIDE
                                              for side in input_hw):
            raise HrposeError(f"{source}: its metadata's input_hw {list(input_hw)} is not an "
                              f"input size ({MIN_INPUT_SIDE} to {MAX_INPUT_SIDE} pixels a side)")
        codec = metadata.get("codec", "classic")
        kind = metadata.get("kind") or ("bottomup" if codec == "associative_embedding"
                                        else "topdown")
        card = cls(arch, input_hw, _keypoint_set(metadata, source), mean, std, codec, kind,
                   metadata.get("model", ""), metadata.get("quant", ""),
                   metadata.get("precision", "fp32"),
                   {k: v for k, v in metadata.items() if k not in _OWN})
        card.check(source)
        return card

    def check(self, source: str = "model") -> None:
        if self.kind not in KINDS:
            raise HrposeError(f"{source}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.codec not in CODECS:
            raise HrposeError(f"{source}: codec {self.codec!r} is not one of "
                              f"{', '.join(CODECS)}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise HrposeError(f"{source}: mean and std are three RGB values each")

    def with_extra(self, **extra: object) -> ModelCard:
        return replace(self, extra={**self.extra, **{k: str(v) for k, v in extra.items()}})

    @property
    def bottomup(self) -> bool:
        return self.kind == "bottomup"


def _keypoint_set(metadata: dict[str, str], source: str) -> Skeleton | None:
    """The whole set (`keypoint_set`), else a built-in one by name (files of earlier versions);
    None when the file states neither."""
    if metadata.get("keypoint_set"):
        try:
            value = json.loads(metadata["keypoint_set"])
        except ValueError:
            raise HrposeError(f"{source}: bad hrpose metadata (keypoint_set is not JSON)"
                              ) from None
        return parse_skeleton(value, f"{source}: keypoint_set")
    name = metadata.get("keypoints")
    if name in (None, "", "custom"):
        return None
    if name not in SKELETONS:
        raise HrposeError(f"{source}: its metadata names the keypoint set {name!r}, which is "
                          f"not built in ({', '.join(SKELETONS)}) and states no keypoint_set")
    return SKELETONS[name]


def _hw(text: str) -> tuple[int, int]:
    """(h, w) from '[256, 192]' (hrpose files) or '256x192' (convert, before the card)."""
    values = text.split("x") if "x" in text else json.loads(text)
    h, w = (int(v) for v in values)
    return h, w
