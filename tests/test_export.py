"""Export (ONNX, OpenVINO; fp32, FP16, INT8), verification, and `hrpose bench`."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hrpose.cli import main
from hrpose.data.transforms import normalize
from hrpose.errors import HrposeError
from hrpose.export import export_model
from hrpose.export.calibration import person_crops, synthetic_crops
from hrpose.inference.backends import open_exported, open_model
from hrpose.models.checkpoint import save_weights

from .helpers import randomize, shared_data, tiny_hrnet

INPUT_HW = (128, 96)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """A small HRNet checkpoint that states its architecture, input, keypoints and codec, as
    `hrpose train` writes them."""
    model = randomize(tiny_hrnet(8), seed=3)
    path = tmp_path_factory.mktemp("tiny") / "best.safetensors"
    arch = {"width": 8, "num_joints": 17, "layer1_blocks": 2, "num_blocks": 1,
            "stage_modules": [1, 2, 2]}
    save_weights(path, model.state_dict(),
                 {"arch": json.dumps(arch), "input_hw": json.dumps(list(INPUT_HW)),
                  "keypoints": "coco", "codec": "dark", "mean": "[0.5, 0.4, 0.3]",
                  "std": "[0.2, 0.2, 0.2]"})
    return path, model


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    from hrpose.data.synthetic import write_split

    root = tmp_path_factory.mktemp("synth")
    write_split(root, "val", 6, seed=1, progress=False)
    return root


def _crops(n: int = 12) -> np.ndarray:
    return normalize(synthetic_crops(INPUT_HW, n), (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))


@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("openvino", ".xml")])
def test_fp32_exports_match_pytorch_and_describe_themselves(tmp_path, tiny, fmt, suffix):
    path, model = tiny
    result = export_model(str(path), tmp_path / f"tiny{suffix}", fmt, log=False)
    assert result.precision == "fp32" and result.agreement.within_1px == 1.0
    x = _crops()
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.abs(expected).max() > 0.1          # heatmaps of a useful scale
    runner = open_exported(result.path)          # any batch size: 12 crops in one call
    np.testing.assert_allclose(runner(x), expected, atol=1e-4, rtol=0)
    loaded = open_model(str(result.path))
    assert loaded.card.mean == (0.5, 0.4, 0.3) and loaded.card.std == (0.2, 0.2, 0.2)
    assert loaded.card.keypoints.name == "coco" and loaded.card.codec == "dark"
    assert runner.metadata["input_hw"] == "[128, 96]" and runner.metadata["precision"] == "fp32"
    if fmt == "onnx":
        import onnx

        proto = onnx.load(result.path)
        assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        assert "BatchNormalization" not in {n.op_type for n in proto.graph.node}


@pytest.mark.slow
def test_fp16_exports_halve_the_weights_and_stay_close(tmp_path, tiny):
    path, _ = tiny
    sizes = {}
    for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml")):
        full = export_model(str(path), tmp_path / f"full{suffix}", fmt, log=False)
        half = export_model(str(path), tmp_path / f"half{suffix}", fmt, fp16=True, log=False)
        weights = (lambda p: p) if fmt == "onnx" else (lambda p: p.with_suffix(".bin"))
        sizes[fmt] = weights(half.path).stat().st_size / weights(full.path).stat().st_size
        assert half.agreement.within_1px >= 0.99
        assert half.agreement.max_abs < 0.01 * max(1.0, abs(half.agreement.peak))
        assert open_exported(half.path).metadata["precision"] == "fp16"
    assert 0.4 < sizes["onnx"] < 0.65 and 0.4 < sizes["openvino"] < 0.65, sizes


@pytest.mark.slow
def test_int8_exports_run_alone_in_eval_and_infer(tmp_path, tiny, synthetic_root, capsys):
    """INT8 ONNX (QDQ) and OpenVINO (NNCF) files calibrated on synthetic people; each then runs in
    `hrpose eval` and `hrpose infer` with nothing beside it."""
    path, _ = tiny
    for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml")):
        out = tmp_path / f"int8{suffix}"
        # --force: a random tiny model's heatmaps are flat, so INT8 moves their peaks (under
        # the export check's 85%); this test is about the file running alone.
        assert main(["export", str(path), "--format", fmt, "--int8", "--calib",
                     str(synthetic_root), "--out", str(out), "--json", "--force"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["precision"] == "int8" and report["calibration_crops"] > 10
        if fmt == "onnx":
            import onnx

            ops = {n.op_type for n in onnx.load(out).graph.node}
            assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        else:
            import openvino as ov

            ops = {op.get_type_name() for op in ov.Core().read_model(out).get_ordered_ops()}
            assert "FakeQuantize" in ops
        assert main(["eval", str(out), "--data", str(synthetic_root), "--out",
                     str(tmp_path / f"eval_{fmt}"), "--draw", "0", "--json"]) == 0
        metrics = json.loads(capsys.readouterr().out)
        assert 0.0 <= metrics["AP"] <= 1.0
        assert main(["infer", str(synthetic_root / "val2017"), "--model", str(out), "--out",
                     str(tmp_path / f"infer_{fmt}"), "--detector", "none", "--no-draw",
                     "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["images"] == 6 and summary["people"] == 6


def test_calibration_crops_come_from_annotated_people_or_whole_images(tmp_path, synthetic_root):
    from hrpose.data.coco import load_coco

    data = load_coco(synthetic_root / "annotations/person_keypoints_val2017.json")
    people = int(((data.keypoints[..., 2] > 0).any(-1) & (data.boxes[:, 2] > 0)).sum())
    crops = person_crops([str(synthetic_root)], INPUT_HW)
    assert crops.shape == (2 * people, *INPUT_HW, 3) and crops.dtype == np.uint8
    np.testing.assert_array_equal(crops[people:], crops[:people, :, ::-1])   # mirrored copies
    plain = person_crops([str(synthetic_root / "val2017")], INPUT_HW)        # no annotations
    assert len(plain) == 2 * 6
    assert len(person_crops([str(synthetic_root)], INPUT_HW, limit=5)) == 5


def test_oks_agreement_is_the_oks_of_the_joints_the_source_sees():
    from hrpose.export.verify import oks_agreement

    reference = np.zeros((2, 3, 3))
    reference[..., 2] = [[0.9, 0.9, 0.1], [0.05, 0.1, 0.0]]   # the second person: none seen
    boxes = np.array([[0, 0, 10, 10], [0, 0, 20, 20]], np.float64)
    sigmas = (0.1, 0.2, 0.3)
    assert oks_agreement(reference, reference.copy(), boxes, sigmas) == 1.0
    moved = reference.copy()
    moved[0, :, 0] += 2.0                                   # 2 px off, area 100
    expected = np.mean([np.exp(-4 / (2 * 100 * (2 * s) ** 2)) for s in sigmas[:2]])
    assert oks_agreement(reference, moved, boxes, sigmas) == pytest.approx(expected)
    assert oks_agreement(reference[1:], moved[1:], boxes[1:], sigmas) is None


class _Shifted:
    """A runner whose heatmaps are moved `shift` pixels right: an export that computes
    something close to, but not, its source."""

    def __init__(self, runner, shift: int) -> None:
        self.runner, self.shift, self.input_hw = runner, shift, runner.input_hw
        self.backend, self.precision = runner.backend, runner.precision

    def __call__(self, batch):
        return np.roll(self.runner(batch), self.shift, axis=-1)


def test_int8_is_judged_on_held_out_people_by_ap_against_the_ground_truth():
    """PP-TinyPose on coco-mini-train: the people of some images are held out of calibration,
    and an export is judged by its COCO AP on them against the source's."""
    from hrpose.export import exporter
    from hrpose.export.calibration import cut_people, held_out
    from hrpose.inference.options import RuntimeOptions

    root = str(shared_data("coco-mini-train"))
    loaded = open_model(str(shared_data("models/tinypose_256x192")),
                        RuntimeOptions(precision="fp32"))
    people = cut_people([root], loaded.runner.input_hw)
    held, used = held_out(people, exporter.VERIFY_CROPS)
    assert not set(people.image[held]) & set(people.image[used])   # split by image
    assert exporter.MIN_AP_PEOPLE <= len(people.image) // 5 <= len(held) < len(people.image) // 4
    assert len(held) + len(used) == len(people.image)
    samples = exporter._int8_topdown_samples(loaded, people, [root], 300, None, lambda _: None)
    assert sum(map(len, samples.calibration)) == 2 * len(used)    # each also mirrored
    same = samples.check(loaded.runner)
    assert same.held_out and same.crops == len(held) and same.oks == pytest.approx(1.0)
    assert same.ap == pytest.approx(same.reference_ap) and same.reference_ap > 0.3
    assert exporter.judge(same, exporter.MIN_AGREEMENT["int8"]) is None
    off = samples.check(_Shifted(loaded.runner, 2))
    assert off.reference_ap - off.ap > exporter.MAX_AP_DROP
    assert "COCO AP" in exporter.judge(off, exporter.MIN_AGREEMENT["int8"])
    # Without annotations the same people are judged by OKS to the source's joints.
    unscored = dataclasses.replace(off, ap=None, reference_ap=None)
    assert unscored.oks < exporter.MIN_OKS
    assert "mean OKS" in exporter.judge(unscored, exporter.MIN_AGREEMENT["int8"])


def test_export_errors_are_one_line(tmp_path, tiny, capsys):
    path, _ = tiny
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt.onnx").write_bytes(b"not an onnx file at all")
    (tmp_path / "notes.txt").write_text("hello")
    cases = [
        (["export", str(path), "--int8", "--calib", str(tmp_path / "empty")], "empty"),
        (["export", str(path), "--int8"], "--calib"),
        (["export", str(tmp_path / "corrupt.onnx"), "--format", "openvino", "--out",
          str(tmp_path / "x.xml")], "corrupt.onnx"),
        (["export", str(tmp_path / "notes.txt")], "notes.txt"),
        (["export", "hrnet_w99_256x192"], "hrnet_w99_256x192"),
        (["export", str(path), "--format", "openvino", "--out", str(tmp_path / "m.onnx")],
         ".xml"),
    ]
    for argv, named in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("hrpose: error:") and "\n" not in err and named in err, err
    with pytest.raises(HrposeError, match="cannot be turned back into ONNX"):
        ir = export_model(str(path), tmp_path / "ir.xml", "openvino", log=False).path
        export_model(str(ir), tmp_path / "back.onnx", "onnx", log=False)


@pytest.mark.slow
def test_bench_times_every_path_beside_plain_pytorch(tiny, capsys):
    path, _ = tiny
    assert main(["bench", str(path), "--batch", "4", "--rounds", "2", "--passes", "1",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("model_img_per_s", "pipeline_img_per_s", "p50_ms", "p95_ms", "backend",
                "precision", "batch"):
        assert key in r
    assert r["precision"] == "fp32" and r["batch"] == 4
    paths = {(p["backend"], p["precision"], p["streams"]): p for p in r["paths"]}
    two_streams = {("openvino", "fp32", 2)} if len(os.sched_getaffinity(0)) >= 2 else set()
    assert set(paths) == {("torch", "fp32", 1), ("onnxruntime", "fp32", 1),
                          ("openvino", "fp32", 1), *two_streams}
    fastest = max(paths.values(), key=lambda p: p["img_per_s"])
    assert (r["backend"], r["model_img_per_s"]) == (fastest["backend"], fastest["img_per_s"])
    assert r["plain_torch_fp32"]["img_per_s"] == paths["torch", "fp32", 1]["img_per_s"]
    assert r["p50_ms"] <= r["p95_ms"] and r["pipeline_img_per_s"] > 0
    assert all(p["within_1px"] == 1.0 for p in paths.values()) and r["accurate"]
    assert main(["bench", str(path), "--precision", "int8"]) == 2
    assert "--calib" in capsys.readouterr().err


@pytest.mark.slow
def test_int8_tinypose_keeps_its_coco_ap(tmp_path, capsys):
    """PP-TinyPose quantised by `hrpose export` with calibration crops from coco-tiny, mpii-tiny
    and ochuman-tiny, scored on coco-mini-train (86 people, ground-truth boxes, flip test).
    Measured: fp32 AP 0.581, INT8 0.553 (-0.028): the issue's goal of 0.02 is not reached;
    NNCF's defaults lost 0.40 AP, see export/openvino.py. The export check judges it by OKS
    to the source on the people held out of calibration."""
    model = shared_data("models/tinypose_256x192/model.xml")
    calib = [str(shared_data(d)) for d in ("coco-tiny", "mpii-tiny", "ochuman-tiny")]
    data = shared_data("coco-mini-train")
    out = tmp_path / "tinypose_int8.xml"
    assert main(["export", str(model), "--format", "openvino", "--int8", "--calib", *calib,
                 "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    ap = {}
    for name, file in (("fp32", model), ("int8", out)):
        assert main(["eval", str(file), "--data", str(data), "--ann",
                     str(data / "annotations/person_keypoints_train2017.json"), "--images",
                     str(data / "train2017"), "--out", str(tmp_path / name), "--draw", "0",
                     "--batch", "8", "--json"]) == 0
        ap[name] = json.loads(capsys.readouterr().out)["AP"]
    assert ap["fp32"] > 0.5
    # NNCF's overflow fix (7-bit weights) makes the file run alike with and without VNNI:
    # measured -0.028 with VNNI, -0.026 under ONEDNN_MAX_CPU_ISA=AVX2; the goal of 0.02 is
    # not reached, the bound is 0.035.
    assert ap["int8"] >= ap["fp32"] - 0.035, ap
