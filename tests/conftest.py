"""Shared test helpers: tiny HRNets with random weights, a real-size checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hrpose.models.heads import TopDownModel
from hrpose.models.zoo import create_model, hrnet_topdown


def tiny_hrnet(width: int = 8, num_joints: int = 17) -> TopDownModel:
    """All four stages, two modules in stages 3 and 4 (so multi-step fuse paths and a
    single-output last module exist), one block per branch: the official tensor names, tiny."""
    return hrnet_topdown(width, num_joints, layer1_blocks=2, num_blocks=1, stage_modules=(1, 2, 2))


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights and BN statistics of a useful scale (the official init is near zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * 0.2)
    return model.eval()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Downloads never touch the user's cache."""
    monkeypatch.setenv("HRPOSE_HOME", str(tmp_path_factory.mktemp("hrpose_home")))


def official_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors under the official HRNet names (no `backbone.`/`head.` prefix)."""
    return {k.removeprefix("backbone.").removeprefix("head."): v.clone()
            for k, v in model.state_dict().items()}


@pytest.fixture(scope="session")
def w32_official(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TopDownModel]:
    """An official-layout checkpoint of the real HRNet-W32 (random weights) and its model."""
    model = randomize(create_model("hrnet_w32_256x192"), seed=5)
    path = tmp_path_factory.mktemp("w32") / "pose_hrnet_w32_256x192.pth"
    torch.save(official_state(model), path)
    return path, model

