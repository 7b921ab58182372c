"""COCO-WholeBody: the 133-joint set against its reference definition, the reader of its part
fields, scoring part by part against xtcocotools' whole-body modes (generated data and a file
made from real images), both results layouts, mmpose's checkpoints, drawing, and the whole chain
(train, eval, infer on images and video, export, serve, batch) with a small model."""

import contextlib
import io
import json
import warnings

import cv2
import httpx
import numpy as np
import pytest
import torch
from xtcocotools.coco import COCO as XtCoco
from xtcocotools.cocoeval import COCOeval as XtCocoEval

from hrpose.cli import main
from hrpose.data.coco import find_dataset, load_coco
from hrpose.errors import HrposeError
from hrpose.inference.draw import draw_people, drawing_style
from hrpose.metrics.coco import KeypointResults, evaluate_keypoints, load_results
from hrpose.metrics.protocols import COCO_WHOLEBODY as PROTOCOL
from hrpose.models.loading import load_model
from hrpose.models.zoo import MODELS
from hrpose.skeletons import COCO, COCO_WHOLEBODY, parse_skeleton

from .cocogen import FIELDS, random_wholebody_set
from .helpers import randomize, shared_data

STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
# xtcocotools' mode per part, with the joints it reads ("" the whole person).
MODES = {"": ("keypoints_wholebody", slice(0, 133)), "body": ("keypoints_body", slice(0, 17)),
         "foot": ("keypoints_foot", slice(17, 23)), "face": ("keypoints_face", slice(23, 91)),
         "left_hand": ("keypoints_lefthand", slice(91, 112)),
         "right_hand": ("keypoints_righthand", slice(112, 133))}
# COCO-WholeBody's evaluation sigmas as its evaluation script and mmpose's dataset file list
# them, in the files' order.
REFERENCE_SIGMAS = [
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
    0.087, 0.087, 0.089, 0.089, 0.068, 0.066, 0.066, 0.092, 0.094, 0.094, 0.042, 0.043, 0.044,
    0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029, 0.032, 0.037, 0.038, 0.043, 0.041,
    0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011, 0.011, 0.013, 0.015, 0.009, 0.007,
    0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.010, 0.017, 0.011, 0.009, 0.011, 0.009, 0.007,
    0.013, 0.008, 0.011, 0.012, 0.010, 0.034, 0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010,
    0.008, 0.009, 0.009, 0.009, 0.007, 0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.01, 0.008,
    0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026,
    0.017, 0.021, 0.021, 0.032, 0.02, 0.019, 0.022, 0.031, 0.029, 0.022, 0.035, 0.037, 0.047,
    0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.02,
    0.019, 0.022, 0.031]


def test_the_set_is_the_references():
    s = COCO_WHOLEBODY
    assert s.num_joints == 133 and s.joints[:17] == COCO.joints
    assert np.allclose(s.sigmas, REFERENCE_SIGMAS, rtol=0, atol=1e-12)
    assert [(p, b - a) for p, a, b in s.parts] == [
        ("body", 17), ("foot", 6), ("face", 68), ("left_hand", 21), ("right_hand", 21)]
    names = s.joints
    pairs = {(names[a], names[b]) for a, b in s.flip_pairs}
    # mmpose's `swap` entries, a sample of each kind: jaw, brows, eyes, lips, feet, fingers
    for left, right in [("face-16", "face-0"), ("face-26", "face-17"), ("face-45", "face-36"),
                        ("face-47", "face-40"), ("face-54", "face-48"), ("face-65", "face-67"),
                        ("left_heel", "right_heel"), ("left_pinky_finger4",
                                                      "right_pinky_finger4")]:
        assert (left, right) in pairs
    flip = s.flip_index
    assert (flip[flip] == np.arange(133)).all()
    # its own mirror: the nose, the chin, the nose bridge and tip, the lips' midpoints
    assert sorted(names[j] for j in np.flatnonzero(flip == np.arange(133))) == sorted(
        ["nose", "face-8", "face-27", "face-28", "face-29", "face-30", "face-33", "face-51",
         "face-57", "face-62", "face-66"])
    assert parse_skeleton(s.to_dict()) is s            # parts travel in the serial form
    changed = {**s.to_dict(), "parts": {"body": ["nose", "right_heel"]}}
    with pytest.raises(HrposeError, match="built-in set's name"):
        parse_skeleton(changed)


def reference(gt_file, res_file, part: str) -> list[float]:
    mode, joints = MODES[part]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")           # "'foot_score' not found, use 'score'"
        gt = XtCoco(str(gt_file))
        e = XtCocoEval(gt, gt.loadRes(str(res_file)), mode,
                       np.asarray(REFERENCE_SIGMAS)[joints], use_area=True)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return [float(v) for v in e.stats]


def assert_equals_reference(ours: dict, gt_file, res_file):
    for part in MODES:
        prefix = f"{part}_" if part else ""
        mine = [ours[prefix + name] for name in STATS]
        assert np.round(mine, 4).tolist() == np.round(reference(gt_file, res_file, part),
                                                      4).tolist(), part


def write_pair(tmp_path, gt, results):
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    return tmp_path / "gt.json", tmp_path / "res.json"


@pytest.mark.parametrize("seed", [0, 1])
def test_every_part_equals_xtcocotools_on_generated_people(tmp_path, seed):
    gt_file, res_file = write_pair(tmp_path, *random_wholebody_set(60, 400, 600, seed))
    data = load_coco(gt_file)
    assert data.wholebody and data.skeleton is COCO_WHOLEBODY
    results = load_results(res_file, 133)
    assert set(results.part_scores) == {"foot_score", "face_score", "lefthand_score",
                                        "righthand_score", "wholebody_score"}
    ours = evaluate_keypoints(data, results, PROTOCOL)
    assert list(ours)[:10] == list(STATS) and len(ours) == 60
    assert_equals_reference(ours, gt_file, res_file)
    # the same results as 133-joint rows (each part's own score kept) score the same
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{**{k: v for k, v in r.items() if k not in FIELDS},
                                 "keypoints": [v for f in FIELDS for v in r[f]]}
                                for r in json.loads(res_file.read_text())]))
    assert evaluate_keypoints(data, load_results(rows, 133), PROTOCOL) == ours


def real_wholebody_file(tmp_path):
    """coco-tiny's real people with feet, face and hands placed about their real joints
    (toes below the ankles, a face around the nose at the eyes' scale, fingers beyond the
    wrists), and noisy copies of them as results."""
    coco = json.loads(shared_data("coco-tiny", "annotations",
                                  "person_keypoints_val2017.json").read_text())
    rng = np.random.default_rng(5)
    for ann in coco["annotations"]:
        body = np.array(ann["keypoints"], float).reshape(17, 3)
        scale = max(ann["bbox"][3], 1) / 8
        parts = {"foot_kpts": [(15, 3), (16, 3)], "face_kpts": [(0, 68)],
                 "lefthand_kpts": [(9, 21)], "righthand_kpts": [(10, 21)]}
        for field, anchors in parts.items():
            rows = []
            for joint, n in anchors:
                xy = body[joint, :2] + rng.normal(0, 0.2 * scale, (n, 2))
                flag = body[joint, 2] * (rng.random(n) < 0.9)
                rows += [[*p, f] if f else [0, 0, 0] for p, f in zip(xy.tolist(), flag)]
            ann[field] = np.round(rows, 2).ravel().tolist()
            ann[field.replace("_kpts", "_valid")] = bool(np.any(np.array(rows)[:, 2] > 0))
    results = []
    for ann in coco["annotations"]:
        for _ in range(int(rng.integers(0, 3))):
            kp = np.concatenate([np.array(ann[f], float).reshape(-1, 3) for f in FIELDS])
            kp[:, :2] += rng.normal(0, rng.uniform(0.3, 6), (133, 2))
            kp[:, 2] = rng.uniform(0.05, 1, 133)
            result = {"image_id": ann["image_id"], "category_id": 1,
                      "score": float(np.round(rng.uniform(0.1, 1), 2))}
            for field, (_, a, b) in zip(FIELDS, COCO_WHOLEBODY.parts):
                result[field] = np.round(kp[a:b], 2).ravel().tolist()
            results.append(result)
    return write_pair(tmp_path, coco, results)


def test_every_part_equals_xtcocotools_on_real_images(tmp_path):
    gt_file, res_file = real_wholebody_file(tmp_path)
    ours = evaluate_keypoints(load_coco(gt_file), load_results(res_file, 133), PROTOCOL)
    assert_equals_reference(ours, gt_file, res_file)
    assert 0 < ours["AP"] < 1


def test_the_reader_respects_validity_and_names_bad_fields(tmp_path):
    gt, _ = random_wholebody_set(4, 12, 0, 2)
    ann = gt["annotations"][0]
    ann["face_kpts"] = [10.0, 10.0, 2.0] * 68
    ann["face_valid"] = False                        # labelled points of an invalid part
    path = tmp_path / "coco_wholebody_val_v1.0.json"
    path.write_text(json.dumps(gt))
    data = load_coco(path)
    assert (data.keypoints[0, 23:91] == 0).all()
    assert data.num_keypoints[0] == (data.keypoints[0, :, 2] > 0).sum()
    # a body model reads a whole-body file's 17 body joints
    body = load_coco(path, COCO)
    assert body.keypoints.shape[1:] == (17, 3) and not body.wholebody
    assert np.array_equal(body.keypoints, data.keypoints[:, :17])
    del gt["annotations"][3]["lefthand_kpts"]
    path.write_text(json.dumps(gt))
    with pytest.raises(HrposeError, match=r"annotation \d+: missing field 'lefthand_kpts'"):
        load_coco(path)
    gt["annotations"][3]["lefthand_kpts"] = [1.0] * 62
    path.write_text(json.dumps(gt))
    with pytest.raises(HrposeError, match=r"'lefthand_kpts'.*63"):
        load_coco(path)
    # a COCO root holding COCO-WholeBody's file: found with its images
    (tmp_path / "root/annotations").mkdir(parents=True)
    (tmp_path / "root/val2017").mkdir()
    (tmp_path / "root/annotations/coco_wholebody_val_v1.0.json").write_text("{}")
    assert find_dataset(tmp_path / "root") == (
        tmp_path / "root/annotations/coco_wholebody_val_v1.0.json", tmp_path / "root/val2017")


def test_the_protocol_is_chosen_by_the_data_and_refused_elsewhere(tmp_path, capsys):
    gt_file, res_file = write_pair(tmp_path, *random_wholebody_set(10, 30, 40, 3))
    out = tmp_path / "scored"
    assert main(["eval", "--results", str(res_file), "--data", str(tmp_path), "--ann",
                 str(gt_file), "--out", str(out), "--json"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"]["name"] == "coco-wholebody"
    assert metrics["protocol"]["chosen"] == "the file has COCO-WholeBody's part fields"
    assert {"face_AP", "left_hand_AR", "right_hand_AP", "foot_ARl"} <= set(metrics)
    coco = tmp_path / "coco.json"
    coco.write_text(shared_data("coco-tiny", "annotations",
                                "person_keypoints_val2017.json").read_text())
    assert main(["eval", "--results", str(res_file), "--data", str(tmp_path), "--ann",
                 str(coco), "--out", str(tmp_path / "no"), "--protocol", "coco-wholebody"]) != 0
    assert ("coco.json: the coco-wholebody protocol scores COCO-WholeBody files"
            in capsys.readouterr().err)


def test_results_round_trip_in_both_layouts(tmp_path):
    rng = np.random.default_rng(0)
    results = KeypointResults(np.array([1, 1, 2]), rng.uniform(0, 100, (3, 133, 3)),
                              np.array([0.9, 0.5, 0.7]),
                              part_scores={"face_score": np.array([0.3, np.nan, 0.1])})
    for by_part in (False, True):
        path = tmp_path / f"results_{by_part}.json"
        results.save(path, by_part)
        rows = json.loads(path.read_text())
        assert ("face_kpts" in rows[0]) == by_part and "face_score" not in rows[1]
        back = load_results(path, 133)
        assert np.allclose(back.keypoints, results.keypoints, atol=5e-4)
        assert np.allclose(back.part_score("face"), [0.3, 0.5, 0.1])


@pytest.mark.parametrize("layout", ["mmpose0", "mmpose1"])
def test_mmposes_whole_body_checkpoints_load(tmp_path, layout):
    spec = MODELS["hrnet_w32_256x192_coco_wholebody"]
    source = randomize(spec.create(), seed=1).eval()
    state = {k: v.clone() for k, v in source.state_dict().items()}
    if layout == "mmpose0":
        state = {k.replace("head.", "keypoint_head.", 1) if k.startswith("head.") else k: v
                 for k, v in state.items()}
    path = tmp_path / "hrnet_w32_coco_wholebody_256x192.pth"
    torch.save({"meta": {"epoch": 210}, "state_dict": state}, path)
    model, card = load_model(spec.name, path)
    assert card.keypoints is COCO_WHOLEBODY and card.name == spec.name
    x = torch.randn(1, 3, 256, 192, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model.eval()(x)
        assert out.shape == (1, 133, 64, 48) and torch.equal(out, source(x))


def test_face_and_hands_are_drawn_thinner_in_their_own_colours():
    style = drawing_style(COCO_WHOLEBODY)
    part = COCO_WHOLEBODY.part_of_joint()
    width = {p: {w for (a, b), w in zip(COCO_WHOLEBODY.links, style.link_widths)
                 if part[a] == part[b] == p} for p in ("body", "face", "left_hand")}
    assert width["body"] == {1.0} and max(width["face"]) < max(width["left_hand"]) < 1
    assert len({style.joint_colours[j] for j in (30, 95, 120)}) == 3
    assert style.joint_outlined[0] and not style.joint_outlined[50]
    # the face's points land on the picture, each a few pixels, at any size
    rng = np.random.default_rng(0)
    for side in (320, 1280):
        kp = np.zeros((1, 133, 3))
        kp[0, :, :2] = rng.uniform(0.2, 0.8, (133, 2)) * side
        kp[0, :, 2] = 1
        drawn = draw_people(np.zeros((side, side, 3), np.uint8), kp, COCO_WHOLEBODY)
        x, y = np.round(kp[0, 40, :2]).astype(int)
        assert tuple(drawn[y, x]) == (255, 255, 255)
        lit = (drawn.sum(-1) > 0).mean()
        assert 0.01 < lit < 0.6


@pytest.fixture(scope="module")
def wholebody_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("wb") / "data"
    assert main(["data", "synth", "--wholebody", "--out", str(root), "--train", "12", "--val",
                 "6", "--workers", "1", "--json"]) == 0
    return root


def test_the_synthetic_set_is_whole_body_and_readable(wholebody_root):
    data = load_coco(wholebody_root / "annotations/person_keypoints_val2017.json")
    assert data.wholebody and data.keypoints.shape[1] == 133
    labelled = (data.keypoints[..., 2] > 0).mean(0)
    assert all(labelled[a:b].mean() > 0.3 for _, a, b in COCO_WHOLEBODY.parts)
    raw = json.loads((wholebody_root / "annotations/person_keypoints_val2017.json").read_text())
    assert {"face_box", "lefthand_valid", "foot_kpts"} <= set(raw["annotations"][0])


def test_data_check_finds_every_mirrored_pair_the_right_way_round(wholebody_root, capsys):
    """The drawn people face the camera mostly: each of the set's left joints (face points
    included, by the iBUG numbering) lies right of its twin in the picture for most people."""
    assert main(["data", "check", str(wholebody_root / "annotations/person_keypoints_train2017"
                                      ".json"), "--sheet", "none", "--json"]) == 0
    pairs = json.loads(capsys.readouterr().out)["files"][0]["flip_pairs"]
    assert len(pairs) == 61 and not [p for p in pairs if p["suspicious"]]


@pytest.mark.slow
def test_the_whole_chain_on_a_whole_body_model(wholebody_root, tinypose_checkpoint, tmp_path):
    """Fine-tune PP-TinyPose into 133 joints (its 17 body rows carried), then eval, infer on
    images and a video with smoothing, export with the verification gate, serve, batch."""
    from hrpose.inference.estimator import PoseEstimator
    from hrpose.inference.options import EstimatorOptions
    from hrpose.serve.settings import ServeSettings

    from .serving import serving

    run = tmp_path / "run"
    recipe = "configs/custom/tinypose_finetune.yaml"
    overrides = [f"data.root={wholebody_root}", f"model.init={tinypose_checkpoint}",
                 "data.keypoints=coco_wholebody", "train.epochs=1", "train.max_iters=2",
                 "train.batch=4", "train.warmup_iters=0", "train.draw_images=1",
                 "train.amp=none"]
    assert main(["train", recipe, "--out", str(run),
                 *(arg for o in overrides for arg in ("-o", o))]) == 0
    model = run / "best.safetensors"
    assert main(["eval", str(model), "--data", str(wholebody_root), "--out",
                 str(tmp_path / "eval"), "--json"]) == 0
    metrics = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert metrics["protocol"]["name"] == "coco-wholebody" and "face_AP" in metrics
    written = json.loads((tmp_path / "eval/results.json").read_text())
    assert len(written[0]["face_kpts"]) == 204           # the reference layout

    images = wholebody_root / "val2017"
    assert main(["infer", str(images), "--model", str(model), "--detector", "none", "--out",
                 str(tmp_path / "infer"), "--results-layout", "parts", "--json"]) == 0
    rows = json.loads((tmp_path / "infer/results.json").read_text())
    assert len(rows[0]["righthand_kpts"]) == 63 and len(rows[0]["keypoints"]) == 51
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 320))
    for image in sorted(images.iterdir()):
        writer.write(cv2.resize(cv2.imread(str(image)), (320, 320)))
    writer.release()
    assert main(["infer", str(clip), "--model", str(model), "--detector", "none", "--smooth",
                 "--out", str(tmp_path / "video"), "--json"]) == 0
    frames = json.loads((tmp_path / "video/results.json").read_text())
    assert len(frames) == 6 and len(frames[0]["keypoints"]) == 399

    onnx = tmp_path / "wholebody.onnx"
    assert main(["export", str(model), "--out", str(onnx), "--calib", str(wholebody_root),
                 "--json"]) == 0
    exported = PoseEstimator(onnx, detector=None)
    assert exported.card.keypoints == COCO_WHOLEBODY
    xml = tmp_path / "wholebody.xml"
    assert main(["export", str(model), "--format", "openvino", "--out", str(xml), "--calib",
                 str(wholebody_root), "--json"]) == 0
    photo = images / sorted(p.name for p in images.iterdir())[0]
    found = PoseEstimator(xml, detector=None)(photo)
    assert found[0].keypoints.shape == (133, 3) and found[0].skeleton == COCO_WHOLEBODY
    with serving(ServeSettings(model=str(onnx), options=EstimatorOptions(detector=None))) as url:
        served = httpx.get(url + "/v1/model").json()["keypoints"]
        answer = httpx.post(url + "/v1/pose", files={"image": ("a.jpg", photo.read_bytes())}
                            ).json()
    assert served["set"] == "coco_wholebody" and len(served["link_widths"]) == len(
        COCO_WHOLEBODY.links)
    assert len(answer["people"][0]["keypoints"]) == 133
    assert main(["infer", str(images), "--model", str(onnx), "--detector", "none",
                 "--format", "parquet", "--out", str(tmp_path / "batch"), "--json"]) == 0
    import pyarrow.parquet as pq

    table = pq.read_table(sorted((tmp_path / "batch").glob("part-*.parquet"))[0])
    assert len(table.column("keypoints")[0].as_py()) == 399       # [x, y, score] * 133


@pytest.mark.parametrize("width, hw", [(32, (256, 192)), (32, (384, 288)), (48, (256, 192)),
                                       (48, (384, 288))])
def test_the_zoos_whole_body_sizes_are_the_body_models_plus_116_head_rows(width, hw):
    """`hrpose info`'s recorded counts: the 1x1 head conv's 116 more rows (weights and a bias
    each; one MAC per weight per heatmap pixel)."""
    from hrpose.info import FACTS

    body, whole = FACTS[f"hrnet_w{width}_{hw[0]}x{hw[1]}"], FACTS[
        f"hrnet_w{width}_{hw[0]}x{hw[1]}_coco_wholebody"]
    assert whole["params"] - body["params"] == 116 * (width + 1)
    assert whole["macs"] - body["macs"] == 116 * width * (hw[0] // 4) * (hw[1] // 4)
    assert whole["output_shape"] == [1, 133, hw[0] // 4, hw[1] // 4]
