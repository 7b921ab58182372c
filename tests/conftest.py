"""Fixtures shared by the tests (helpers they import live in tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hrpose.models.heads import TopDownModel
from hrpose.models.zoo import create_model

from .helpers import official_state, randomize


@pytest.fixture(autouse=True)
def _cpu_without_native_bf16(monkeypatch: pytest.MonkeyPatch):
    """`auto` precision resolves as on a CPU without native bf16 (fp32) in every test, whatever
    CPU runs the suite, so that results do not depend on it; tests of the choice itself fake
    the flags (test_first_contact.py). bf16 paths are tested by asking for bf16."""
    from hrpose import hardware

    flags = hardware.cpu_flags() - set(hardware.BF16_FLAGS)     # the rest (VNNI...) is real
    monkeypatch.setattr(hardware, "cpu_flags", lambda: flags)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Downloads never touch the user's cache."""
    monkeypatch.setenv("HRPOSE_HOME", str(tmp_path_factory.mktemp("hrpose_home")))


@pytest.fixture(scope="session")
def w32_official(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TopDownModel]:
    """An official-layout checkpoint of the real HRNet-W32 (random weights) and its model."""
    model = randomize(create_model("hrnet_w32_256x192"), seed=5)
    path = tmp_path_factory.mktemp("w32") / "pose_hrnet_w32_256x192.pth"
    torch.save(official_state(model), path)
    return path, model





@pytest.fixture(scope="session")
def tinypose_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PP-TinyPose 256x192 (the real trained model, OpenVINO IR) converted to an hrpose
    checkpoint once for the whole session: `hrpose convert`."""
    from hrpose.cli import main

    from .helpers import shared_data

    xml = shared_data("models", "tinypose_256x192", "model.xml")
    out = tmp_path_factory.mktemp("tinypose") / "tinypose_256x192.safetensors"
    assert main(["convert", str(xml), str(out)]) == 0
    return out
