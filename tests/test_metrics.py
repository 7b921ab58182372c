import contextlib
import io
import json

import numpy as np
import pytest

# pycocotools (the official COCO evaluation) is a test dependency: the reference, never skipped.
from pycocotools import cocoeval as pycocotools

from hrpose.data.coco import load_coco
from hrpose.errors import HrposeError
from hrpose.metrics.coco import (
    KeypointResults,
    evaluate_keypoints,
    load_results,
    oks_nms,
    rescore,
    soft_oks_nms,
)
from hrpose.metrics.pckh import pckh, pckh_per_joint
from hrpose.metrics.protocols import COCO_STATS
from hrpose.skeletons import COCO

from .cocogen import random_keypoint_set


def pycocotools_stats(gt_file, results_file) -> np.ndarray:
    from pycocotools.coco import COCO as CocoApi

    with contextlib.redirect_stdout(io.StringIO()):
        gt = CocoApi(str(gt_file))
        e = pycocotools.COCOeval(gt, gt.loadRes(str(results_file)), "keypoints")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e.stats


@pytest.mark.parametrize("seed", range(6))
def test_coco_ap_equals_pycocotools(tmp_path, seed):
    gt, results = random_keypoint_set(60, 150, 900 if seed else 2000, seed)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    data = load_coco(tmp_path / "gt.json", COCO)
    ours = evaluate_keypoints(data, load_results(tmp_path / "res.json", 17))
    assert list(ours) == list(COCO_STATS)
    ref = pycocotools_stats(tmp_path / "gt.json", tmp_path / "res.json")
    assert np.round(list(ours.values()), 4).tolist() == np.round(ref, 4).tolist()
    assert 0.05 < ours["AP"] < 0.95                       # a set that tells numbers apart


def two_people_gt(tmp_path):
    kp_a = [[10 + 5 * j, 20 + 3 * j, 2] for j in range(17)]
    kp_b = [[200 + 4 * j, 50 + 2 * j, 2 if j < 10 else 0] for j in range(17)]
    for j in range(10, 17):
        kp_b[j][:2] = [0, 0]
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "width": 400, "height": 300}],
          "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.joints),
                          "skeleton": []}],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 15, 90, 60], "area": 5000.0,
               "iscrowd": 0, "num_keypoints": 17, "keypoints": np.ravel(kp_a).tolist()},
              {"id": 2, "image_id": 1, "category_id": 1, "bbox": [195, 45, 50, 30],
               "area": 1200.0, "iscrowd": 0, "num_keypoints": 10,
               "keypoints": np.ravel(kp_b).tolist()}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    return np.array(kp_a, float), np.array(kp_b, float)


def test_oks_by_hand_on_two_people(tmp_path):
    kp_a, kp_b = two_people_gt(tmp_path)
    sigmas = np.array(COCO.sigmas)
    det_a = kp_a.copy()
    det_a[:, 0] += 5.0                                   # every joint 5 px right
    det_b = kp_b.copy()
    det_b[:10, 1] += 1.4                                 # labelled joints 1.4 px down
    # OKS = mean over labelled joints of exp(-d^2 / (2 s^2 k^2)), s^2 = area, k = 2 sigma.
    oks_a = np.mean(np.exp(-25.0 / (2 * 5000.0 * (2 * sigmas) ** 2)))
    oks_b = np.mean(np.exp(-1.96 / (2 * 1200.0 * (2 * sigmas[:10]) ** 2)))
    assert (round(oks_a, 4), round(oks_b, 4)) == (0.7764, 0.8682)   # checked by hand
    results = [{"image_id": 1, "category_id": 1, "score": 0.9,
                "keypoints": np.c_[det_a[:, :2], np.ones(17)].ravel().tolist()},
               {"image_id": 1, "category_id": 1, "score": 0.8,
                "keypoints": np.c_[det_b[:, :2], np.ones(17)].ravel().tolist()}]
    (tmp_path / "res.json").write_text(json.dumps(results))
    stats = evaluate_keypoints(load_coco(tmp_path / "gt.json"),
                               load_results(tmp_path / "res.json", 17))
    # Both are found at OKS thresholds 0.50 .. 0.75; at 0.80 and 0.85 only b, ranked second
    # behind a's false positive; at 0.90 and 0.95 neither.
    thresholds = np.linspace(0.5, 0.95, 10)
    hits_a, hits_b = thresholds <= oks_a, thresholds <= oks_b
    ap = []
    for a, b in zip(hits_a, hits_b):
        if a and b:
            ap.append(1.0)
        elif b:   # ranked second behind a false positive: precision 0.5 from recall 0 to 0.5
            ap.append(np.mean([0.5] * 51 + [0.0] * 50))
        else:
            ap.append(0.0)
    assert stats["AP"] == pytest.approx(np.mean(ap))
    assert stats["AR"] == pytest.approx(np.mean((hits_a + 0.0 + hits_b) / 2))
    assert stats == pytest.approx(dict(zip(COCO_STATS,
                                           pycocotools_stats(tmp_path / "gt.json",
                                                             tmp_path / "res.json"))))


def test_rescoring_and_oks_nms():
    joint_scores = np.array([[0.9, 0.1, 0.5, 0.0], [0.1, 0.1, 0.1, 0.1]])
    assert rescore(np.array([0.8, 1.0]), joint_scores).tolist() == pytest.approx([0.8 * 0.7, 0])
    rng = np.random.default_rng(0)
    a = np.c_[rng.uniform(0, 100, (17, 2)), np.ones(17)]
    near = a.copy()
    near[:, :2] += 0.5                                   # a duplicate of a
    far = a.copy()
    far[:, :2] += 80                                     # another person
    kps, scores = np.stack([near, a, far]), np.array([0.7, 0.9, 0.8])
    areas = np.full(3, 10000.0)
    assert oks_nms(kps, scores, areas, COCO.sigmas, 0.9).tolist() == [1, 2]
    keep, decayed = soft_oks_nms(kps, scores, areas, COCO.sigmas, sigma=0.9)
    assert keep.tolist() == [1, 2, 0]                    # the duplicate stays, decayed below far
    assert decayed[2] < 0.7 * np.exp(-0.9) and decayed[1] == pytest.approx(0.8, rel=1e-6)


def test_result_and_annotation_errors_name_the_field(tmp_path):
    two_people_gt(tmp_path)
    data = load_coco(tmp_path / "gt.json")
    with pytest.raises(HrposeError, match=r"result #0: field 'keypoints' has 3 numbers, "
                                          "expected 51"):
        load_results([{"image_id": 1, "keypoints": [1, 2, 3], "score": 1.0}], 17)
    with pytest.raises(HrposeError, match="result #1: missing field 'score'"):
        load_results([{"image_id": 1, "keypoints": [0] * 51, "score": 1.0},
                      {"image_id": 1, "keypoints": [0] * 51}], 17)
    res = KeypointResults(np.array([9]), np.zeros((1, 17, 3)), np.ones(1))
    with pytest.raises(HrposeError, match=r"image_id 9 is not in gt\.json"):
        evaluate_keypoints(data, res)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("keypoints"), "annotation 1: missing field 'keypoints'"),
    (lambda a: a.update(keypoints=[1, 2, 2] * 16), r"annotation 1: field 'keypoints' has 48 "
                                                   r"numbers, expected 51"),
    (lambda a: a.update(bbox=[5, 5, -3, 10]), r"annotation 1: field 'bbox' \[5.0, 5.0, -3.0, "
                                              r"10.0\] has a negative width"),
    (lambda a: a.update(image_id=77), "annotation 1: image_id 77 is not in 'images'"),
    (lambda a: a.update(bbox="wide"), "annotation 1: field 'bbox' must be a list of numbers"),
])
def test_bad_annotation_files_give_one_line_errors(tmp_path, change, message):
    two_people_gt(tmp_path)
    gt = json.loads((tmp_path / "gt.json").read_text())
    change(gt["annotations"][0])
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    with pytest.raises(HrposeError, match=message) as e:
        load_coco(tmp_path / "gt.json")
    assert "\n" not in str(e.value) and "gt.json" in str(e.value)


def test_pckh_of_the_truth_is_100_and_a_shift_gives_the_hand_figure():
    rng = np.random.default_rng(0)
    gt = np.c_[rng.uniform(0, 100, (16, 2)), np.full(16, 2.0)][None].repeat(2, 0)
    gt[1, 3, 2] = 0                                       # one unlabelled joint
    heads = np.array([10.0, 20.0])
    assert pckh(gt, gt, heads)["PCKh"] == 100.0
    pred = gt.copy()
    pred[0, :8, 0] += 4.0         # person 0: joints 0-7 off by 0.4 head: hit @0.5, miss @0.1
    pred[0, 8:, 0] += 6.0         # joints 8-15 off by 0.6 head: miss
    pred[1, :, 1] += 1.0          # person 1: 0.05 head: hit at both
    per_joint, count = pckh_per_joint(pred, gt, heads)
    assert count.tolist() == [2, 2, 2, 1] + [2] * 12
    assert per_joint.tolist() == [100, 100, 100, 100] + [100] * 4 + [50] * 8
    table = pckh(pred, gt, heads)
    # Mean over joints without pelvis (6) and thorax (7), weighted by labelled counts:
    # joints 0-5: 11 labelled, all hit; joints 8-15: 16 labelled, 8 hit -> 19 / 27.
    assert table["PCKh"] == pytest.approx(100 * 19 / 27)
    # At 0.1 person 0's shifted joints all miss: hits are person 1's 13 non-excluded joints.
    assert table["PCKh@0.1"] == pytest.approx(100 * (5 + 8) / 27)
    assert table["Head"] == 50 and table["Hip"] == 100


def test_no_results_score_zero_rather_than_fail(tmp_path):
    """A model that found nobody (a bottom-up model early in training) misses every person:
    AP and AR 0, by COCO's rules and part by part."""
    from hrpose.metrics.protocols import COCO_WHOLEBODY

    from .cocogen import random_wholebody_set

    for name, (gt, _), k, protocol in (
            ("coco", random_keypoint_set(5, 10, 0), 17, None),
            ("wholebody", random_wholebody_set(5, 10, 0), 133, COCO_WHOLEBODY)):
        (tmp_path / f"{name}.json").write_text(json.dumps(gt))
        data = load_coco(tmp_path / f"{name}.json")
        empty = KeypointResults(np.zeros(0, np.int64), np.zeros((0, k, 3)), np.zeros(0))
        stats = evaluate_keypoints(data, empty, *(protocol,) if protocol else ())
        assert set(stats.values()) == {0.0} and len(stats) == (60 if protocol else 10)
