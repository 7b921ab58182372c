"""One resolver from "a name or a file" to a model: `load_model(source, weights)` for zoo names,
checkpoints and URLs, and `weights_file` for the weights sources a zoo entry or a config names
("published", "imagenet", a URL, a file). Everything that opens a PyTorch model (`build_model`,
inference, export, bench, the trainer's init, the distillation teacher) goes through here; a
training config with its weights through `config.load_configured`, which builds on these (the
config layer sits above the models).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import CheckpointError, HrposeError
from ..hub import download
from ..skeletons import Skeleton, get_skeleton
from .arch import Arch, model_from_arch
from .card import ModelCard
from .checkpoint import Tensors, read_checkpoint
from .layouts import detect_layout, layout_tensors, load_weights, map_tensors, source_name
from .pact import prepare_pact
from .zoo import IMAGENET_BACKBONES, MODELS, create_model, get_spec, unknown_model, zoo_name_for

CHECKPOINTS = (".safetensors", ".pth", ".pt", ".pdparams", ".ckpt")


def weights_file(weights: str | os.PathLike, name: str = "", width: int | None = None) -> Path:
    """A local weights file: "published" (zoo model `name`'s), "imagenet" (the ImageNet HRNet-W
    `width` backbone), an http(s) URL (downloaded once into the cache) or a file."""
    weights = os.fspath(weights)
    if weights == "published":
        url = MODELS[name].weights_url if name in MODELS else None
        if url is None:
            what = f"model {name!r}" if name else "the configured model (not a zoo model)"
            raise HrposeError(f"{what} has no published weights; give a weights file "
                              "(--weights FILE; `hrpose convert` makes one from other "
                              "layouts), or --weights none for random initialisation")
        weights = url
    elif weights == "imagenet":
        if width not in IMAGENET_BACKBONES:
            raise HrposeError(f"no ImageNet-pretrained HRNet-W{width}; use a checkpoint or "
                              "none")
        weights = IMAGENET_BACKBONES[width]
    if weights.startswith(("http://", "https://")):
        return download(weights, model_name=name or None)
    return Path(weights)


def build_model(name: str, weights: str | os.PathLike | None = None) -> nn.Module:
    """The `torch.nn.Module` of a named model.

    `weights`: None (or "none") for random (official) initialisation; a local checkpoint in any
    supported layout (official HRNet, mmpose 0.x / 1.x, Paddle, MindSpore, ImageNet backbone,
    hrpose); an http(s) URL, downloaded once into the cache; "published" for the zoo entry's own
    weights; or "imagenet" for the ImageNet-pretrained backbone (the head keeps its initialisation).
    A top-down module maps a normalised RGB batch `(N, 3, H, W)` to heatmaps `(N, K, H/4, W/4)`;
    a bottom-up one (`higherhrnet_*`) to `[(N, 2K, H/4, W/4) heatmaps + tags, (N, K, H/2, W/2)]`.
    It is returned in eval mode (training code calls `.train()`).
    """
    get_spec(name)
    return load_model(name, "none" if weights is None else weights)[0]


def load_model(source: str | os.PathLike, weights: str | os.PathLike | None = None
               ) -> tuple[nn.Module, ModelCard]:
    """(module in eval mode, its card) from:

    - a zoo name: `weights` None means its published weights; "none" random initialisation;
      else any `weights_file` source;
    - an http(s) URL or a checkpoint file (.safetensors, .pth, .pt, .pdparams, .ckpt): its card
      from its metadata (hrpose files), else the zoo model whose tensors fit it.
    """
    source = os.fspath(source)
    if source in MODELS:
        spec = MODELS[source]
        model = spec.create()
        weights = "published" if weights is None else os.fspath(weights)
        if weights != "none":
            load_weights(model, weights_file(weights, source, spec.width))
        return model.eval(), spec.card()
    url = source.startswith(("http://", "https://"))
    if not url and not (Path(source).suffix.lower() in CHECKPOINTS and Path(source).is_file()):
        raise unknown_model(source)
    if weights is not None:
        raise HrposeError(f"{source}: a checkpoint is its own weights; drop --weights")
    if url:
        source = str(download(source))
    tensors, metadata = read_checkpoint(source)
    layout = detect_layout(list(tensors), source)
    if metadata.get("arch"):
        card = ModelCard.from_metadata(metadata, source)
    elif metadata.get("model"):                         # convert's metadata: a zoo name
        card = _zoo_card(metadata["model"], source).with_extra(
            **ModelCard.from_metadata(metadata, source).extra)
    else:
        card = MODELS[guess_model(tensors, layout, source)].card()
    with torch.device("meta"):        # shapes first: a file's card must not build a huge model
        shell = architecture(card)
    map_tensors(shell, tensors, layout, source)
    model = architecture(card)
    model.load_state_dict(map_tensors(model, tensors, layout, source), strict=True)
    return model.eval(), card


def _zoo_card(name: str, source: str) -> ModelCard:
    if name not in MODELS:
        raise HrposeError(f"{source}: its metadata names the model {name!r}, which is not in "
                          "the zoo")
    return MODELS[name].card()


def architecture(card: ModelCard) -> nn.Module:
    """The card's architecture, freshly initialised; fake-quantised when the card says PACT."""
    model = model_from_arch(card.arch or {})
    return prepare_pact(model) if card.quant == "pact" else model


def guess_model(tensors: Tensors, layout: str, source: str = "checkpoint") -> str:
    """The first zoo model whose tensors all fit the file (architecture and joints)."""
    for name in MODELS:
        try:
            map_tensors(create_model(name, device="meta"), tensors, layout)
            return name
        except CheckpointError:
            continue
    raise CheckpointError(
        f"{source}: matches no zoo model ({', '.join(MODELS)}); name one with --model")


def init_weights(init: str, arch: Arch, input_hw: tuple[int, int]
                 ) -> tuple[Path, Skeleton | None]:
    """The weights file a training config's `model.init` names, and the keypoint set its head
    predicts when that is known from the name (the file's card may still state it): a zoo
    name (its published weights), "published" (the zoo model of this architecture, any number
    of joints, this input size if there is one), "imagenet", a file or a URL."""
    if init in MODELS:
        return weights_file("published", init), get_skeleton(MODELS[init].keypoints)
    if init == "published":
        name = zoo_name_for(arch.to_dict(), input_hw, any_joints=True)
        if name is None:
            raise HrposeError("no zoo model with published weights has this architecture; "
                              "give a zoo name, a checkpoint file or a URL")
        return weights_file("published", name), get_skeleton(MODELS[name].keypoints)
    return weights_file(init, "", arch.width), None


def initialised_model(arch: Arch, init: str, input_hw: tuple[int, int], skeleton: Skeleton,
                      carry_joints: bool = True) -> tuple[nn.Module, str]:
    """A model of `arch` to train, initialised as a config's `model.init` says: "none" (the
    architecture's own), "kaiming" (from scratch: `init_from_scratch`), or weights (a zoo name,
    "published", "imagenet", a file or a URL: `init_weights`, then `load_for_keypoints`).
    Returns the model and a line saying what started fresh ("" when nothing did)."""
    model = arch.create()
    if init in ("none", ""):
        return model, ""
    if init == "kaiming":
        model.init_from_scratch()
        return model, ""
    try:
        path, source = init_weights(init, arch, input_hw)
    except HrposeError as e:
        raise HrposeError(f"model.init {init}: {e}") from None
    return model, load_for_keypoints(model, arch, path, skeleton, source, carry_joints)


def load_for_keypoints(model: nn.Module, arch: Arch, path: str | os.PathLike,
                       skeleton: Skeleton, source: Skeleton | None = None,
                       carry: bool = True) -> str:
    """Loads weights into `model` (of `arch`, predicting `skeleton`'s joints). When the file's
    head predicts other joints (another count, or a stated set with other joint names), the
    rest is loaded and the head starts fresh, except the rows of joints that both sets name
    (with `carry`). `source`: the file's set when its name says it (a zoo model), else its
    card's. Returns a line saying what was started fresh ("" when everything loaded)."""
    tensors, metadata = read_checkpoint(path)
    layout = detect_layout(list(tensors), str(path))
    if source is None and metadata.get("arch"):
        source = ModelCard.from_metadata(metadata, str(path)).keypoints
    elif source is None and metadata.get("model") in MODELS:
        source = get_skeleton(MODELS[metadata["model"]].keypoints)
    joint_tensors = model.head.joint_tensors()
    k, k_file = skeleton.num_joints, _file_joints(model, tensors, layout, joint_tensors)
    if k_file is None or (k_file == k and (source is None or source.joints == skeleton.joints)):
        model.load_state_dict(map_tensors(model, tensors, layout, str(path)), strict=True)
        return ""
    shell = dataclasses.replace(arch, num_joints=k_file).create()
    shell.load_state_dict(map_tensors(shell, tensors, layout, str(path)), strict=True)
    rows = ({j: source.joints.index(name) for j, name in enumerate(skeleton.joints)
             if name in source.joints} if source is not None and carry else {})
    state = model.state_dict()
    for key, value in shell.state_dict().items():
        where = joint_tensors.get(key.removeprefix("head."))
        state[key] = (value if where is None or not key.startswith("head.") else
                      _carry_rows(state[key], value, *where, k, k_file, rows))
    model.load_state_dict(state, strict=True)
    what = f"the {source.name!r} set's" if source is not None else "unstated"
    carried = (f"the rows of {len(rows)} joints both sets name carried over "
               f"({', '.join(skeleton.joints[j] for j in rows)})" if rows else
               "no rows carried over" + ("" if carry else " (carry_joints is off)")
               if source is not None else "no rows carried over (the file names no joints)")
    return (f"{Path(path).name}: its head predicts {k_file} joints ({what}), the keypoint set "
            f"{skeleton.name!r} has {k}: the backbone is loaded, the head starts fresh with "
            f"{carried}")


def _file_joints(model: nn.Module, tensors: Tensors, layout: str,
                 joint_tensors: dict[str, tuple[int, int, int]]) -> int | None:
    """How many joints the file's head predicts; None when the file has no head."""
    expected = model.state_dict()
    bn_layers = {k[: -len(".running_mean")] for k in expected if k.endswith(".running_mean")}
    key, (axis, base, blocks) = next(iter(joint_tensors.items()))
    named = layout_tensors(tensors, layout)
    name = source_name(layout, f"head.{key}", bn_layers)
    if name is None or name not in named or len(named[name].shape) <= axis:
        return None
    rows = named[name].shape[axis] - base
    return rows // blocks if rows > 0 and rows % blocks == 0 else None


def _carry_rows(fresh: Tensor, trained: Tensor, axis: int, base: int, blocks: int, k: int,
                k_trained: int, rows: dict[int, int]) -> Tensor:
    """`fresh` with the `base` leading rows and each carried joint's rows (in each of
    `blocks` blocks of joints) taken from `trained`, along `axis`."""
    out = fresh.clone()
    target, source = out.movedim(axis, 0), trained.movedim(axis, 0)
    target[:base] = source[:base]
    for block in range(blocks):
        for j, i in rows.items():
            target[base + block * k + j] = source[base + block * k_trained + i]
    return out
