"""Bottom-up models outside PyTorch: ONNX and OpenVINO exports of HigherHRNet (any image size,
both outputs, the card), their verification gate (people grouped by both runs; INT8 by AP on
held-out annotated images), and the exported file in eval, infer, serve, batch jobs and bench."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from hrpose.cli import main
from hrpose.config import load_config
from hrpose.data.synthetic import write_dataset
from hrpose.engine.train import train
from hrpose.export import exporter
from hrpose.export.formats import FORMATS
from hrpose.export.onnx import BOTTOMUP_OUTPUTS, export_onnx
from hrpose.export.openvino import save_openvino
from hrpose.export.verify import _paired_distances
from hrpose.inference.backends import MAX_SHAPES, OpenVINORunner, open_model
from hrpose.inference.estimator import PoseEstimator
from hrpose.inference.options import EstimatorOptions, RuntimeOptions
from hrpose.io import read_image
from hrpose.models.arch import HigherHRNetArch
from hrpose.runtimes import read_openvino
from hrpose.serve.settings import ServeSettings

from .helpers import randomize
from .serving import serving
from .test_bottomup import ROOT, TINY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bottomup(tmp_path_factory) -> tuple[Path, Path]:
    """(data root, checkpoint): a tiny HigherHRNet trained for 96 steps on synthetic people,
    enough for heatmaps with peaks (an untrained one's flat maps group by near-ties)."""
    root = tmp_path_factory.mktemp("bu_data")
    write_dataset(root, train=64, val=6, seed=5, workers=1, progress=False)
    run = tmp_path_factory.mktemp("bu_model")
    overrides = [o for o in TINY if not o.startswith(("train.max_iters", "train.epochs",
                                                      "train.eval_every", "train.batch"))]
    config = load_config(ROOT / "configs/synthetic/bottomup_quickstart.yaml", [
        *overrides, f"data.root={root}", "train.epochs=12", "train.batch=8",
        "train.max_iters=96", "train.eval_every=12", "train.lr=0.01", "train.draw_images=0"])
    train(config, run, progress=False)
    return root, run / "best.safetensors"


def test_exports_take_any_image_size_keep_both_outputs_and_their_card(bottomup, tmp_path,
                                                                      capsys):
    root, checkpoint = bottomup
    onnx_file, ir = tmp_path / "bu.onnx", tmp_path / "bu_fp16.xml"
    assert main(["export", str(checkpoint), "--out", str(onnx_file), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["agreement"]["unit"] == "images" and result["agreement"]["people"] > 0
    assert result["agreement"]["within_1px"] >= exporter.MIN_AGREEMENT["fp32"]
    # this test model's people are weak (person scores under 0.2), so FP16 weights regroup
    # some of their joints: written with --force here, checked for what it states
    assert main(["export", str(checkpoint), "--format", "openvino", "--fp16", "--out",
                 str(ir), "--json", "--force"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp16"

    import onnx

    graph = onnx.load(str(onnx_file)).graph
    assert [o.name for o in graph.output] == list(BOTTOMUP_OUTPUTS)
    assert [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim] == [
        "batch", "", "height", "width"]
    # the flip test and multi-scale run on the exported file as on the PyTorch model
    agree = total = 0
    for image in sorted((root / "val2017").iterdir())[:3]:
        found = [PoseEstimator(m, flip=True, scales=(1.0, 2.0), precision="fp32")(image)
                 for m in (checkpoint, onnx_file)]
        distances, joints = _paired_distances(*(np.stack([p.keypoints for p in f])
                                                for f in found))
        agree, total = agree + (distances <= 7.0).sum(), total + joints
    assert agree / total >= 0.9
    torch_model = open_model(str(checkpoint), RuntimeOptions(precision="fp32"))
    rng = np.random.default_rng(0)
    for file in (onnx_file, ir):
        loaded = open_model(str(file), RuntimeOptions(precision="fp32"))
        assert loaded.card.bottomup and loaded.card.input_hw == (128, 128)
        assert loaded.card.keypoints.name == "coco"
        for shape in ((2, 3, 128, 192), (1, 3, 256, 128)):     # flip pairs, portrait images
            x = rng.standard_normal(shape).astype(np.float32)
            want, got = torch_model.runner.run_all(x), loaded.runner.run_all(x)
            assert [g.shape for g in got] == [w.shape for w in want]
            assert all(np.abs(g - w).max() < 0.02 * np.abs(w).max() for g, w in zip(got, want))


def test_openvino_compiles_each_image_size_once_and_keeps_the_last_few(bottomup, tmp_path):
    _, checkpoint = bottomup
    model = open_model(str(checkpoint), RuntimeOptions(precision="fp32")).runner.model
    meta = {"input_hw": "[128, 128]", "kind": "bottomup", "codec": "associative_embedding"}
    file = export_onnx(model, (128, 128), tmp_path / "m.onnx", meta, bottomup=True)
    runner = OpenVINORunner(file, RuntimeOptions("openvino", precision="fp32")
                            .resolve("openvino"))
    assert list(runner.requests) == [(1, 3, 128, 128)]      # compiled on opening
    x = np.zeros((2, 3, 192, 128), np.float32)
    runner.run_all(x)
    compiled = runner.requests[(2, 3, 192, 128)]
    runner.run_all(x)
    assert runner.requests[(2, 3, 192, 128)] is compiled        # not compiled again
    for i in range(MAX_SHAPES + 2):
        runner.run_all(np.zeros((1, 3, 64, 64 + 32 * i), np.float32))
    assert len(runner.requests) == MAX_SHAPES
    assert (1, 3, 64, 64 + 32 * (MAX_SHAPES + 1)) in runner.requests


def test_an_exported_bottom_up_model_runs_in_eval_infer_batch_and_bench(bottomup, tmp_path,
                                                                        capsys):
    root, checkpoint = bottomup
    ir = tmp_path / "bu.xml"
    assert main(["export", str(checkpoint), "--format", "openvino", "--out", str(ir)]) == 0
    scores = {}
    for name, model in (("torch", checkpoint), ("openvino", ir)):
        assert main(["eval", str(model), "--data", str(root), "--out", str(tmp_path / name),
                     "--precision", "fp32", "--draw", "0", "--json"]) == 0
        capsys.readouterr()
        scores[name] = json.loads((tmp_path / name / "metrics.json").read_text())
        results = json.loads((tmp_path / name / "results.json").read_text())
        scores[name]["people"] = {i: np.array([r["keypoints"] for r in results
                                               if r["image_id"] == i]).reshape(-1, 17, 3)
                                  for i in {r["image_id"] for r in results}}
    assert scores["openvino"]["boxes"] == "none (bottom-up)"
    assert abs(scores["openvino"]["AP"] - scores["torch"]["AP"]) <= 0.01
    # each image's people paired; a heatmap pixel of this 128 input is 7-10 image pixels
    agree = total = 0
    for image_id, people in scores["torch"]["people"].items():
        distances, joints = _paired_distances(people, scores["openvino"]["people"][image_id])
        agree, total = agree + (distances <= 7.0).sum(), total + joints
    assert agree / total >= 0.9

    image = root / "val2017" / "000000000001.jpg"
    assert main(["infer", str(image), "--model", str(ir), "--out", str(tmp_path / "infer"),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["images"] == 1 and (tmp_path / "infer" / image.name).is_file()
    # fp32 named: Ray's workers are other processes, and read the CPU's bf16 for themselves
    assert main(["infer", str(root / "val2017"), "--model", str(ir), "--format", "parquet",
                 "--precision", "fp32", "--out", str(tmp_path / "parts"), "--json"]) == 0
    capsys.readouterr()
    from .test_batch import as_rows, parquet_rows

    rows = parquet_rows(tmp_path / "parts")
    assert {Path(r["file"]).name for r in rows} <= {p.name for p in (root / "val2017").iterdir()}
    assert rows and all(len(r["keypoints"]) == 51 for r in rows)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        assert main(["infer", str(root / "val2017"), "--model", str(ir), "--engine", "ray",
                     "--precision", "fp32", "--out", str(tmp_path / "ray"), "--json"]) == 0
    finally:
        ray.shutdown()
    capsys.readouterr()
    assert as_rows(parquet_rows(tmp_path / "ray")) == as_rows(rows)

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    for path in sorted((root / "val2017").iterdir())[:4]:
        writer.write(cv2.resize(cv2.imread(str(path)), (256, 256)))
    writer.release()
    assert main(["infer", str(video), "--model", str(ir), "--out", str(tmp_path / "video"),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] == 4 and (tmp_path / "video" / "clip.avi.mp4").is_file()
    assert len(json.loads((tmp_path / "video" / "results.json").read_text())) > 0

    assert main(["bench", str(ir), "--rounds", "1", "--passes", "1", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["kind"] == "bottomup" and bench["backend"] == "openvino"
    shares = bench["pipelines"]["chosen"]["shares"]
    assert set(shares) == {"resize", "model", "maps", "grouping"}
    assert abs(sum(shares.values()) - 1) < 0.01 and bench["pipeline_img_per_s"] > 0


def test_an_exported_bottom_up_model_serves_the_page_and_the_stream(bottomup, tmp_path):
    root, checkpoint = bottomup
    onnx_file = tmp_path / "bu.onnx"
    assert main(["export", str(checkpoint), "--out", str(onnx_file)]) == 0
    photo = (root / "val2017" / "000000000002.jpg").read_bytes()
    expected = PoseEstimator(onnx_file)(read_image(root / "val2017" / "000000000002.jpg"),
                                        color="rgb")
    settings = ServeSettings(model=str(onnx_file), options=EstimatorOptions(), max_batch=2)
    with serving(settings) as url:
        card = httpx.get(url + "/v1/model").json()
        assert card["kind"] == "bottomup" and card["backend"] == "onnxruntime"
        people = httpx.post(url + "/v1/pose", content=photo,
                            headers={"content-type": "image/jpeg"}).json()["people"]
        assert len(people) == len(expected)
        assert np.allclose([p["keypoints"] for p in people],
                           [p.keypoints.tolist() for p in expected], atol=0.006)   # 2 decimals
        from websockets.sync.client import connect

        with connect(url.replace("http", "ws") + "/v1/stream") as socket:
            socket.send(photo)
            reply = json.loads(socket.recv())
            assert reply["frame"] == 0 and len(reply["people"]) == len(expected)


def test_int8_is_scored_by_ap_on_held_out_images_and_refused_when_it_loses(
        bottomup, tmp_path, monkeypatch, capsys):
    """Calibrated on 3 of the 6 annotated images, scored on the other 3. The tiny model's AP
    is too low to judge by (the agreement rule applies); with the floor lowered the AP rule
    decides, and a loss beyond MAX_AP_DROP (set below zero here) is refused."""
    root, checkpoint = bottomup
    out = tmp_path / "bu_int8.xml"
    argv = ["export", str(checkpoint), "--format", "openvino", "--int8", "--calib", str(root),
            "--calib-limit", "3", "--out", str(out), "--json", "--force"]
    assert main(argv) == 0
    agreement = json.loads(capsys.readouterr().out)["agreement"]
    assert agreement["ap"] is not None and "(3 images)" in agreement["ap_data"]
    monkeypatch.setattr(exporter, "MIN_SCORED_AP", 0.0)
    monkeypatch.setattr(exporter, "MAX_AP_DROP", -1.0)
    out.unlink()
    assert main(argv[:-1]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "COCO AP" in err and "nothing was written" in err and not out.exists()


def test_a_broken_bottom_up_export_is_refused_and_leaves_nothing(bottomup, tmp_path,
                                                                 monkeypatch, capsys):
    """The writer is replaced by one that writes another network (runs, computes something
    else), as a broken conversion would."""
    _, checkpoint = bottomup
    other = randomize(HigherHRNetArch(width=8, stem_channels=16, layer1_channels=8,
                                      layer1_blocks=1, stage_modules=(1, 1, 1), num_blocks=1,
                                      deconv_blocks=1).create(), seed=9)

    def broken(source, out, calibration, fp16, metadata, simplify):
        other_onnx = export_onnx(other, (128, 128), out.with_suffix(".onnx"), metadata,
                                 bottomup=True)
        save_openvino(read_openvino(other_onnx), out, metadata)
        other_onnx.unlink()
    monkeypatch.setitem(FORMATS, "openvino", dataclasses.replace(FORMATS["openvino"],
                                                                  write=broken))
    out = tmp_path / "bu.xml"
    assert main(["export", str(checkpoint), "--format", "openvino", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "disagrees" in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []
