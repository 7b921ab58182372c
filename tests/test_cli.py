"""The `hrpose` command and the public API."""

import json
import shutil
import subprocess
import sys

import pytest
import torch

import hrpose
from hrpose.cli import main
from hrpose.hub import cache_dir, cached_path


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "hrpose", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "info" in out and "convert" in out


@pytest.mark.slow
def test_info_table_json(capsys):
    """The table comes from recorded facts (no model is built); they equal the live count of
    every zoo model on the meta device (regenerate them with `python -m hrpose.info`)."""
    from hrpose.info import FACTS, measure_all

    rows = run_json(capsys, "info", "--json")
    assert [r["name"] for r in rows] == list(hrpose.MODELS)
    assert rows[0]["params"] == 28_536_113 and rows[0]["gmacs"] == 7.65
    assert measure_all() == FACTS


def test_info_one_model_json(capsys):
    info = run_json(capsys, "info", "hrnet_w48_384x288", "--json")
    assert info["params"] == 63_595_745
    assert (info["gmacs"], info["paper_gflops"]) == (35.31, 32.9)
    assert info["input_shape"] == [1, 3, 384, 288]
    assert info["output_shape"] == [1, 17, 96, 72]


def test_info_run_does_a_real_forward_pass(capsys):
    info = run_json(capsys, "info", "hrnet_w32_256x256_mpii", "--run", "--json")
    assert info["forward"]["output_shape"] == [1, 16, 64, 64]
    assert info["forward"]["ms"] > 0


def test_info_text_says_which_figure_is_which(capsys):
    assert main(["info", "hrnet_w32_256x192"]) == 0
    out = capsys.readouterr().out
    assert "28,536,113" in out and "7.65 G" in out and "7.1 (the MACs / 2^30" in out


def test_unknown_model_is_a_one_line_error(capsys):
    assert main(["info", "hrnet_w99"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'hrnet_w99'" in err


def test_build_model_without_weights():
    model = hrpose.build_model("hrnet_w32_256x192")
    assert isinstance(model, torch.nn.Module) and model.num_joints == 17


def test_build_model_from_local_file_and_from_cache(w32_official):
    path, reference = w32_official
    x = torch.randn(1, 3, 256, 192)
    local = hrpose.build_model("hrnet_w32_256x192", weights=path)  # a Path works too
    # "published" finds the zoo entry's file in the cache without going online.
    url = hrpose.get_spec("hrnet_w32_256x192").weights_url
    cached_path(url).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, cached_path(url))
    cached = hrpose.build_model("hrnet_w32_256x192", weights="published")
    with torch.no_grad():
        expected = reference(x)
        assert torch.equal(local(x), expected) and torch.equal(cached(x), expected)


def test_build_model_unknown_name():
    with pytest.raises(hrpose.HrposeError, match="give a zoo name \\(hrnet_w32_256x192"):
        hrpose.build_model("resnet50")


def test_build_model_imagenet_backbone_from_cache(w32_official):
    """weights="imagenet" takes the published ImageNet HRNet-W32 (here pre-seeded in the cache,
    in the classification layout) for the backbone and keeps the head's initialisation."""
    path, reference = w32_official
    state = {k: v for k, v in torch.load(path, weights_only=True).items()
             if not k.startswith("final_layer")}
    state["classifier.weight"] = torch.zeros(1000, 2048)
    cache_dir().mkdir(parents=True, exist_ok=True)
    torch.save(state, cache_dir() / "hrnet_w32-36af842e.pth")
    model = hrpose.build_model("hrnet_w32_256x192", weights="imagenet")
    assert torch.equal(model.backbone.stage4[2].fuse_layers[0][3][0].weight,
                       reference.backbone.stage4[2].fuse_layers[0][3][0].weight)
    assert model.head.final_layer.weight.abs().max() < 0.01  # N(0, 0.001) initialisation
