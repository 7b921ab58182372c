"""One resolver from "a name or a file" to a model: `load_model(source, weights)` for zoo names,
checkpoints and URLs, and `weights_file` for the weights sources a zoo entry or a config names
("published", "imagenet", a URL, a file). Everything that opens a PyTorch model (`build_model`,
inference, export, bench, the trainer's init, the distillation teacher) goes through here; a
training config with its weights through `config.load_configured`, which builds on these (the
config layer sits above the models).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, HrposeError
from ..hub import download
from .arch import model_from_arch
from .card import ModelCard
from .checkpoint import Tensors, read_checkpoint
from .layouts import detect_layout, load_weights, map_tensors
from .pact import prepare_pact
from .zoo import IMAGENET_BACKBONES, MODELS, create_model, get_spec

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
        raise HrposeError(f"unknown model {source!r}: give a zoo name ({', '.join(MODELS)}), a "
                          "checkpoint or a URL")
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
