"""HRNet architecture: exact published sizes, official tensor names, shapes, gradients."""

import pytest
import torch
from torch import nn

from hrpose.models.complexity import measure
from hrpose.models.zoo import MODELS, create_model

from .helpers import tiny_hrnet

# Learnable parameters: the HRNet paper / official code (W32 28,536,113; W48 63,595,745 with 17
# joints). Fewer joints, fewer head parameters: a 1x1 conv with bias from 32 (48) channels, 33
# (49) a joint: MPII 16 joints, CrowdPose 14.
PARAMS = {
    "hrnet_w32_256x192": 28_536_113,
    "hrnet_w32_384x288": 28_536_113,
    "hrnet_w48_256x192": 63_595_745,
    "hrnet_w48_384x288": 63_595_745,
    "hrnet_w32_256x256_mpii": 28_536_113 - 33,
    "hrnet_w48_256x256_mpii": 63_595_745 - 49,
    "hrnet_w32_256x192_crowdpose": 28_536_113 - 3 * 33,
    # COCO-WholeBody: 116 joints more than COCO's, a row of the final 1x1 conv (weights, bias)
    "hrnet_w32_256x192_coco_wholebody": 28_536_113 + 116 * 33,
    "hrnet_w32_384x288_coco_wholebody": 28_536_113 + 116 * 33,
    "hrnet_w48_256x192_coco_wholebody": 63_595_745 + 116 * 49,
    "hrnet_w48_384x288_coco_wholebody": 63_595_745 + 116 * 49,
    "hrnet_w48_384x288_coco_wholebody_dark": 63_595_745 + 116 * 49,
    # HigherHRNet (official code: W32 28,645,331) and LiteHRNet (official code, 17-joint head:
    # 18 1,130,769, 30 1,763,717); also checked in test_bottomup.py / test_litehrnet.py.
    "higherhrnet_w32_512": 28_645_331,
    "higherhrnet_w32_640": 28_645_331,
    "higherhrnet_w48_640": 63_827_139,
    # 14 joints: per joint fewer, 2 x 33 (heatmap and tag rows of the 1/4 output), 4 x 4 x 32 x
    # 2 (the deconvolution's input takes them both) and 33 (the 1/2 output).
    "higherhrnet_w32_512_crowdpose": 28_645_331 - 3 * (2 * 33 + 16 * 32 * 2 + 33),
    "litehrnet_18_256x192": 1_130_769,
    "litehrnet_18_384x288": 1_130_769,
    "litehrnet_30_256x192": 1_763_717,
    "litehrnet_30_384x288": 1_763_717,
    # Naive (width 30) and Wider-Naive (width 40) LiteHRNet-18; PP-TinyPose is the Wider-Naive
    # with biased convolutions for its folded batch norm (one bias per conv instead of 2 BN
    # parameters per channel).
    "naive_litehrnet_18_256x192": 760_365,
    "wider_naive_litehrnet_18_256x192": 1_318_625,
    "tinypose_256x192": 1_300_177,
    "tinypose_128x96": 1_300_177,
}
# (GMACs counted with conv/linear forward hooks, GFLOPs as printed by the papers = MACs / 2^30)
MACS = {
    "hrnet_w32_256x192": (7.65, 7.1),
    "hrnet_w32_384x288": (17.20, 16.0),
    "hrnet_w48_256x192": (15.69, 14.6),
    "hrnet_w48_384x288": (35.31, 32.9),
}


def test_every_zoo_model_is_checked():
    assert set(PARAMS) == set(MODELS)


@pytest.mark.parametrize("name", list(PARAMS))
def test_parameter_count_is_exact(name):
    c = measure(create_model(name, device="meta"), (3, *MODELS[name].input_hw))
    assert c.params == PARAMS[name]


@pytest.mark.parametrize("name", list(MACS))
def test_macs_and_paper_gflops(name):
    spec = MODELS[name]
    c = measure(create_model(name, device="meta"), (3, *spec.input_hw))
    gmacs, paper = MACS[name]
    assert round(c.gmacs, 2) == gmacs
    assert round(c.paper_gflops, 1) == paper
    h, w = spec.input_hw
    assert c.output_shapes == [(1, spec.num_joints, h // 4, w // 4)]


def test_mac_conventions_by_hand():
    # Conv: output elements x in/groups x kh x kw; transposed conv: input elements x out x kh x kw.
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1),          # 8*16*16 * 27
                          nn.Conv2d(8, 8, 3, padding=1, groups=4),            # 8*16*16 * 2*9
                          nn.ConvTranspose2d(8, 2, 4, stride=2, padding=1),   # 8*16*16 * 2*16
                          nn.Flatten(), nn.Linear(2 * 32 * 32, 5))            # 5 * 2048
    c = measure(model, (3, 32, 32))
    assert c.macs == 2048 * 27 + 2048 * 18 + 2048 * 32 + 5 * 2048
    assert c.params == (8 * 27 + 8) + (8 * 18 + 8) + (8 * 2 * 16 + 2) + (2048 * 5 + 5)


def test_official_tensor_names():
    keys = set(create_model("hrnet_w32_256x192", device="meta").state_dict())
    for name in ["conv1.weight", "bn1.running_var", "conv2.weight", "layer1.0.downsample.0.weight",
                 "layer1.3.conv3.weight", "transition1.0.0.weight", "transition1.1.0.0.weight",
                 "transition2.2.0.0.weight", "transition3.3.0.1.bias",
                 "stage2.0.branches.1.3.conv2.weight", "stage3.3.fuse_layers.2.0.1.0.weight",
                 "stage4.2.fuse_layers.0.3.1.running_mean"]:
        assert "backbone." + name in keys, name
    assert {"head.final_layer.weight", "head.final_layer.bias"} <= keys
    # The last module of stage 4 computes only the highest-resolution output.
    assert not any(k.startswith("backbone.stage4.2.fuse_layers.1.") for k in keys)
    assert any(k.startswith("backbone.stage4.1.fuse_layers.3.") for k in keys)


def test_real_forward_shape_and_finite():
    model = create_model("hrnet_w32_256x192").eval()
    with torch.inference_mode():
        y = model(torch.randn(2, 3, 256, 192))
    assert y.shape == (2, 17, 64, 48)
    assert torch.isfinite(y).all()


def test_every_parameter_gets_a_gradient():
    model = tiny_hrnet().train()
    model(torch.randn(2, 3, 64, 32)).square().mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert dead == []
