"""Benchmarks scored as published: CrowdPose and OCHuman against xtcocotools (the reference
implementation mmpose uses, built from source in the test extra), MPII's PCKh with the official
head boxes against a hand-checked case, and the protocol chosen by the data and named in
metrics.json."""

import contextlib
import io
import json
import logging

import numpy as np
import pytest
from scipy.io import savemat

# xtcocotools: the reference for CrowdPose's and OCHuman's numbers, never skipped.
from xtcocotools.coco import COCO as XtCoco
from xtcocotools.cocoeval import COCOeval as XtCocoEval

from hrpose.data.coco import load_coco, load_keypoints
from hrpose.engine.evaluate import evaluate, score_results_file
from hrpose.errors import HrposeError
from hrpose.inference.backends import TorchRunner
from hrpose.metrics.coco import evaluate_keypoints, load_results
from hrpose.metrics.protocols import CROWDPOSE, OCHUMAN

from .cocogen import random_crowd_set, random_keypoint_set
from .helpers import shared_data, tiny_hrnet


def reference_stats(gt_file, results_file, mode: str, sigmas, use_area: bool) -> list[float]:
    """xtcocotools' numbers, as mmpose computes them for CrowdPose ("keypoints_crowd",
    use_area=False) and OCHuman ("keypoints")."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = XtCoco(str(gt_file))
        e = XtCocoEval(gt, gt.loadRes(str(results_file)), mode, np.asarray(sigmas), use_area)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return [float(v) for v in e.stats]


def write_pair(tmp_path, gt, results):
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    return tmp_path / "gt.json", tmp_path / "res.json"


def assert_equal_4(ours: dict, reference: list[float]):
    assert np.round(list(ours.values()), 4).tolist() == np.round(reference, 4).tolist(), (
        ours, reference)


@pytest.mark.parametrize("seed", [0, 1])
def test_crowdpose_equals_xtcocotools_on_generated_crowds(tmp_path, seed):
    gt_file, res_file = write_pair(tmp_path, *random_crowd_set(60, 400, 600, seed))
    data = load_coco(gt_file)
    ours = evaluate_keypoints(data, load_results(res_file, 14), CROWDPOSE)
    assert list(ours) == list(CROWDPOSE.stats)
    assert_equal_4(ours, reference_stats(gt_file, res_file, "keypoints_crowd",
                                         data.skeleton.sigmas, use_area=False))
    # COCO's rules on the same file (OKS area w x h) run high: the reason for the protocol.
    coco_rules = evaluate_keypoints(data, load_results(res_file, 14))
    assert coco_rules["AP"] > ours["AP"] + 0.02


def test_ochuman_equals_xtcocotools_keypoints_mode(tmp_path):
    gt, results = random_keypoint_set(60, 400, 600, 3)
    for j, result in enumerate(results):       # unscored results: xtcocotools drops them
        if j % 17 == 0:
            result["keypoints"][2::3] = [0] * 17
    for ann in gt["annotations"][::13]:        # num_keypoints disagreeing with the flags
        ann["num_keypoints"] = 0
    gt_file, res_file = write_pair(tmp_path, gt, results)
    data = load_coco(gt_file)
    ours = evaluate_keypoints(data, load_results(res_file, 17), OCHUMAN)
    assert_equal_4(ours, reference_stats(gt_file, res_file, "keypoints", data.skeleton.sigmas,
                                         use_area=True))


def noisy_results(gt: dict, seed: int, extra: int = 3) -> list[dict]:
    """Each labelled person's joints moved by a few pixels, scored, plus false positives."""
    rng = np.random.default_rng(seed)
    results = []
    for ann in gt["annotations"]:
        kp = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        x, y, w, h = ann["bbox"]
        kp[:, :2] = np.where(kp[:, 2:] > 0, kp[:, :2],
                             [x + w / 2, y + h / 2]) + rng.normal(0, 4, (len(kp), 2))
        kp[:, 2] = rng.uniform(0.05, 1, len(kp))
        results.append({"image_id": ann["image_id"], "category_id": 1,
                        "keypoints": np.round(kp, 2).ravel().tolist(),
                        "score": float(rng.uniform(0.3, 1))})
    images = [image["id"] for image in gt["images"]]
    k = len(gt["categories"][0]["keypoints"])
    for j in range(extra):
        kp = np.column_stack([rng.uniform(0, 600, k), rng.uniform(0, 400, k),
                              rng.uniform(0, 1, k)])
        results.append({"image_id": images[j % len(images)], "category_id": 1,
                        "keypoints": np.round(kp, 2).ravel().tolist(),
                        "score": float(rng.uniform(0, 1))})
    return results


@pytest.mark.parametrize(("folder", "file", "mode", "protocol"), [
    ("crowdpose-tiny", "test_crowdpose.json", "keypoints_crowd", "crowdpose"),
    ("ochuman-tiny", "test_ochuman.json", "keypoints", "ochuman")])
def test_shared_sets_are_scored_as_xtcocotools_scores_them(tmp_path, folder, file, mode,
                                                           protocol):
    ann = shared_data(folder, file)
    gt = json.loads(ann.read_text())
    res_file = tmp_path / "results.json"
    res_file.write_text(json.dumps(noisy_results(gt, 0)))
    out = tmp_path / "out"
    ours = score_results_file(res_file, ann.parent, out, ann)       # protocol: auto
    written = json.loads((out / "metrics.json").read_text())
    assert written["protocol"]["name"] == protocol
    sigmas = written["protocol"]["sigmas"]
    assert_equal_4(ours, reference_stats(ann, res_file, mode, sigmas, mode == "keypoints"))


def test_protocol_is_chosen_by_the_data_and_can_be_forced(tmp_path):
    coco = shared_data("coco-tiny", "annotations", "person_keypoints_val2017.json")
    gt = json.loads(coco.read_text())
    res_file = tmp_path / "results.json"
    res_file.write_text(json.dumps(noisy_results(gt, 1)))
    before = score_results_file(res_file, coco.parent, tmp_path / "auto", coco)
    written = json.loads((tmp_path / "auto" / "metrics.json").read_text())
    # COCO files: the same ten numbers as before, metrics.json only gains the protocol.
    assert list(before) == ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm",
                            "ARl"]
    assert written["protocol"]["name"] == "coco"
    assert written["protocol"]["chosen"] == "a COCO-format file"
    forced = score_results_file(res_file, coco.parent, tmp_path / "oc", coco, "ochuman")
    assert forced["AP"] == pytest.approx(before["AP"])          # no unscored results here
    with pytest.raises(HrposeError, match="crowdIndex"):
        score_results_file(res_file, coco.parent, tmp_path / "c", coco, "crowdpose")
    with pytest.raises(HrposeError, match="scores MPII files"):
        score_results_file(res_file, coco.parent, tmp_path / "m", coco, "mpii")


def test_a_model_on_crowdpose_tiny_reports_crowd_levels(tmp_path):
    from hrpose.config import EvalSettings

    root = shared_data("crowdpose-tiny")
    runner = TorchRunner(tiny_hrnet(8, num_joints=14).eval(), (64, 64))
    metrics = evaluate(runner, root, tmp_path, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
                       EvalSettings(flip=False,
                                    det_json=str(root / "test_crowdpose_det_AP_40.json")),
                       ann=root / "test_crowdpose.json", images=root, progress=False, draw=0)
    assert {"AP_easy", "AP_medium", "AP_hard"} <= set(metrics)
    # Both images have crowdIndex 0.33 and 0.39: medium; no easy or hard image (-1, as
    # xtcocotools reports an empty split).
    assert metrics["AP_easy"] == metrics["AP_hard"] == -1
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["protocol"]["oks_area"] == "0.53 x box area"
    assert written["protocol"]["crowd_index_bounds"] == [0.2, 0.8]


# MPII: a hand-checked case. Two people with head boxes of diagonal 10 and 20 px (head sizes 6
# and 12 px), every predicted joint 5 px off: beyond 0.5 x 6 = 3 px for person 0, within
# 0.5 x 12 = 6 px for person 1, so PCKh@0.5 is 50% for every joint.
def mpii_case(tmp_path, headbox_in_file: bool = True):
    rng = np.random.default_rng(0)
    joints = rng.uniform(100, 300, (2, 16, 2))
    entries = [{"image": f"{i:09d}.jpg", "center": [200.0, 200.0], "scale": 1.5,
                "joints": joints[i].tolist(), "joints_vis": [1] * 16} for i in range(2)]
    (tmp_path / "mpii_val.json").write_text(json.dumps(entries))
    # headboxes_src (2, 2, people): [[x1, y1], [x2, y2]] per person, MATLAB's layout.
    boxes = np.zeros((2, 2, 2))
    boxes[0, :, 0], boxes[1, :, 0] = [0, 0], [6, 8]         # diagonal 10 -> head size 6
    boxes[0, :, 1], boxes[1, :, 1] = [0, 0], [12, 16]       # diagonal 20 -> head size 12
    savemat(tmp_path / "mpii_gt_val.mat", {"headboxes_src": boxes,
                                           "pos_gt_src": joints.transpose(1, 2, 0)})
    pred = joints - 1 + np.array([3.0, 4.0])                 # 5 px off, 0-based
    results = [{"image_id": i + 1, "category_id": 1,
                "keypoints": np.column_stack([pred[i], np.ones(16)]).ravel().tolist(),
                "score": 1.0} for i in range(2)]
    (tmp_path / "results.json").write_text(json.dumps(results))
    return tmp_path / "mpii_val.json", tmp_path / "results.json"


def test_mpii_pckh_with_the_official_head_boxes(tmp_path, caplog):
    ann, res = mpii_case(tmp_path)
    with caplog.at_level(logging.WARNING):
        metrics = score_results_file(res, tmp_path, tmp_path / "out", ann)  # .mat beside
    assert not caplog.records
    # 5 / 6 > 0.5 misses, 5 / 12 <= 0.5 hits: every joint 50%; at 0.1 none.
    assert metrics["PCKh"] == pytest.approx(50.0)
    assert metrics["Head"] == metrics["Ankle"] == pytest.approx(50.0)
    assert metrics["PCKh@0.1"] == 0.0 and metrics["PCKh@0.11"] == 0.0
    assert list(metrics["per_joint"])[:2] == ["right_ankle", "right_knee"]
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["protocol"]["name"] == "mpii"
    assert written["protocol"]["head_sizes"] == "mpii_gt_val.mat head boxes"
    # The head sizes are the official 0.6 x head box diagonal.
    data = load_keypoints(ann, headboxes=tmp_path / "mpii_gt_val.mat")
    assert data.head_sizes.tolist() == pytest.approx([6.0, 12.0])


def test_mpii_without_head_boxes_warns_that_it_is_not_the_published_protocol(tmp_path,
                                                                             caplog):
    ann, res = mpii_case(tmp_path)
    (tmp_path / "mpii_gt_val.mat").rename(tmp_path / "elsewhere.mat")
    with caplog.at_level(logging.WARNING):
        score_results_file(res, tmp_path, tmp_path / "out", ann)
    assert len(caplog.records) == 1
    assert "not MPII's published protocol" in caplog.records[0].getMessage()
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert "not the published protocol" in written["protocol"]["head_sizes"]


def test_mpii_head_boxes_of_another_file_are_refused(tmp_path):
    ann, res = mpii_case(tmp_path)
    boxes = np.ones((2, 2, 3))
    savemat(tmp_path / "three.mat", {"headboxes_src": boxes})
    with pytest.raises(HrposeError, match="3 head boxes for the 2 people"):
        score_results_file(res, tmp_path, tmp_path / "o", ann, headboxes=tmp_path / "three.mat")
    shuffled = np.zeros((2, 2, 2))
    shuffled[1] = 10
    savemat(tmp_path / "other.mat", {"headboxes_src": shuffled,
                                     "pos_gt_src": np.zeros((16, 2, 2)) + 500})
    with pytest.raises(HrposeError, match=r"its joints are not those of mpii_val\.json"):
        score_results_file(res, tmp_path, tmp_path / "o", ann, headboxes=tmp_path / "other.mat")
    (tmp_path / "bad.mat").write_bytes(b"not a mat file")
    with pytest.raises(HrposeError, match=r"bad\.mat: not a MATLAB"):
        score_results_file(res, tmp_path, tmp_path / "o", ann, headboxes=tmp_path / "bad.mat")


def test_a_damaged_mat_file_that_crashes_scipys_reader_is_one_line(tmp_path):
    ann, res = mpii_case(tmp_path)
    savemat(tmp_path / "crash.mat", {"headboxes_src": np.ones((2, 2, 2))})
    damaged = bytearray((tmp_path / "crash.mat").read_bytes())
    damaged[201] = 22                  # the real part's data type: no such type
    (tmp_path / "crash.mat").write_bytes(bytes(damaged))
    with pytest.raises(HrposeError, match=r"crash\.mat: not a MATLAB \.mat file scipy can read"):
        score_results_file(res, tmp_path, tmp_path / "o", ann,
                           headboxes=tmp_path / "crash.mat")


@pytest.mark.parametrize("name", ["hrnet_w32_256x192_crowdpose", "higherhrnet_w32_512_crowdpose",
                                  "hrnet_w48_256x256_mpii"])
def test_published_non_coco_weights_load_from_mmposes_layout(tmp_path, name):
    """A file in mmpose 0.x's layout (keypoint_head., a state_dict in a dict with meta), named
    as the zoo's URL names it, loads into the zoo model with the set of its card."""
    import torch

    from hrpose.models.loading import load_model
    from hrpose.models.zoo import MODELS, create_model

    from .helpers import randomize

    spec = MODELS[name]
    source = randomize(create_model(name), seed=1).eval()
    state = {k.replace("head.", "keypoint_head.", 1) if k.startswith("head.") else k: v
             for k, v in source.state_dict().items()}
    path = tmp_path / spec.weights_url.rsplit("/", 1)[1]
    torch.save({"meta": {"epoch": 210}, "state_dict": state}, path)
    model, card = load_model(name, path)
    assert card.keypoints.name == spec.keypoints
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        got, want = model(x), source(x)
    for a, b in zip(got if isinstance(got, (list, tuple)) else [got],
                    want if isinstance(want, (list, tuple)) else [want]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_cli_scores_a_results_file_by_the_protocol_asked(tmp_path):
    from hrpose.cli import main

    gt, results = random_crowd_set(12, 60, 90, 4)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "crowd.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["eval", "--results", str(tmp_path / "res.json"), "--data",
                     str(tmp_path / "data"), "--protocol", "crowdpose", "--out",
                     str(tmp_path / "out"), "--json"]) == 0
    printed = json.loads(out.getvalue())
    assert {"AP_easy", "AP_medium", "AP_hard"} <= set(printed) and "APm" not in printed
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["eval", "--results", str(tmp_path / "res.json"), "--data",
                     str(tmp_path / "data"), "--protocol", "coco", "--out",
                     str(tmp_path / "coco"), "--json"]) == 0
    coco = json.loads((tmp_path / "coco" / "metrics.json").read_text())
    assert coco["protocol"]["name"] == "coco" and coco["protocol"]["chosen"] == "--protocol"


def test_a_coco_model_on_ochuman_tiny_is_scored_as_xtcocotools_scores_its_results(tmp_path):
    """PP-TinyPose (COCO-trained) on OCHuman's occluded people with ground-truth boxes, the
    published setting: the protocol is OCHuman's and the numbers are xtcocotools'."""
    from .helpers import TINYPOSE_XML

    root = shared_data("ochuman-tiny")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        from hrpose.cli import main

        assert main(["eval", str(shared_data(TINYPOSE_XML)), "--data", str(root), "--out",
                     str(tmp_path), "--draw", "0", "--json"]) == 0
    ours = json.loads(out.getvalue())
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["protocol"]["name"] == "ochuman" and written["boxes"] == "ground truth"
    reference = reference_stats(root / "test_ochuman.json", tmp_path / "results.json",
                                "keypoints", written["protocol"]["sigmas"], use_area=True)
    assert_equal_4({k: ours[k] for k in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50",
                                         "AR75", "ARm", "ARl")}, reference)
    assert ours["AP"] > 0.3          # a real model finds most of these occluded people


def test_a_bottom_up_model_on_crowdpose_tiny_is_scored_by_crowdposes_rules(tmp_path):
    from hrpose.config import EvalSettings
    from hrpose.engine.evaluate import evaluate_bottomup
    from hrpose.models.higherhrnet import HigherHRNetArch

    from .helpers import randomize

    model = randomize(HigherHRNetArch(width=8, deconv_blocks=1, layer1_blocks=1, num_blocks=1,
                                      stage_modules=(1, 1, 1), num_joints=14).create()).eval()
    root = shared_data("crowdpose-tiny")
    metrics = evaluate_bottomup(TorchRunner(model, (128, 128)), root, tmp_path,
                                (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 128,
                                EvalSettings(flip=False), ann=root / "test_crowdpose.json",
                                images=root, progress=False, draw=0)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["protocol"]["name"] == "crowdpose"
    assert list(metrics) == list(CROWDPOSE.stats)
    results = tmp_path / "results.json"
    assert json.loads(results.read_text())      # a random model still groups some people
    assert_equal_4(metrics, reference_stats(root / "test_crowdpose.json", results,
                                            "keypoints_crowd", written["protocol"]["sigmas"],
                                            use_area=False))
