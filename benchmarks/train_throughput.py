"""Training images per second, and the quickstart's time to AP 0.9.

Throughput: HRNet-W32 256x192 at the published batch (32 per device) on this machine's device,
one optimiser step (forward, joints MSE, backward, Adam) per iteration:
- plain PyTorch: the model in fp32, NCHW, a hand-written loop (the baseline, same run);
- hrpose's step (engine/train.py Trainer._step) in fp32, in bf16 autocast, with channels_last
  and, on a GPU, fp16 with the grad scaler and torch.compile;
- data loading included: whole epochs of hrpose's loader on the synthetic set, same model.
Candidates are interleaved and the median of the repeats is reported.

    python benchmarks/train_throughput.py [--repeats 3] [--iters 3] [--quickstart] [--no-report]

--quickstart also generates the synthetic set, trains configs/synthetic/quickstart.yaml as it is
and reports the training time and the wall time until an evaluation shows AP >= 0.9 on
synthetic val.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, median, report

from hrpose.config import load_config
from hrpose.data.synthetic import write_dataset
from hrpose.engine.losses import heatmap_loss
from hrpose.engine.train import Trainer
from hrpose.models.zoo import create_model


def plain_pytorch(device: torch.device, batch: int, iters: int) -> float:
    """images/s of a textbook loop: fp32, NCHW, Adam, MSE with target weights."""
    model = create_model("hrnet_w32_256x192").to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, 256, 192, device=device)
    target = torch.rand(batch, 17, 64, 48, device=device)
    weights = torch.ones(batch, 17, device=device)

    def step() -> None:
        out = model(x)
        loss = heatmap_loss(out, target, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    return batch * iters / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def hrpose_step(root: Path, run: Path, overrides: list[str], iters: int) -> float:
    """images/s of Trainer._step on batches already in memory (data loading excluded)."""
    config = load_config(ROOT / "configs/coco/hrnet_w32_256x192.yaml", [
        f"data.root={root}", "model.init=none", "data.workers=0", "train.warmup_iters=0",
        *overrides])
    trainer = Trainer(config, run, progress=False)
    trainer.model.train()
    batch = next(iter(torch.utils.data.DataLoader(trainer.dataset, config.train.batch,
                                                  sampler=trainer.sampler)))
    trainer._step(batch)
    _sync(trainer.device)
    start = time.perf_counter()
    for _ in range(iters):
        trainer._step(batch)
    _sync(trainer.device)
    return config.train.batch * iters / (time.perf_counter() - start)


def hrpose_with_data(root: Path, run: Path, overrides: list[str], iters: int,
                     workers: int) -> float:
    """images/s of whole iterations: hrpose's loader (decode, augment, targets) + step."""
    config = load_config(ROOT / "configs/coco/hrnet_w32_256x192.yaml", [
        f"data.root={root}", "model.init=none", f"data.workers={workers}",
        "train.warmup_iters=0", f"train.max_iters={iters + 1}", *overrides])
    trainer = Trainer(config, run, progress=False)
    times = []
    trainer.on_step = lambda step: times.append(time.perf_counter())
    trainer._epoch()
    return config.train.batch * (len(times) - 1) / (times[-1] - times[0])


def quickstart(root: Path) -> dict:
    """Trains the quickstart as configured (evaluated every 3 epochs); wall time until the
    first evaluation with AP >= 0.9."""
    run = root / "quickstart-run"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hrpose", "train",
                    str(ROOT / "configs/synthetic/quickstart.yaml"), "--out", str(run),
                    "-o", f"data.root={root}", "--json"],
                   check=True, cwd=ROOT)
    total = time.perf_counter() - start
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    t0 = records[0]["time"] - 1.0
    evals = [r for r in records if r["kind"] == "eval"]
    reached = next((r for r in evals if r["AP"] >= 0.9), None)
    return {"total_s": total, "final_AP": evals[-1]["AP"],
            "to_ap90_s": None if reached is None else reached["time"] - t0,
            "epoch": None if reached is None else reached["epoch"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per repeat")
    parser.add_argument("--workers", type=int, default=1, help="data workers (with data)")
    parser.add_argument("--quickstart", action="store_true")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tmp = Path(tempfile.mkdtemp(prefix="hrpose-bench-"))
    root = tmp / "synthetic"
    write_dataset(root, train=300, val=20, seed=0, progress=False)
    candidates = {
        "hrpose step, fp32": [],
        "hrpose step, bf16 autocast": ["train.amp=bf16"],
        "hrpose step, bf16 + channels_last": ["train.amp=bf16", "train.channels_last=true"],
    }
    if device.type == "cuda":
        candidates["hrpose step, fp16 + scaler"] = ["train.amp=fp16"]
        candidates["hrpose step, bf16 + channels_last + compile"] = [
            "train.amp=bf16", "train.channels_last=true", "train.compile=true"]
    with_data = {"hrpose with data loading, fp32": [],
                 "hrpose with data loading, bf16": ["train.amp=bf16"]}
    results: dict[str, list[float]] = {"plain PyTorch fp32 (baseline)": []}
    results.update({k: [] for k in [*candidates, *with_data]})
    for r in range(args.repeats):
        results["plain PyTorch fp32 (baseline)"].append(plain_pytorch(device, 32, args.iters))
        for name, overrides in candidates.items():
            results[name].append(hrpose_step(root, tmp / f"run{r}", overrides, args.iters))
        for name, overrides in with_data.items():
            results[name].append(hrpose_with_data(root, tmp / f"run{r}", overrides,
                                                  args.iters, args.workers))
        print(f"repeat {r + 1}: " + ", ".join(f"{k}: {v[-1]:.2f}" for k, v in results.items()),
              flush=True)
    base = median(results["plain PyTorch fp32 (baseline)"])
    lines = [f"HRNet-W32 256x192, batch 32, {device.type}, one optimiser step per iteration "
             f"(Adam, joints MSE); median of {args.repeats} interleaved repeats of "
             f"{args.iters} iterations; data loading with {args.workers} worker(s) on the "
             "synthetic set.", "", "| path | images/s | vs plain PyTorch |", "|---|---:|---:|"]
    for name, values in results.items():
        m = median(values)
        lines.append(f"| {name} | {m:.2f} | {m / base:.2f}x |")
    if args.quickstart:
        qroot = tmp / "quick"
        t = time.perf_counter()
        write_dataset(qroot, train=5000, val=200, seed=0, progress=False)
        synth_s = time.perf_counter() - t
        q = quickstart(qroot)
        lines += ["", "Quickstart (`hrpose data synth --out D --train 5000 --val 200` then "
                  "`hrpose train configs/synthetic/quickstart.yaml --out RUN -o data.root=D`, "
                  "evaluated at epochs 3 and 6):", "",
                  f"- data set: {synth_s:.0f} s; training + evaluation: {q['total_s']:.0f} s; "
                  f"final AP {q['final_AP']:.3f}",
                  f"- AP >= 0.9 reached at epoch {q['epoch']}, {q['to_ap90_s']:.0f} s after the "
                  "start" if q["to_ap90_s"] is not None else "- AP 0.9 not reached"]
    report("Training throughput", lines, append=not args.no_report)


if __name__ == "__main__":
    main()
