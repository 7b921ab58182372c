"""What differs between training a top-down and a bottom-up model, as two small task objects
the trainer holds: the data set, the loss and the evaluation. The trainer itself
(engine/train.py) is the same loop for both; each model knows its own initialisation from
scratch (`init_from_scratch`)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
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

