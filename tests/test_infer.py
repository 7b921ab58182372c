"""Inference: the PoseEstimator on real models and images, batching, the detector, image inputs,
boxes, video in and out, tracking and One-Euro smoothing, and `hrpose infer`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hrpose.cli import main
from hrpose.errors import HrposeError
from hrpose.inference.boxes import box_iou, check_boxes, load_box_file, nms
from hrpose.inference.estimator import Person, PoseEstimator
from hrpose.inference.images import find_inputs, to_rgb
from hrpose.inference.video import OneEuroFilter, PoseTracker, SmoothingSettings, VideoReader
from hrpose.io import read_image

from .helpers import PICODET_XML as PICODET
from .helpers import TINYPOSE_XML as TINYPOSE
from .helpers import message_lines, shared_data


@pytest.fixture(scope="module")
def tinypose() -> PoseEstimator:
    return PoseEstimator(shared_data(TINYPOSE), detector=None)


@pytest.fixture(scope="module")
def coco_tiny() -> tuple[Path, dict]:
    root = shared_data("coco-tiny")
    return root, json.loads((root / "annotations/person_keypoints_val2017.json").read_text())


def _people_of(gt: dict, image_id: int) -> list[dict]:
    return [a for a in gt["annotations"] if a["image_id"] == image_id and a["num_keypoints"] >= 8]


def test_tinypose_puts_keypoints_on_real_people(tinypose, coco_tiny):
    root, gt = coco_tiny
    assert tinypose.skeleton.name == "coco" and tinypose.input_hw == (256, 192)
    visible_scores, checked = [], 0
    for info in gt["images"]:
        people = _people_of(gt, info["id"])
        if not people:
            continue
        found = tinypose(root / "val2017" / info["file_name"], [a["bbox"] for a in people])
        assert len(found) == len(people)
        for ann, person in zip(people, found):
            truth = np.array(ann["keypoints"], float).reshape(17, 3)
            visible = truth[:, 2] == 2
            x, y, w, h = ann["bbox"]
            kp = person.keypoints
            assert kp.shape == (17, 3) and kp.dtype == np.float32
            # Visible joints: inside the (slightly grown) box and near the truth.
            assert (kp[visible, 0] > x - 0.1 * w).all() and (kp[visible, 0] < x + 1.1 * w).all()
            assert (kp[visible, 1] > y - 0.1 * h).all() and (kp[visible, 1] < y + 1.1 * h).all()
            error = np.linalg.norm(kp[visible, :2] - truth[visible, :2], axis=1)
            assert np.median(error) < 0.05 * max(w, h)
            assert 0.3 < person.score <= 1.5 and person.box_score == 1.0
            visible_scores.extend(kp[visible, 2])
            checked += 1
    assert checked >= 8
    # ... and found confidently: at most one visible joint in twenty under the 0.3 threshold.
    assert np.mean(np.array(visible_scores) > 0.3) >= 0.95


def test_batching_across_images_equals_one_at_a_time(coco_tiny):
    root, gt = coco_tiny
    est = PoseEstimator(shared_data(TINYPOSE), batch=5, detector=None)  # batches straddle images
    images, boxes = [], []
    for info in gt["images"]:
        people = [a["bbox"] for a in gt["annotations"] if a["image_id"] == info["id"]]
        images.append(read_image(root / "val2017" / info["file_name"]))
        boxes.append(people)
    assert sum(map(len, boxes)) >= 12
    together = est.predict_batch(images, boxes, color="rgb")
    for image, image_boxes, found in zip(images, boxes, together):
        assert len(found) == len(image_boxes)
        for box, person in zip(image_boxes, found):
            alone = est(image, [box], color="rgb")[0]
            np.testing.assert_allclose(person.keypoints, alone.keypoints, atol=1e-3)
            np.testing.assert_allclose(person.box, box, atol=1e-4)


def test_the_detector_finds_the_person_in_the_demo_image():
    from hrpose.inference.detector import ExportedDetector

    detector = ExportedDetector(shared_data(PICODET))
    image = read_image(shared_data("images/hrnet_demo.jpg"))
    (boxes,) = detector([image])
    assert boxes.shape == (1, 5) and boxes[0, 4] > 0.8
    # The player, hand-measured on the 359x423 photo: head top y ~20, shoe soles y ~387,
    # left glove x ~103, right glove x ~258.
    assert box_iou(boxes[:, :4], np.array([[103, 20, 155, 367]]))[0, 0] > 0.85


def test_estimator_with_a_detector_and_with_the_whole_image(tinypose, tinypose_picodet):
    demo = shared_data("images/hrnet_demo.jpg")
    whole = tinypose(demo)
    assert len(whole) == 1 and np.allclose(whole[0].box, [0, 0, 359, 423])
    est = tinypose_picodet
    (person,) = est(demo)
    assert person.box_score > 0.8
    kp = person.keypoints
    # Facing the camera: the left shoulder (5) is on image-right of the right shoulder (6),
    # shoulders above hips above knees above ankles.
    assert kp[5, 0] > kp[6, 0]
    assert kp[5:7, 1].mean() < kp[11:13, 1].mean() < kp[13:15, 1].mean() < kp[15:17, 1].mean()


def test_image_inputs_become_rgb_uint8():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(to_rgb(rgb, "rgb"), rgb)
    assert np.array_equal(to_rgb(rgb[..., ::-1], "bgr"), rgb)
    assert np.array_equal(to_rgb(np.dstack([rgb, np.full((20, 30), 7, np.uint8)]), "rgb"), rgb)
    gray = rgb[..., 0]
    assert np.array_equal(to_rgb(gray), np.dstack([gray] * 3))
    assert np.array_equal(to_rgb(gray[..., None]), np.dstack([gray] * 3))
    assert np.array_equal(to_rgb(rgb.astype(np.uint16) * 257, "rgb"), rgb)
    assert np.array_equal(to_rgb(rgb / 255.0, "rgb"), rgb)
    with pytest.raises(HrposeError, match=r"say which channel order.*cv2.imread gives BGR"):
        to_rgb(rgb)
    with pytest.raises(HrposeError, match=r"float image must hold values in \[0, 1\]"):
        to_rgb(rgb * 2.0, "rgb")
    with pytest.raises(HrposeError, match=r"frame 3: an image array is .* got shape \(4, 4, 2\)"):
        to_rgb(np.zeros((4, 4, 2), np.uint8), "rgb", "frame 3")
    with pytest.raises(HrposeError, match="expected a file path, a numpy array or a PIL image"):
        to_rgb([1, 2, 3])


def test_exif_rotated_jpegs_and_pil_images_come_upright(tmp_path):
    from PIL import Image, ImageOps

    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:10, :20] = 255                          # a bright top-left corner
    for orientation in range(1, 9):
        im = Image.fromarray(pixels)
        exif = im.getexif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.jpg"
        im.save(path, quality=95, exif=exif)
        expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        assert expected.shape[:2] == ((40, 60) if orientation <= 4 else (60, 40))
        assert np.abs(read_image(path).astype(int) - expected).max() <= 1
        assert np.array_equal(to_rgb(Image.open(path)), expected)
    # 16-bit grayscale and RGBA files.
    cv2.imwrite(str(tmp_path / "g16.png"), (np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4))
    assert read_image(tmp_path / "g16.png").shape == (3, 4, 3)
    assert read_image(tmp_path / "g16.png")[0, 1, 0] == 5000 >> 8
    rgba = np.dstack([pixels, np.full((40, 60), 255, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    assert read_image(tmp_path / "rgba.png").shape == (40, 60, 3)


def test_box_nms_iou_and_checks():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 5, 5], [0, 0, 10, 20]], float)
    # IoU by hand: boxes 0 and 1 overlap 9x9 = 81 of 100 + 100 - 81 = 119.
    assert box_iou(boxes[:1], boxes[1:2])[0, 0] == pytest.approx(81 / 119)
    assert box_iou(boxes[:1], boxes[3:4])[0, 0] == pytest.approx(0.5)
    scores = np.array([0.9, 0.95, 0.5, 0.8])
    # Box 3 overlaps box 1 by 9 x 10 = 90 of 200 + 100 - 90 = 210: IoU 0.43.
    assert nms(boxes, scores, 0.6).tolist() == [1, 3, 2]        # 0 is 0.68 IoU with 1
    assert nms(boxes, scores, 0.4).tolist() == [1, 2]
    checked = check_boxes([[5, 5, 10, 10]], (100, 50), "a.jpg")
    assert checked.tolist() == [[5, 5, 10, 10, 1]]
    with pytest.raises(HrposeError, match=r"a.jpg: box 1 \[3, 4, 0, 9\] has zero size"):
        check_boxes([[5, 5, 10, 10], [3, 4, 0, 9]], (100, 50), "a.jpg")
    with pytest.raises(HrposeError, match=r"a.jpg: box 0 \[120, 4, 5, 9\] lies outside the "
                                          r"100x50 image"):
        check_boxes([[120, 4, 5, 9]], (100, 50), "a.jpg")
    with pytest.raises(HrposeError, match=r"boxes must be \(N, 4\)"):
        check_boxes([[1, 2, 3]], (100, 50), "a.jpg")


def test_box_files(tmp_path, coco_tiny):
    root, gt = coco_tiny
    boxes, names = load_box_file(root / "person_detection_results/"
                                 "COCO_val2017_detections_AP_H_56_person.json")
    assert sum(len(b) for b in boxes.values()) == 118 and not names
    boxes, names = load_box_file(root / "annotations/person_keypoints_val2017.json")
    assert names == {im["file_name"]: im["id"] for im in gt["images"]}
    assert sum(len(b) for b in boxes.values()) == sum(not a["iscrowd"] for a in gt["annotations"])
    (tmp_path / "bad.json").write_text(json.dumps([{"image_id": 1, "bbox": [1, 2]}]))
    with pytest.raises(HrposeError, match=r"bad.json: entry 0: field .bbox. has 2 numbers"):
        load_box_file(tmp_path / "bad.json")


def test_one_euro_smoothing_reduces_jitter_on_a_noisy_track():
    fps, frames = 30.0, 150
    t = np.arange(frames) / fps
    rng = np.random.default_rng(0)
    # 17 joints of a 200 px tall person swaying 20 px at 0.5 Hz, detected with 3 px noise.
    base = rng.uniform(100, 300, (17, 2))
    truth = base[None] + 20 * np.sin(2 * np.pi * 0.5 * t)[:, None, None] * np.array([1, 0.3])
    noisy = truth + rng.normal(0, 3, truth.shape)
    tracker = PoseTracker(fps, SmoothingSettings())
    smoothed = []
    for f in range(frames):
        kp = np.c_[noisy[f], np.ones(17)].astype(np.float32)
        box = np.array([100 + truth[f, 0, 0] - base[0, 0], 100, 200, 200], np.float32)
        (person,) = tracker.update([Person(box, kp, 0.9)])
        assert person.track_id == 0
        smoothed.append(person.keypoints[:, :2])
    smoothed = np.array(smoothed)

    def jitter(track: np.ndarray) -> float:        # mean frame-to-frame change beyond the truth's
        return float(np.abs(np.diff(track - truth, axis=0)).mean())

    def error(track: np.ndarray) -> float:
        return float(np.linalg.norm(track - truth, axis=-1)[10:].mean())

    assert jitter(smoothed) < 0.5 * jitter(noisy)
    assert error(smoothed) < 0.8 * error(noisy)
    # beta lets the filter follow fast moves: at 3 Hz, more cutoff from speed, less lag.
    fast = base[None] + 40 * np.sin(2 * np.pi * 3 * t)[:, None, None]
    lag = []
    for beta in (0.0, SmoothingSettings().beta):
        f = OneEuroFilter(fps, SmoothingSettings(beta=beta), scale=200)
        lag.append(np.abs(np.array([f(x) for x in fast]) - fast)[10:].mean())
    assert lag[1] < 0.5 * lag[0]


def test_tracker_keeps_ids_across_frames_and_starts_new_tracks():
    def person(x: float) -> Person:
        return Person(np.array([x, 10, 50, 100], np.float32), np.zeros((17, 3), np.float32), 1.0)

    tracker = PoseTracker(25.0, max_missed=2)
    ids = [p.track_id for p in tracker.update([person(0), person(200)])]
    assert ids == [0, 1]
    ids = [p.track_id for p in tracker.update([person(205), person(5)])]   # order swapped
    assert ids == [1, 0]
    for _ in range(3):                            # person 1 gone for 3 frames: its track ends
        assert [p.track_id for p in tracker.update([person(8)])] == [0]
    assert [p.track_id for p in tracker.update([person(8), person(205)])] == [0, 2]


def _write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps,
                             (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_video_in_annotated_video_out_with_the_same_frame_count(tmp_path, capsys):
    demo = read_image(shared_data("images/hrnet_demo.jpg"))
    # Seven frames of the player sliding right, made from the demo photo.
    frames = [np.roll(cv2.resize(demo, (240, 284)), 6 * i, axis=1) for i in range(7)]
    _write_video(tmp_path / "clip.avi", frames, 12.0)
    out = tmp_path / "out"
    # Model folders holding one exported file stand for the file.
    assert main(["infer", str(tmp_path / "clip.avi"), "--model",
                 str(shared_data(TINYPOSE).parent), "--detector",
                 str(shared_data(PICODET).parent), "--out", str(out), "--smooth",
                 "--show-fps", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 7 and summary["images"] == 0 and summary["failed"] == []
    annotated = VideoReader(out / "clip.avi.mp4")
    assert annotated.fps == pytest.approx(12.0)
    drawn = list(annotated)
    assert len(drawn) == 7 and drawn[0].shape == (284, 240, 3)
    assert not np.array_equal(drawn[3], frames[3])                     # something was drawn
    results = json.loads((out / "results.json").read_text())
    assert [r["frame"] for r in results] == list(range(7))             # one person per frame
    assert {r["track_id"] for r in results} == {0}
    assert all(r["image_id"] == r["frame"] and len(r["keypoints"]) == 51 for r in results)
    assert not list(out.glob(".*partial*"))
    # Boxes from a file: image ids are frame numbers; frames without boxes have no people.
    boxes = [{"image_id": f, "bbox": r["bbox"], "score": 0.9} for f, r in enumerate(results)
             if f % 2 == 0]
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    assert main(["infer", str(tmp_path / "clip.avi"), "--model", str(shared_data(TINYPOSE)),
                 "--boxes", str(tmp_path / "boxes.json"), "--out", str(tmp_path / "out2"),
                 "--no-draw", "--json"]) == 0
    capsys.readouterr()
    again = json.loads((tmp_path / "out2/results.json").read_text())
    assert [r["frame"] for r in again] == [0, 2, 4, 6]
    assert [r["bbox"] for r in again] == [b["bbox"] for b in boxes]
    assert not list((tmp_path / "out2").glob("*.mp4"))


def test_infer_on_a_folder_scores_like_the_reference(tmp_path, capsys, coco_tiny):
    root, _ = coco_tiny
    out = tmp_path / "out"
    assert main(["infer", str(root / "val2017"), "--model", str(shared_data(TINYPOSE)),
                 "--boxes", str(root / "annotations/person_keypoints_val2017.json"),
                 "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 4 and len(summary["drawings"]) == 4
    assert (out / "000000000785.jpg").is_file()
    # The results file is the exchange format: `hrpose eval` scores it. PP-TinyPose with
    # ground-truth boxes lands between 0.80 and 0.85 (../shared/data/README.md).
    assert main(["eval", "--results", str(out / "results.json"), "--data", str(root),
                 "--out", str(tmp_path / "eval"), "--json"]) == 0
    assert 0.78 <= json.loads(capsys.readouterr().out)["AP"] <= 0.86


def test_infer_reports_a_bad_file_and_processes_the_rest(tmp_path, capsys):
    folder = tmp_path / "shots"
    folder.mkdir()
    demo = shared_data("images/hrnet_demo.jpg")
    (folder / "a.jpg").write_bytes(demo.read_bytes())
    (folder / "b.jpg").write_bytes(b"not a jpeg at all")
    (folder / "c.png").write_bytes(cv2.imencode(".png", cv2.imread(str(demo)))[1].tobytes())
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    assert main(["infer", str(folder), "--model", str(shared_data(TINYPOSE)), "--out", str(out),
                 "--detector", "none", "--json"]) == 1
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["images"] == 2 and summary["people"] == 2
    assert summary["failed"] == [{"input": str(folder / "b.jpg"), "error": f"{folder / 'b.jpg'}: "
                                  "cannot decode the image (not a JPEG, PNG, BMP, GIF, WebP or "
                                  "TIFF file)"}]
    assert "skipped" in captured.err and "b.jpg" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "c.png", "results.json"]
    err = _error(capsys, "infer", str(folder), "--model", str(shared_data(TINYPOSE)), "--out",
                 str(folder))
    assert "--out holds the input" in err
    # A glob takes the same files.
    assert [p.name for p in find_inputs(str(folder / "*.jpg"))] == ["a.jpg", "b.jpg"]


def _error(capsys, *argv: str) -> str:
    """The one error line (progress bars may precede it on stderr), from the command or from
    the parser (SystemExit)."""
    try:
        status = main(list(argv))
    except SystemExit as e:
        status = e.code
    assert status == 2
    lines = [line for line in message_lines(capsys.readouterr().err) if "hrpose" in line]
    assert len(lines) == 1 and lines[0].startswith("hrpose: error: ")
    return lines[0]


@pytest.mark.slow
def test_infer_errors_are_one_line_and_name_the_input(tmp_path, capsys):
    model = str(shared_data(TINYPOSE))
    out = str(tmp_path / "out")
    (tmp_path / "empty").mkdir()
    assert "empty: no images" in _error(capsys, "infer", str(tmp_path / "empty"), "--model",
                                        model, "--out", out)
    assert "nowhere.jpg: no such file or folder" in _error(
        capsys, "infer", str(tmp_path / "nowhere.jpg"), "--model", model, "--out", out)
    assert "*.png: the pattern matches no image" in _error(
        capsys, "infer", str(tmp_path / "*.png"), "--model", model, "--out", out)
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    err = _error(capsys, "infer", str(tmp_path / "broken.mp4"), "--model", model, "--out", out)
    assert "broken.mp4: cannot open the video" in err
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8garbage")
    assert "bad.jpg: cannot decode the image" in _error(
        capsys, "infer", str(tmp_path / "bad.jpg"), "--model", model, "--out", out)
    demo = str(shared_data("images/hrnet_demo.jpg"))
    err = _error(capsys, "infer", demo, "--model", str(shared_data(PICODET)), "--out", out)
    assert "picodet_s_320_lcnet_pedestrian.xml: not a heatmap model" in err
    err = _error(capsys, "infer", demo, "--model", model, "--detector", model, "--out", out)
    assert "model.xml: not a person detector" in err
    err = _error(capsys, "infer", demo, "--model", model, "--detector",
                 str(shared_data(PICODET).parent / "model.xml"), "--out", out)
    assert "model.xml: no such file or folder (the folder has picodet_s_320_lcnet_pedestrian.xml)" \
        in err
    err = _error(capsys, "infer", demo, "--model", model, "--device", "cuda", "--out", out)
    assert "CPU-only build" in err or "model.xml: exported files run on the CPU" in err
    err = _error(capsys, "infer", demo, "--model", demo, "--out", out)
    assert "hrnet_demo.jpg: an exported model is a .onnx or an OpenVINO .xml file" in err
    boxes = tmp_path / "boxes.json"
    for box, message in (([500, 10, 50, 50], "lies outside the 359x423 image"),
                         ([10, 10, 0, 50], "has zero size")):
        boxes.write_text(json.dumps([{"image_id": 1, "bbox": box, "score": 0.9}]))
        err = _error(capsys, "infer", demo, "--model", model, "--boxes", str(boxes), "--out",
                     out)
        assert "hrnet_demo.jpg: box 0 [" in err and message in err
    boxes.write_text(json.dumps([{"image_id": 785, "bbox": [1, 1, 5, 5], "score": 0.9}]))
    err = _error(capsys, "infer", demo, "--model", model, "--boxes", str(boxes), "--out", out)
    assert "boxes.json: none of its image ids (785, ...) is an input image's" in err


def test_infer_python_api_errors(tinypose):
    image = np.zeros((50, 40, 3), np.uint8)
    with pytest.raises(HrposeError, match=r"image 0: box 0 \[0, 0, 0, 5\] has zero size"):
        tinypose(image, [[0, 0, 0, 5]], color="rgb")
    with pytest.raises(HrposeError, match="2 images but 1 box lists"):
        tinypose.predict_batch([image, image], [[[0, 0, 5, 5]]], color="rgb")
    assert tinypose(image, np.zeros((0, 4)), color="rgb") == []


def test_openvino_models_released_out_of_order_leave_signal_handling_intact():
    """Each OpenVINO Core's CPU plugin swaps the thread's signal alt-stack; with one Core per
    model, releasing two models out of order crashed the next Python signal handler (found as a
    segfault when a later test's worker process exited). Run in a child process."""
    import subprocess
    import sys

    script = (
        "import gc, os, signal\n"
        "from hrpose.inference.backends import OpenVINORunner\n"
        f"a = OpenVINORunner({str(shared_data('models/tinypose_128x96/model.xml'))!r})\n"
        f"b = OpenVINORunner({str(shared_data('models/tinypose_128x96/model.xml'))!r})\n"
        "del a; gc.collect(); del b; gc.collect()\n"
        "signal.signal(signal.SIGUSR1, lambda *_: print('handled'))\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "handled"


def test_a_training_checkpoint_runs_alone_with_its_codec(tmp_path):
    """best.safetensors from `hrpose train` states its architecture, input, keypoints and codec;
    on torch, batching across images keeps the keypoints."""
    import torch

    from hrpose.config import load_config
    from hrpose.engine.train import weights_metadata
    from hrpose.models.arch import model_from_arch
    from hrpose.models.checkpoint import save_weights
    from hrpose.models.heads import init_kaiming

    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "configs/synthetic/quickstart.yaml")
    torch.manual_seed(0)  # random weights independent of the tests that ran before
    model = model_from_arch(config.model.to_dict())
    init_kaiming(model)
    save_weights(tmp_path / "best.safetensors", model.state_dict(), weights_metadata(config))
    est = PoseEstimator(tmp_path / "best.safetensors", batch=3, detector=None)
    assert est.codec.method == "dark" and est.input_hw == (224, 160)
    assert est.skeleton.name == "coco" and est.codec.heatmap_wh == (40, 56)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (120 + 10 * i, 90, 3), dtype=np.uint8) for i in range(3)]
    boxes = [[[5, 5, 40, 80], [30, 20, 50, 90]], [[0, 0, 90, 100]], [[10, 30, 60, 60]]]
    together = est.predict_batch(images, boxes, color="rgb")
    for image, image_boxes, found in zip(images, boxes, together):
        for box, person in zip(image_boxes, found):
            np.testing.assert_allclose(est(image, [box], color="rgb")[0].keypoints,
                                       person.keypoints, atol=1e-3)


def test_exported_files_describe_themselves_through_their_metadata(tmp_path):
    """ONNX metadata_props and OpenVINO rt_info["hrpose"] give mean/std, keypoints and codec;
    a file without them gets ImageNet normalisation and the classic codec."""
    import onnx
    import openvino as ov

    from hrpose.inference.backends import open_model

    from .test_eval import heatmap_onnx

    heatmap_onnx(tmp_path / "plain.onnx", batch=None)
    plain = open_model(str(tmp_path / "plain.onnx"))
    assert plain.card.mean == (0.485, 0.456, 0.406) and plain.card.codec == "classic"
    assert plain.card.keypoints is None
    described = {"mean": "[0.5, 0.5, 0.5]", "std": "[0.25, 0.25, 0.25]", "keypoints": "coco",
                 "codec": "udp"}
    model = onnx.load(tmp_path / "plain.onnx")
    onnx.helper.set_model_props(model, described)
    onnx.save(model, tmp_path / "described.onnx")
    ir = ov.Core().read_model(str(tmp_path / "plain.onnx"))
    for key, value in described.items():
        ir.set_rt_info(value, ["hrpose", key])
    ov.save_model(ir, str(tmp_path / "described.xml"))
    for name in ("described.onnx", "described.xml"):
        loaded = open_model(str(tmp_path / name))
        assert loaded.card.mean == (0.5, 0.5, 0.5) and loaded.card.std == (0.25, 0.25, 0.25)
        assert loaded.card.keypoints.name == "coco" and loaded.card.codec == "udp"
        est = PoseEstimator(tmp_path / name, detector=None)
        assert est.codec.udp and est.skeleton.name == "coco"


def test_drawings_colour_limbs_by_side_hide_low_scores_and_scale_lines():
    from hrpose.inference.draw import LEFT, RIGHT, draw_people, line_width
    from hrpose.skeletons import COCO

    for size, width in ((200, 1), (500, 2), (1000, 4), (3000, 12)):
        assert line_width(np.zeros((size // 2, size, 3), np.uint8)) == width
    image = np.zeros((400, 400, 3), np.uint8)
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, :, :2] = 200
    kp[0, :, 2] = 0.9
    kp[0, 7, :2], kp[0, 9, :2] = (100, 100), (100, 300)     # left elbow -> left wrist
    kp[0, 8, :2], kp[0, 10, :2] = (300, 100), (300, 300)    # right elbow -> right wrist
    kp[0, 10, 2] = 0.1                                     # the right wrist is unsure
    drawn = draw_people(image, kp, COCO, threshold=0.3, boxes=np.array([[50, 50, 300, 300]]),
                        scores=[0.87], track_ids=[4])
    assert tuple(drawn[200, 100]) == LEFT                   # mid left forearm
    assert not drawn[250, 300].any()                        # right forearm not drawn
    assert tuple(drawn[150, 250]) == RIGHT                  # right upper arm, elbow to shoulder
    assert tuple(drawn[100, 300]) != (0, 0, 0)              # the right elbow is
    assert (drawn[50, 60:340] == 255).all()                 # the box's top edge, white
    assert drawn[20:50, 50:120].any()                       # its label "#4 0.87" above it
    assert not image.any()                                  # the input is untouched
