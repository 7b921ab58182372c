"""What differs between training a top-down and a bottom-up model, as two small task objects
the trainer holds: the data set, the initialisation from scratch, the loss and the evaluation.
The trainer itself (engine/train.py) is the same loop for both."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..codecs.associative_embedding import STRIDES
from ..codecs.heatmap import HeatmapCodec
from ..config import Config, EvalSettings
from ..data.bottomup import BottomUpDataset
from ..data.coco import KeypointData
from ..data.topdown import TopDownDataset
from ..inference.backends import Runner
from ..models.card import IMAGENET_MEAN, IMAGENET_STD
from .distill import Teacher, distill_loss
from .evaluate import evaluate, evaluate_bottomup
from .losses import bottomup_loss, heatmap_loss


class TopDownTask:
    """Person crops with heatmap targets (codecs/heatmap.py), the joints MSE (or OHKM, or the
    distillation mix), COCO AP / PCKh on the validation boxes."""

    unit = "people"                  # what one training sample is

    def __init__(self, config: Config) -> None:
        data = config.data
        self.config = config
        self.codec = HeatmapCodec(data.input_wh, data.heatmap_wh, data.sigma, data.target)

    def dataset(self, data: KeypointData, image_dir: Path) -> Dataset:
        cfg = self.config
        return TopDownDataset(data, image_dir, self.codec, cfg.data.augment, cfg.train.seed,
                              cfg.data.padding)

    def init_from_scratch(self, model: nn.Module) -> None:
        init_kaiming(model.backbone)

    def loss(self, output: Tensor, batch: dict, device: torch.device, x: Tensor,
             teacher: Teacher | None) -> Tensor:
        train = self.config.train
        target = batch["heatmaps"].to(device, non_blocking=True)
        weights = batch["weights"].to(device, non_blocking=True)
        if teacher is not None:
            return distill_loss(output, target, weights, teacher(x), teacher.weight, train.loss,
                                train.ohkm_topk)
        return heatmap_loss(output, target, weights, train.loss, train.ohkm_topk)

    def evaluate(self, runner: Runner, run_dir: Path, settings: EvalSettings,
                 **common: object) -> dict:
        return evaluate(runner, self.config.data.root, run_dir, IMAGENET_MEAN, IMAGENET_STD,
                        settings, keypoints=self.config.skeleton, **common)


class BottomUpTask:
    """Whole images with heatmaps at each of STRIDES and the tag-loss joints, the heatmap +
    pull + push loss, COCO AP of the grouped people."""

    unit = "images"

    def __init__(self, config: Config) -> None:
        self.config = config

    def dataset(self, data: KeypointData, image_dir: Path) -> Dataset:
        cfg, bu = self.config, self.config.bottomup
        return BottomUpDataset(data, image_dir, cfg.data.input_wh[0], STRIDES, cfg.data.sigma,
                               bu.max_people, bu.augment, cfg.train.seed)

    def init_from_scratch(self, model: nn.Module) -> None:
        init_kaiming(model.backbone)
        init_kaiming(model.head.deconv_layers)       # its head has convolution blocks too
        init_tags(model.head.final_layers[0], self.config.model.num_joints)

    def loss(self, output: list[Tensor], batch: dict, device: torch.device, x: Tensor,
             teacher: None) -> Tensor:
        bu = self.config.bottomup
        targets = {k: v.to(device, non_blocking=True) for k, v in batch.items()
                   if k.startswith(("heatmaps_", "mask_", "joints"))}
        loss, _ = bottomup_loss(output, targets, self.config.model.num_joints, STRIDES,
                                bu.heatmap_weight, bu.pull_weight, bu.push_weight)
        return loss

    def evaluate(self, runner: Runner, run_dir: Path, settings: EvalSettings,
                 **common: object) -> dict:
        data = self.config.data
        return evaluate_bottomup(runner, data.root, run_dir, IMAGENET_MEAN, IMAGENET_STD,
                                 data.input_wh[0], settings, keypoints=self.config.skeleton,
                                 **common)


def task_for(config: Config) -> TopDownTask | BottomUpTask:
    return BottomUpTask(config) if config.model.kind == "bottomup" else TopDownTask(config)


def init_kaiming(module: nn.Module) -> None:
    """He initialisation (fan-out) for training from scratch: the official N(0, 0.001) is meant
    to be overwritten by ImageNet weights, and from scratch it makes Adam's first steps huge
    relative to the weights."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def init_tags(layer: nn.Conv2d, num_joints: int) -> None:
    """He-initialised tag outputs for training from scratch: tags that all start at ~0 sit on
    a saddle of the push loss (exp(-d^2) is flat at d = 0) and stay collapsed for epochs."""
    with torch.no_grad():
        fan_in = layer.weight[num_joints:][0].numel()
        layer.weight[num_joints:].normal_(0, math.sqrt(2 / fan_in))
