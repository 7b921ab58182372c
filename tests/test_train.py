import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hrpose.cli import main
from hrpose.config import Config, load_config
from hrpose.data.synthetic import write_dataset
from hrpose.engine import tasks
from hrpose.engine.distributed import World
from hrpose.engine.train import EpochSampler, NonFiniteLoss, train

from .helpers import TINY_TRAIN, shared_data

ROOT = Path(__file__).resolve().parents[1]
TINY = TINY_TRAIN


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, train=24, val=4, seed=3, workers=1, progress=False)
    return root


def tiny_config(root: Path, *extra: str) -> Config:
    return load_config(ROOT / "configs/synthetic/quickstart.yaml",
                       [*TINY, f"data.root={root}", *extra])


def model_tensors(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / "latest.pt", weights_only=True)
    return state["model"]


def test_sampler_global_batches_do_not_depend_on_the_number_of_processes():
    single = list(EpochSampler(50, 8, World(0, 1), seed=1))
    ranks = [list(EpochSampler(50, 4, World(r, 2), seed=1)) for r in range(2)]
    assert len(single) == 48 and all(len(r) == 24 for r in ranks)
    for i in range(6):
        assert sorted(single[8 * i : 8 * i + 8]) == sorted(ranks[0][4 * i : 4 * i + 4]
                                                           + ranks[1][4 * i : 4 * i + 4])
    s = EpochSampler(50, 8, World(0, 1), seed=1)
    s.set_epoch(0, start_batch=2)
    assert list(s) == single[16:]
    s.set_epoch(1)
    assert list(s) != single


def test_training_writes_the_run_folder_and_its_checkpoint_evaluates_alone(synthetic_root,
                                                                          tmp_path):
    run = tmp_path / "run"
    metrics = train(tiny_config(synthetic_root), run, progress=False)
    for name in ("config.yaml", "latest.pt", "latest.safetensors", "best.safetensors",
                 "metrics.json", "results.json", "predictions.jpg", "log.jsonl"):
        assert (run / name).is_file(), name
    assert list((run / "tb").iterdir()), "TensorBoard events"
    written = json.loads((run / "metrics.json").read_text())
    assert written["epoch"] == 2 and written["step"] == 6 and written["AP"] == metrics["AP"]
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records].count("eval") == 2
    assert all(np.isfinite(r["loss"]) for r in records if r["kind"] == "train")
    # The saved config is the resolved one, and loads back equal.
    assert load_config(run / "config.yaml") == tiny_config(synthetic_root)
    # best.safetensors runs alone in `hrpose eval` (its metadata states the architecture).
    best = load_file(run / "best.safetensors")
    assert "head.final_layer.weight" in best
    out = tmp_path / "eval"
    assert main(["eval", str(run / "best.safetensors"), "--data", str(synthetic_root),
                 "--no-flip", "--out", str(out), "--json"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    best_ap = max(json.loads(line)["AP"] for line in (run / "log.jsonl").read_text().splitlines()
                  if '"eval"' in line)
    assert again["AP"] == pytest.approx(best_ap, abs=1e-9)


@pytest.mark.parametrize("stop_at", [3, 4])   # at the end of epoch 1, and inside epoch 2
def test_resume_equals_an_uninterrupted_run_bit_for_bit(synthetic_root, tmp_path, stop_at):
    config = tiny_config(synthetic_root, "test.flip=false", "train.eval_every=5")
    train(config, tmp_path / "whole", progress=False)

    def interrupt(step: int) -> None:
        if step == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=False, on_step=interrupt)
    saved = torch.load(tmp_path / "cut" / "latest.pt", weights_only=True)
    assert saved["state"]["step"] == stop_at
    train(config, tmp_path / "cut", resume=True, progress=False)
    whole, resumed = model_tensors(tmp_path / "whole"), model_tensors(tmp_path / "cut")
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name
    a = torch.load(tmp_path / "whole" / "latest.pt", weights_only=True)["optimizer"]
    b = torch.load(tmp_path / "cut" / "latest.pt", weights_only=True)["optimizer"]
    for key in a["state"]:
        assert torch.equal(a["state"][key]["exp_avg_sq"], b["state"][key]["exp_avg_sq"])


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(synthetic_root, tmp_path,
                                                                     monkeypatch):
    real = tasks.heatmap_loss
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) == 5 else loss

    monkeypatch.setattr(tasks, "heatmap_loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss \(nan\) at epoch 2, iteration 2"):
        train(tiny_config(synthetic_root, "train.eval_every=5"), run, progress=False)
    state = torch.load(run / "latest.pt", weights_only=True)
    assert state["state"]["epoch"] == 1 and state["state"]["step"] == 3
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def _run_cli(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


DDP_COMMON = [*TINY, "model.sync_bn=true", "model.init=kaiming", "train.optimizer=sgd",
              "train.lr=1e-2", "train.amp=none", "train.channels_last=false"]


def _ddp_args(synthetic_root: Path, out: Path, batch: int) -> list[str]:
    overrides = [arg for o in [*DDP_COMMON, f"data.root={synthetic_root}",
                               f"train.batch={batch}"] for arg in ("-o", o)]
    return ["-m", "hrpose", "train", str(ROOT / "configs/synthetic/quickstart.yaml"), "--out",
            str(out), *overrides, "--json"]


@pytest.fixture(scope="module")
def one_process_run(synthetic_root, tmp_path_factory) -> Path:
    """The reference for the DDP tests: one process, global batch 4."""
    out = tmp_path_factory.mktemp("one-process")
    single = _run_cli([sys.executable, *_ddp_args(synthetic_root, out, 4)])
    assert single.returncode == 0, single.stderr[-2000:]
    return out


def _assert_trained_in_step(one: Path, two: Path, stdout: str) -> None:
    """Two processes of batch 2 against one of batch 4: the same global batches,
    synchronised BN, averaged gradients, then evaluation split by image and gathered.
    fp32 with SGD, not Adam: Adam's first steps move each weight by about +-lr whatever the
    size of its gradient, so a gradient that is zero up to rounding (summed in another order by
    two processes) can flip its update: 4e-4 weight differences after six steps with oneDNN's
    AVX2 kernels (3e-6 with AVX-512). SGD's update is proportional to the gradient, so
    rounding stays rounding: measured at most 1.4e-6 on both ISAs; the bound is 10x that, plus
    1e-4 relative."""
    assert stdout.count('"AP"') == 1                      # only rank 0 reports
    t1, t2 = model_tensors(one), model_tensors(two)
    for name in t1:
        if t1[name].is_floating_point():
            torch.testing.assert_close(t2[name], t1[name], rtol=1e-4, atol=2e-5, msg=name)
        else:
            assert torch.equal(t1[name], t2[name]), name
    r1 = json.loads((one / "results.json").read_text())
    r2 = json.loads((two / "results.json").read_text())
    assert len(r1) == len(r2) > 5
    k1 = np.array([r["keypoints"] for r in r1])
    k2 = np.array([r["keypoints"] for r in r2])
    assert (np.abs(k2).sum(1) > 0).all()                  # every person predicted by a rank
    assert np.mean(np.abs(k1 - k2) < 0.05) > 0.99
    m1 = json.loads((one / "metrics.json").read_text())
    m2 = json.loads((two / "metrics.json").read_text())
    assert m2["people"] == m1["people"] and m2["step"] == m1["step"] == 6
    assert m2["AP"] == pytest.approx(m1["AP"], abs=1e-3)


@pytest.mark.slow
def test_two_process_ddp_equals_one_process_with_the_same_global_batch(synthetic_root,
                                                                        one_process_run,
                                                                        tmp_path):
    """torchrun, gloo, two processes on one node."""
    ddp = _run_cli([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", "2", *_ddp_args(synthetic_root, tmp_path / "two", 2)])
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    _assert_trained_in_step(one_process_run, tmp_path / "two", ddp.stdout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_train_in_step_with_one_process(synthetic_root, one_process_run, tmp_path):
    """Multi-node training is torchrun's: two launchers ("nodes" 0 and 1, one process each)
    meet at a c10d rendezvous on 127.0.0.1, as two machines would at the first one's address,
    and train as the one-process run of the same global batch does."""
    port = _free_port()
    out = tmp_path / "two-nodes"
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node",
         "1", "--node-rank", str(rank), "--rdzv-backend", "c10d", "--rdzv-endpoint",
         f"127.0.0.1:{port}", "--rdzv-id", "hrpose-test", "--local-addr", "127.0.0.1",
         *_ddp_args(synthetic_root, out, 2)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"}) for rank in (0, 1)]
    try:
        outputs = [node.communicate(timeout=300) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    for node, (_, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-2000:]
    _assert_trained_in_step(one_process_run, out, outputs[0][0] + outputs[1][0])


def test_train_cli_errors_are_one_line(synthetic_root, tmp_path, capsys):
    config = str(ROOT / "configs/synthetic/quickstart.yaml")
    assert main(["train", config, "--out", str(tmp_path), "-o", "train.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.lrr: unknown key" in err
    assert main(["train", config, "--out", str(tmp_path), "-o", "train.epochs=ten"]) == 2
    assert "train.epochs: expected an integer, got 'ten'" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "nothing"), "--resume"]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["train", config, "--out", str(tmp_path), "-o", "train.lr=5e-4",
                 "--print-config"]) == 0
    assert "lr: 0.0005" in capsys.readouterr().out


@pytest.mark.slow
def test_short_run_on_real_coco_images_from_the_coco_recipe_lowers_the_loss(tmp_path):
    root = shared_data("coco-mini-train")
    config = load_config(ROOT / "configs/coco/hrnet_w32_256x192.yaml", [
        f"data.root={root}", "data.val_ann=annotations/person_keypoints_train2017.json",
        "data.val_images=train2017", "test.det_json=null", "model.init=none",
        "model.width=16", "model.stem_channels=32", "model.layer1_channels=32",
        "model.layer1_blocks=1", "model.num_blocks=1", "model.stage_modules=[1,1,1]",
        "data.input_wh=[96,128]", "data.heatmap_wh=[24,32]", "data.workers=0",
        "train.batch=16", "train.epochs=8", "train.warmup_iters=0", "train.lr=5e-3",
        "train.eval_every=100", "train.log_every=2", "train.threads=2", "train.draw_images=1",
        "test.flip=false", "data.augment.rotation_prob=0", "data.augment.half_body_prob=0"])
    assert config.train.optimizer == "adam" and config.data.sigma == 2.0   # the recipe's
    train(config, tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert len(losses) >= 12 and records[-1]["kind"] == "eval"
    first, last = np.mean(losses[:4]), np.mean(losses[-4:])
    assert last < 0.8 * first, losses
    assert (tmp_path / "predictions.jpg").is_file()
