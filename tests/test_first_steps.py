"""A new user's first runs: every input checked before a model loads or an epoch starts, no
empty output left by a failed run, a start-up line that says what runs, Ctrl-C that keeps
results, and help with the usual shell mistakes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

from hrpose.cli import main
from hrpose.errors import HrposeError, plural

from .helpers import TINYPOSE_XML, message_lines, shared_data

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "configs/synthetic/quickstart.yaml")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    from hrpose.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, train=4, val=2, seed=1, workers=1, progress=False)
    return root


@pytest.fixture
def no_model_loads(monkeypatch):
    """Any model opened fails the test: the checks must come first."""
    # imported before anything is patched: a module binds the names it imports
    import hrpose.engine.train as train
    import hrpose.inference.backends as backends
    import hrpose.inference.estimator as estimator

    def refuse(*args, **kwargs):
        raise AssertionError("a model was opened before the inputs were checked")

    monkeypatch.setattr(backends, "open_model", refuse)
    monkeypatch.setattr(estimator, "open_model", refuse)
    monkeypatch.setattr(train, "initialised_model", refuse)


def _error(capsys, argv: list[str]) -> str:
    """The command's one message line (status 2), without its start-up line."""
    try:
        status = main(argv)
    except SystemExit as e:
        status = e.code
    assert status == 2
    lines = [x for x in message_lines(capsys.readouterr().err) if x.startswith("hrpose")]
    assert len(lines) == 1 and lines[0].startswith("hrpose: error: "), lines
    return lines[0]


# --- shell mistakes -------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "said"), [
    (["infre", "x"], "unknown command 'infre' (did you mean 'infer'?) (see 'hrpose --help')"),
    (["infer", "x", "--model", "m", "--detecter", "none", "--out", "o"],
     "unrecognized argument --detecter (did you mean '--detector'?) (see 'hrpose infer --help')"),
    (["eval", "--modle", "x"], "unrecognized argument --modle (see 'hrpose eval --help')"),
    (["data", "synth", "--out", "o", "--trian", "3"],
     "unrecognized argument --trian (did you mean '--train'?) (see 'hrpose data synth --help')"),
    (["--verson"], "unrecognized argument --verson (did you mean '--version'?)"),
    (["serve", "m", "--prot", "8000"], "(did you mean '--port'?) (see 'hrpose serve --help')"),
])
def test_a_misspelt_flag_or_command_gets_the_closest_and_its_own_help(argv, said, capsys):
    assert said in _error(capsys, argv)


def test_an_expanded_glob_is_told_to_be_quoted(tmp_path, capsys):
    files = [tmp_path / f"{i}.jpg" for i in range(3)]
    for f in files:
        f.write_bytes(b"")
    err = _error(capsys, ["infer", *map(str, files), "--model", "m", "--out",
                          str(tmp_path / "out")])
    assert "2 extra arguments" in err and "quote it ('dir/*.jpg')" in err
    assert err.endswith("(see 'hrpose infer --help')")
    # plain extra words that are not files get argparse's own wording
    assert "unrecognized arguments: b" in _error(
        capsys, ["infer", "a", "b", "--model", "m", "--out", str(tmp_path / "o")])


@pytest.mark.parametrize("model", ["runs/w32/best.safetensros", "models/tinypose_265x192/",
                                   "./exported"])
def test_a_model_path_that_does_not_exist_is_no_such_file(model, tmp_path, capsys):
    err = _error(capsys, ["infer", str(shared_data("images", "hrnet_demo.jpg")), "--model",
                          model, "--out", str(tmp_path / "out")])
    assert "no such file" in err and model in err and "zoo name" not in err
    assert not (tmp_path / "out").exists()


def test_a_misspelt_zoo_name_gets_the_closest(capsys, tmp_path, no_model_loads):
    err = _error(capsys, ["eval", "hrnet_w32_256x19", "--data", str(shared_data("coco-tiny")),
                          "--out", str(tmp_path / "e")])
    assert "unknown model 'hrnet_w32_256x19' (did you mean 'hrnet_w32_256x192'?)" in err
    err = _error(capsys, ["infer", str(shared_data("images", "hrnet_demo.jpg")), "--model",
                          "tinypose_256x192", "--detector", "picodet_s_320_pedestrain",
                          "--out", str(tmp_path / "i")])
    assert "(did you mean 'picodet_s_320_pedestrian'?)" in err
    err = _error(capsys, ["infer", str(shared_data("images", "hrnet_demo.jpg")), "--model",
                          "tinypose_256x192", "--keypoints", "cooc", "--out",
                          str(tmp_path / "i")])
    assert "--keypoints: 'cooc' is not a built-in set (did you mean 'coco'?)" in err


# --- inputs checked before the slow part ----------------------------------------------------

def test_a_wrong_validation_path_is_refused_before_the_first_epoch(synthetic, tmp_path, capsys,
                                                                    no_model_loads):
    out = tmp_path / "run"
    base = [QUICKSTART, "--out", str(out), "-o", f"data.root={synthetic}", "-o",
            "train.batch=2"]
    err = _error(capsys, ["train", *base, "-o", "data.val_ann=annotations/val.json"])
    assert "annotations/val.json" in err
    (tmp_path / "empty").mkdir()
    err = _error(capsys, ["train", *base, "-o", f"data.val_images={tmp_path / 'empty'}"])
    assert "2 of the 2 images person_keypoints_val2017.json names are not there" in err
    assert "evaluation image folder" in err
    err = _error(capsys, ["train", *base, "-o", "data.train_images=nowhere"])
    assert "training image folder" in err
    assert not out.exists()                          # nothing written by a refused run


def test_eval_checks_the_data_before_the_model_loads(tmp_path, capsys, no_model_loads):
    out = tmp_path / "eval"
    err = _error(capsys, ["eval", "hrnet_w32_256x192", "--data", str(shared_data("coco-tiny")),
                          "--images", str(tmp_path), "--out", str(out)])
    assert "4 of the 4 images" in err and not out.exists()


def test_a_bottomup_model_with_boxes_is_refused_up_front(tmp_path, capsys, no_model_loads):
    out = tmp_path / "out"
    err = _error(capsys, ["infer", str(shared_data("coco-tiny", "val2017")), "--model",
                          "higherhrnet_w32_512", "--boxes",
                          str(shared_data("coco-tiny/annotations/person_keypoints_val2017.json")),
                          "--out", str(out)])
    assert "a bottom-up model finds people itself; drop --boxes" in err
    assert not out.exists()


def test_a_run_that_fails_after_the_model_loads_leaves_no_empty_folder(tmp_path, capsys):
    broken = tmp_path / "in"
    broken.mkdir()
    (broken / "a.jpg").write_text("not a picture")
    out = tmp_path / "deep" / "out"
    err = _error(capsys, ["infer", str(broken), "--model", str(shared_data(TINYPOSE_XML)),
                          "--detector", "none", "--out", str(out)])
    assert "a.jpg" in err and not (tmp_path / "deep").exists()


def test_an_evaluation_that_fails_after_the_model_loads_leaves_no_empty_folder(tmp_path,
                                                                              capsys):
    out = tmp_path / "eval"
    err = _error(capsys, ["eval", str(shared_data(TINYPOSE_XML)), "--data",
                          str(shared_data("mpii-tiny")), "--out", str(out)])
    assert "16" in err and not out.exists()


def test_a_port_in_use_is_refused_before_the_model_loads(capsys, no_model_loads):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = _error(capsys, ["serve", "hrnet_w32_256x192", "--port", str(port)])
    assert f"127.0.0.1:{port} is in use" in err and "try --port " in err


# --- what runs ------------------------------------------------------------------------------

def test_runs_say_what_they_run_on(synthetic, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", QUICKSTART, "--out", str(out), "-o", f"data.root={synthetic}",
                 "-o", "train.epochs=1", "-o", "train.batch=2", "-o", "train.max_iters=1",
                 "-o", "data.input_wh=[96,128]", "-o", "data.heatmap_wh=[24,32]",
                 "-o", "train.amp=none", "--json"]) == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("hrpose: training "))
    assert "128x96" in line and "M parameters) on cpu, fp32, channels_last on" in line
    assert "training people" in line and "validation people in 2 images" in line
    assert "1 step an epoch x 1 epoch" in line
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["backend"], metrics["precision"], metrics["device"]) == ("torch", "fp32",
                                                                            "cpu")
    assert "grouping" not in metrics["settings"] and "scales" not in metrics["settings"]
    image = shared_data("images", "hrnet_demo.jpg")
    assert main(["infer", str(image), "--model", str(shared_data(TINYPOSE_XML)), "--detector",
                 "none", "--out", str(tmp_path / "i"), "--precision", "fp32"]) == 0
    said = capsys.readouterr()
    assert said.err.startswith("hrpose: model.xml (top-down 256x192, 17 joints) on openvino, "
                               "cpu, fp32; the whole image as one person; 1 input\n")
    assert said.out.startswith("1 image, 0 video frames: 1 person -> ")
    assert "1 drawing in" in said.out


def test_smoothing_on_still_images_is_warned(tmp_path, capsys):
    image = shared_data("images", "hrnet_demo.jpg")
    assert main(["infer", str(image), "--model", str(shared_data(TINYPOSE_XML)),
                 "--detector", "none", "--out", str(tmp_path / "o"), "--smooth", "--json"]) == 0
    assert message_lines(capsys.readouterr().err) == [
        "hrpose: warning: --smooth and --detect-every act on video frames across time; still "
        "images are each posed on their own"]


def test_joint_and_person_scores_are_reported_within_0_and_1(tinypose_picodet):
    from hrpose.inference.person import as_confidences

    keypoints = np.array([[[1, 2, 1.07], [3, 4, -0.01], [5, 6, 0.5]]], np.float32)
    clipped, scores = as_confidences(keypoints, np.array([1.02]))
    assert clipped[0, :, 2].tolist() == [1.0, 0.0, 0.5] and scores.tolist() == [1.0]
    assert keypoints[0, 0, 2] == np.float32(1.07)                 # the input is left alone
    people = tinypose_picodet(str(shared_data("images", "hrnet_demo.jpg")))
    assert people and all(0 <= p.score <= 1 and (p.keypoints[:, 2] <= 1).all()
                          and (p.keypoints[:, 2] >= 0).all() for p in people)


def test_bench_rows_are_labelled_apart():
    from hrpose.export.bench import format_bench

    path = {"img_per_s": 10.0, "p50_ms": 1.0, "p95_ms": 2.0, "within_1px": 1.0}
    result = {"paths": [{**path, "backend": "torch", "precision": "fp32", "streams": 1},
                        {**path, "backend": "openvino", "precision": "bf16", "streams": 1},
                        {**path, "backend": "openvino", "precision": "bf16", "streams": 2}],
              "plain_torch_fp32": {"img_per_s": 5.0, "pipeline_img_per_s": 4.0},
              "backend": "openvino", "precision": "bf16", "streams": 2, "batch": 8,
              "threads": 2, "rounds": 3, "trained_weights": True, "accurate": True,
              "pipeline_img_per_s": 8.0, "model_img_per_s": 10.0}
    rows = format_bench(result).splitlines()[1:4]
    labels = [row[:28].strip() for row in rows]
    assert labels == ["PyTorch fp32 (plain)", "OpenVINO bf16, 1 stream",
                      "OpenVINO bf16, 2 streams"]
    assert [row.endswith("<- chosen") for row in rows] == [False, False, True]


def test_plural():
    assert [plural(n, "image") for n in (0, 1, 2)] == ["0 images", "1 image", "2 images"]
    assert plural(1, "person", "people") == "1 person" and plural(1_000, "person",
                                                                   "people") == "1,000 people"


# --- Ctrl-C ---------------------------------------------------------------------------------

def test_ctrl_c_in_infer_keeps_the_results_and_a_rerun_goes_on(tmp_path, tinypose_picodet,
                                                                 monkeypatch, capsys):
    from hrpose.inference.infer import PROGRESS, InferSettings, infer

    folder = tmp_path / "photos"
    folder.mkdir()
    demo = shared_data("images", "hrnet_demo.jpg").read_bytes()
    for i in range(4):
        (folder / f"{i}.jpg").write_bytes(demo)
    inputs = sorted(folder.iterdir())
    settings = InferSettings(images_per_call=1, progress=False)
    est = tinypose_picodet
    calls = []
    predict = type(est).predict_rgb

    def interrupted(self, images, boxes=None, names=None):
        calls.append(names)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return predict(self, images, boxes, names)

    monkeypatch.setattr(type(est), "predict_rgb", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        infer(inputs, est, out, settings)
    assert "the results of 2 inputs done so far are in" in capsys.readouterr().err
    kept = json.loads((out / "results.json").read_text())
    assert {r["file_name"] for r in kept} == {"0.jpg", "1.jpg"}
    assert json.loads((out / PROGRESS).read_text())["done"] == [str(p) for p in inputs[:2]]
    calls.clear()
    monkeypatch.setattr(type(est), "predict_rgb", predict)
    summary = infer(inputs, est, out, settings)            # the same command again
    assert summary["done_before"] == 2 and summary["images"] == 2
    results = json.loads((out / "results.json").read_text())
    assert [r["file_name"] for r in results] == [f"{i}.jpg" for i in range(4)]
    assert results[:2] == kept and not (out / PROGRESS).exists()
    with pytest.raises(HrposeError, match="not an hrpose progress file"):
        (out / PROGRESS).write_text("[]")
        infer(inputs, est, out, settings)
