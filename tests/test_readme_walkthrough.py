"""The README's commands, run in the README's order with the installed `hrpose` (the .venv's),
offline: the weights they name are put in the cache first (random weights under the published
file names: the commands' mechanics are under test, not the figures), photo.jpg is a real
photo, /data/coco a small real COCO folder (coco-mini-train's training people, coco-tiny's
validation set and its detector boxes). The set-up commands (pip, make) are what runs this
suite, and a placeholder command (MODEL, DATA) is not run."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hrpose.hub import cached_path
from hrpose.models.zoo import DETECTORS, IMAGENET_BACKBONES, MODELS, create_model

from .helpers import shared_data

ROOT = Path(__file__).resolve().parents[1]
HRPOSE = Path(sys.executable).parent / "hrpose"
# What the walk-through changes in the training command: one step of a small batch, not the
# published 210 epochs, and its evaluation on the detector's surer boxes without flip test.
SHORT_TRAINING = ["-o", "train.epochs=1", "-o", "train.max_iters=1", "-o", "train.batch=2",
                  "-o", "data.workers=0", "-o", "test.batch=8", "-o", "test.flip=false",
                  "-o", "test.min_det_score=0.5"]


def readme_blocks() -> list[tuple[str, str]]:
    """(language, code) of every fenced block of README.md, in order."""
    return re.findall(r"```(\w*)\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def _coco_folder(root: Path) -> Path:
    """/data/coco as the README means it: train2017, val2017, their annotations and the
    detector's person boxes."""
    train, val = shared_data("coco-mini-train"), shared_data("coco-tiny")
    (root / "annotations").mkdir(parents=True)
    for name, source in (("train", train), ("val", val)):
        ann = f"person_keypoints_{name}2017.json"
        (root / "annotations" / ann).symlink_to(source / "annotations" / ann)
        (root / f"{name}2017").symlink_to(source / f"{name}2017")
    (root / "person_detection_results").symlink_to(val / "person_detection_results")
    return root


def _fill_cache() -> None:
    """The files the commands download, under their published names, in this test's cache."""
    model = create_model("hrnet_w32_256x192")
    path = cached_path(MODELS["hrnet_w32_256x192"].weights_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict()}, path)
    backbone = {k: v for k, v in model.state_dict().items() if not k.startswith("final_layer")}
    torch.save(backbone, cached_path(IMAGENET_BACKBONES[32]))
    detector = shared_data("models", "picodet_s_320_pedestrian")
    for url, _ in DETECTORS["picodet_s_320_pedestrian"].files:
        shutil.copy(detector / Path(url).name, cached_path(url))


@pytest.mark.slow
def test_the_readme_walkthrough_runs_in_order(tmp_path):
    assert HRPOSE.is_file(), f"{HRPOSE}: hrpose is not installed as a command"
    _fill_cache()
    coco = _coco_folder(tmp_path / "coco")
    photo = shared_data("images", "hrnet_demo.jpg")
    work = tmp_path / "work"
    work.mkdir()
    (work / "configs").symlink_to(ROOT / "configs")
    shutil.copy(photo, work / "photo.jpg")
    env = {**os.environ, "HRPOSE_HOME": os.environ["HRPOSE_HOME"]}
    ran = []
    for language, code in readme_blocks():
        if language == "sh":
            for line in code.splitlines():
                command = line.split("#", 1)[0].strip()
                if not command.startswith("hrpose ") or re.search(r"\b[A-Z]{4,}\b", command):
                    continue                       # set-up commands; placeholders
                argv = shlex.split(command.replace("/data/coco", str(coco)))
                if argv[1] == "train":
                    argv += SHORT_TRAINING
                done = subprocess.run([str(HRPOSE), *argv[1:], "--json"], cwd=work, env=env,
                                      capture_output=True, text=True, timeout=300)
                assert done.returncode == 0, (command, done.stderr[-2000:])
                ran.append(argv[1])
        elif language == "python":
            done = subprocess.run([sys.executable, "-c", code], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            ran.append("python")
    assert ran == ["infer", "eval", "train", "python"]
    assert (work / "out" / "results.json").is_file() and (work / "out" / "photo.jpg").is_file()
    assert (work / "runs/eval/metrics.json").is_file()
    assert (work / "runs/w32/latest.safetensors").is_file()
