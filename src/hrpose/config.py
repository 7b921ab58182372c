"""Training configs: typed dataclasses whose defaults are the published top-down recipe
(HRNet-W32, 256x192, COCO; Sun et al. 2019), YAML files that state only what differs, and
dotted command-line overrides (`-o train.lr=5e-4`).

Unknown keys and values of the wrong type are one-line errors that name the file and the key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import re
import types
import typing
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .codecs.associative_embedding import GroupingSettings
from .codecs.heatmap import METHODS
from .data.bottomup import BottomUpAugmentation
from .data.topdown import Augmentation
from .errors import HrposeError, out_of_range
from .io import read_yaml
from .metrics.coco import NMS_METHODS
from .metrics.protocols import PROTOCOL_CHOICES
from .models import arch as model_arch
from .models import higherhrnet, hrnet, litehrnet
from .models.card import IMAGENET_MEAN, IMAGENET_STD, KINDS, ModelCard
from .models.family import Arch, Family
from .models.layouts import load_weights
from .models.loading import architecture, weights_file
from .models.zoo import zoo_name_for
from .skeletons import FROM_DATA, Skeleton, resolve_skeleton_option

if TYPE_CHECKING:
    from torch import nn


# The `model:` section: the architecture type its `family` and `kind` name (models/arch.py,
# each with its own defaults) and how training starts. init: "imagenet" (the published start:
# ImageNet-pretrained backbone), "published" (the trained weights of the zoo model with this
# architecture), a zoo name (its published weights), a checkpoint file or URL, "none" (the
# official random init) or "kaiming" (He init, for training from scratch). When the weights'
# head does not fit the keypoint set, the backbone is loaded and the head starts fresh, with
# the rows of joints the two sets share by name carried over (carry_joints: false starts them
# all fresh). num_joints: 0 (the default) is the keypoint set's count.
# sync_bn: BN statistics over all devices' batches.
@functools.cache
def model_section(family: Family) -> type:
    """A family's `model:` section: its architecture type with how training starts, and
    num_joints 0 (the keypoint set's count)."""
    section = dataclasses.make_dataclass(
        family.arch.__name__.removesuffix("Arch") + "Model",
        [("num_joints", int, field(default=0)), ("init", str, field(default=family.init)),
         ("carry_joints", bool, field(default=True)), ("sync_bn", bool, field(default=False))],
        bases=(family.arch,), frozen=True)
    section.__module__ = __name__
    return section


ModelConfig = Arch
# The built-in families' sections by name (pickled configs find their types here).
HRNetModel = model_section(hrnet.FAMILY)
HigherHRNetModel = model_section(higherhrnet.FAMILY)
LiteHRNetModel = model_section(litehrnet.FAMILY)
# The one flat model section of configs written before the typed sections: each listed every
# family's fields, the others' at these values, which meant nothing for the family.
_FLAT_DEFAULTS = {"width": 32, "stem_channels": 64, "layer1_channels": 64, "layer1_blocks": 4,
                  "stage_modules": (1, 4, 3), "num_blocks": 4, "deconv_blocks": 4,
                  "naive": False, "reduce_ratio": 8, "expand_ratio": 1.0, "conv_bias": False}


def _model_section(value: Any, where: str) -> ModelConfig:
    """The typed `model:` section its `family` and `kind` name."""
    if not isinstance(value, dict):
        raise HrposeError(f"{where}: expected a mapping of model fields, got {value!r}")
    family, kind = value.get("family", "hrnet"), value.get("kind", "topdown")
    families = model_arch.MODEL_FAMILIES          # read now: a family is one record there
    known = tuple(dict.fromkeys(f.family for f in families))
    for key, got, allowed in (("family", family, known), ("kind", kind, KINDS)):
        if got not in allowed:
            raise HrposeError(f"{where}.{key}: {got!r} is not one of {', '.join(allowed)}")
    record = model_arch.find_family(family, kind)
    if record is None:
        models = [f"{f.family} {f.kind}" for f in families]
        raise HrposeError(f"{where}: no {family} model of kind {kind} (there are: "
                          f"{', '.join(models)})")
    cls = model_section(record)
    names = {f.name for f in dataclasses.fields(cls)}
    other = {f.name for r in families for f in dataclasses.fields(model_section(r))} - names
    for key in sorted(other & value.keys()):
        # another family's field: what an older flat file lists (at its old default), or a
        # config whose family -o switched; it means nothing here
        if _plain(value.pop(key)) != _FLAT_DEFAULTS.get(key):
            warnings.warn(f"{where}.{key} is not a field of a {family} {kind} model; ignored",
                          stacklevel=2)
    return build(cls, value, where)


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass
class DataConfig:
    root: str = "data/coco"
    train_ann: str = "annotations/person_keypoints_train2017.json"
    train_images: str = "train2017"
    val_ann: str = "annotations/person_keypoints_val2017.json"
    val_images: str = "val2017"
    input_wh: tuple[int, int] = (192, 256)   # width, height of the crop
    sigma: float = 2.0
    target: str = "classic"                  # heatmap encoding: classic | dark | udp
    padding: float = 1.25                    # box padding around a person
    # The keypoint set (skeletons.py): a built-in name (coco, mpii, crowdpose,
    # coco_wholebody), a set file (keypoints.yaml), a set stated here (joints, flip_pairs,
    # links, sigmas, upper_body, parts, by joint name), "from_annotations" (the training
    # file's category: its names and links, flip pairs inferred from the names), or "" (the
    # default): the keypoints.yaml beside the annotations, else the built-in set whose
    # joints the training file's category names (or whose parts its fields hold). Resolved
    # once, when training starts; a run's config.yaml holds the whole set.
    keypoints: str | Skeleton = FROM_DATA
    augment: Augmentation = field(default_factory=Augmentation)
    workers: int = 4                         # data-loading processes per device

    @property
    def heatmap_wh(self) -> tuple[int, int]:
        """A quarter of the input: HRNet's heatmap stride. Configs may still state it (files
        written before it was derived); load_config checks that they agree."""
        return self.input_wh[0] // 4, self.input_wh[1] // 4


@dataclass
class BottomUpConfig:
    """Bottom-up (model.kind bottomup) training: the published HigherHRNet recipe. The input is
    data.input_wh (square); targets use data.sigma at 1/4 and 1/2."""

    augment: BottomUpAugmentation = field(default_factory=BottomUpAugmentation)
    max_people: int = 30                     # people per image in the tag loss
    heatmap_weight: float = 1.0
    pull_weight: float = 1e-3
    push_weight: float = 1e-3


@dataclass
class TrainConfig:
    epochs: int = 210
    batch: int = 32                          # per device
    optimizer: str = "adam"                  # adam | adamw | sgd (momentum 0.9)
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_steps: tuple[int, ...] = (170, 200)   # epochs at which the lr is multiplied by lr_factor
    lr_factor: float = 0.1
    warmup_iters: int = 500                  # linear warm-up from warmup_ratio * lr
    warmup_ratio: float = 0.001
    scale_lr: bool = False                   # lr *= global batch / base_batch
    base_batch: int = 128                    # the official recipe: 4 GPUs x 32
    loss: str = "mse"                        # mse | ohkm (online hard keypoint mining)
    ohkm_topk: int = 8
    # auto: bf16 where it is native (a CPU with AVX-512 BF16 / AMX, a bf16 GPU), else none |
    # none | bf16 | fp16 (fp16 uses a grad scaler)
    amp: str = "auto"
    channels_last: bool | str = "auto"       # auto: on for CPUs and CUDA, where it pays
    compile: bool = False                    # torch.compile the model
    grad_clip: float = 0.0                   # max gradient norm; 0 = no clipping
    # Fine-tuning: backbone parts whose weights stay fixed (batch norm statistics too), counted
    # as mmpose does: -1 none, 0 the stem, n the stem and stages 1..n. The head's learning
    # rate is lr x head_lr_factor (a fresh head on a trained backbone may learn faster).
    freeze_stages: int = -1
    head_lr_factor: float = 1.0
    eval_every: int = 10                     # epochs; the last epoch is always evaluated
    draw_images: int = 4                     # validation images drawn after each evaluation
    log_every: int = 20                      # iterations between JSONL / TensorBoard records
    seed: int = 0
    device: str = "auto"                     # auto (cuda when available) | cpu | cuda[:i]
    threads: int = 0                         # torch CPU threads; 0 = torch's default
    max_iters: int = 0                       # per epoch; 0 = the whole data set (for smoke runs)


@dataclass
class EvalSettings:
    """The `test:` section, and `hrpose eval`'s settings."""


    flip: bool = True
    decode: str = "classic"            # classic | dark | udp
    batch: int = 32
    workers: int = 0                   # image-decoding processes
    det_json: str | None = None        # None: ground-truth boxes; relative: under data.root
                                       # (training), else from the working folder
    min_det_score: float = 0.0
    rescore_threshold: float = 0.2     # joints above this count in the person score
    nms: str = "oks"                   # oks | soft | none
    nms_threshold: float = 0.9
    # The benchmark's published scoring (metrics.protocols): auto (from the annotation file),
    # coco, crowdpose, ochuman, mpii; MPII's head boxes (mpii_gt_val.mat; found beside the
    # annotations when not given).
    protocol: str = "auto"
    headboxes: str | None = None
    # Bottom-up models: test scales (relative to the input size) and grouping.
    scales: tuple[float, ...] = (1.0,)
    grouping: GroupingSettings = field(default_factory=GroupingSettings)


@dataclass
class DistillConfig:
    """The `distill:` section (or `hrpose train --teacher T --teacher-weights W`)."""

    teacher: str = ""                  # a config YAML, a zoo name or an hrpose checkpoint
    teacher_weights: str = ""          # for a config or zoo name ("published" by default)
    weight: float = 0.5                # share of the loss that is the MSE to the teacher
    amp: str = "none"                  # the teacher's precision: none | bf16


@dataclass
class QuantConfig:
    """The `quant:` section."""

    pact: bool = False                 # fake-quantised int8 training (start from a float model)
    alpha: float = 0.0                 # initial clip; 0 = calibrate on the first batch
    calib_percentile: float = 99.99    # the calibrated clip: this percentile of |input|


@dataclass
class Config:
    model: ModelConfig = field(default_factory=HRNetModel)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: EvalSettings = field(default_factory=lambda: EvalSettings(batch=64))
    bottomup: BottomUpConfig = field(default_factory=BottomUpConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)

    @property
    def skeleton(self) -> Skeleton:
        """The keypoint set, once resolved (`resolve_keypoints`)."""
        if not isinstance(self.data.keypoints, Skeleton):
            raise HrposeError("data.keypoints is resolved from the data when training starts "
                              "(resolve_keypoints)")
        return self.data.keypoints

    def card(self) -> ModelCard:
        """The card of the model this config trains, as its weights files state it."""
        w, h = self.data.input_wh
        arch = self.model.to_dict()
        # A PACT model is a zoo architecture plus clips: it is opened from its arch, not by name.
        name = "" if self.quant.pact else zoo_name_for(arch, (h, w)) or ""
        bottomup = self.model.kind == "bottomup"
        return ModelCard(arch, (h, w), self.skeleton, IMAGENET_MEAN,
                         IMAGENET_STD, "associative_embedding" if bottomup else self.data.target,
                         self.model.kind, name, "pact" if self.quant.pact else "")


def resolve_keypoints(config: Config, skeleton: Skeleton) -> Config:
    """The config with its keypoint set resolved to `skeleton` (what the training data was
    read with) and model.num_joints its count; a stated num_joints must agree."""
    stated = config.data.keypoints
    if isinstance(stated, Skeleton) and stated != skeleton:
        raise HrposeError(f"data.keypoints: the set {stated.name!r} is not the data's "
                          f"{skeleton.name!r}")
    joints = config.model.num_joints
    if joints and joints != skeleton.num_joints:
        raise HrposeError(f"model.num_joints is {joints}, the keypoint set {skeleton.name!r} "
                          f"has {skeleton.num_joints} joints; leave num_joints out (it is the "
                          "set's)")
    return dataclasses.replace(
        config, data=dataclasses.replace(config.data, keypoints=skeleton),
        model=dataclasses.replace(config.model, num_joints=skeleton.num_joints))


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """`value` (from YAML) as type `tp`, or a one-line error naming `where`."""
    if tp is ModelConfig:
        return _model_section(value, where)
    if tp == str | Skeleton:                  # data.keypoints: a name, a file or a set
        if not isinstance(value, (str, dict)):
            raise HrposeError(f"{where}: expected a keypoint set name, file or set, got "
                              f"{value!r}")
        return resolve_skeleton_option(value, where)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except HrposeError as e:
                errors.append(str(e))
        raise HrposeError(errors[0])
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise HrposeError(f"{where}: expected a mapping of {tp.__name__} fields, got "
                              f"{value!r}")
        return build(tp, value, where)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise HrposeError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise HrposeError(f"{where}: expected {len(args)} values, got {len(value)} "
                              f"({value!r})")
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise HrposeError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise HrposeError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):        # YAML 1.1 reads 5e-4 (no dot) as a string
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is not None and math.isfinite(number):
            return number
        what = "a finite number" if number is not None else "a number"
        raise HrposeError(f"{where}: expected {what}, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise HrposeError(f"{where}: expected a string, got {value!r}")
    raise HrposeError(f"{where}: unsupported type {_type_name(tp)}")


def build(cls: type, values: dict, where: str = "") -> Any:
    """A dataclass from a (partial) mapping: missing fields keep their defaults."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise HrposeError(f"{path}: unknown key (known: {', '.join(names)})")
        kwargs[key] = _convert(value, hints[key], path)
    try:
        return cls(**kwargs)
    except HrposeError as e:
        raise HrposeError(f"{where or 'config'}: {e}") from None


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise HrposeError(f"-o {dotted}: {key} is not a section")
        node = child
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """"train.lr=5e-4" -> ("train.lr", 0.0005); values are YAML ("[1, 2]", "true", "null")."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise HrposeError(f"override {text!r}: expected KEY=VALUE such as train.lr=5e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """The defaults, updated by the YAML file, then by each KEY=VALUE override."""
    tree: dict = {}
    source = "config"
    if path is not None:
        source = str(path)
        tree = read_yaml(path, "config file") or {}
        if not isinstance(tree, dict):
            raise HrposeError(f"{path}: expected a mapping of sections (model, data, train, "
                              "test)")
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(tree, key, value)
    stated = tree.get("data", {}).pop("heatmap_wh", None) if isinstance(tree.get("data"),
                                                                         dict) else None
    try:
        config = build(Config, tree)
        if stated is not None:
            stated = _convert(stated, tuple[int, int], "data.heatmap_wh")
    except HrposeError as e:
        raise HrposeError(f"{source}: {e}") from None
    return validate(config, source, stated)


def config_to_dict(config: Config) -> dict:
    """Plain YAML-able values (tuples become lists); the keypoint set by name when it is a
    built-in one, else in its serial form (joints by name)."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value
    tree = plain(asdict(config))
    keypoints = config.data.keypoints
    if isinstance(keypoints, Skeleton):
        tree["data"]["keypoints"] = keypoints.name if keypoints.builtin else keypoints.to_dict()
    return tree


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


# Choices of the sections this module owns are written here; the rest come from their owners.
CHOICES = {
    ("model", "kind"): KINDS,
    ("data", "target"): METHODS,
    ("train", "optimizer"): ("adam", "adamw", "sgd"),
    ("train", "loss"): ("mse", "ohkm"),
    ("train", "amp"): ("auto", "none", "bf16", "fp16"),
    ("distill", "amp"): ("none", "bf16"),
    ("test", "decode"): METHODS,
    ("test", "nms"): NMS_METHODS,
    ("test", "protocol"): PROTOCOL_CHOICES,
}


# Numbers' ranges: (low, high, low_open, whole), worded as the command-line flags word theirs
# (errors.out_of_range). A tuple's values each keep the rule.
INF = math.inf
RANGES = {
    ("data", "sigma"): (0, INF, True, False), ("data", "padding"): (0, INF, True, False),
    ("data", "workers"): (0, INF, False, True),
    ("train", "epochs"): (1, INF, False, True), ("train", "batch"): (1, INF, False, True),
    ("train", "lr"): (0, INF, True, False), ("train", "weight_decay"): (0, INF, False, False),
    ("train", "lr_steps"): (0, INF, False, True), ("train", "lr_factor"): (0, INF, True, False),
    ("train", "warmup_iters"): (0, INF, False, True), ("train", "warmup_ratio"): (0, 1, False,
                                                                                 False),
    ("train", "base_batch"): (1, INF, False, True), ("train", "ohkm_topk"): (1, INF, False, True),
    ("train", "grad_clip"): (0, INF, False, False),
    ("train", "head_lr_factor"): (0, INF, True, False),
    ("train", "eval_every"): (1, INF, False, True), ("train", "draw_images"): (0, INF, False, True),
    ("train", "log_every"): (1, INF, False, True), ("train", "seed"): (0, 2**32 - 1, False, True),
    ("train", "threads"): (0, INF, False, True), ("train", "max_iters"): (0, INF, False, True),
    ("test", "batch"): (1, INF, False, True), ("test", "workers"): (0, INF, False, True),
    ("test", "min_det_score"): (0, 1, False, False),
    ("test", "rescore_threshold"): (0, 1, False, False),
    ("test", "nms_threshold"): (0, 1, False, False), ("test", "scales"): (0, INF, True, False),
    ("bottomup", "max_people"): (1, INF, False, True),
    ("bottomup", "heatmap_weight"): (0, INF, False, False),
    ("bottomup", "pull_weight"): (0, INF, False, False),
    ("bottomup", "push_weight"): (0, INF, False, False),
    ("distill", "weight"): (0, 1, False, False),
    ("quant", "alpha"): (0, INF, False, False),
    ("quant", "calib_percentile"): (0, 100, True, False),
}


def _check_numbers(config: Config, source: str) -> None:
    """RANGES, and the model's sizes: every count in the model section at least 1 (num_joints
    0: the keypoint set's), every ratio above 0."""
    rules = list(RANGES.items())
    for f in dataclasses.fields(config.model):
        value = getattr(config.model, f.name)
        values = value if isinstance(value, tuple) else (value,)
        if f.name == "num_joints" or not values or isinstance(values[0], (bool, str)):
            continue
        whole = isinstance(values[0], int)
        rules.append((("model", f.name), (1 if whole else 0, INF, not whole, whole)))
    for (section, key), (low, high, low_open, whole) in rules:
        value = getattr(getattr(config, section), key)
        for one in value if isinstance(value, tuple) else (value,):
            why = out_of_range(one, low, high, low_open, whole)
            if why is not None:
                raise HrposeError(f"{source}: {section}.{key}: {why}")
    device = config.train.device
    if device != "auto" and not re.fullmatch(r"(cpu|mps|cuda(:\d+)?)", device):
        raise HrposeError(f"{source}: train.device: {device!r} is not auto or a device name "
                          "(cpu, cuda, cuda:1, mps)")


def validate(config: Config, source: str = "config",
             stated_heatmap: tuple[int, int] | None = None) -> Config:
    """Values with a fixed set of choices, numbers in their ranges, and sizes that must agree."""
    for (section, key), allowed in CHOICES.items():
        value = getattr(getattr(config, section), key)
        if allowed is not None and value not in allowed:
            raise HrposeError(f"{source}: {section}.{key}: {value!r} is not one of "
                              f"{', '.join(allowed)}")
    _check_numbers(config, source)
    w, h = config.data.input_wh
    if w % 32 or h % 32:
        raise HrposeError(f"{source}: data.input_wh: {w}x{h} must be multiples of 32")
    if stated_heatmap is not None and tuple(stated_heatmap) != config.data.heatmap_wh:
        hw, hh = stated_heatmap
        raise HrposeError(f"{source}: data.heatmap_wh: {hw}x{hh} must be a quarter of "
                          f"data.input_wh {w}x{h}")
    if config.distill.teacher and config.model.kind == "bottomup":
        raise HrposeError(f"{source}: distillation is for top-down heatmap models")
    if config.model.kind == "bottomup" and (w != h or w % 64):
        raise HrposeError(f"{source}: data.input_wh: a bottom-up input is square with a side "
                          f"that is a multiple of 64, got {w}x{h}")
    if config.train.channels_last not in (True, False, "auto"):
        raise HrposeError(f"{source}: train.channels_last: {config.train.channels_last!r} is "
                          "not one of true, false, auto")
    if config.train.freeze_stages < -1:
        raise HrposeError(f"{source}: train.freeze_stages: -1 (none), 0 (the stem) or the "
                          f"last frozen stage, got {config.train.freeze_stages}")
    if config.model.num_joints < 0:
        raise HrposeError(f"{source}: model.num_joints must be positive (or 0: the keypoint "
                          "set's)")
    if isinstance(config.data.keypoints, Skeleton):     # stated: num_joints follows now
        try:
            config = resolve_keypoints(config, config.data.keypoints)
        except HrposeError as e:
            raise HrposeError(f"{source}: {e}") from None
    return config


CONFIGS = (".yaml", ".yml")


def load_configured(path: str | Path, weights: str | Path | None
                    ) -> tuple[nn.Module, ModelCard]:
    """A training config's model, in eval mode, with `weights` (a file, a URL, "published" or
    "imagenet": models.loading.weights_file) and its card."""
    if weights is None:
        raise HrposeError(f"{path}: a training config needs its weights (--teacher-weights for "
                          "a teacher)")
    config = load_config(path)
    if not isinstance(config.data.keypoints, Skeleton):
        config = resolve_keypoints(config, data_keypoints(config))
    card = config.card()
    model = architecture(card)
    load_weights(model, weights_file(weights, card.name, config.model.width))
    return model.eval(), card


def data_keypoints(config: Config) -> Skeleton:
    """The keypoint set of a config whose `data.keypoints` is resolved from the data: read
    from its training annotations (for a config that describes a model without training it)."""
    from .data.coco import load_keypoints

    data = config.data
    return load_keypoints(Path(data.root) / data.train_ann, data.keypoints).skeleton
