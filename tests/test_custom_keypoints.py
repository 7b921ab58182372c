"""Any keypoint set, end to end: labelling tools' exports imported to one data root, `hrpose
data check`, and a custom set carried by config, card, flip test, drawing, export and service.

The data is real: a 5-joint face set (nose, eyes and ears of coco-mini-train, renamed and
reordered) written in each tool's own format."""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import torch

from hrpose.cli import main
from hrpose.data.coco import load_keypoints
from hrpose.data.dataroot import box_from_joints, split_for, subset_joints
from hrpose.errors import HrposeError
from hrpose.inference.options import EstimatorOptions
from hrpose.io import read_json
from hrpose.models.checkpoint import save_weights
from hrpose.models.loading import load_for_keypoints, load_model
from hrpose.skeletons import COCO, load_skeleton_file, parse_skeleton, write_skeleton_file

from . import labelgen
from .helpers import shared_data

FACE = load_skeleton_file(Path(__file__).parents[1] / "configs/keypoints/face5.yaml")
SOURCES = {"snout": "nose", "eye_l": "left_eye", "eye_r": "right_eye", "ear_l": "left_ear",
           "ear_r": "right_ear"}
VAL_FRACTION = 0.3


@pytest.fixture(scope="module")
def face_labels() -> tuple[dict, Path]:
    """The reference: 16 coco-mini-train images with people labelled on two or more face
    joints, as a 5-joint COCO file whose boxes are the joints' extent and whose joints are
    labelled (2) or not (0): what every tool's export can state."""
    root = shared_data("coco-mini-train")
    coco = subset_joints(read_json(root / "annotations/person_keypoints_train2017.json"),
                         FACE, SOURCES)
    people: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        keypoints = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        if ann["iscrowd"] or (keypoints[:, 2] > 0).sum() < 2:
            continue
        keypoints[:, 2] = np.where(keypoints[:, 2] > 0, 2, 0)
        box = [round(float(v), 2) for v in box_from_joints(keypoints)]
        if min(box[2:]) <= 0:
            continue
        people.setdefault(ann["image_id"], []).append(
            {**ann, "keypoints": keypoints.ravel().tolist(), "bbox": box, "segmentation": []})
    images = sorted((i for i in coco["images"] if i["id"] in people),
                    key=lambda i: i["file_name"])[:16]
    assert {split_for(i["file_name"], VAL_FRACTION) for i in images} == {"train", "val"}
    annotations = [ann for image in images for ann in people[image["id"]]]
    return ({**coco, "images": images, "annotations": annotations}, root / "train2017")


@pytest.fixture(scope="module")
def face_set_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("set") / "face5.yaml"
    write_skeleton_file(path, FACE)
    return path


def _export(fmt: str, coco: dict, images: Path, out: Path) -> Path:
    if fmt == "yolo":
        flip_idx = [int(j) for j in FACE.flip_index]
        return labelgen.write_yolo(coco, images, out, flip_idx, VAL_FRACTION)
    if fmt == "cvat":
        return labelgen.write_cvat_xml(coco, images, out)
    if fmt == "cvat-coco":
        return labelgen.write_cvat_coco(coco, images, out)
    if fmt == "labelstudio":
        return labelgen.write_labelstudio(coco, images, out)
    return labelgen.write_dlc(coco, images, out, h5=fmt == "dlc-h5")


FORMATS = ["yolo", "cvat", "cvat-coco", "labelstudio", "dlc", "dlc-h5"]


@pytest.fixture(scope="module")
def face_roots(face_labels, face_set_file, tmp_path_factory) -> dict[str, Path]:
    """The reference written by each tool and imported with `hrpose data convert`."""
    coco, images = face_labels
    roots = {}
    for fmt in FORMATS:
        base = tmp_path_factory.mktemp(fmt)
        src = _export(fmt, coco, images, base / "export")
        extra = ["--images", str(base / "export" / "upload")] if fmt == "labelstudio" else []
        out = base / "root"
        assert main(["data", "convert", fmt.split("-")[0], str(src), "--out", str(out),
                     "--keypoints", str(face_set_file), "--val-fraction", str(VAL_FRACTION),
                     "--json", *extra]) == 0
        roots[fmt] = out
    return roots


def test_each_tools_export_imports_to_the_same_coco_files(face_roots):
    for split in ("train", "val"):
        name = f"annotations/person_keypoints_{split}2017.json"
        files = {fmt: (root / name).read_bytes() for fmt, root in face_roots.items()}
        assert len(set(files.values())) == 1, [f for f in files if files[f] != files["yolo"]]
    for root in face_roots.values():          # the set file: the given set, and where it came from
        text = (root / "annotations/keypoints.yaml").read_text()
        assert text.startswith("# written by hrpose data convert from ")
        assert load_skeleton_file(root / "annotations/keypoints.yaml") == FACE


def test_an_imported_root_equals_the_labels_joint_by_joint(face_roots, face_labels):
    coco, _ = face_labels
    root = face_roots["labelstudio"]
    expected = {}
    for ann in coco["annotations"]:
        expected.setdefault(ann["image_id"], []).append(ann)
    seen = 0
    for split in ("train", "val"):
        data = load_keypoints(root / f"annotations/person_keypoints_{split}2017.json")
        assert data.skeleton == FACE and (root / f"{split}2017").is_dir()
        for info in data.images.values():
            assert split_for(info.file_name, VAL_FRACTION) == split
            assert (root / f"{split}2017" / info.file_name).is_file()
            rows = np.flatnonzero(data.image_ids == info.id)
            assert len(rows) == len(expected[info.id])
            for row, ann in zip(rows, expected[info.id]):
                reference = np.asarray(ann["keypoints"]).reshape(-1, 3)
                np.testing.assert_allclose(data.keypoints[row], reference, atol=0.006)
                np.testing.assert_allclose(data.boxes[row], ann["bbox"], atol=0.006)
                seen += 1
    assert seen == len(coco["annotations"])


def test_without_a_set_the_export_says_what_it_can_and_the_rest_is_inferred(
        face_labels, tmp_path, capsys):
    coco, images = face_labels
    xml = labelgen.write_cvat_xml(coco, images, tmp_path / "cvat")
    assert main(["data", "convert", "cvat", str(xml), "--out", str(tmp_path / "root"),
                 "--json"]) == 0
    assert "warning: cvat " in capsys.readouterr().err     # no sigmas: AP not comparable
    text = (tmp_path / "root/annotations/keypoints.yaml").read_text()
    assert "flip pairs: inferred from the joint names" in text and "sigmas:" in text
    with pytest.warns(UserWarning, match="no sigmas given"):   # every use says so again
        data = load_keypoints(tmp_path / "root/annotations/person_keypoints_train2017.json")
    s = data.skeleton
    assert s.name == "face5" and s.joints == FACE.joints           # the skeleton's node order
    assert set(s.flip_pairs) == set(FACE.flip_pairs) and set(s.links) == set(FACE.links)
    # YOLO states its flips (flip_idx) and no links
    yolo = labelgen.write_yolo(coco, images, tmp_path / "yolo", [4, 3, 2, 1, 0], 0.3)
    assert main(["data", "convert", "yolo", str(yolo), "--out", str(tmp_path / "y"),
                 "--json"]) == 0
    with pytest.warns(UserWarning, match="no sigmas"):
        data = load_keypoints(tmp_path / "y/annotations/person_keypoints_train2017.json")
    assert set(data.skeleton.flip_pairs) == {(3, 1), (4, 0)} and data.skeleton.links == ()


@pytest.mark.parametrize("fmt, damage, message", [
    ("yolo", lambda p: p.parent.joinpath("labels/train").glob("*.txt").__next__().write_text(
        "0 0.5 0.5 0.1 0.1 0.3\n"), r"labels/train/\d+\.txt:1: 6 values; a pose line has 5 \+ 5"),
    ("yolo", lambda p: p.write_text(p.read_text().replace("flip_idx:", "flip_idx: [0, 0, 1, "
                                                          "2, 3]\nold_flip_idx:")),
     "flip_idx must map each of the 5 joints"),
    ("labelstudio", lambda p: p.write_text(p.read_text().replace('"rectanglelabels"',
                                                                 '"rectanglelabel"', 1)
                                           .replace('"from_id": "r0"', '"from_id": "x"')),
     "belongs to no one rectangle"),
    ("dlc", lambda p: p.write_text("scorer,a\nnose,1\n"), "not a DeepLabCut CSV"),
    ("cvat", lambda p: p.write_text(p.read_text().replace('label="face5" source="manual" '
                                                          'z_order', 'label="dog" source='
                                                          '"manual" z_order', 1)),
     "skeletons of 2 labels"),
])
def test_a_bad_export_is_one_line_naming_the_file(face_labels, tmp_path, capsys, fmt, damage,
                                                 message):
    coco, images = face_labels
    src = _export(fmt, coco, images, tmp_path / "export")
    damage(src)
    extra = ["--images", str(tmp_path / "export/upload")] if fmt == "labelstudio" else []
    assert main(["data", "convert", fmt, str(src), "--out", str(tmp_path / "root"),
                 *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "root").exists()


def test_data_check_counts_the_labels_flags_swapped_pairs_and_draws_them(
        face_roots, face_labels, tmp_path, capsys):
    coco, _ = face_labels
    root = face_roots["yolo"]
    sheet = tmp_path / "sheet.jpg"
    assert main(["data", "check", str(root), "--sheet", str(sheet), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["keypoint_set"]["joints"] == list(FACE.joints)
    files = {Path(f["file"]).name: f for f in report["files"]}
    both = sum(f["people"] for f in files.values())
    assert both == len(coco["annotations"])
    labelled = {j: sum(f["labelled_joints"][j] for f in files.values()) for j in FACE.joints}
    for j, name in enumerate(FACE.joints):
        assert labelled[name] == sum(ann["keypoints"][3 * j + 2] > 0
                                     for ann in coco["annotations"])
    assert not any(p["suspicious"] for f in files.values() for p in f["flip_pairs"])
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[0] == 256 * 4            # 16 people, 4 a row
    # a set whose ear pair is named the wrong way round is flagged
    swapped = tmp_path / "swapped.yaml"
    value = FACE.to_dict()
    value["joints"] = ["ear_l", "eye_r", "snout", "eye_l", "ear_r"]    # ear names swapped
    swapped.write_text(json.dumps(value))
    text = (root / "annotations/person_keypoints_train2017.json").read_text()
    mixed = tmp_path / "mixed.json"
    data = json.loads(text)
    data["categories"][0]["keypoints"] = value["joints"]
    mixed.write_text(json.dumps(data))
    assert main(["data", "check", str(mixed), "--keypoints", str(swapped), "--images",
                 str(root / "train2017"), "--sheet", "none"]) == 0
    out = capsys.readouterr().out
    assert "ear_l / ear_r" in out and "suspicious" in out


def test_fine_tuning_keeps_the_backbone_and_carries_rows_by_joint_name(tmp_path):
    """A head for another set starts fresh except the rows of joints both sets name."""
    from hrpose.models.arch import HRNetArch

    small = dict(width=4, stem_channels=8, layer1_channels=8, layer1_blocks=1,
                 stage_modules=(1, 1, 1), num_blocks=1)
    source = HRNetArch(**small).create()
    for p in source.parameters():
        torch.nn.init.normal_(p, std=0.1)
    from hrpose.models.card import ModelCard

    card = ModelCard(HRNetArch(**small).to_dict(), (64, 48), COCO)
    save_weights(tmp_path / "coco.safetensors", source.state_dict(), card.to_metadata())
    three = parse_skeleton({"name": "head3", "joints": ["right_eye", "tail", "nose"],
                            "sigmas": [0.03] * 3})
    arch = HRNetArch(**small, num_joints=3)
    target = arch.create()
    fresh = target.head.final_layer.weight.detach().clone()
    note = load_for_keypoints(target, arch, tmp_path / "coco.safetensors", three)
    assert "predicts 17 joints (the 'coco' set's)" in note and "2 joints" in note
    w, s = target.head.final_layer.weight, source.head.final_layer.weight
    assert torch.equal(w[0], s[2]) and torch.equal(w[2], s[0])          # right_eye, nose
    assert torch.equal(w[1], fresh[1])                                   # tail: fresh
    assert torch.equal(target.backbone.conv1.weight, source.backbone.conv1.weight)
    target = arch.create()
    fresh = target.head.final_layer.weight.detach().clone()
    note = load_for_keypoints(target, arch, tmp_path / "coco.safetensors", three, carry=False)
    assert "no rows carried over (carry_joints is off)" in note
    assert torch.equal(target.head.final_layer.weight, fresh)
    # a foreign layout whose names wrap the model's (MindSpore's network. prefix): the head is
    # found under its own name, the backbone loads, the head starts fresh (no set stated)
    from hrpose.models.layouts import source_name

    from .helpers import write_mindspore_ckpt

    state = source.state_dict()
    bn = {k[: -len(".running_mean")] for k in state if k.endswith(".running_mean")}
    named = {"network." + source_name("mindspore", k, bn): v.numpy() for k, v in state.items()
             if source_name("mindspore", k, bn) and v.dtype == torch.float32}
    write_mindspore_ckpt(tmp_path / "coco.ckpt", named)
    target = arch.create()
    note = load_for_keypoints(target, arch, tmp_path / "coco.ckpt", three)
    assert "predicts 17 joints (unstated)" in note and "the file names no joints" in note
    assert torch.equal(target.backbone.conv1.weight, source.backbone.conv1.weight)


@pytest.fixture(scope="module")
def face_run(face_roots, tinypose_checkpoint, tmp_path_factory) -> tuple[Path, str]:
    """The recipe by config alone, briefly: PP-TinyPose's backbone and a fresh 5-row head, the
    set from the data root. (run folder, what training wrote to stderr)"""
    run = tmp_path_factory.mktemp("face") / "run"
    recipe = Path(__file__).parents[1] / "configs/custom/tinypose_finetune.yaml"
    overrides = [f"data.root={face_roots['dlc']}", f"model.init={tinypose_checkpoint}",
                 "train.epochs=1", "train.max_iters=2", "train.batch=4",
                 "train.warmup_iters=0", "train.draw_images=1", "train.amp=none"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["train", str(recipe), "--out", str(run),
                     *(arg for o in overrides for arg in ("-o", o))]) == 0
    return run, err.getvalue()


@pytest.mark.slow
def test_a_custom_set_goes_from_config_to_training_eval_infer_and_export(
        face_run, face_roots, tmp_path):
    """Every command runs the model with the set its card carries: its flips, its links."""
    from hrpose.inference.estimator import PoseEstimator

    (run, err), root = face_run, face_roots["dlc"]
    assert "keypoint set 'face5': 5 joints; flip pairs: eye_l <-> eye_r, ear_l <-> ear_r" in err
    assert "head predicts 17 joints (the 'coco' set's)" in err and "head starts fresh" in err
    model, card = load_model(run / "best.safetensors")
    assert card.keypoints == FACE and model.head.final_layer.out_channels == 5
    assert main(["eval", str(run / "best.safetensors"), "--data", str(root), "--out",
                 str(tmp_path / "eval"), "--json"]) == 0
    metrics = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert 0 <= metrics["AP"] <= 1 and metrics["settings"]["flip"]
    est = PoseEstimator(run / "best.safetensors", detector=None, flip=True)
    assert est.skeleton == FACE and list(est.skeleton.flip_index) == [4, 3, 2, 1, 0]
    image = sorted((root / "val2017").iterdir())[0]
    people = est(image)
    assert people[0].keypoints.shape == (5, 3) and people[0].skeleton is est.skeleton
    assert main(["infer", str(image), "--model", str(run / "best.safetensors"),
                 "--detector", "none", "--out", str(tmp_path / "infer"), "--json"]) == 0
    rows = json.loads((tmp_path / "infer/results.json").read_text())
    assert len(rows[0]["keypoints"]) == 15
    onnx = tmp_path / "face5.onnx"
    assert main(["export", str(run / "best.safetensors"), "--out", str(onnx), "--json"]) == 0
    exported = PoseEstimator(onnx, detector=None)
    assert exported.card.keypoints == FACE


def test_the_service_draws_a_custom_set_from_its_card(face_run):
    """`hrpose serve` tells the web page the set's names, links and flip pairs."""
    from hrpose.serve.settings import ServeSettings

    from .serving import serving

    with serving(ServeSettings(model=str(face_run[0] / "best.safetensors"),
                               options=EstimatorOptions(detector=None))) as url:
        served = httpx.get(url + "/v1/model").json()["keypoints"]
    assert served["set"] == "face5" and served["names"] == list(FACE.joints)
    assert served["links"] == [list(link) for link in FACE.links]
    assert served["flip_pairs"] == [list(pair) for pair in FACE.flip_pairs]


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    from hrpose.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, train=8, val=2, seed=4, workers=1, progress=False)
    return root


def test_a_renamed_17_joint_set_keeps_its_own_flips_everywhere(synthetic_root, tmp_path):
    """COCO's joints under other names, in another order: 17 joints, and not COCO. Its card,
    flip test, training flips, drawing and export use its own pairs (a count once decided)."""
    from hrpose.config import load_config
    from hrpose.engine.train import Trainer
    from hrpose.inference.estimator import PoseEstimator

    order = list(COCO.joints[::-1])
    renamed = {name: f"pt_{i}" for i, name in enumerate(order)}
    value = {"name": "reversed17", "joints": [renamed[n] for n in order],
             "flip_pairs": [[renamed[COCO.joints[a]], renamed[COCO.joints[b]]]
                            for a, b in COCO.flip_pairs],
             "links": [[renamed[COCO.joints[a]], renamed[COCO.joints[b]]]
                       for a, b in COCO.links], "sigmas": [0.05] * 17}
    reversed17 = parse_skeleton(value)
    root = tmp_path / "data"
    for split in ("train", "val"):
        name = f"annotations/person_keypoints_{split}2017.json"
        coco = subset_joints(read_json(synthetic_root / name), reversed17,
                             {renamed[n]: n for n in order})
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(coco))
        (root / f"{split}2017").symlink_to(synthetic_root / f"{split}2017")
    write_skeleton_file(root / "annotations/keypoints.yaml", reversed17)
    config = load_config(Path(__file__).parents[1] / "configs/synthetic/quickstart.yaml", [
        f"data.root={root}", "data.keypoints=", "train.epochs=1", "train.max_iters=1",
        "train.batch=4", "data.workers=0", "train.draw_images=0"])
    trainer = Trainer(config, tmp_path / "run", progress=False)
    assert trainer.config.skeleton == reversed17
    assert list(trainer.dataset.flip_index) == list(reversed17.flip_index)
    assert list(reversed17.flip_index) != list(COCO.flip_index)
    trainer.fit()
    _, card = load_model(tmp_path / "run/best.safetensors")
    assert card.keypoints == reversed17 and card.keypoints.name == "reversed17"
    est = PoseEstimator(tmp_path / "run/best.safetensors", detector=None, flip=True)
    assert est.skeleton == reversed17 and est.pipeline.skeleton is est.skeleton
    onnx = tmp_path / "r17.onnx"
    assert main(["export", str(tmp_path / "run/best.safetensors"), "--out", str(onnx),
                 "--force"]) == 0
    assert PoseEstimator(onnx, detector=None).skeleton == reversed17
    # the data root's own COCO-named file is not this set: one line, not a silent mismatch
    with pytest.raises(HrposeError, match="not the keypoint set 'reversed17'"):
        load_keypoints(synthetic_root / "annotations/person_keypoints_val2017.json",
                       reversed17)


def test_a_plain_graph_names_no_set_and_gets_none_by_count(tmp_path):
    """An exported file from elsewhere with 17 outputs is not taken to be COCO: unnamed joints
    with a warning, no flip test, unless the set is given."""
    from hrpose.inference.estimator import PoseEstimator

    from .test_eval import heatmap_onnx

    heatmap_onnx(tmp_path / "plain.onnx", batch=None)
    with pytest.warns(UserWarning, match="states no keypoint set"):
        est = PoseEstimator(tmp_path / "plain.onnx", detector=None)
    assert est.skeleton.name == "unnamed" and est.skeleton.links == ()
    with pytest.raises(HrposeError, match="flip test needs its flip pairs"):
        PoseEstimator(tmp_path / "plain.onnx", detector=None, flip=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert PoseEstimator(tmp_path / "plain.onnx", detector=None, flip=True,
                             keypoints="coco").skeleton is COCO


def test_frozen_stages_keep_weights_and_statistics_and_the_head_learns_faster(
        synthetic_root, tmp_path):
    """train.freeze_stages 1: the stem and stage 1 (layer1) stay as loaded, batch-norm
    statistics included; train.head_lr_factor: the head's group runs at lr x the factor."""
    from hrpose.config import load_config
    from hrpose.engine.train import Trainer

    from .helpers import TINY_TRAIN

    config = load_config(Path(__file__).parents[1] / "configs/synthetic/quickstart.yaml", [
        *TINY_TRAIN, f"data.root={synthetic_root}", "train.freeze_stages=1",
        "train.head_lr_factor=4", "train.epochs=1", "train.max_iters=2", "train.eval_every=1",
        "train.draw_images=0", "model.init=kaiming"])
    trainer = Trainer(config, tmp_path / "run", progress=False)
    net = trainer.net
    before = {k: v.clone() for k, v in net.state_dict().items()}
    trainer.fit()
    after = net.state_dict()
    frozen = ("backbone.conv1.", "backbone.bn1.", "backbone.conv2.", "backbone.bn2.",
              "backbone.layer1.")
    for key, value in before.items():
        if key.startswith(frozen):
            assert torch.equal(after[key], value), key           # running stats too
    assert not torch.equal(after["backbone.stage4.0.branches.0.0.conv1.weight"],
                           before["backbone.stage4.0.branches.0.0.conv1.weight"])
    groups = trainer.optimizer.param_groups
    assert len(groups) == 2 and groups[1]["lr"] == pytest.approx(4 * groups[0]["lr"])
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in net.head.parameters()}
    with pytest.raises(HrposeError, match=r"freeze_stages 9: this backbone has the stem \(0\)"):
        Trainer(load_config(None, [*TINY_TRAIN, f"data.root={synthetic_root}",
                                   "train.freeze_stages=9"]), tmp_path / "bad", progress=False)


@pytest.mark.parametrize("override, message", [
    ("data.keypoints={joints: [a, b], flip_pairs: [[a, c]], sigmas: [0.1, 0.1]}",
     r"config: data.keypoints.flip_pairs\[0\]: 'c' is not a joint of the set \(a, b\)"),
    ("data.keypoints=cocoo", "data.keypoints: 'cocoo' is not a built-in set"),
    ("data.keypoints=missing.yaml", "data.keypoints: keypoint set file missing.yaml not found"),
    ("model.num_joints=16", "model.num_joints is 16, the keypoint set 'coco' has 17 joints"),
])
def test_a_bad_keypoint_option_is_one_line_when_the_config_loads(override, message):
    from hrpose.config import load_config

    with pytest.raises(HrposeError, match=message) as e:
        load_config(None, ["data.keypoints=coco", override])
    assert "\n" not in str(e.value)


def test_bottom_up_grouping_takes_the_sets_order(monkeypatch):
    """Joint types are matched in the keypoint set's grouping order, never one chosen by the
    number of joints."""
    from hrpose.codecs.associative_embedding import GroupingSettings
    from hrpose.inference import bottomup
    from hrpose.models.card import ModelCard

    seen = []

    def group(heatmaps, tags, settings, order=None):
        seen.append(tuple(order))
        return [(np.zeros((0, heatmaps.shape[1], 3), np.float32), np.zeros(0, np.float32))]

    class Runner:
        input_hw = (64, 64)

        def run_all(self, x):
            n = len(x)
            return [np.zeros((n, 34, 16, 16), np.float32), np.zeros((n, 17, 32, 32), np.float32)]

    monkeypatch.setattr(bottomup, "group", group)
    reversed_order = parse_skeleton({**COCO.to_dict(), "name": "coco_reversed",
                                     "grouping_order": list(COCO.joints[::-1])})
    cases = ((COCO, COCO.grouping_order), (reversed_order, tuple(range(16, -1, -1))))
    for skeleton, order in cases:
        est = bottomup.BottomUpEstimator(Runner(), ModelCard(None, (64, 64), skeleton,
                                                             kind="bottomup"),
                                         skeleton, flip=False, scales=(1.0,),
                                         grouping=GroupingSettings())
        est.run(np.zeros((40, 50, 3), np.uint8))
        assert seen[-1] == order


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "configs/keypoints")
                                        .glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_set_file_loads_with_its_sigmas(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # stated sigmas: no default, no warning
        skeleton = load_skeleton_file(path)
    assert skeleton.name == path.stem and skeleton.flip_pairs
