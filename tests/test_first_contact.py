"""What a new user hits first: the precision the hardware picks, exports that refuse to ship a
broken file, one meaning for a zoo name, checked arguments, fast start, file modes, drawing."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import hrpose
from hrpose import hardware
from hrpose.cli import main
from hrpose.config import load_config
from hrpose.errors import HrposeError
from hrpose.export import exporter
from hrpose.export.formats import FORMATS
from hrpose.export.onnx import export_onnx
from hrpose.inference.options import RuntimeOptions
from hrpose.io import atomic_path
from hrpose.models import zoo
from hrpose.models.checkpoint import save_weights

from .helpers import randomize, shared_data, tiny_hrnet

ROOT = Path(__file__).resolve().parents[1]
AVX2 = frozenset({"avx2", "fma"})
AVX512_BF16 = frozenset({"avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16"})


@pytest.fixture
def cpu(monkeypatch):
    """Fakes the CPU's flags and clears the ISA caps, so both kinds of CPU are tested here."""
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)

    def use(flags: frozenset[str]) -> None:
        monkeypatch.setattr(hardware, "cpu_flags", lambda: flags)
    return use


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(cpu, monkeypatch):
    cpu(AVX512_BF16)
    assert hardware.resolve_precision("auto") == "bf16"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")          # capped below bf16: as AVX2
    assert hardware.resolve_precision("auto") == "fp32"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert hardware.resolve_precision("auto") == "fp32"
    monkeypatch.delenv("ATEN_CPU_CAPABILITY")
    cpu(AVX2)
    assert hardware.resolve_precision("auto") == "fp32"
    with pytest.warns(UserWarning, match="bf16 is emulated on this CPU"):
        assert hardware.resolve_precision("bf16") == "bf16"    # asked for: runs, with a warning
    cpu(AVX512_BF16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hardware.resolve_precision("bf16") == "bf16"


def test_training_and_runners_follow_the_hardware(cpu):
    from hrpose.engine.train import _amp_dtype, _channels_last
    from hrpose.inference.backends import TorchRunner

    config = load_config(ROOT / "configs/synthetic/quickstart.yaml")
    assert (config.train.amp, config.train.channels_last) == ("auto", "auto")
    cpu_device = torch.device("cpu")
    for flags, dtype in ((AVX2, None), (AVX512_BF16, torch.bfloat16)):
        cpu(flags)
        assert _amp_dtype(config, cpu_device) is dtype
        assert _channels_last(config, cpu_device)           # pays on the CPU either way
        assert TorchRunner(tiny_hrnet(8), (64, 64)).precision == ("fp32" if dtype is None
                                                                  else "bf16")


def test_cli_prints_one_line_warning_for_emulated_bf16(cpu, tmp_path, capsys):
    cpu(AVX2)
    path = tmp_path / "m.safetensors"
    save_weights(path, tiny_hrnet(8).state_dict(), {"model": "", "arch": json.dumps(
        {"width": 8, "num_joints": 17, "layer1_blocks": 2, "num_blocks": 1,
         "stage_modules": [1, 2, 2]}), "input_hw": "[64, 64]"})
    image = tmp_path / "a.png"
    import cv2

    cv2.imwrite(str(image), np.full((80, 60, 3), 90, np.uint8))
    assert main(["infer", str(image), "--model", str(path), "--precision", "bf16", "--out",
                 str(tmp_path / "out"), "--detector", "none", "--no-draw", "--json"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "bf16" in line]
    assert err and err[0].startswith("hrpose: warning: bf16 is emulated"), err


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "best.safetensors"
    arch = {"width": 8, "num_joints": 17, "layer1_blocks": 2, "num_blocks": 1,
            "stage_modules": [1, 2, 2]}
    save_weights(path, randomize(tiny_hrnet(8), seed=3).state_dict(),
                 {"arch": json.dumps(arch), "input_hw": "[128, 96]", "keypoints": "coco"})
    return path


def test_an_export_that_disagrees_is_refused_and_leaves_nothing(tiny_ckpt, tmp_path,
                                                                monkeypatch, capsys):
    """The quantiser is replaced by one that writes another model (a real file that runs but
    computes something else), as a broken quantisation would."""
    other = randomize(tiny_hrnet(8), seed=99)

    def broken(source, out, calibration, fp16, metadata, simplify):
        export_onnx(other, (128, 96), out, metadata)
    monkeypatch.setitem(FORMATS, "onnx", dataclasses.replace(FORMATS["onnx"], write=broken))
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "tiny_int8.onnx"
    out.write_bytes(b"an earlier good export")
    from hrpose.data.synthetic import write_split

    write_split(tmp_path / "calib", "val", 3, seed=2, progress=False)
    argv = ["export", str(tiny_ckpt), "--int8", "--calib", str(tmp_path / "calib"), "--out",
            str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]      # after the progress line
    assert err.startswith("hrpose: error:") and "disagrees" in err, err
    assert "nothing was written" in err and "--force" in err
    assert out.read_bytes() == b"an earlier good export"        # nothing replaced
    assert sorted(p.name for p in folder.iterdir()) == ["tiny_int8.onnx"]   # no leftovers
    assert main([*argv, "--force", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["agreement"]["within_1px"] < exporter.MIN_AGREEMENT["int8"]
    assert "written because of --force" in captured.err
    assert out.read_bytes() != b"an earlier good export"


def test_export_prints_its_summary_once(tiny_ckpt, tmp_path, capsys):
    assert main(["export", str(tiny_ckpt), "--out", str(tmp_path / "t.onnx")]) == 0
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("joints within 1 heatmap px") == 1


@pytest.mark.slow
def test_int8_onnx_tinypose_keeps_its_coco_ap(tmp_path, capsys, tinypose_checkpoint):
    """PP-TinyPose (its OpenVINO weights in PyTorch) -> INT8 ONNX by NNCF with the depthwise
    convolutions and branch sums kept float, calibrated on coco-tiny + mpii-tiny + ochuman-tiny,
    scored with ground-truth boxes and flip. Measured: coco-tiny 0.823 fp32 / 0.822 INT8;
    coco-mini-train 0.581 / 0.556 (NNCF's MIXED preset with the overflow fix; 0.522 with its
    defaults). ONNX Runtime's own quantiser gave 0.02 before (everything quantised) and 0.43
    with the same float scope. The issue's 0.02 holds on coco-tiny; on coco-mini-train the
    gap is 0.025 and the bound 0.035: the goal is not met there."""
    xml = shared_data("models/tinypose_256x192/model.xml")
    ckpt = tinypose_checkpoint
    out = tmp_path / "tinypose_int8.onnx"
    calib = [str(shared_data(d)) for d in ("coco-tiny", "mpii-tiny", "ochuman-tiny")]
    assert main(["export", str(ckpt), "--int8", "--calib", *calib, "--out", str(out),
                 "--json"]) == 0
    capsys.readouterr()
    for data, split, bound in (("coco-tiny", "val2017", 0.02), ("coco-mini-train", "train2017",
                                                                0.035)):
        root = shared_data(data)
        ap = {}
        for name, model in (("fp32", xml), ("int8", out)):
            assert main(["eval", str(model), "--data", str(root), "--ann",
                         str(root / f"annotations/person_keypoints_{split}.json"), "--images",
                         str(root / split), "--out", str(tmp_path / f"{data}_{name}"),
                         "--precision", "fp32", "--draw", "0", "--batch", "8", "--json"]) == 0
            ap[name] = json.loads(capsys.readouterr().out)["AP"]
        assert ap["fp32"] > 0.5 and ap["int8"] >= ap["fp32"] - bound, (data, ap)
    # OpenVINO runs the QDQ file too; where it cannot build this graph in bf16 (OpenVINO
    # 2026.4 on AMX CPUs), precision "auto" falls back to the fp32 hint instead of failing
    from hrpose.data.transforms import normalize
    from hrpose.export.calibration import person_crops
    from hrpose.inference.backends import OnnxRunner, OpenVINORunner

    x = normalize(person_crops([calib[0]], (256, 192)), (0.485, 0.456, 0.406),
                  (0.229, 0.224, 0.225))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        openvino = OpenVINORunner(out, RuntimeOptions().resolve("openvino"))
    a, b = openvino(x), OnnxRunner(out)(x)
    peaks_a = a.reshape(*a.shape[:2], -1).argmax(-1)
    peaks_b = b.reshape(*b.shape[:2], -1).argmax(-1)
    near = (np.abs(peaks_a % 48 - peaks_b % 48) <= 1) & (np.abs(peaks_a // 48 - peaks_b // 48) <= 1)
    assert near.mean() > 0.9


@pytest.fixture
def offline_zoo(monkeypatch):
    """hrnet_w32_256x192 with its weights at a port nothing listens on: offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = "hrnet_w32_256x192"
    url = f"http://127.0.0.1:{port}/hrnet_w32_coco_256x192-c78dce93_20200708.pth"
    monkeypatch.setitem(zoo.MODELS, name, dataclasses.replace(zoo.MODELS[name],
                                                              weights_url=url))
    return name, url


def test_a_zoo_name_means_its_published_weights_in_every_command(offline_zoo, tmp_path,
                                                                 capsys):
    name, url = offline_zoo
    data = shared_data("coco-tiny")
    commands = [
        ["eval", name, "--data", str(data), "--out", str(tmp_path / "e")],
        ["infer", str(data / "val2017"), "--model", name, "--out", str(tmp_path / "i")],
        ["export", name, "--out", str(tmp_path / "x.onnx")],
    ]
    cache = hrpose.hub.cache_dir()
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and url in err and str(cache) in err, err
        assert "hrnet_w32_coco_256x192-c78dce93_20200708.pth" in err
    with pytest.raises(HrposeError, match="cannot download"):
        hrpose.PoseEstimator(name)
    # random weights only when asked for
    assert main(["eval", name, "--weights", "none", "--data", str(data), "--out",
                 str(tmp_path / "random"), "--draw", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["AP"] < 0.05


def test_a_zoo_model_without_published_weights_says_what_to_do(capsys, tmp_path):
    assert main(["eval", "tinypose_256x192", "--data", str(shared_data("coco-tiny")), "--out",
                 str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "no published weights" in err and "--weights none" in err


def test_every_argument_is_checked_in_one_line(tmp_path, capsys):
    image = shared_data("images", "hrnet_demo.jpg")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    tiny = tmp_path / "t.safetensors"
    save_weights(tiny, tiny_hrnet(8).state_dict(), {"arch": json.dumps(
        {"width": 8, "num_joints": 17, "layer1_blocks": 2, "num_blocks": 1,
         "stage_modules": [1, 2, 2]}), "input_hw": "[64, 64]"})
    model = str(tiny)
    out = str(tmp_path / "out")
    cases = [
        (["eval", model, "--data", str(tmp_path), "--batch", "0", "--out", out], "--batch"),
        (["eval", model, "--data", str(tmp_path), "--batch", "-4", "--out", out], "--batch"),
        (["eval", model, "--data", str(tmp_path), "--out", str(a_file)], "is a file"),
        (["eval", model, "--data", str(tmp_path), "--min-det-score", "1.5", "--out", out],
         "--min-det-score"),
        (["infer", str(image), "--model", model, "--batch", "0", "--out", out], "--batch"),
        (["infer", str(image), "--model", model, "--box-threshold", "-1", "--out", out],
         "--box-threshold"),
        (["infer", str(image), "--model", model, "--keypoint-threshold", "2", "--out", out],
         "--keypoint-threshold"),
        (["infer", str(image), "--model", model, "--out", str(a_file)], "is a file"),
        (["infer", str(image), "--model", model, "--scales", "0.5,1", "--out", out],
         "bottom-up"),
        (["infer", str(image), "--model", model, "--threads", "0", "--out", out], "--threads"),
        (["data", "synth", "--out", out, "--train", "-5"], "--train"),
        (["export", model, "--out", str(tmp_path)], "is a folder"),
        (["export", model, "--calib-limit", "0"], "--calib-limit"),
        (["bench", model, "--rounds", "0"], "--rounds"),
        (["convert", model, str(tmp_path / "w.pth")], "writes weights as safetensors"),
        (["info", "hrnet_w32_256x192", "--run", "--batch", "0"], "--batch"),
    ]
    if torch.version.cuda is None:
        cases.append((["infer", str(image), "--model", model, "--device", "cuda", "--out",
                       out], "CPU-only build"))
    for argv, named in cases:
        assert _exit_code(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("hrpose: error:") and "\n" not in err and named in err, (argv, err)
    assert a_file.read_text() == "keep me" and not Path(out).exists()


def _exit_code(argv: list[str]) -> int:
    """main's status, whether the parser (SystemExit) or the command (return) said it."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code)


def test_public_api_checks_its_arguments_too(tmp_path):
    if torch.version.cuda is None:
        with pytest.raises(HrposeError, match="CPU-only build"):
            hrpose.PoseEstimator("hrnet_w32_256x192", device="cuda", weights="none")
    with pytest.raises(HrposeError, match="bottom-up"):
        hrpose.PoseEstimator("hrnet_w32_256x192", weights="none", scales=(0.5, 1.0))
    with pytest.raises(HrposeError, match="batch"):
        hrpose.PoseEstimator("hrnet_w32_256x192", weights="none", batch=0)
    with pytest.raises(HrposeError, match="safetensors"):
        save_weights(tmp_path / "w.pth", {"a": torch.ones(1)})


def test_help_and_the_info_table_do_not_import_torch():
    code = ("import sys\nfrom hrpose.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['info'])\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_output_files_keep_the_users_umask(tmp_path, tiny_ckpt):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "metrics.json") as tmp:
            tmp.write_text("{}")
        weights = save_weights(tmp_path / "best.safetensors", {"a": torch.ones(2)})
        onnx_file = exporter.export_model(str(tiny_ckpt), tmp_path / "m.onnx", log=False).path
        ir = exporter.export_model(str(tiny_ckpt), tmp_path / "m.xml", "openvino",
                                   log=False).path
        for path in (tmp_path / "metrics.json", weights, onnx_file, ir, ir.with_suffix(".bin")):
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    finally:
        os.umask(old)


def test_draw_is_public_and_takes_people_or_arrays():
    image = np.full((120, 100, 3), 40, np.uint8)
    keypoints = np.zeros((1, 17, 3), np.float32)
    keypoints[0, :, 0], keypoints[0, :, 1], keypoints[0, :, 2] = 50, np.linspace(10, 110, 17), 1
    drawn = hrpose.draw(image, keypoints, "coco")
    assert drawn.shape == image.shape and (drawn != image).any() and (image == 40).all()
    person = hrpose.Person(np.array([20, 5, 60, 110], np.float32), keypoints[0], 0.9)
    boxed = hrpose.draw(image, [person], "coco")
    assert (boxed != drawn).any()                            # the box and its score
    assert (hrpose.draw(image, []) == image).all()
    with pytest.raises(HrposeError, match="16"):
        hrpose.draw(image, keypoints, "mpii")
    # an array says nothing of its joints: the set is given, never guessed from the count
    with pytest.raises(HrposeError, match="give the people's keypoint set"):
        hrpose.draw(image, keypoints)
    # people found by a model carry its set
    carried = hrpose.Person(person.box, person.keypoints, 0.9, skeleton=hrpose.get_skeleton("coco"))
    assert (hrpose.draw(image, [carried]) == boxed).all()


PICODET = "models/picodet_s_320_pedestrian"


@pytest.fixture
def detector_in_cache():
    """The default detector's files placed in the (test's own) cache, as the offline error says
    to do: the shared copies are the published files (their SHA-256 are the zoo's)."""
    import shutil

    cache = hrpose.hub.cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    for url, sha in zoo.DETECTORS[zoo.DEFAULT_DETECTOR].files:
        source = shared_data(PICODET, url.rsplit("/", 1)[1])
        assert hrpose.hub.sha256_of(source) == sha
        shutil.copy(source, cache)
    return cache


def test_the_default_detector_finds_everyone_and_none_takes_the_whole_image(
        detector_in_cache, tmp_path, capsys):
    """coco-tiny's 000000197388.jpg has five people: the default detector finds them, with no
    --detector; `--detector none` gives one whole-image "person", with a warning, since its
    joints are unsure (mean score 0.22; single-person photos score 0.59-0.93, the COCO crowds
    here 0.14-0.26: hence the 0.3 threshold)."""
    image = shared_data("coco-tiny", "val2017", "000000197388.jpg")
    model = str(shared_data("models/tinypose_256x192/model.xml"))
    assert main(["infer", str(image), "--model", model, "--out", str(tmp_path / "a"),
                 "--no-draw", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["people"] >= 4
    assert main(["infer", str(image), "--model", model, "--detector", "none", "--out",
                 str(tmp_path / "b"), "--no-draw", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["people"] == 1
    warning = [line for line in captured.err.splitlines() if "whole image" in line]
    assert warning and warning[0].startswith("hrpose: warning: ") and "detector" in warning[0]
    one = shared_data("images", "hrnet_demo.jpg")              # one person: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        people = hrpose.PoseEstimator(model, detector=None)(one)
    assert len(people) == 1
    assert len(hrpose.PoseEstimator(model)(one)) == 1           # the detector agrees


def test_the_default_detector_offline_says_where_to_put_it(tmp_path, monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = zoo.DETECTORS[zoo.DEFAULT_DETECTOR]
    files = tuple((f"http://127.0.0.1:{port}/{url.rsplit('/', 1)[1]}", sha)
                  for url, sha in spec.files)
    monkeypatch.setitem(zoo.DETECTORS, spec.name, dataclasses.replace(spec, files=files))
    model = str(shared_data("models/tinypose_256x192/model.xml"))
    image = shared_data("images", "hrnet_demo.jpg")
    assert main(["infer", str(image), "--model", model, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert files[0][0] in err and str(hrpose.hub.cache_dir()) in err and "--detector none" in err
    assert "picodet_s_320_lcnet_pedestrian.xml" in err
    # boxes given, or a bottom-up model: no detector is needed, none is fetched
    est = hrpose.PoseEstimator(model)
    assert len(est(image, boxes=[[100, 50, 200, 400]])) == 1


def test_the_default_detector_downloads_and_checks_its_hashes(tmp_path, monkeypatch):
    """Served from 127.0.0.1: both files come down and are checked by their full SHA-256; a
    file that does not match is deleted and named."""
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    folder = tmp_path / "site"
    folder.mkdir()
    import shutil

    spec = zoo.DETECTORS[zoo.DEFAULT_DETECTOR]
    for url, _ in spec.files:
        shutil.copy(shared_data(PICODET, url.rsplit("/", 1)[1]), folder)

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(folder), **k)

        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        files = tuple((base + url.rsplit("/", 1)[1], sha) for url, sha in spec.files)
        monkeypatch.setitem(zoo.DETECTORS, spec.name, dataclasses.replace(spec, files=files))
        path = zoo.detector_file(spec.name)
        assert path.name == "picodet_s_320_lcnet_pedestrian.xml"
        assert path.with_suffix(".bin").is_file()
        for cached in (path, path.with_suffix(".bin")):
            cached.unlink()
        bad = ((files[0][0], "0" * 64), files[1])
        monkeypatch.setitem(zoo.DETECTORS, spec.name, dataclasses.replace(spec, files=bad))
        with pytest.raises(HrposeError, match="corrupt file was deleted"):
            zoo.detector_file(spec.name)
        assert not path.exists()
    finally:
        server.shutdown()
        server.server_close()


def test_results_as_a_csv_table(tmp_path, capsys):
    root = shared_data("coco-tiny")
    model = str(shared_data("models/tinypose_256x192/model.xml"))
    assert main(["infer", str(root / "val2017"), "--model", model, "--boxes",
                 str(root / "annotations/person_keypoints_val2017.json"), "--format", "csv",
                 "--out", str(tmp_path), "--no-draw", "--json"]) == 0
    capsys.readouterr()
    import csv

    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(rows) == 17 * len(results) and list(rows[0]) == [
        "file", "frame", "track_id", "person", "joint", "x", "y", "score"]
    assert rows[0]["joint"] == "nose" and rows[16]["joint"] == "right_ankle"
    first = results[0]
    assert rows[0]["file"] == first["file_name"] and rows[0]["person"] == "0"
    assert [float(rows[5][k]) for k in ("x", "y", "score")] == first["keypoints"][15:18]
    people = {(r["file"], r["person"]) for r in rows}
    assert len(people) == len(results)                 # one index per person of an image
