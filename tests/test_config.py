from pathlib import Path

import pytest
import torch

from hrpose.config import Config, dump_config, load_config, resolve_keypoints
from hrpose.engine.losses import heatmap_loss, joints_mse
from hrpose.engine.optim import base_lr, lr_at
from hrpose.errors import HrposeError
from hrpose.models.arch import model_from_arch
from hrpose.models.complexity import measure
from hrpose.models.pact import prepare_pact
from hrpose.models.zoo import zoo_name_for
from hrpose.skeletons import parse_skeleton

ROOT = Path(__file__).resolve().parents[1]
# Training configs; configs/keypoints/ holds keypoint set files (test_custom_keypoints.py).
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name != "keypoints")


def test_defaults_are_the_published_recipe():
    c = Config()
    assert (c.train.optimizer, c.train.lr, c.train.epochs) == ("adam", 1e-3, 210)
    assert (c.train.lr_steps, c.train.lr_factor, c.train.warmup_iters) == ((170, 200), 0.1, 500)
    assert c.train.batch == 32 and c.train.loss == "mse"
    assert (c.data.input_wh, c.data.heatmap_wh, c.data.sigma) == ((192, 256), (48, 64), 2.0)
    aug = c.data.augment
    assert (aug.scale_factor, aug.rotation, aug.flip_prob, aug.half_body_prob) == (
        0.35, 45.0, 0.5, 0.3)
    assert c.test.flip and c.model.init == "imagenet"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_every_recipe_loads_and_builds_its_model(path):
    config = load_config(path)
    assert load_config(path, []) == config
    if path.parent.name == "custom":        # the set is the data's: any set, here five joints
        assert config.data.keypoints == "" and config.model.num_joints == 0
        five = parse_skeleton({"name": "five", "joints": list("abcde"), "sigmas": [0.05] * 5})
        config = resolve_keypoints(config, five)
        assert config.model.num_joints == 5 and config.card().keypoints == five
    w, h = config.data.input_wh
    name = zoo_name_for(config.model.to_dict(), (h, w))
    expected = {"coco/hrnet_w32_256x192.yaml": ("hrnet_w32_256x192", 28_536_113),
                "coco/hrnet_w32_384x288.yaml": ("hrnet_w32_384x288", 28_536_113),
                "coco/hrnet_w48_256x192.yaml": ("hrnet_w48_256x192", 63_595_745),
                "coco/hrnet_w48_384x288.yaml": ("hrnet_w48_384x288", 63_595_745),
                "mpii/hrnet_w32_256x256.yaml": ("hrnet_w32_256x256_mpii", 28_536_080),
                "mpii/hrnet_w48_256x256.yaml": ("hrnet_w48_256x256_mpii", 63_595_696),
                "coco/higherhrnet_w32_512.yaml": ("higherhrnet_w32_512", 28_645_331),
                "crowdpose/hrnet_w32_256x192.yaml": ("hrnet_w32_256x192_crowdpose", 28_536_014),
                "crowdpose/higherhrnet_w32_512.yaml": ("higherhrnet_w32_512_crowdpose",
                                                       28_641_962),
                # 133 joints: 116 more rows of the final 1x1 convolution (weights and bias)
                "wholebody/hrnet_w32_256x192.yaml": ("hrnet_w32_256x192_coco_wholebody",
                                                     28_536_113 + 116 * 33),
                "wholebody/hrnet_w32_384x288.yaml": ("hrnet_w32_384x288_coco_wholebody",
                                                     28_536_113 + 116 * 33),
                "wholebody/hrnet_w48_256x192.yaml": ("hrnet_w48_256x192_coco_wholebody",
                                                     63_595_745 + 116 * 49),
                "wholebody/hrnet_w48_384x288.yaml": ("hrnet_w48_384x288_coco_wholebody",
                                                     63_595_745 + 116 * 49),
                "wholebody/hrnet_w48_384x288_dark.yaml": ("hrnet_w48_384x288_coco_wholebody",
                                                          63_595_745 + 116 * 49),
                "coco/litehrnet_18_256x192.yaml": ("litehrnet_18_256x192", 1_130_769),
                "coco/litehrnet_30_256x192.yaml": ("litehrnet_30_256x192", 1_763_717),
                "coco/litehrnet_30_256x192_distill.yaml": ("litehrnet_30_256x192", 1_763_717),
                "coco/litehrnet_30_256x192_pact.yaml": ("litehrnet_30_256x192", 1_763_717),
                # the zoo architectures with a 5-row head
                "custom/hrnet_w32_finetune.yaml": (None, 28_536_113 - 12 * 33),
                "custom/tinypose_finetune.yaml": (None, 1_300_177 - 12 * 41)}
    with torch.device("meta"):
        model = model_from_arch(config.model.to_dict())
    params = measure(model, (3, h, w)).params
    key = path.relative_to(ROOT / "configs").as_posix()
    if key in expected:
        assert (name, params) == expected[key]
    else:
        assert name is None and params < 2_000_000      # the quickstarts are small
    if config.quant.pact:                               # a PACT model adds one clip per conv
        assert sum(p.numel() for p in prepare_pact(model).parameters()) > params


def test_recipe_specifics():
    big = load_config(ROOT / "configs/coco/hrnet_w48_384x288.yaml")
    assert big.model.width == 48 and big.data.input_wh == (288, 384) and big.data.sigma == 3.0
    mpii = load_config(ROOT / "configs/mpii/hrnet_w32_256x256.yaml")
    assert mpii.model.num_joints == 16 and mpii.data.augment.rotation == 30.0
    assert mpii.data.augment.half_body_prob == 0.0


def test_overrides_are_typed(tmp_path):
    c = load_config(None, ["train.lr=5e-4", "data.root=/x", "train.lr_steps=[3, 4]",
                           "model.sync_bn=true", "data.augment.flip_prob=0", "test.det_json=null"])
    assert c.train.lr == 5e-4 and c.data.root == "/x" and c.train.lr_steps == (3, 4)
    assert c.model.sync_bn is True and c.data.augment.flip_prob == 0.0
    saved = tmp_path / "c.yaml"
    saved.write_text(dump_config(c))
    assert load_config(saved) == c


@pytest.mark.parametrize("override, message", [
    ("train.lrr=1", "train.lrr: unknown key (known: epochs, batch"),
    ("trian.lr=1", "trian: unknown key (known: model, data, train, test, bottomup, distill, "
                   "quant)"),
    ("train.epochs=ten", "train.epochs: expected an integer, got 'ten'"),
    ("train.epochs=1.5", "train.epochs: expected an integer, got 1.5"),
    ("model.sync_bn=2", "model.sync_bn: expected true or false, got 2"),
    ("data.input_wh=[1,2,3]", "data.input_wh: expected 2 values, got 3"),
    ("train.amp=fp8", "train.amp: 'fp8' is not one of auto, none, bf16, fp16"),
    ("data.input_wh=[100,128]", "data.input_wh: 100x128 must be multiples of 32"),
    ("data.heatmap_wh=[48,48]", "data.heatmap_wh: 48x48 must be a quarter"),
    ("train.lr", "expected KEY=VALUE"),
])
def test_bad_values_are_one_line_errors_naming_the_key(override, message):
    with pytest.raises(HrposeError) as e:
        load_config(None, [override])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_bad_yaml_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1\n")
    with pytest.raises(HrposeError, match=r"bad.yaml: not valid YAML \(line"):
        load_config(bad)
    bad.write_text("train:\n  warmup: 3\n")
    with pytest.raises(HrposeError, match=r"bad.yaml: train.warmup: unknown key"):
        load_config(bad)
    with pytest.raises(HrposeError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_learning_rate_schedule():
    c = Config().train
    assert lr_at(c, 1e-3, 0, 0) == pytest.approx(1e-6)            # warm-up from 0.001 x lr
    assert lr_at(c, 1e-3, 250, 0) == pytest.approx(1e-3 * (0.001 + 0.999 * 0.5))
    assert lr_at(c, 1e-3, 500, 0) == pytest.approx(1e-3)
    assert lr_at(c, 1e-3, 10**5, 169) == pytest.approx(1e-3)
    assert lr_at(c, 1e-3, 10**5, 170) == pytest.approx(1e-4)
    assert lr_at(c, 1e-3, 10**5, 200) == pytest.approx(1e-5)
    scaled = load_config(None, ["train.scale_lr=true"]).train
    assert base_lr(scaled, world_size=8) == pytest.approx(1e-3 * 32 * 8 / 128)
    assert base_lr(c, world_size=8) == 1e-3


def test_joints_mse_by_hand():
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0, 0, 0] = 1.0          # joint 0: one pixel off by 1 -> mean 1/4
    target[0, 1] = 2.0                 # joint 1: all pixels off by 2, but its weight is 0
    weights = torch.tensor([[1.0, 0.0]])
    assert joints_mse(pred, target, weights).tolist() == [[0.125, 0.0]]
    assert heatmap_loss(pred, target, weights).item() == pytest.approx(0.0625)
    assert heatmap_loss(pred, target, weights, "ohkm", topk=1).item() == pytest.approx(0.125)


def test_model_sections_are_typed_by_family_and_kind(tmp_path: Path) -> None:
    """Each family has its own defaults: `family: litehrnet` alone is LiteHRNet-18; a field of
    another family is ignored with a warning, a field of none is an error."""
    from hrpose.config import HigherHRNetModel, LiteHRNetModel

    lite = load_config(None, ["model.family=litehrnet", "model.init=none", "data.keypoints=coco"])
    assert isinstance(lite.model, LiteHRNetModel)
    assert zoo_name_for(lite.model.to_dict(), (256, 192)) == "litehrnet_18_256x192"
    assert isinstance(load_config(None, ["model.kind=bottomup", "data.input_wh=[512,512]"]
                                  ).model, HigherHRNetModel)
    with pytest.warns(UserWarning, match=r"model.layer1_blocks is not a field of a litehrnet"):
        assert load_config(None, ["model.family=litehrnet", "model.layer1_blocks=2",
                                  "model.init=none", "data.keypoints=coco"]).model == lite.model
    with pytest.raises(HrposeError, match=r"model.widht: unknown key"):
        load_config(None, ["model.widht=16"])
    with pytest.raises(HrposeError, match=r"model.family: 'vit' is not one of hrnet, litehrnet"):
        load_config(None, ["model.family=vit"])
    # a flat section of an older config: other families' fields at their old values load
    flat = tmp_path / "old.yaml"
    flat.write_text("model: {family: litehrnet, width: 40, stem_channels: 32, "
                    "layer1_channels: 64, layer1_blocks: 4, deconv_blocks: 4, init: none}\n"
                    "data: {keypoints: coco}\n")
    assert load_config(flat).model == lite.model
