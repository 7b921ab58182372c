"""Files written by earlier hrpose versions still load: a run folder (config.yaml, latest.pt,
best.safetensors), an ONNX export and `hrpose convert`'s metadata, all from before the model
card (tests/data/legacy/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hrpose.cli import main
from hrpose.data.synthetic import write_dataset
from hrpose.inference.backends import open_model
from hrpose.inference.options import RuntimeOptions
from hrpose.models.checkpoint import save_weights
from hrpose.models.loading import load_model
from hrpose.models.zoo import create_model

LEGACY = Path(__file__).parent / "data" / "legacy"


def test_legacy_training_checkpoint_loads_with_its_card() -> None:
    model, card = load_model(LEGACY / "run" / "best.safetensors")
    assert card.input_hw == (96, 64) and card.codec == "dark" and card.kind == "topdown"
    assert card.keypoints.name == "coco" and card.arch["width"] == 4 and card.name == ""
    assert card.extra["epoch"] == "1" and card.extra["step"] == "2"
    out = model(torch.zeros(1, 3, 96, 64))
    assert out.shape == (1, 17, 24, 16)


@pytest.mark.parametrize("name, precision, tolerance",
                         [("tiny.onnx", "fp32", 1e-4), ("tiny_fp16.xml", "fp16", 2e-3)])
def test_legacy_exports_run_like_their_checkpoint(name: str, precision: str,
                                                  tolerance: float) -> None:
    exported = open_model(str(LEGACY / name), RuntimeOptions(precision="fp32"))
    torch_model = open_model(str(LEGACY / "run" / "best.safetensors"),
                             RuntimeOptions(precision="fp32"))
    assert exported.card.codec == "dark" and exported.card.input_hw == (96, 64)
    assert exported.card.mean == torch_model.card.mean and exported.card.keypoints.name == "coco"
    assert exported.card.precision == precision
    x = np.random.default_rng(0).normal(size=(2, 3, 96, 64)).astype(np.float32)
    assert np.abs(exported.runner(x) - torch_model.runner(x)).max() < tolerance


def test_legacy_convert_metadata_names_its_zoo_model(tmp_path: Path) -> None:
    name = "tinypose_128x96"
    path = tmp_path / "tinypose.safetensors"
    save_weights(path, create_model(name).state_dict(),       # convert's keys before the card
                 {"model": name, "source_layout": "openvino", "source_file": "model.xml",
                  "num_joints": "17", "keypoints": "coco", "input_hw": "128x96"})
    _, card = load_model(path)
    assert card.name == name and card.input_hw == (128, 96) and card.arch is not None
    assert card.extra["source_layout"] == "openvino"


def test_legacy_run_folder_resumes_and_evaluates(tmp_path: Path, capsys) -> None:
    data = tmp_path / "synth"
    write_dataset(data, 8, 4, 0, workers=1, progress=False)   # the set the run was trained on
    run = tmp_path / "run"
    shutil.copytree(LEGACY / "run", run)
    assert main(["train", "--resume", "--out", str(run), "-o", "train.epochs=2",
                 "-o", f"data.root={data}", "-o", "train.device=cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["AP"] >= 0
    state = torch.load(run / "latest.pt", weights_only=True)
    assert state["state"]["epoch"] == 2 and state["state"]["step"] == 4
    out = tmp_path / "eval"
    assert main(["eval", str(run / "best.safetensors"), "--data", str(data), "--out", str(out),
                 "--json"]) == 0
    assert "AP" in json.loads((out / "metrics.json").read_text())
