"""Training: one code path for one CPU, one GPU or many devices through torchrun, top-down and
bottom-up alike (what differs is the task: engine/tasks.py).

RUN_DIR receives: config.yaml (the resolved config), latest.pt (the whole training state, for
--resume: engine/run_state.py), latest.safetensors and best.safetensors (weights with
metadata: `hrpose eval` and inference open them alone), metrics.json / results.json /
predictions.jpg after each evaluation (metrics.json in `hrpose eval`'s format plus epoch and
step), log.jsonl and tb/ (TensorBoard: engine/logs.py). The sampler (engine/sampler.py) and
Ctrl-C handling (engine/interrupts.py) keep a resumed run bit for bit the uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import Config, config_to_dict, dump_config, load_config, resolve_keypoints
from ..data.coco import check_images, load_keypoints
from ..data.topdown import person_boxes
from ..data.transforms import normalize_tensor
from ..errors import HrposeError, plural
from ..hardware import resolve_precision
from ..inference.backends import TorchRunner
from ..inference.options import RuntimeOptions
from ..io import atomic_path, read_json, remove_stale_temporaries
from ..models.card import IMAGENET_MEAN, IMAGENET_STD
from ..models.checkpoint import save_weights
from ..models.complexity import count_params
from ..models.loading import initialised_model
from ..models.pact import calibrate, prepare_pact
from ..paths import check_output
from ..skeletons import Skeleton, describe_flip_pairs
from . import distributed
from .distill import Teacher
from .evaluate import check_eval_data
from .interrupts import Interrupts, SafeStop, ignore_interrupts
from .logs import RunLog
from .optim import base_lr, lr_at, make_optimizer
from .run_state import State, read_state, restore_state, write_state
from .sampler import EpochSampler
from .tasks import task_for

__all__ = ["EpochSampler", "NonFiniteLoss", "Trainer", "resume_config", "train",
           "weights_metadata"]

log = logging.getLogger(__name__)


class NonFiniteLoss(HrposeError):
    pass


def training_model(config: Config, device: torch.device, world: distributed.World
                   ) -> nn.Module:
    """The configured architecture with its initialisation (models.loading.initialised_model:
    rank 0 first, so that a download happens once), fake-quantised for PACT training when
    `quant.pact` (after loading float weights)."""
    w, h = config.data.input_wh
    with distributed.main_first(world):
        model, note = initialised_model(config.model, config.model.init, (h, w),
                                        config.skeleton, config.model.carry_joints)
    if note and world.is_main:
        tqdm.write(f"hrpose: {note}", file=sys.stderr)
    if config.quant.pact:
        prepare_pact(model, config.quant.alpha or 6.0)
    return model.to(device)


def frozen_modules(model: nn.Module, stages: int) -> list[nn.Module]:
    """The backbone parts `train.freeze_stages` keeps fixed: -1 none, 0 the stem, n the stem
    and stages 1..n."""
    if stages < 0:
        return []
    parts = model.backbone.stages()
    if stages >= len(parts):
        raise HrposeError(f"train.freeze_stages {stages}: this backbone has the stem (0) and "
                          f"stages 1..{len(parts) - 1}")
    return [module for part in parts[: stages + 1] for module in part]


def announce_keypoints(skeleton: Skeleton) -> str:
    """The line a training run starts with when its keypoint set is not a built-in one."""
    return (f"keypoint set {skeleton.name!r}: {skeleton.num_joints} joints; flip pairs: "
            f"{describe_flip_pairs(skeleton)}; {len(skeleton.links)} links")


def _amp_dtype(config: Config, device: torch.device) -> torch.dtype | None:
    """train.amp as a dtype; auto is bf16 only where it is native (hardware.py)."""
    amp = config.train.amp
    if amp == "fp16" and device.type == "cpu":
        raise HrposeError("train.amp fp16 needs a CUDA device; use bf16 on the CPU")
    if amp in ("auto", "bf16"):
        amp = resolve_precision(amp, str(device))
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)


def _channels_last(config: Config, device: torch.device) -> bool:
    """auto: on for CPUs and CUDA GPUs, where it pays for these conv nets. Measured on the CPU
    (quickstart HRNet, 40 steps): fp32 with AVX2 kernels 1.48 -> 1.66 steps/s, fp32 with
    AVX-512 1.85 -> 2.05, the LiteHRNet quickstart 1.77 -> 1.98; bf16 HRNet-W32 5.8 -> 6.5
    images/s. Off elsewhere (MPS), where it was not measured."""
    if config.train.channels_last == "auto":
        return device.type in ("cpu", "cuda")
    return bool(config.train.channels_last)


def weights_metadata(config: Config, extra: dict | None = None) -> dict[str, str]:
    """What `hrpose eval` and inference need to run a weights file alone: the config's card."""
    return config.card().with_extra(**(extra or {})).to_metadata()


class Trainer:
    """Owns the model, optimiser, data and run folder of one training run (one process).
    Built in order: the run folder checked, precision, data, model, optimiser, the saved state
    (with --resume), the model wrapped for DDP / compile, the run folder written."""

    def __init__(self, config: Config, run_dir: str | Path, resume: bool = False,
                 progress: bool = True,
                 on_step: Callable[[int], None] | None = None) -> None:
        self.run_dir, self.config = Path(run_dir), config
        self.progress, self.on_step = progress, on_step
        self.world, self.device = distributed.setup(config.train.device)
        self.main = self.world.is_main
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        saved = self._check_run_folder(resume)
        torch.manual_seed(config.train.seed)
        self._choose_precision()
        self._load_data()
        self._build_model(resumed=saved is not None)
        self._build_optimizer()
        self.state = State() if saved is None else restore_state(
            saved, self.run_dir / "latest.pt", self.net, self.optimizer, self.scaler,
            self.device)
        self.model = self._wrap(self.net)
        if self.main:
            tqdm.write(f"hrpose: {self.describe()}", file=sys.stderr)
        self.interrupts = Interrupts()
        self.log = RunLog(self.run_dir, self.main)
        self._write_run_folder()

    def describe(self) -> str:
        """The start-up line: what trains, where, in what precision, on how much data."""
        config, card = self.config, self.config.card()
        h, w = card.input_hw
        what = card.name or f"{config.model.family} {config.model.kind} {h}x{w}"
        precision = {torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}.get(
            self.amp_dtype, "fp32")
        processes = f" x {self.world.size} processes" if self.world.distributed else ""
        val = self.val_data
        scored = len(person_boxes(val)[0])
        return (f"training {what} ({count_params(self.net) / 1e6:.2f} M parameters) on "
                f"{self.device}{processes}, {precision}, channels_last "
                f"{'on' if self.channels_last else 'off'}; "
                f"{len(self.dataset):,} training {self.task.unit}, "
                f"{plural(scored, 'validation person', 'validation people')} in "
                f"{plural(len(val.images), 'image')}; "
                f"{plural(self.steps_per_epoch, 'step')} an epoch x "
                f"{plural(config.train.epochs, 'epoch')}")

    def _check_run_folder(self, resume: bool) -> dict | None:
        """Nothing of the inputs under the run folder, no run overwritten; the saved state
        when resuming."""
        config = self.config
        check_output(self.run_dir, [config.data.root, config.model.init,   # files only count
                                    config.distill.teacher, config.distill.teacher_weights])
        latest = self.run_dir / "latest.pt"
        if not resume and latest.exists():
            raise HrposeError(f"{self.run_dir}: already holds a run (latest.pt); continue it "
                              "with --resume, or choose another --out")
        return read_state(latest) if resume else None

    def _choose_precision(self) -> None:
        self.amp_dtype = _amp_dtype(self.config, self.device)
        self.channels_last = _channels_last(self.config, self.device)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device)
        self.std = torch.tensor(IMAGENET_STD, device=self.device)

    def _load_data(self) -> None:
        """The training annotations (their keypoint set resolves the config's), the task's
        data set and the sampler."""
        data_cfg = self.config.data
        root = Path(data_cfg.root)
        train_data = load_keypoints(root / data_cfg.train_ann, data_cfg.keypoints)
        try:
            config = self.config = resolve_keypoints(self.config, train_data.skeleton)
        except HrposeError as e:
            raise HrposeError(f"{train_data.path}: {e}") from None
        if self.main and not config.skeleton.builtin:
            tqdm.write(f"hrpose: {announce_keypoints(config.skeleton)}", file=sys.stderr)
        check_images(train_data, root / data_cfg.train_images, "training", allow_missing=True)
        if config.test.det_json:            # a relative file: under data.root, if it is there
            boxes = Path(config.test.det_json)
            if not boxes.is_absolute() and (root / boxes).is_file():
                config = self.config = dataclasses.replace(config, test=dataclasses.replace(
                    config.test, det_json=str(root / boxes)))
        # The validation set is read now, not at the first evaluation epochs later.
        self.val_data = check_eval_data(root, root / data_cfg.val_ann,
                                        root / data_cfg.val_images, config.skeleton,
                                        config.test)
        self.task = task_for(config)
        self.dataset = self.task.dataset(train_data, root / data_cfg.train_images)
        self.sampler = EpochSampler(len(self.dataset), config.train.batch, self.world,
                                    config.train.seed)
        if self.sampler.batches == 0:
            raise HrposeError(f"{train_data.path}: {len(self.dataset)} training "
                              f"{self.task.unit}, fewer "
                              f"than one global batch of {config.train.batch * self.world.size}")
        self.steps_per_epoch = self.sampler.batches
        if config.train.max_iters:
            self.steps_per_epoch = min(self.steps_per_epoch, config.train.max_iters)

    def _build_model(self, resumed: bool) -> None:
        """The initialised model, its frozen stages, PACT clips and the distillation teacher."""
        config = self.config
        self.net = training_model(config, self.device, self.world)
        if config.model.sync_bn and self.world.distributed:
            distributed.convert_sync_bn(self.net, self.device)
        self.frozen = frozen_modules(self.net, config.train.freeze_stages)
        for module in self.frozen:
            module.requires_grad_(False)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        if config.quant.pact and not resumed and not config.quant.alpha:
            self._calibrate_clips()
        self.teacher = None
        if config.distill.teacher:
            w, h = config.data.input_wh
            self.teacher = Teacher(config.distill, self.device,
                                   (config.model.num_joints, *config.data.heatmap_wh[::-1]),
                                   (h, w))

    def _build_optimizer(self) -> None:
        self.lr = base_lr(self.config.train, self.world.size)
        self.optimizer = make_optimizer(self.net, self.config.train, self.lr)
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=self.amp_dtype == torch.float16)

    def _wrap(self, net: nn.Module) -> nn.Module:
        """What the loop calls: the model, in DDP across processes, compiled when asked."""
        model: nn.Module = net
        if self.world.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        if self.config.train.compile:
            model = torch.compile(model)
        return model

    def _write_run_folder(self) -> None:
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.run_dir)      # what a killed save left
            with atomic_path(self.run_dir / "config.yaml") as tmp:
                tmp.write_text(dump_config(self.config))

    def _calibrate_clips(self) -> None:
        """PACT clips from the first training batch (before DDP wraps the model)."""
        n = min(self.config.train.batch, len(self.dataset))
        images = torch.stack([self.dataset[i]["image"] for i in range(n)]).to(self.device)
        x = normalize_tensor(images, self.mean, self.std)
        calibrate(self.net, x, self.config.quant.calib_percentile)
        if self.world.distributed:           # every rank starts from rank 0's clips
            for m in self.net.modules():
                if hasattr(m, "alpha"):
                    torch.distributed.broadcast(m.alpha.data, 0)

    def save(self) -> None:
        """latest.pt (everything --resume needs) and latest.safetensors; rank 0 only."""
        if not self.main:
            return
        save_weights(self.run_dir / "latest.safetensors", self.net.state_dict(),
                     weights_metadata(self.config, {"epoch": self.state.epoch,
                                                    "step": self.state.step}))
        write_state(self.run_dir / "latest.pt", self.net, self.optimizer, self.scaler,
                    self.state, config_to_dict(self.config), self.device)

    # --- the loop ------------------------------------------------------------------------

    def fit(self) -> dict:
        """Trains to the configured number of epochs; returns the last evaluation's metrics."""
        cfg = self.config.train
        metrics: dict = {}
        if self.state.epoch >= cfg.epochs and self.state.evaluated >= cfg.epochs:
            return self._finished()
        self.log.open()
        try:
            with self.interrupts:
                while True:
                    epoch = self.state.epoch          # epochs finished
                    if epoch and self._due(epoch) and self.state.evaluated < epoch:
                        metrics = self.evaluate()
                        self.state.evaluated = epoch
                        self.save()
                        self._stop_if_asked()
                    if epoch >= cfg.epochs:
                        break
                    self._epoch()
                    if not self._due(self.state.epoch):     # else saved after its evaluation
                        self.save()
                        self._stop_if_asked()
        except SafeStop:
            self.save()
            if self.main:
                print(f"interrupted: saved {self.run_dir / 'latest.pt'} at epoch "
                      f"{self.state.epoch + 1}, batch {self.state.batch}; continue with "
                      f"--resume")
            raise KeyboardInterrupt from None
        except KeyboardInterrupt:
            if self.main:
                print("interrupted twice: stopped without saving; --resume continues from "
                      f"{self.run_dir / 'latest.pt'} as last saved", file=sys.stderr)
            raise
        finally:
            self.log.close()
        return metrics

    def _finished(self) -> dict:
        """--resume of a run that is done: its last evaluation, nothing trained."""
        if self.main:
            print(f"{self.run_dir}: the run is finished ({self.config.train.epochs} epochs); "
                  "nothing to train (-o train.epochs=N with --resume trains longer)",
                  file=sys.stderr)
        saved = self.run_dir / "metrics.json"
        if not saved.is_file():
            return {}
        metrics = read_json(saved)
        return metrics if isinstance(metrics, dict) else {}

    def _due(self, epoch: int) -> bool:
        """Whether finished epoch `epoch` (1-based) is evaluated."""
        return epoch % self.config.train.eval_every == 0 or epoch == self.config.train.epochs

    def _stop_if_asked(self) -> None:
        """A consistent point: the step (or epoch, or save) in progress is complete. Stops
        here when Ctrl-C was pressed, on every rank at the same step."""
        requested = self.interrupts.requested
        if self.world.distributed:
            requested = bool(distributed.mean_over_ranks(
                torch.tensor(float(requested), device=self.device)) > 0)
        if requested:
            raise SafeStop

    def _epoch(self) -> None:
        cfg = self.config.train
        epoch = self.state.epoch
        self.model.train()
        for module in self.frozen:             # fixed weights, fixed batch-norm statistics
            module.eval()
        self.dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch, self.state.batch)
        loader = DataLoader(self.dataset, batch_size=cfg.batch, sampler=self.sampler,
                            num_workers=self.config.data.workers, drop_last=True,
                            pin_memory=self.device.type == "cuda",
                            persistent_workers=False, worker_init_fn=ignore_interrupts)
        remaining = self.steps_per_epoch - self.state.batch
        bar = tqdm(total=self.steps_per_epoch, initial=self.state.batch,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="it",
                   disable=not (self.progress and self.main), dynamic_ncols=True)
        window_loss, window_n, window_images, skipped = 0.0, 0, 0, 0
        window_start = time.perf_counter()
        for i, batch in enumerate(loader):
            if i >= remaining:
                break
            lr = lr_at(cfg, self.lr, self.state.step, epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr * group.get("lr_factor", 1.0)
            loss_value = self._step(batch)
            skipped += int((~batch["valid"]).sum())
            self.state.batch += 1
            self.state.step += 1
            window_loss += loss_value
            window_n += 1
            window_images += len(batch["image"]) * self.world.size
            bar.update()
            if window_n == cfg.log_every or self.state.batch == self.steps_per_epoch:
                seconds = time.perf_counter() - window_start
                record = {"kind": "train", "epoch": epoch + 1, "iter": self.state.batch,
                          "step": self.state.step, "loss": window_loss / window_n, "lr": lr,
                          "img_per_s": window_images / max(seconds, 1e-9), "skipped": skipped}
                bar.set_postfix(loss=f"{record['loss']:.3g}", lr=f"{lr:.2g}",
                                img_s=f"{record['img_per_s']:.0f}")
                self.log.record(record)
                window_loss, window_n, window_images = 0.0, 0, 0
                window_start = time.perf_counter()
            if self.on_step is not None:
                try:
                    self.on_step(self.state.step)
                except KeyboardInterrupt:         # the hook runs where stopping is safe
                    raise SafeStop from None
            self._stop_if_asked()
        bar.close()
        if skipped and self.main:
            log.warning("epoch %d: %d samples skipped (unreadable images)", epoch + 1, skipped)
        self.state.epoch += 1
        self.state.batch = 0

    def _step(self, batch: dict) -> float:
        """One optimiser step; returns the loss averaged over ranks. A non-finite loss on any
        rank stops every rank before the backward pass, so nothing broken is applied."""
        cfg = self.config.train
        memory = torch.channels_last if self.channels_last else torch.contiguous_format
        images = batch["image"].to(self.device, non_blocking=True)
        x = normalize_tensor(images, self.mean, self.std).contiguous(memory_format=memory)
        with torch.autocast(self.device.type, dtype=self.amp_dtype,
                            enabled=self.amp_dtype is not None):
            output = self.model(x)
        loss = self.task.loss(output, batch, self.device, x, self.teacher)
        loss_value = float(distributed.mean_over_ranks(loss.detach()))
        if not math.isfinite(loss_value):
            raise NonFiniteLoss(
                f"non-finite loss ({loss_value}) at epoch {self.state.epoch + 1}, iteration "
                f"{self.state.batch + 1}; stopped without saving: {self._last_saved()} "
                "(lower train.lr or set train.grad_clip)")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss_value

    def _last_saved(self) -> str:
        latest = self.run_dir / "latest.pt"
        return (f"the last good state is {latest}" if latest.exists() else
                "nothing was saved yet (no epoch finished)")

    def evaluate(self) -> dict:
        """COCO AP on the validation set: every rank predicts its shard of images."""
        cfg, data = self.config, self.config.data
        self.net.eval()
        w, h = data.input_wh
        runner = TorchRunner(self.net, (h, w), RuntimeOptions(
            device=str(self.device), precision="fp32").resolve("torch"))
        extra = {"epoch": self.state.epoch, "step": self.state.step}
        common = dict(ann=Path(data.root) / data.val_ann, images=Path(data.root) / data.val_images,
                      progress=self.progress and self.main, extra=extra,
                      draw=cfg.train.draw_images, shard=(self.world.rank, self.world.size))
        metrics = self.task.evaluate(runner, self.run_dir, cfg.test, **common)
        self.net.train()
        ap = metrics.get("AP", metrics.get("PCKh", 0.0))
        self.log.record({"kind": "eval", **extra, **metrics})
        if self.main and ap > self.state.best_ap:
            self.state.best_ap, self.state.best_epoch = ap, self.state.epoch
            save_weights(self.run_dir / "best.safetensors", self.net.state_dict(),
                         weights_metadata(cfg, {**extra, "AP": round(ap, 4)}))
        self.log.picture("val/predictions", self.run_dir / "predictions.jpg", self.state.step)
        return metrics


def resume_config(run_dir: str | Path, overrides: list[str] = ()) -> Config:
    """A run's own config (RUN_DIR/config.yaml) with -o overrides, e.g. more epochs."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise HrposeError(f"{run_dir}: not a run folder (no config.yaml) to resume")
    return load_config(path, overrides)


def train(config: Config, run_dir: str | Path, resume: bool = False, progress: bool = True,
          on_step: Callable[[int], None] | None = None) -> dict:
    """Trains (or continues, with `resume`) a run; returns the last evaluation's metrics."""
    try:
        return Trainer(config, run_dir, resume, progress, on_step).fit()
    finally:
        distributed.teardown()
