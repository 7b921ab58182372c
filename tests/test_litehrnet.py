"""LiteHRNet: sizes, the official fusion, checkpoint layouts, and PP-TinyPose in PyTorch."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from hrpose.cli import main
from hrpose.inference.options import RuntimeOptions
from hrpose.models.complexity import measure
from hrpose.models.layouts import load_weights
from hrpose.models.litehrnet import LiteHRModule, LiteHRNetConfig, litehrnet_topdown
from hrpose.models.loading import build_model
from hrpose.models.zoo import MODELS, create_model

from .helpers import randomize, shared_data

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, params, official_mmacs, mmacs", [
    ("litehrnet_18_256x192", 1_130_769, 242.35, 198.63),
    ("litehrnet_30_256x192", 1_763_717, 386.10, 309.45),
])
def test_sizes_equal_the_official_code(name, params, official_mmacs, mmacs):
    """Measured on the official code at 256x192 with the 17-joint head: 1,130,769 / 1,763,717
    parameters and 242.35 / 386.10 M MACs (conv hooks, every call counted). The official
    fusion runs each branch-0 path of outputs 1.. twice; hrpose runs it once and doubles it,
    so it does fewer MACs for the same result."""
    c = measure(create_model(name, device="meta"), (3, 256, 192))
    assert c.params == params and c.output_shapes == [(1, 17, 64, 48)]
    assert round(c.official_macs / 1e6, 2) == official_mmacs
    assert round(c.macs / 1e6, 2) == mmacs


def test_info_shows_hrpose_official_and_paper_counts(capsys):
    assert main(["info", "litehrnet_18_256x192", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["params"], info["paper_gflops"]) == (1_130_769, 0.2052)
    assert round(info["official_macs"] / 1e6, 2) == 242.35
    assert main(["info", "litehrnet_18_256x192"]) == 0
    text = capsys.readouterr().out
    assert "official MACs" in text and "torchstat" in text


def tiny_lite(naive: bool = False, bias: bool = False, seed: int = 0) -> torch.nn.Module:
    config = LiteHRNetConfig(width=8, stem_channels=16, stage_modules=(1, 2, 1), num_blocks=1,
                             naive=naive, conv_bias=bias)
    return randomize(litehrnet_topdown(config, 17), seed)


def official_fusion(module: LiteHRModule, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The official LiteHRModule fusion loop, literally (in-place accumulation included)."""
    out = list(xs)
    fused = []
    for i in range(len(module.fuse_layers)):
        y = out[0] if i == 0 else module.fuse_layers[i][0](out[0])
        for j in range(len(out)):
            if i == j:
                y += out[j]
            else:
                y += module.fuse_layers[i][j](out[j])
        fused.append(torch.relu(y))
    return fused


def test_fusion_reproduces_the_official_in_place_quirk():
    model = tiny_lite(seed=1)
    module = model.backbone.stage1[0]                          # three branches
    module.layers = torch.nn.Identity()                        # fusion only
    xs = [torch.randn(1, 8 * 2**i, 16 // 2**i, 12 // 2**i) for i in range(3)]
    with torch.no_grad():
        ours = module([x.clone() for x in xs])
        theirs = official_fusion(module, [x.clone() for x in xs])
        plain = [torch.relu(sum(p(x) for p, x in zip(paths, xs))) for paths in
                 module.fuse_layers]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(ours[1], plain[1])               # the quirk matters


def _paddle_names(state: dict[str, torch.Tensor], bn_layers: set[str]) -> dict[str, np.ndarray]:
    out = {}
    for key, value in state.items():
        path, param = key.rsplit(".", 1)
        if param == "num_batches_tracked":
            continue
        if path == "head.final_layer":
            out[f"final_conv.{param}"] = value.numpy()
            continue
        if path in bn_layers:
            param = {"running_mean": "_mean", "running_var": "_variance"}.get(param, param)
            path = path[:-2] + "norm" if path.endswith(".bn") else path
        out[f"{path}.{param}"] = value.numpy()
    return out


def test_official_mmpose_and_paddle_checkpoints_load(tmp_path):
    source = tiny_lite(seed=2)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = source(x)
    state = source.state_dict()
    assert "backbone.stem.conv1.conv.weight" in state
    assert "backbone.stage0.0.layers.0.cross_resolution_weighting.conv1.bn.weight" in state
    assert "backbone.head_layer.projects.0.depthwise_conv.conv.weight" in state
    mmpose = {k.replace("head.", "keypoint_head.", 1): v for k, v in state.items()}
    torch.save({"state_dict": mmpose, "meta": {"epoch": 210}}, tmp_path / "official.pth")
    bn_layers = {k[: -len(".running_mean")] for k in state if k.endswith(".running_mean")}
    with open(tmp_path / "tinypose.pdparams", "wb") as f:
        pickle.dump(_paddle_names(state, bn_layers), f, protocol=2)
    for file, layout in (("official.pth", "mmpose0"), ("tinypose.pdparams", "paddle")):
        model = tiny_lite(seed=3)
        assert load_weights(model, tmp_path / file) == layout
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


@pytest.fixture(scope="module")
def tinypose(tinypose_checkpoint) -> tuple[Path, Path]:
    return shared_data("models", "tinypose_256x192", "model.xml"), tinypose_checkpoint


def test_tinypose_in_pytorch_matches_openvino_fp32(tinypose):
    from hrpose.inference.backends import OpenVINORunner

    xml, converted = tinypose
    model = build_model("tinypose_256x192", converted)
    assert all(m.bias is not None for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    x = np.random.default_rng(0).standard_normal((2, 3, 256, 192)).astype(np.float32)
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()
    theirs = OpenVINORunner(xml, RuntimeOptions(precision="fp32").resolve("openvino"))(x)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    assert np.abs(ours - theirs).max() < 1e-5          # measured: 5e-7


def test_tinypose_checkpoint_scores_the_ir_ap_on_coco_tiny(tinypose, tmp_path, capsys):
    xml, converted = tinypose
    coco = shared_data("coco-tiny")
    aps = []
    for model in (converted, xml):
        assert main(["eval", str(model), "--data", str(coco), "--no-flip", "--out",
                     str(tmp_path / Path(model).stem), "--json"]) == 0
        aps.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["AP"])
    assert aps[0] == pytest.approx(aps[1], abs=1e-3) and 0.78 < aps[0] < 0.86


def test_the_openvino_conversion_refuses_a_file_that_does_not_fit(tinypose, tmp_path, capsys):
    xml, _ = tinypose
    assert main(["convert", str(xml), str(tmp_path / "x.safetensors"), "--model",
                 "litehrnet_18_256x192"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "litehrnet_18_256x192" in err
    assert not (tmp_path / "x.safetensors").exists()


def test_zoo_names_every_variant():
    assert {"litehrnet_18_256x192", "litehrnet_30_256x192", "litehrnet_18_384x288",
            "litehrnet_30_384x288", "naive_litehrnet_18_256x192",
            "wider_naive_litehrnet_18_256x192", "tinypose_256x192", "tinypose_128x96"} <= set(
        MODELS)
    naive = create_model("naive_litehrnet_18_256x192", device="meta")
    assert naive.backbone.config.width == 30 and naive.head.final_layer.in_channels == 30
