"""Reliability: every reader keeps its contract on mutated files (property tests over the fuzz
targets of tests/fuzzing.py), the cases the first fuzz campaign found stay fixed, memory stays
bounded, no command writes over its inputs, and killed runs leave loadable files and resume bit
for bit."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hrpose.cli import main
from hrpose.data.coco import load_coco
from hrpose.data.synthetic import write_dataset
from hrpose.data.topdown import TopDownDataset, ground_truth_boxes
from hrpose.errors import HrposeError
from hrpose.inference.boxes import box_iou, nms
from hrpose.inference.infer import output_names
from hrpose.io import read_image
from hrpose.metrics.coco import oks_nms, pairwise_oks, soft_oks_nms
from hrpose.models.checkpoint import save_weights
from hrpose.models.layouts import load_weights
from hrpose.models.loading import build_model, load_model
from hrpose.skeletons import COCO

from . import crashing
from .fuzzing import TARGETS, coco_base
from .helpers import TINY_TRAIN, randomize, tiny_hrnet

ROOT = Path(__file__).resolve().parents[1]
LEGACY = ROOT / "tests" / "data" / "legacy"

# Bounded and reproducible in `make test`: the same examples on every run (derandomize), a few
# dozen per reader. HYPOTHESIS_PROFILE=long explores more, with fresh randomness.
settings.register_profile("ci", max_examples=30, derandomize=True, deadline=None,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("long", max_examples=1000, deadline=None,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# ---- the contract, per reader ---------------------------------------------------------------

@pytest.fixture(scope="module")
def contexts(tmp_path_factory) -> dict:
    built: dict = {}
    base = tmp_path_factory.mktemp("fuzz")

    def context(name: str) -> dict:
        if name not in built:
            (base / name).mkdir()
            built[name] = TARGETS[name].setup(base / name)
        return built[name]

    return {"get": context, "work": base}


@pytest.mark.parametrize("name", list(TARGETS))
@given(rnd=st.randoms(use_true_random=False))
def test_every_reader_returns_valid_data_or_one_clean_error(name, rnd, contexts):
    """On any mutation of a valid file: valid data back, or HrposeError (one line); never
    another exception or data that breaks the promise (fuzzing.ContractBroken)."""
    with tempfile.TemporaryDirectory(dir=contexts["work"]) as work:
        outcome = TARGETS[name].case(contexts["get"](name), Path(work), rnd)
    assert outcome in ("accepted", "error")


# ---- what the first campaign found ------------------------------------------------------------

@pytest.fixture
def coco_root(tmp_path) -> tuple[Path, dict]:
    return tmp_path, coco_base(tmp_path)


def _write(root: Path, tree: dict) -> Path:
    path = root / "ann.json"
    path.write_text(json.dumps(tree))
    return path


def test_a_malformed_rle_is_refused_before_pycocotools_sees_it(coco_root):
    """It used to reach pycocotools' C decoder and kill the process (SIGSEGV)."""
    root, tree = coco_root
    crowd = next(a for a in tree["annotations"] if a["iscrowd"])
    crowd["segmentation"] = {"counts": "!!!!", "size": [1000000, 1000000]}
    with pytest.raises(HrposeError, match=r"annotation 90: field 'segmentation.size'"):
        load_coco(_write(root, tree))
    crowd["segmentation"] = {"counts": "!!!!", "size": [80, 96]}
    with pytest.raises(HrposeError, match=r"annotation 90: .*not an RLE string \(character '!'"):
        load_coco(_write(root, tree))
    crowd["segmentation"] = {"counts": [4860, 20], "size": [80, 96]}
    with pytest.raises(HrposeError, match=r"covers 4880 pixels, its size 80x96 has 7680"):
        load_coco(_write(root, tree))


def test_rle_strings_decode_as_pycocotools_does():
    from pycocotools import mask

    from hrpose.data.coco import rle_string_counts

    rng = np.random.default_rng(0)
    region = np.asfortranarray((rng.random((37, 53)) > 0.7).astype(np.uint8))
    rle = mask.encode(region)
    runs = rle_string_counts(rle["counts"].decode(), "test")
    assert sum(runs) == 37 * 53
    decoded = np.repeat(np.arange(len(runs)) % 2, runs).reshape(53, 37).T
    assert np.array_equal(decoded, region)


def test_a_box_outside_its_image_is_skipped_with_a_warning_naming_it(coco_root, caplog):
    """It gave a zero-size crop: NaN targets in training, NaN keypoints at evaluation."""
    from hrpose.data.topdown import person_boxes

    root, tree = coco_root
    tree["annotations"][0]["bbox"] = [500.0, 300.0, 20.0, 30.0]       # image 1 is 96x80
    data = load_coco(_write(root, tree))
    dataset = TopDownDataset(data, root / "images", TARGETS["annotations"].setup(
        root / "base")["codec"])
    assert "annotation ids 10" in caplog.text and "outside their image" in caplog.text
    assert 10 not in data.ids[dataset.people]
    for i in range(len(dataset)):
        assert torch.isfinite(dataset[i]["heatmaps"]).all()
    boxes = ground_truth_boxes(data)
    assert len(boxes.boxes) == len(dataset) and (boxes.boxes[:, 2:] > 0).any(1).all()
    assert caplog.text.count("outside their image") == 1       # once per file, not per epoch
    assert np.array_equal(person_boxes(data)[1], dataset.boxes)


def test_two_images_with_one_id_are_refused(coco_root):
    """Two merged data sets: the later entry used to replace the earlier silently."""
    root, tree = coco_root
    tree["images"].append({**tree["images"][0], "file_name": "other.jpg"})
    with pytest.raises(HrposeError, match=r"image 1: the id is used twice \(images #0 and #3: "
                                          r"000000000001.jpg, other.jpg\)"):
        load_coco(_write(root, tree))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("bbox", [1, 2, "3", 4], r"annotation 10: field 'bbox' must be a list of numbers"),
    ("bbox", {"x": 1}, r"annotation 10: field 'bbox' must be a list of numbers, got \{'x': 1\}"),
    ("keypoints", None, r"annotation 10: missing field 'keypoints'"),
    ("keypoints", [0] * 50, r"annotation 10: field 'keypoints' has 50 numbers, expected 51"),
    ("image_id", "1", r"annotation 10: field 'image_id' must be an integer, got '1'"),
    ("iscrowd", 2, r"annotation 10: field 'iscrowd' must be 0 or 1, got 2"),
    ("area", -5, r"annotation 10: field 'area' must be >= 0, got -5"),
    ("num_keypoints", 1.5, r"annotation 10: field 'num_keypoints' must be an integer"),
    ("bbox", [1e300, 0, 10, 10], r"annotation 10: field 'bbox' has a value beyond"),
])
def test_wrong_typed_fields_are_one_line_naming_the_record_and_field(coco_root, field, value,
                                                                     message):
    root, tree = coco_root
    tree["annotations"][0][field] = value
    with pytest.raises(HrposeError, match=message) as error:
        load_coco(_write(root, tree))
    assert "\n" not in str(error.value) and str(root / "ann.json") in str(error.value)


@pytest.mark.parametrize("value", [".inf", "1e400", ".nan"])
def test_a_config_number_must_be_finite(tmp_path, value):
    from hrpose.config import load_config

    (tmp_path / "c.yaml").write_text(f"train:\n  lr: {value}\n")
    with pytest.raises(HrposeError, match=r"c.yaml: train.lr: expected a finite number"):
        load_config(tmp_path / "c.yaml")


def test_an_image_stating_too_many_pixels_is_refused_before_decoding(tmp_path):
    """cv2.error used to escape; simplejpeg would allocate the stated size first."""
    import struct

    _, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(png.tobytes())
    data[16:24] = struct.pack(">II", 40000, 30000)
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(data))
    tracemalloc.start()
    with pytest.raises(HrposeError, match=r"bomb.png: the image states 40000x30000 pixels, "
                                          r"more than the limit"):
        read_image(path)
    assert tracemalloc.get_traced_memory()[1] < 1 << 20
    tracemalloc.stop()


def test_a_png_chunk_longer_than_the_file_is_refused_before_cv2_allocates_it(tmp_path):
    """cv2 allocated the claimed length (2 GiB from a 4 KB file) before finding it short."""
    import struct

    _, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(png.tobytes())
    idat = data.find(b"IDAT") - 4
    data[idat : idat + 4] = struct.pack(">I", 0x7FFFFFF0)
    (tmp_path / "chunk.png").write_bytes(bytes(data))
    with pytest.raises(HrposeError, match=r"chunk.png: corrupt PNG \(chunk b'IDAT' at byte "
                                          r"\d+ claims 2,147,483,632 bytes"):
        read_image(tmp_path / "chunk.png")


def test_one_bad_image_does_not_cost_a_folder_its_results(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.jpg"), np.full((64, 48, 3), 60 * i, np.uint8))
    _, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    bomb = bytearray(png.tobytes())
    bomb[16:24] = (65535).to_bytes(4, "big") * 2
    (folder / "bomb.png").write_bytes(bytes(bomb))
    out = tmp_path / "out"
    status = main(["infer", str(folder), "--model", str(LEGACY / "tiny.onnx"), "--detector",
                   "none", "--out", str(out), "--json", "--no-draw"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 1 and summary["images"] == 3 and len(summary["failed"]) == 1
    assert "bomb.png: the image states 65535x65535" in summary["failed"][0]["error"]
    assert {r["file_name"] for r in json.loads((out / "results.json").read_text())} == {
        "0.jpg", "1.jpg", "2.jpg"}


def _nms_reference(kp, scores, areas, sigmas, threshold):
    """The full-matrix greedy OKS-NMS this replaced."""
    order = np.argsort(-scores, kind="stable")
    oks = pairwise_oks(kp, kp, areas, areas, np.asarray(sigmas))
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        order = order[1:][oks[i, order[1:]] <= threshold]
    return np.asarray(keep)


@pytest.mark.slow
def test_nms_keeps_the_same_people_in_memory_linear_in_them():
    sigmas = np.asarray(COCO.sigmas)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 60))
        centers = rng.uniform(0, 200, (n, 1, 2))
        kp = np.concatenate([centers + rng.normal(0, 8, (n, 17, 2)), rng.random((n, 17, 1))], -1)
        scores, areas = np.round(rng.random(n), 1), rng.uniform(500, 5000, n)
        assert np.array_equal(oks_nms(kp, scores, areas, sigmas, 0.9),
                              _nms_reference(kp, scores, areas, sigmas, 0.9))
        boxes = np.c_[rng.uniform(0, 100, (n, 2)), rng.uniform(5, 50, (n, 2))]
        iou = box_iou(boxes, boxes)
        order, dropped = np.argsort(-scores, kind="stable"), np.zeros(n, bool)
        for i, a in enumerate(order):          # greedy on the full matrix
            if not dropped[i]:
                dropped[i + 1:] |= iou[a, order[i + 1:]] > 0.5
        assert np.array_equal(nms(boxes, scores, 0.5), order[~dropped])
    # 4,000 detections in one image: the full N x N x K x 2 float64 array is 4.4 GB.
    n = 4000
    kp = np.concatenate([rng.uniform(0, 4000, (n, 17, 2)), rng.random((n, 17, 1))], -1)
    scores, areas = rng.random(n), np.full(n, 2000.0)
    tracemalloc.start()
    keep = oks_nms(kp, scores, areas, sigmas, 0.9)
    soft, _ = soft_oks_nms(kp, scores, areas, sigmas, 0.9)
    nms(np.c_[kp[:, 0, :2], np.full((n, 2), 30.0)], scores, 0.5)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 32 << 20 and len(keep) > 3500 and len(soft) == 20


# ---- hostile checkpoints at every entry point --------------------------------------------------

class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def hostile(tmp_path) -> tuple[Path, Path]:
    """A .pth whose unpickling would create `marker` (code execution), and the marker."""
    marker = tmp_path / "code-ran"
    path = tmp_path / "hostile.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "x": _Payload(marker)}, path)
    return path, marker


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny-data")
    write_dataset(root, train=8, val=2, seed=1, workers=1, progress=False)
    return root


def _quickstart(*overrides: str) -> list[str]:
    config = ROOT / "configs" / "synthetic" / "quickstart.yaml"
    return [str(config), *(arg for o in (*TINY_TRAIN, *overrides) for arg in ("-o", o))]


@pytest.mark.parametrize("entry", ["convert", "build_model", "eval", "infer", "train-init",
                                   "teacher", "resume", "load_weights"])
def test_no_entry_point_runs_code_from_a_checkpoint(entry, hostile, tiny_data, tmp_path, capsys):
    path, marker = hostile
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.zeros((64, 48, 3), np.uint8))
    data = [f"data.root={tiny_data}"]
    commands = {
        "convert": ["convert", str(path), str(tmp_path / "w.safetensors")],
        "eval": ["eval", str(path), "--data", str(tiny_data), "--out", str(tmp_path / "e")],
        "infer": ["infer", str(image), "--model", str(path), "--detector", "none", "--out",
                  str(tmp_path / "i")],
        "train-init": ["train", *_quickstart(*data, f"model.init={path}"), "--out",
                       str(tmp_path / "t")],
        "teacher": ["train", *_quickstart(*data), "--teacher", "hrnet_w32_256x192",
                    "--teacher-weights", str(path), "--out", str(tmp_path / "d")],
    }
    if entry in commands:
        assert main(commands[entry]) == 2
        assert "unsafe or corrupt pickle" in capsys.readouterr().err
    elif entry == "build_model":
        with pytest.raises(HrposeError, match="never unpickled"):
            build_model("hrnet_w32_256x192", weights=path)
    elif entry == "load_weights":
        with pytest.raises(HrposeError, match="never unpickled"):
            load_weights(tiny_hrnet(), path)
    else:                                              # resume: latest.pt itself is hostile
        run = tmp_path / "run"
        run.mkdir()
        (run / "latest.pt").write_bytes(path.read_bytes())
        (run / "config.yaml").write_text(Path(_quickstart()[0]).read_text())
        assert main(["train", "--resume", "--out", str(run)]) == 2
        assert "cannot read the training state" in capsys.readouterr().err
    assert not marker.exists()


def test_right_names_but_non_finite_or_absurd_values_are_refused(tmp_path):
    model = randomize(tiny_hrnet())
    state = model.state_dict()
    state["head.final_layer.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(HrposeError, match=r"nan.pth: tensor head.final_layer.weight holds NaN"):
        load_weights(tiny_hrnet(), tmp_path / "nan.pth")
    state = {k: v.double() for k, v in randomize(tiny_hrnet()).state_dict().items()}
    state["backbone.conv1.weight"][0] = 1e300          # finite in float64, inf in float32
    torch.save(state, tmp_path / "huge.pth")
    with pytest.raises(HrposeError, match=r"too large for its type"):
        load_weights(tiny_hrnet(), tmp_path / "huge.pth")
    # A zip bomb dressed as a PyTorch file is refused before it is decompressed.
    import zipfile

    with zipfile.ZipFile(tmp_path / "bomb.pth", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * (300 << 20))
    with pytest.raises(HrposeError, match=r"expand to 300 MiB from 0.3 MiB \(a zip bomb"):
        load_weights(tiny_hrnet(), tmp_path / "bomb.pth")
    # A card asking for an absurd architecture never builds it.
    metadata = {"arch": json.dumps({"family": "hrnet", "width": 100000}), "input_hw": "[64, 48]"}
    save_weights(tmp_path / "wide.safetensors", model.state_dict(), metadata)
    with pytest.raises(HrposeError, match=r"field 'width' is 100000, expected an integer in "
                                          r"\[1, 1024\]"):
        load_model(tmp_path / "wide.safetensors")


# ---- never write over an input ------------------------------------------------------------

def _image(path: Path, value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((64, 48, 3), value, np.uint8))
    return path


def _untouched(tmp_path: Path, run) -> str:
    """Runs `run`, which must be refused with exit 2; returns stderr; asserts that no file
    changed or appeared under tmp_path."""
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    status, err = run()
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert status == 2 and after == before, (status, set(after) ^ set(before))
    assert err.count("\n") == 1
    return err


def test_infer_refuses_an_out_folder_that_holds_an_input(tmp_path, capsys):
    _image(tmp_path / "nest" / "x.jpg")
    _image(tmp_path / "nest" / "b" / "x.jpg", 200)
    (tmp_path / "vid" / "a").mkdir(parents=True)
    (tmp_path / "vid" / "a" / "clip.mp4").write_bytes(b"video")

    def infer(pattern: str, out: Path):
        status = main(["infer", pattern, "--model", str(LEGACY / "tiny.onnx"), "--detector",
                       "none", "--out", str(out)])
        return status, capsys.readouterr().err

    err = _untouched(tmp_path, lambda: infer(f"{tmp_path}/nest/**/*.jpg", tmp_path / "nest/b"))
    assert "--out holds the input" in err and "b/x.jpg" in err
    err = _untouched(tmp_path, lambda: infer(f"{tmp_path}/vid/**/*", tmp_path / "vid/a"))
    assert "--out holds the input" in err and "clip.mp4" in err


def test_only_inputs_that_exist_can_be_replaced(tmp_path):
    from hrpose.paths import check_output

    (tmp_path / "a.jpg").write_bytes(b"x")
    check_output(tmp_path, ["hrnet_w32_256x192", "https://example.org/w.pth", None])
    with pytest.raises(HrposeError, match=r"--out holds the input .*a.jpg"):
        check_output(tmp_path, ["hrnet_w32_256x192", tmp_path / "a.jpg"])
    with pytest.raises(HrposeError, match=r"OUTPUT is the input"):
        check_output(tmp_path / "a.jpg", [tmp_path / "a.jpg"], "OUTPUT", folder=False)
    check_output(tmp_path / "b.jpg", [tmp_path / "a.jpg"], "OUTPUT", folder=False)


def test_drawings_mirror_the_input_tree_and_keep_each_name():
    inputs = [Path("/d/p.jpg"), Path("/d/p.png"), Path("/d/p.bmp"), Path("/d/a/clip.mp4"),
              Path("/d/b/clip.mp4"), Path("/d/b/clip.avi")]
    names = output_names(inputs, Path("/out"))
    assert [str(names[p]) for p in inputs] == [
        "/out/p.jpg", "/out/p.png", "/out/p.bmp.jpg", "/out/a/clip.mp4", "/out/b/clip.mp4",
        "/out/b/clip.avi.mp4"]
    with pytest.raises(HrposeError, match=r"would both be drawn to /out/p.bmp.jpg"):
        output_names([Path("/d/p.bmp"), Path("/d/p.bmp.jpg")], Path("/out"))


def test_infer_writes_one_drawing_per_input_and_counts_them(tmp_path, capsys):
    for name, value in (("p.jpg", 10), ("p.png", 120), ("p.bmp", 250)):
        _image(tmp_path / "in" / name, value)
    out = tmp_path / "out"
    assert main(["infer", str(tmp_path / "in"), "--model", str(LEGACY / "tiny.onnx"),
                 "--detector", "none", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    written = sorted(p.name for p in out.iterdir() if p.name != "results.json")
    assert written == ["p.bmp.jpg", "p.jpg", "p.png"] == sorted(
        Path(d).name for d in summary["drawings"])
    means = {name: read_image(out / name).mean() for name in written}
    assert means["p.jpg"] < 60 < means["p.png"] < 160 < means["p.bmp.jpg"]


def test_data_convert_train_and_eval_refuse_to_write_over_inputs(tmp_path, tiny_data, capsys):
    def cli(*args: str):
        status = main(list(args))
        return status, capsys.readouterr().err

    data = tmp_path / "data"
    data.mkdir()
    (data / "annotations").mkdir()
    (data / "annotations" / "person_keypoints_train2017.json").write_text("{}  # real labels")
    err = _untouched(tmp_path, lambda: cli("data", "synth", "--out", str(data), "--train", "2",
                                           "--val", "1"))
    assert "already holds a data set" in err

    weights = tmp_path / "w.safetensors"
    save_weights(weights, tiny_hrnet().state_dict())
    err = _untouched(tmp_path, lambda: cli("convert", str(weights), str(weights)))
    assert "OUTPUT is the input" in err

    run = tmp_path / "run"
    run.mkdir()
    config = run / "config.yaml"
    config.write_text("# my commented config\n" + (ROOT / "configs/synthetic/quickstart.yaml")
                      .read_text())
    err = _untouched(tmp_path, lambda: cli("train", str(config), "--out", str(run), "-o",
                                           f"data.root={tiny_data}"))
    assert "--out holds the input" in err and "config.yaml" in err

    results = tmp_path / "scored" / "results.json"
    results.parent.mkdir()
    results.write_text("[]")
    err = _untouched(tmp_path, lambda: cli("eval", "--results", str(results), "--data",
                                           str(tiny_data), "--out", str(results.parent)))
    assert "--out holds the input" in err
    err = _untouched(tmp_path, lambda: cli("eval", "--results", str(results), "--data",
                                           str(data), "--out", str(data)))
    assert "--out is the input" in err


# ---- crash safety ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crash_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("crash-data")
    write_dataset(root, train=24, val=4, seed=3, workers=1, progress=False)
    return root


@pytest.fixture(scope="module")
def uninterrupted(crash_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("whole") / "run"
    assert crashing.run_driver(run, crash_data) == 0
    return run


@pytest.mark.parametrize("point", [
    ("optimizer", "INT", "4"),    # Ctrl-C right after the weights change: held to the step's end
    ("save", "KILL", "1"),        # killed half-way through writing latest.pt
    ("eval", "KILL", "2"),        # killed inside an evaluation
])
@pytest.mark.slow
def test_a_killed_run_leaves_loadable_files_and_resumes_bit_for_bit(
        point, crash_data, uninterrupted, tmp_path):
    run = tmp_path / "run"
    status = crashing.run_driver(run, crash_data, *point)
    assert status == (130 if point[1] == "INT" else -signal.SIGKILL)
    crashing.check_left_files(run)
    assert crashing.run_driver(run, crash_data) == 0
    whole, resumed = crashing.final_weights(uninterrupted), crashing.final_weights(run)
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name
    assert not list(run.glob(".*.tmp")), "a temporary file stayed behind"


KILLED_INFER = """
import os, signal, sys
from hrpose import io
from hrpose.inference import infer
calls = [0]
def write_image(path, image):
    calls[0] += 1
    with io.atomic_path(path) as tmp:
        tmp.write_bytes(b"half a drawing")
        if calls[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
infer.write_image = write_image
from hrpose.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_infer_leaves_nothing_half_written_under_a_final_name(tmp_path):
    for i in range(4):
        _image(tmp_path / "in" / f"{i}.jpg", 40 * i)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", KILLED_INFER, "infer", str(tmp_path / "in"),
                             "--model", str(LEGACY / "tiny.onnx"), "--detector", "none",
                             "--out", str(out)], capture_output=True, timeout=300)
    assert result.returncode == -signal.SIGKILL
    finals = [p for p in out.iterdir() if not p.name.endswith(".tmp")]
    assert [p.name for p in finals] == ["0.jpg"] and finals[0].read_bytes() == b"half a drawing"
    assert not (out / "results.json").exists()


KILLED_EXPORT = """
import os, signal, sys
from hrpose.export import exporter
def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
exporter._verify = killed
from hrpose.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_export_leaves_no_file_under_its_name(tmp_path):
    out = tmp_path / "model.xml"
    result = subprocess.run([sys.executable, "-c", KILLED_EXPORT, "export",
                             str(LEGACY / "tiny.onnx"), "--format", "openvino", "--out",
                             str(out)], capture_output=True, timeout=300)
    assert result.returncode == -signal.SIGKILL
    assert not out.exists() and not out.with_suffix(".bin").exists()


FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # a write past the limit fails with EFBIG
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from hrpose.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_temporary(tmp_path, tiny_data):
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", FULL_DISK, str(200_000), "train",
                             *_quickstart(f"data.root={tiny_data}", "train.epochs=1"),
                             "--out", str(run)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert last.startswith(f"hrpose: error: {run}/") and "cannot write (File too large)" in last
    assert not list(run.glob(".*.tmp"))


def test_the_error_says_when_the_disk_is_full(tmp_path):
    import errno

    from hrpose.io import write_failure

    error = write_failure(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "w.pt")
    assert str(error) == (f"{tmp_path / 'w.pt'}: cannot write (No space left on device: the "
                          "disk is full); the previous file, if any, is unchanged")
    # safetensors puts the OS error in its text
    assert "File too large" in str(write_failure(Exception("I/O error (os error 27)"),
                                                 tmp_path / "w.safetensors"))
    assert write_failure(ValueError("a bug"), tmp_path / "w.pt") is None


def test_the_campaign_replays_one_case(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz_campaign.py"),
                             "--replay", "annotations:7"], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() in ("accepted", "error")


def test_mutators_are_reproducible_from_their_seed():
    from .fuzzing import mutate_bytes, mutate_tree

    tree = {"a": [1, 2, {"b": "c"}], "d": 4.5}
    assert mutate_tree(tree, random.Random(3)) == mutate_tree(tree, random.Random(3))
    assert mutate_bytes(b"x" * 100, random.Random(5)) == mutate_bytes(b"x" * 100,
                                                                      random.Random(5))


# --- the last tracebacks, one line each ---------------------------------------------------------


@pytest.mark.parametrize(("override", "message"), [
    ("train.lr=-1", "train.lr: expected a number > 0, got -1.0"),
    ("train.eval_every=0", "train.eval_every: expected a whole number >= 1, got 0"),
    ("train.threads=-1", "train.threads: expected a whole number >= 0, got -1"),
    ("data.workers=-1", "data.workers: expected a whole number >= 0, got -1"),
    ("train.seed=-1", "train.seed: expected a whole number in [0, 4,294,967,295], got -1"),
    ("model.width=0", "model.width: expected a whole number >= 1, got 0"),
    ("model.stage_modules=[1,0,1]", "model.stage_modules: expected a whole number >= 1, got 0"),
    ("train.device=bogus", "train.device: 'bogus' is not auto or a device name"),
    ("test.batch=0", "test.batch: expected a whole number >= 1, got 0"),
    ("test.scales=[1,-2]", "test.scales: expected a number > 0, got -2.0"),
])
def test_config_values_are_checked_like_their_flags_in_one_line(override, message, tmp_path,
                                                               capsys):
    assert main(["train", *_quickstart(override), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "run").exists()


def test_a_flag_out_of_range_uses_the_same_words(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "hrnet_w32_256x192", "--batch", "0"])
    assert "expected a whole number >= 1, got 0" in capsys.readouterr().err


def test_resume_of_a_finished_run_and_of_an_empty_state_are_one_line(tiny_data, tmp_path,
                                                                    capsys):
    run = tmp_path / "run"
    args = ["train", *_quickstart(f"data.root={tiny_data}", "train.epochs=1"), "--out", str(run)]
    assert main(args + ["--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert main(["train", "--resume", "--out", str(run), "--json"]) == 0
    captured = capsys.readouterr()
    assert "the run is finished (1 epochs); nothing to train" in captured.err
    again = json.loads(captured.out)
    assert again["AP"] == trained["AP"]            # its last evaluation, as saved
    (run / "latest.pt").write_bytes(b"")
    assert main(["train", "--resume", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "latest.pt: cannot read the training state (EOFError)" in err


@pytest.mark.parametrize(("input_hw", "words"), [("[100000, 100000]", "[100000, 100000]"),
                                                 ("[0, 0]", "[0, 0]")])
def test_a_checkpoint_stating_an_impossible_input_size_is_one_line(input_hw, words, tmp_path):
    from hrpose.models.card import ModelCard

    from .helpers import tiny_arch

    card = ModelCard(tiny_arch().to_dict(), (256, 192), COCO)
    path = tmp_path / "odd.safetensors"
    save_weights(path, tiny_hrnet().state_dict(), {**card.to_metadata(), "input_hw": input_hw})
    with pytest.raises(HrposeError, match=rf"odd.safetensors: its metadata's input_hw "
                                          rf"{re.escape(words)} is not an input size \(32 to "
                                          r"4096"):
        load_model(str(path))


def test_a_nul_in_a_file_name_is_one_line(tmp_path, capsys):
    root = tmp_path / "data"
    write_dataset(root, train=0, val=2, seed=1, workers=1, progress=False)
    ann = root / "annotations" / "person_keypoints_val2017.json"
    tree = json.loads(ann.read_text())
    tree["images"][0]["file_name"] = "a\x00b.jpg"
    ann.write_text(json.dumps(tree))
    assert main(["eval", "hrnet_w32_256x192", "--weights", "none", "--data", str(root),
                 "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "field 'file_name' holds a NUL character" in err


def test_an_unwritable_out_is_found_before_any_work(tmp_path, capsys, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path)
                        else real(p, mode))
    with pytest.raises(SystemExit):
        main(["eval", "hrnet_w32_256x192", "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err
    assert f"cannot write in {tmp_path} (a read-only disk, or no permission)" in err
    assert "(see 'hrpose eval --help')" in err


def test_a_write_the_system_refuses_later_is_one_line_naming_the_file(tiny_data, tmp_path,
                                                                     capsys, monkeypatch):
    import errno

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "run"))
    monkeypatch.setattr("hrpose.engine.train.Trainer.__init__", refuse)
    assert main(["train", *_quickstart(f"data.root={tiny_data}"), "--out",
                 str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == f"hrpose: error: {tmp_path / 'run'}: Read-only file system\n"


def test_a_tiff_states_its_size_anywhere_and_an_image_without_one_is_never_decoded(tmp_path):
    import struct

    # 600 private tags first, then the size: a 14 KB file that decodes to 1.2 G pixels
    entries = [(65000 + i % 500, 3, 1, 0) for i in range(600)] + [
        (256, 4, 1, 35000), (257, 4, 1, 35000), (259, 3, 1, 8), (262, 3, 1, 2)]
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", *e) for e in entries) + b"\0" * 4
    (tmp_path / "bomb.tif").write_bytes(tiff)
    with pytest.raises(HrposeError, match=r"bomb.tif: the image states 35000x35000 pixels"):
        read_image(tmp_path / "bomb.tif")
    # a TIFF whose directory lacks its size, and a format hrpose does not read: not decoded
    (tmp_path / "sizeless.tif").write_bytes(tiff[:8] + struct.pack("<H", 1) + struct.pack(
        "<HHII", 259, 3, 1, 8) + b"\0" * 4)
    with pytest.raises(HrposeError, match=r"sizeless.tif: cannot decode the image \(a corrupt "
                                          r"TIFF: its header states no size\)"):
        read_image(tmp_path / "sizeless.tif")
    _, ppm = cv2.imencode(".ppm", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "x.ppm").write_bytes(ppm.tobytes())
    with pytest.raises(HrposeError, match=r"not a JPEG, PNG, BMP, GIF, WebP or TIFF file"):
        read_image(tmp_path / "x.ppm")
