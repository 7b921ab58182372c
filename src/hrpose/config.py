"""Training configs: typed dataclasses whose defaults are the published top-down recipe
(HRNet-W32, 256x192, COCO; Sun et al. 2019), YAML files that state only what differs, and
dotted command-line overrides (`-o train.lr=5e-4`).

Unknown keys and values of the wrong type are one-line errors that name the file and the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .data.bottomup import BottomUpAugmentation
from .data.topdown import Augmentation
from .engine.distill import DistillConfig
from .engine.evaluate import EvalSettings
from .engine.quant import QuantConfig
from .errors import HrposeError


@dataclass
class ModelConfig:
    """The network: an HRNet (see models.hrnet.HRNetConfig) or, with `family: litehrnet`, a
    LiteHRNet (models.litehrnet.LiteHRNetConfig: width, stem_channels, stage_modules,
    num_blocks and the lite fields below), with a heatmap head."""

    width: int = 32
    stem_channels: int = 64
    layer1_channels: int = 64
    layer1_blocks: int = 4
    stage_modules: tuple[int, int, int] = (1, 4, 3)
    num_blocks: int = 4
    num_joints: int = 17
    # "imagenet" (the published start: ImageNet-pretrained backbone), "published" (the zoo
    # model's trained weights), a checkpoint file or URL, "none" (the official random init) or
    # "kaiming" (He init, for training from scratch).
    init: str = "imagenet"
    sync_bn: bool = False              # BN statistics over all devices' batches
    # "topdown" (HRNet on person crops) or "bottomup" (HigherHRNet on whole images, with
    # `deconv_blocks` basic blocks at 1/2 resolution).
    kind: str = "topdown"
    deconv_blocks: int = 4
    family: str = "hrnet"              # hrnet | litehrnet
    naive: bool = False                # LiteHRNet: shuffle units instead of channel weighting
    reduce_ratio: int = 8              # LiteHRNet: cross-resolution weighting reduction
    expand_ratio: float = 1.0          # LiteHRNet: stem expansion
    conv_bias: bool = False            # LiteHRNet: biased convs, no BN (folded, PP-TinyPose)

    def arch(self) -> dict[str, Any]:
        """The architecture fields, as checkpoints record them (HRNet top-down ones as before
        the other families existed, so their checkpoints keep their metadata)."""
        fields = asdict(self)
        if self.family == "litehrnet":
            keep = ("width", "stem_channels", "stage_modules", "num_blocks", "naive",
                    "reduce_ratio", "expand_ratio", "conv_bias", "num_joints")
            return {"family": "litehrnet", **{k: fields[k] for k in keep}}
        skip = ("init", "sync_bn", "family", "naive", "reduce_ratio", "expand_ratio",
                "conv_bias") + (("kind", "deconv_blocks") if self.kind == "topdown" else ())
        return {k: v for k, v in fields.items() if k not in skip}


@dataclass
class DataConfig:
    root: str = "data/coco"
    train_ann: str = "annotations/person_keypoints_train2017.json"
    train_images: str = "train2017"
    val_ann: str = "annotations/person_keypoints_val2017.json"
    val_images: str = "val2017"
    input_wh: tuple[int, int] = (192, 256)   # width, height of the crop
    heatmap_wh: tuple[int, int] = (48, 64)
    sigma: float = 2.0
    target: str = "classic"                  # heatmap encoding: classic | dark | udp
    padding: float = 1.25                    # box padding around a person
    augment: Augmentation = field(default_factory=Augmentation)
    workers: int = 4                         # data-loading processes per device


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
    eval_every: int = 10                     # epochs; the last epoch is always evaluated
    draw_images: int = 4                     # validation images drawn after each evaluation
    log_every: int = 20                      # iterations between JSONL / TensorBoard records
    seed: int = 0
    device: str = "auto"                     # auto (cuda when available) | cpu | cuda[:i]
    threads: int = 0                         # torch CPU threads; 0 = torch's default
    max_iters: int = 0                       # per epoch; 0 = the whole data set (for smoke runs)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: EvalSettings = field(default_factory=lambda: EvalSettings(batch=64))
    bottomup: BottomUpConfig = field(default_factory=BottomUpConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """`value` (from YAML) as type `tp`, or a one-line error naming `where`."""
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
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):          # YAML 1.1 reads 5e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise HrposeError(f"{where}: expected a number, got {value!r}")
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
        try:
            text = Path(path).read_text()
        except OSError:
            raise HrposeError(f"{path}: config file not found or unreadable") from None
        try:
            tree = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" (line {mark.line + 1})" if mark else ""
            raise HrposeError(f"{path}: not valid YAML{at}") from None
        if not isinstance(tree, dict):
            raise HrposeError(f"{path}: expected a mapping of sections (model, data, train, "
                              "test)")
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(tree, key, value)
    try:
        config = build(Config, tree)
    except HrposeError as e:
        raise HrposeError(f"{source}: {e}") from None
    return validate(config, source)


def config_to_dict(config: Config) -> dict:
    """Plain YAML-able values (tuples become lists)."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value
    return plain(asdict(config))


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


CHOICES = {
    ("model", "kind"): ("topdown", "bottomup"),
    ("model", "family"): ("hrnet", "litehrnet"),
    ("data", "target"): ("classic", "dark", "udp"),
    ("train", "optimizer"): ("adam", "adamw", "sgd"),
    ("train", "loss"): ("mse", "ohkm"),
    ("train", "amp"): ("auto", "none", "bf16", "fp16"),
    ("distill", "amp"): ("none", "bf16"),
    ("test", "decode"): ("classic", "dark", "udp"),
    ("test", "nms"): ("oks", "soft", "none"),
}


def validate(config: Config, source: str = "config") -> Config:
    """Values with a fixed set of choices, and sizes that must agree."""
    for (section, key), allowed in CHOICES.items():
        value = getattr(getattr(config, section), key)
        if allowed is not None and value not in allowed:
            raise HrposeError(f"{source}: {section}.{key}: {value!r} is not one of "
                              f"{', '.join(allowed)}")
    (w, h), (hw, hh) = config.data.input_wh, config.data.heatmap_wh
    if w % 32 or h % 32:
        raise HrposeError(f"{source}: data.input_wh: {w}x{h} must be multiples of 32")
    if (hw * 4, hh * 4) != (w, h):
        raise HrposeError(f"{source}: data.heatmap_wh: {hw}x{hh} must be a quarter of "
                          f"data.input_wh {w}x{h}")
    if config.distill.teacher and config.model.kind == "bottomup":
        raise HrposeError(f"{source}: distillation is for top-down heatmap models")
    if not 0 <= config.distill.weight <= 1:
        raise HrposeError(f"{source}: distill.weight {config.distill.weight} is not in [0, 1]")
    if config.model.kind == "bottomup" and config.model.family != "hrnet":
        raise HrposeError(f"{source}: model.kind bottomup is HigherHRNet: model.family hrnet")
    if config.model.kind == "bottomup" and (w != h or w % 64):
        raise HrposeError(f"{source}: data.input_wh: a bottom-up input is square with a side "
                          f"that is a multiple of 64, got {w}x{h}")
    if config.train.channels_last not in (True, False, "auto"):
        raise HrposeError(f"{source}: train.channels_last: {config.train.channels_last!r} is "
                          "not one of true, false, auto")
    for key in ("epochs", "batch"):
        if getattr(config.train, key) < 1:
            raise HrposeError(f"{source}: train.{key} must be at least 1")
    return config
