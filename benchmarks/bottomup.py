"""Bottom-up HigherHRNet-W32 at 512 beside top-down HRNet-W32 256x192: training and inference
speed on this machine, and the synthetic bottom-up quickstart's AP and training time.

Training: images/s of one optimiser step (forward, loss, backward, Adam) on batches in memory:
- plain PyTorch: each model in fp32, NCHW, a hand-written loop (the baseline, same run);
- hrpose's step (engine/train.py Trainer._step) in bf16 autocast with channels_last.
Inference: images/s of the model alone (plain PyTorch fp32, and bf16 autocast) and of the
whole bottom-up pipeline (resize, model, upsampling, grouping, image pixels) on synthetic
images, with and without the flip test. Candidates are interleaved; medians of the repeats.

    python benchmarks/bottomup.py [--repeats 3] [--iters 2] [--batch 4]
        [--quickstart | --quickstart-run RUN_DIR] [--no-report]

--quickstart also generates the synthetic set (5000 / 200 images), trains
configs/synthetic/bottomup_quickstart.yaml as it is and reports its AP and wall time;
--quickstart-run reports those figures from the log of such a run made before.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, median, report

from hrpose.config import load_config
from hrpose.data.synthetic import write_dataset
from hrpose.engine.losses import bottomup_loss, heatmap_loss
from hrpose.engine.train import Trainer
from hrpose.inference.backends import TorchRunner
from hrpose.inference.bottomup import bottomup_keypoints
from hrpose.inference.options import RuntimeOptions
from hrpose.io import read_image
from hrpose.models.zoo import IMAGENET_MEAN, IMAGENET_STD, create_model
from hrpose.skeletons import COCO


def plain_train(name: str, batch: int, iters: int) -> float:
    """images/s of a textbook fp32 loop for the named model."""
    model = create_model(name).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if name.startswith("higherhrnet"):
        x = torch.randn(batch, 3, 512, 512)
        targets = {"heatmaps_4": torch.rand(batch, 17, 128, 128),
                   "heatmaps_2": torch.rand(batch, 17, 256, 256),
                   "mask_4": torch.ones(batch, 128, 128), "mask_2": torch.ones(batch, 256, 256),
                   "joints": torch.zeros(batch, 30, 17, 2, dtype=torch.int64)}
        targets["joints"][:, :3, :, 1] = 1

        def loss_of(out: list[torch.Tensor]) -> torch.Tensor:
            return bottomup_loss(out, targets, 17)[0]
    else:
        x = torch.randn(batch, 3, 256, 192)
        target, weights = torch.rand(batch, 17, 64, 48), torch.ones(batch, 17)

        def loss_of(out: torch.Tensor) -> torch.Tensor:
            return heatmap_loss(out, target, weights)

    def step() -> None:
        loss = loss_of(model(x))
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return batch * iters / (time.perf_counter() - start)


def hrpose_train(root: Path, run: Path, config: str, overrides: list[str], batch: int,
                 iters: int) -> float:
    """images/s of Trainer._step (bf16 + channels_last) on a batch already in memory."""
    cfg = load_config(ROOT / config, [f"data.root={root}", "model.init=none", "data.workers=0",
                                      "train.warmup_iters=0", f"train.batch={batch}",
                                      "train.amp=bf16", "train.channels_last=true",
                                      *overrides])
    trainer = Trainer(cfg, run, progress=False)
    trainer.model.train()
    data = next(iter(torch.utils.data.DataLoader(trainer.dataset, batch,
                                                 sampler=trainer.sampler)))
    trainer._step(data)
    start = time.perf_counter()
    for _ in range(iters):
        trainer._step(data)
    return batch * iters / (time.perf_counter() - start)


def model_alone(name: str, precision: str, batch: int, iters: int) -> float:
    """images/s of the model's forward pass at its input size."""
    model = create_model(name).eval()
    h, w = (512, 512) if name.startswith("higherhrnet") else (256, 192)
    runner = TorchRunner(model, (h, w), RuntimeOptions(precision=precision).resolve("torch"))
    x = np.random.default_rng(0).standard_normal((batch, 3, h, w)).astype(np.float32)
    runner.run_all(x)
    start = time.perf_counter()
    for _ in range(iters):
        runner.run_all(x)
    return batch * iters / (time.perf_counter() - start)


def pipeline(images: list[np.ndarray], precision: str, flip: bool) -> float:
    """images/s of image -> people with HigherHRNet-W32 512 (random weights: speed only)."""
    runner = TorchRunner(create_model("higherhrnet_w32_512").eval(), (512, 512),
                         RuntimeOptions(precision=precision).resolve("torch"))
    flip_index = COCO.flip_index if flip else None
    bottomup_keypoints(runner, images[0], IMAGENET_MEAN, IMAGENET_STD, 512, flip_index)
    start = time.perf_counter()
    for image in images:
        bottomup_keypoints(runner, image, IMAGENET_MEAN, IMAGENET_STD, 512, flip_index)
    return len(images) / (time.perf_counter() - start)


def quickstart(root: Path) -> Path:
    run = root / "bottomup-run"
    subprocess.run([sys.executable, "-m", "hrpose", "train",
                    str(ROOT / "configs/synthetic/bottomup_quickstart.yaml"), "--out", str(run),
                    "-o", f"data.root={root}", "--json"], check=True, cwd=ROOT)
    return run


def run_figures(run: Path) -> dict:
    """AP at each evaluation and times, from a run folder's log.jsonl (times from the first
    record, whose window began about one logging interval earlier)."""
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    first = records[0]
    rate = first["img_per_s"]
    t0 = first["time"] - first["iter"] * 16 / max(rate, 1e-9)   # the quickstart's batch: 16
    evals = [r for r in records if r["kind"] == "eval"]
    train_rates = [r["img_per_s"] for r in records if r["kind"] == "train"]
    return {"total_s": records[-1]["time"] - t0,
            "evals": [(r["epoch"], r["AP"], r["time"] - t0) for r in evals],
            "last": evals[-1] if evals else {}, "img_per_s": median(train_rates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=2, help="timed iterations per repeat")
    parser.add_argument("--batch", type=int, default=4, help="training and model batch")
    parser.add_argument("--images", type=int, default=6, help="pipeline images per repeat")
    parser.add_argument("--quickstart", action="store_true")
    parser.add_argument("--quickstart-run", type=Path, help="report this earlier run instead")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hrpose-bench-"))
    root = tmp / "synthetic"
    write_dataset(root, train=64, val=args.images, seed=0, progress=False)
    images = [read_image(p) for p in sorted((root / "val2017").glob("*.jpg"))]
    b, n = args.batch, args.iters
    bottomup_cfg = ["model.kind=bottomup", "data.input_wh=[512,512]",
                    "data.heatmap_wh=[128,128]"]
    candidates = {
        ("train", "HRNet-W32 256x192, plain PyTorch fp32"):
            lambda: plain_train("hrnet_w32_256x192", b, n),
        ("train", "HRNet-W32 256x192, hrpose bf16 + channels_last"):
            lambda: hrpose_train(root, tmp / "td", "configs/coco/hrnet_w32_256x192.yaml", [],
                                 b, n),
        ("train", "HigherHRNet-W32 512, plain PyTorch fp32"):
            lambda: plain_train("higherhrnet_w32_512", b, n),
        ("train", "HigherHRNet-W32 512, hrpose bf16 + channels_last"):
            lambda: hrpose_train(root, tmp / "bu", "configs/coco/higherhrnet_w32_512.yaml",
                                 bottomup_cfg, b, n),
        ("infer", "HRNet-W32 256x192 model, plain PyTorch fp32"):
            lambda: model_alone("hrnet_w32_256x192", "fp32", b, n),
        ("infer", "HigherHRNet-W32 512 model, plain PyTorch fp32"):
            lambda: model_alone("higherhrnet_w32_512", "fp32", b, n),
        ("infer", "HigherHRNet-W32 512 model, bf16 autocast"):
            lambda: model_alone("higherhrnet_w32_512", "bf16", b, n),
        ("infer", "HigherHRNet-W32 512 pipeline (image -> people), fp32"):
            lambda: pipeline(images, "fp32", False),
        ("infer", "HigherHRNet-W32 512 pipeline, bf16"):
            lambda: pipeline(images, "bf16", False),
        ("infer", "HigherHRNet-W32 512 pipeline, bf16 + flip test"):
            lambda: pipeline(images, "bf16", True),
    }
    results: dict[tuple[str, str], list[float]] = {k: [] for k in candidates}
    for r in range(args.repeats):
        for key, measure in candidates.items():
            results[key].append(measure())
        print(f"repeat {r + 1}: " + ", ".join(f"{k[1]}: {v[-1]:.2f}"
                                              for k, v in results.items()), flush=True)
    lines = [f"Batch {b} (training and model alone), median of {args.repeats} interleaved "
             f"repeats of {n} iterations; pipeline: {len(images)} synthetic images (224-320 px, "
             "resized to a 512 short side), random weights (speed only). Training: one Adam "
             "step per iteration (HigherHRNet: masked heatmap MSE at 1/4 and 1/2 + tag loss).",
             "", "| what | path | images/s |", "|---|---|---:|"]
    for (kind, name), values in results.items():
        lines.append(f"| {kind} | {name} | {median(values):.2f} |")
    run = args.quickstart_run
    if args.quickstart:
        qroot = tmp / "quick"
        write_dataset(qroot, train=5000, val=200, seed=0, progress=False)
        run = quickstart(qroot)
    if run is not None:
        q = run_figures(run)
        data_root = load_config(run / "config.yaml").data.root
        again = subprocess.run([sys.executable, "-m", "hrpose", "eval",
                                str(run / "best.safetensors"), "--data", data_root, "--out",
                                str(tmp / "again"), "--json"], check=True, cwd=ROOT,
                               capture_output=True, text=True)
        now = json.loads(again.stdout.strip().splitlines()[-1])
        aps = "; ".join(f"epoch {e}: AP {ap:.3f} at {t / 60:.1f} min" for e, ap, t in q["evals"])
        last = q["last"]
        lines += ["", "Bottom-up quickstart (`hrpose train configs/synthetic/"
                  "bottomup_quickstart.yaml`, synthetic set of 5000 / 200 images, evaluated with "
                  f"the flip test on val; run folder {run.name}):", "",
                  f"- training + evaluation: {q['total_s'] / 60:.1f} min; {aps}",
                  f"- last evaluation: AP {last.get('AP', 0):.3f}, AP50 {last.get('AP50', 0):.3f}"
                  f", AP75 {last.get('AP75', 0):.3f}, AR {last.get('AR', 0):.3f}; median "
                  f"training rate {q['img_per_s']:.1f} images/s",
                  f"- its best.safetensors evaluated again by this commit's `hrpose eval` (flip "
                  f"test, official grouping settings): AP {now['AP']:.3f}, AP50 "
                  f"{now['AP50']:.3f}, AP75 {now['AP75']:.3f}, AR {now['AR']:.3f}"]
    report("Bottom-up HigherHRNet: training and inference speed", lines,
           append=not args.no_report)


if __name__ == "__main__":
    main()
