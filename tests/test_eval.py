import contextlib
import io
import json

import numpy as np
import pytest
import torch

from hrpose.cli import main
from hrpose.errors import HrposeError
from hrpose.inference.backends import OnnxRunner, OpenVINORunner, TorchRunner, open_model
from hrpose.inference.options import RuntimeOptions

from .helpers import shared_data, tiny_hrnet, write_coco

DETECTIONS = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"


def run_eval(*args: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["eval", *args, "--json"]) == 0
    return json.loads(out.getvalue())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_pp_tinypose_on_coco_tiny_lands_in_the_reference_band(tmp_path, precision):
    model = shared_data("models", "tinypose_256x192", "model.xml")
    root = shared_data("coco-tiny")
    stats = run_eval(str(model), "--data", str(root), "--no-flip", "--decode", "classic",
                     "--precision", precision, "--out", str(tmp_path))
    # ../shared/data/README.md: a correct top-down pipeline lands in 0.80 .. 0.85.
    assert 0.80 <= stats["AP"] <= 0.85, stats
    assert stats["AP50"] == 1.0
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["AP"] == stats["AP"] and written["people"] == 12
    # The results file scores the same under pycocotools.
    from pycocotools import cocoeval
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(root / "annotations/person_keypoints_val2017.json"))
        e = cocoeval.COCOeval(gt, gt.loadRes(str(tmp_path / "results.json")), "keypoints")
        e.evaluate()
        e.accumulate()
        e.summarize()
    assert round(e.stats[0], 4) == round(stats["AP"], 4)


def test_detection_file_path_with_flip_and_dark(tmp_path):
    root = shared_data("coco-tiny")
    stats = run_eval(str(shared_data("models", "tinypose_256x192", "model.xml")), "--data",
                     str(root), "--det-json", str(root / DETECTIONS), "--decode", "dark",
                     "--out", str(tmp_path))
    assert 0.75 <= stats["AP"] <= 0.95
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["people"] == 118 and written["boxes"].endswith("person.json")
    assert len(json.loads((tmp_path / "results.json").read_text())) <= 118


def test_mpii_eval_runs_and_reports_pckh(tmp_path):
    stats = run_eval("hrnet_w32_256x256_mpii", "--weights", "none", "--data",
                     str(shared_data("mpii-tiny")),
                     "--out", str(tmp_path), "--batch", "8")
    assert {"PCKh", "PCKh@0.1", "Head", "Ankle"} <= set(stats)
    assert 0 <= stats["PCKh"] <= 100
    assert len(json.loads((tmp_path / "results.json").read_text())) == 5


def heatmap_onnx(path, batch: int | None = 1) -> np.ndarray:
    """A hand-built ONNX 'pose model': a 4x4 stride-4 convolution from RGB to 17 maps."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).normal(0, 0.1, (17, 3, 4, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["heatmaps"], strides=[4, 4])], "pose",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch or "N", 3, 64, 48])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT,
                                       [batch or "N", 17, 16, 12])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return weight


@pytest.mark.parametrize("runner_type", [OnnxRunner, OpenVINORunner])
def test_exported_runners_match_torch_and_handle_a_fixed_batch(tmp_path, runner_type):
    weight = heatmap_onnx(tmp_path / "pose.onnx", batch=1)
    x = np.random.default_rng(1).normal(size=(3, 3, 64, 48)).astype(np.float32)
    runner = runner_type(tmp_path / "pose.onnx")
    assert runner.input_hw == (64, 48)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight),
                                          stride=4).numpy()
    assert np.abs(runner(x) - expected).max() < 1e-4


def test_eval_of_an_onnx_file_end_to_end(tmp_path):
    heatmap_onnx(tmp_path / "pose.onnx", batch=None)
    people = [[(40 + 3 * j, 30 + 5 * j, 2) for j in range(17)]]
    write_coco(tmp_path / "coco", people, [[30, 20, 70, 110]])
    stats = run_eval(str(tmp_path / "pose.onnx"), "--data", str(tmp_path / "coco"), "--out",
                     str(tmp_path / "out"), "--bgr", "--mean", "0.5,0.5,0.5", "--workers", "1")
    assert set(stats) >= {"AP", "AR", "ARl"} and 0 <= stats["AP"] <= 1
    written = json.loads((tmp_path / "out/metrics.json").read_text())
    # What ran, as resolved, and only the settings a top-down model uses.
    assert (written["backend"], written["precision"], written["device"]) == (
        "onnxruntime", "file", "cpu")
    assert written["settings"]["flip"] is True and "grouping" not in written["settings"]


def test_torch_runner_bf16_is_close_to_fp32():
    model = tiny_hrnet().eval()
    x = np.random.default_rng(0).normal(size=(2, 3, 64, 96)).astype(np.float32)
    fp32 = TorchRunner(model, (64, 96))(x)
    bf16 = TorchRunner(model, (64, 96), RuntimeOptions(precision="bf16").resolve("torch"))(x)
    assert fp32.dtype == bf16.dtype == np.float32 and fp32.shape == (2, 17, 16, 24)
    assert np.abs(fp32 - bf16).max() < 0.1 * np.abs(fp32).max() + 1e-3


def test_eval_errors_are_one_line(tmp_path, capsys):
    people = [[(40 + 3 * j, 30 + 5 * j, 2) for j in range(17)]]
    write_coco(tmp_path / "coco", people, [[30, 20, 70, 110]])
    assert main(["eval", "hrnet_w32_256x256_mpii", "--weights", "none", "--data",
                 str(tmp_path / "coco"), "--out", str(tmp_path / "o")]) == 2
    assert "its 17 joints are not the keypoint set 'mpii' (16 joints" \
        in capsys.readouterr().err
    with pytest.raises(HrposeError, match="--weights is for zoo models"):
        open_model(str(tmp_path / "x.onnx"), weights="w.pth")
    with pytest.raises(HrposeError, match="unknown model 'hrnet_w99'"):
        open_model("hrnet_w99")
    assert main(["eval", "hrnet_w32_256x192", "--weights", "none", "--data",
                 str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "nowhere: data root is not a folder" in capsys.readouterr().err


def test_scoring_results_files_mpii_truth_and_a_hand_shifted_copy(tmp_path):
    root = shared_data("mpii-tiny")
    entries = json.loads((root / "test_mpii.json").read_text())
    ids = {}
    results = []
    for e in entries:
        joints = np.array(e["joints"], float) - 1                 # MPII is 1-based
        results.append({"image_id": ids.setdefault(e["image"], len(ids) + 1), "category_id": 1,
                        "score": 1.0, "keypoints": np.c_[joints, np.ones(16)].ravel().tolist()})
    (tmp_path / "truth.json").write_text(json.dumps(results))
    stats = run_eval("--results", str(tmp_path / "truth.json"), "--data", str(root),
                     "--out", str(tmp_path / "a"))
    assert stats["PCKh"] == 100.0 and stats["PCKh@0.1"] == 100.0
    # Joints 0-7 moved 0.3 head sizes (hits at 0.5), joints 8-15 moved 0.7 (misses).
    for e, r in zip(entries, results):
        head = np.linalg.norm(np.subtract(e["joints"][9], e["joints"][8]))
        kp = np.array(r["keypoints"]).reshape(16, 3)
        kp[:8, 0] += 0.3 * head
        kp[8:, 1] += 0.7 * head
        r["keypoints"] = kp.ravel().tolist()
    (tmp_path / "shifted.json").write_text(json.dumps(results))
    stats = run_eval("--results", str(tmp_path / "shifted.json"), "--data", str(root),
                     "--out", str(tmp_path / "b"))
    # Labelled joints outside pelvis/thorax: joints 0 and 5 in 3 people, the others in 5:
    # 3 + 4 * 5 + 3 = 26 hits (joints 0-5) out of 26 + 8 * 5 = 66.
    assert stats["PCKh"] == pytest.approx(100 * 26 / 66)
    assert stats["PCKh@0.1"] == 0.0
    assert json.loads((tmp_path / "b/metrics.json").read_text())["PCKh"] == stats["PCKh"]


def test_scoring_the_coco_ground_truth_as_results_gives_ap_1(tmp_path):
    root = shared_data("coco-tiny")
    gt = json.loads((root / "annotations/person_keypoints_val2017.json").read_text())
    results = [{"image_id": a["image_id"], "category_id": 1, "score": 1.0,
                "keypoints": a["keypoints"]} for a in gt["annotations"] if a["num_keypoints"]]
    (tmp_path / "res.json").write_text(json.dumps(results))
    stats = run_eval("--results", str(tmp_path / "res.json"), "--data", str(root), "--out",
                     str(tmp_path / "eval"))
    assert stats["AP"] == 1.0 and stats["AR"] == 1.0


def test_a_checkpoint_file_is_a_model(tmp_path, w32_official):
    from hrpose.models.convert import convert_checkpoint

    path, model = w32_official
    convert_checkpoint(path, tmp_path / "w32.safetensors")
    x = np.random.default_rng(0).normal(size=(1, 3, 256, 192)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    for source in (tmp_path / "w32.safetensors", path):     # metadata, then guessed
        loaded = open_model(str(source))
        runner = loaded.runner
        assert runner.input_hw == (256, 192) and loaded.card.mean[0] == 0.485
        assert loaded.card.keypoints.name == "coco" and loaded.card.codec == "classic"
        assert np.abs(runner(x) - expected).max() < 1e-4
    with pytest.raises(HrposeError, match="a checkpoint is its own weights"):
        open_model(str(path), weights="published")
