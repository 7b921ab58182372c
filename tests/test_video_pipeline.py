"""Video as a pipeline (inference/pipeline.py): order and completeness, realtime dropping,
errors and Ctrl-C, the detector every k-th frame following people between detections, cameras
and stream URLs, and `hrpose infer VIDEO` through it on the real models."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from hrpose.cli import main
from hrpose.errors import HrposeError
from hrpose.inference.estimator import PoseEstimator
from hrpose.inference.person import Person
from hrpose.inference.pipeline import Frame, FramePoses, run_pipeline
from hrpose.inference.video import SceneCuts, Stream, VideoReader, boxes_from_keypoints

from .clips import write_clip, write_damaged_avi
from .helpers import PICODET_XML as PICODET
from .helpers import TINYPOSE_XML as TINYPOSE
from .helpers import message_lines, shared_data


class FakeReader:
    """Numbered frames (the index in pixel 0), at `fps`, optionally live."""

    undecodable = 0

    def __init__(self, count: int, fps: float = 100.0, live: bool = False) -> None:
        self.count, self.fps, self.live = count, fps, live

    def indexed(self):
        for i in range(self.count):
            if self.live:
                time.sleep(1 / self.fps)
            frame = np.zeros((4, 4, 3), np.uint8)
            frame[0, 0, 0] = i
            yield i, frame


def test_every_frame_in_order_when_not_realtime():
    written = []
    stats = run_pipeline(FakeReader(50), lambda f: [], lambda f, p: written.append(
        (f.index, int(f.image[0, 0, 0]))))
    assert written == [(i, i) for i in range(50)]
    assert stats.frames == 50 and stats.dropped == 0 and len(stats.latencies) == 50


def test_realtime_drops_frames_the_models_cannot_take_and_keeps_the_newest():
    written = []

    def slow(frame):
        time.sleep(0.03)             # 33 frames/s of models for a 100 frames/s source
        return []

    stats = run_pipeline(FakeReader(60, fps=100), slow, lambda f, p: written.append(f.index),
                         realtime=True)
    assert stats.dropped > 20 and stats.frames + stats.dropped == 60
    assert written == sorted(written) and written[-1] == 59        # the last frame is kept
    # Latency stays bounded (about one model time plus the wait for it), not growing
    assert max(stats.latencies) < 0.2


def test_max_frames_and_a_stage_error_stop_everything():
    stats = run_pipeline(FakeReader(50), lambda f: [], lambda f, p: None, max_frames=7)
    assert stats.frames == 7

    def broken(frame, people):
        if frame.index == 3:
            raise HrposeError("disk full")

    with pytest.raises(HrposeError, match="disk full"):
        run_pipeline(FakeReader(1000), lambda f: [], broken)
    alive = [t.name for t in threading.enumerate() if t.name.startswith("hrpose-")]
    assert not alive


def test_ctrl_c_ends_a_live_source_cleanly_and_aborts_a_file():
    def interrupt_at_5(frame):
        if frame.index == 5:
            raise KeyboardInterrupt
        return []

    written = []
    stats = run_pipeline(FakeReader(100, fps=200, live=True), interrupt_at_5,
                         lambda f, p: written.append(f.index), realtime=True)
    assert stats.interrupted and written and written == sorted(written) and max(written) < 5
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(FakeReader(100), interrupt_at_5, lambda f, p: None)


def test_stream_inputs_are_told_from_paths(tmp_path, monkeypatch):
    assert Stream.parse("0") == Stream(0) and Stream(0).live and Stream(0).name == "camera0.mp4"
    rtsp = Stream.parse("rtsp://cam.local:554/live/main?x=1")
    assert rtsp is not None and rtsp.live and rtsp.name == "main.mp4"
    http = Stream.parse("http://host/clips/walk.avi")
    assert http is not None and not http.live and http.name == "walk.avi.mp4"
    assert Stream.parse("clip.mp4") is None and Stream.parse("ftp://x/y") is None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "0").write_bytes(b"")
    assert Stream.parse("0") is None                  # a file named 0 stays a file
    with pytest.raises(HrposeError, match=r"^camera 7: cannot open the video \(no camera"):
        VideoReader(Stream(7))


def _person(box: list[float], joints: np.ndarray, box_score: float = 0.9) -> Person:
    return Person(np.array(box, np.float32), joints.astype(np.float32), 0.8, box_score)


def test_boxes_from_keypoints_grow_the_joints_extent_and_say_when_tracking_fails():
    joints = np.zeros((17, 3))
    joints[:, 0] = np.linspace(100, 200, 17)
    joints[:, 1] = np.linspace(50, 450, 17)
    joints[:, 2] = 0.9
    boxes = boxes_from_keypoints([_person([0, 0, 1, 1], joints)], (1280, 720), 0.3)
    # 100 x 400 extent, grown by 1.2 about its centre (150, 250), the detector score kept
    np.testing.assert_allclose(boxes, [[90, 10, 120, 480, 0.9]], atol=1e-4)
    clipped = boxes_from_keypoints([_person([0, 0, 1, 1], joints)], (190, 460), 0.3)
    np.testing.assert_allclose(clipped[0, :4], [90, 10, 100, 450], atol=1e-4)
    unsure = joints.copy()
    unsure[3:, 2] = 0.1                                # 3 sure joints: lost
    assert boxes_from_keypoints([_person([0, 0, 1, 1], unsure)], (1280, 720), 0.3) is None
    assert boxes_from_keypoints([], (1280, 720), 0.3) is None


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """60 frames of 640x360: one, two and three people, panned (tests/clips.py)."""
    path = tmp_path_factory.mktemp("clip") / "people.mp4"
    return write_clip(path, shared_data(), (640, 360), frames_per_scene=20)


@pytest.fixture(scope="module")
def estimator(tinypose_picodet) -> PoseEstimator:
    return tinypose_picodet


def _run(estimator: PoseEstimator, clip: Path, detect_every: int) -> tuple[list, FramePoses]:
    reader = VideoReader(clip)
    poses = FramePoses(estimator, "clip", reader.fps, detect_every=detect_every)
    found: list[list[Person]] = []
    stats = run_pipeline(reader, poses, lambda f, p: found.append(p))
    assert stats.frames == 60
    return found, poses


def test_detecting_every_fifth_frame_follows_the_same_people(estimator, clip):
    every, every_poses = _run(estimator, clip, 1)
    fifth, fifth_poses = _run(estimator, clip, 5)
    assert every_poses.detections == 60
    # every 5th frame, plus the scene cuts (the old people's joints are lost there)
    assert 12 <= fifth_poses.detections <= 20
    assert [len(p) for p in every] == [len(p) for p in fifth]
    assert {len(p) for p in every[:20]} == {1} and {len(p) for p in every[20:40]} == {2}
    errors = []
    for a, b in zip(every, fifth):
        for person in a:
            sure = person.keypoints[:, 2] >= 0.3
            twin = min(b, key=lambda q: np.abs(q.keypoints[:, :2] - person.keypoints[:, :2])
                       .mean())
            errors.append(np.linalg.norm(person.keypoints[sure, :2] - twin.keypoints[sure, :2],
                                         axis=1).mean() / person.box[3])
    # measured on the 1280x720 clip: median 1.0% of the person's height, 90% within 2.5%
    assert np.median(errors) < 0.02 and np.percentile(errors, 90) < 0.05
    # track ids hold within a scene, and end at a cut: the next shot's people are new
    assert {p.track_id for f in fifth[:20] for p in f} == {0}
    scenes = [{p.track_id for f in fifth[i : i + 20] for p in f} for i in (0, 20, 40)]
    assert len(scenes[1]) >= 2 and len(scenes[2]) >= 3
    assert not scenes[0] & scenes[1] and not scenes[1] & scenes[2]
    cuts = SceneCuts()
    assert [i for i, frame in enumerate(VideoReader(clip)) if cuts(frame)] == [20, 40]


def test_infer_video_reports_rate_latency_and_detector_runs(clip, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["infer", str(clip), "--model", str(shared_data(TINYPOSE)), "--detector",
                 str(shared_data(PICODET)), "--out", str(out), "--detect-every", "4",
                 "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    video = summary["videos"][0]
    assert video["frames"] == 60 and video["dropped"] == 0 and not video["realtime"]
    assert video["detect_every"] == 4 and 15 <= video["detector_runs"] < 60
    assert video["fps"] > 0 and 0 < video["latency_ms"]["p50"] <= video["latency_ms"]["p95"]
    results = json.loads((out / "results.json").read_text())
    assert sorted({r["frame"] for r in results}) == list(range(60))
    drawn = cv2.VideoCapture(str(out / "people.mp4"))
    assert int(drawn.get(cv2.CAP_PROP_FRAME_COUNT)) == 60


class _StandingStill:
    """A top-down estimator that finds one person in the same place in every frame."""

    kind = "topdown"

    class pipeline:
        @staticmethod
        def load_detector():
            return None

    def predict_rgb(self, images, boxes=None, names=None):
        return [[Person(np.array([20, 10, 40, 80], np.float32), np.ones((17, 3), np.float32),
                        1.0)] for _ in images]


def test_a_scene_cut_ends_the_tracks_even_where_the_boxes_overlap():
    """After a cut, a person standing where the last shot's person stood is someone else."""
    poses = FramePoses(_StandingStill(), "cut", 25.0)
    dark, light = np.full((90, 160, 3), 30, np.uint8), np.full((90, 160, 3), 220, np.uint8)
    ids = [poses(Frame(i, 0.0, dark if i < 5 else light))[0].track_id for i in range(10)]
    assert ids == [0] * 5 + [1] * 5


def test_a_realtime_drawing_keeps_the_source_frame_count_and_timing(clip, tmp_path, capsys,
                                                                      monkeypatch):
    """Frames given up to stay in real time are drawn as the frame before, so the drawing
    plays as long as the source (60 frames at its rate), not faster."""
    pose = PoseEstimator.predict_rgb

    def slow(self, *args, **kwargs):                  # a model that cannot keep up
        time.sleep(0.08)
        return pose(self, *args, **kwargs)

    monkeypatch.setattr(PoseEstimator, "predict_rgb", slow)
    out = tmp_path / "out"
    assert main(["infer", str(clip), "--model", str(shared_data(TINYPOSE)), "--detector",
                 "none", "--out", str(out), "--realtime", "--json"]) == 0
    video = json.loads(capsys.readouterr().out)["videos"][0]
    assert video["realtime"] and video["dropped"] > 10 and video["frames"] < 50
    drawn = cv2.VideoCapture(str(out / "people.mp4"))
    source = cv2.VideoCapture(str(clip))
    assert int(drawn.get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    assert drawn.get(cv2.CAP_PROP_FPS) == source.get(cv2.CAP_PROP_FPS)


def test_infer_reads_a_stream_url(estimator, tmp_path, capsys):
    # AVI (MJPG) reads front to back, as a stream does; Python's server sends no byte ranges
    frames = VideoReader(write_clip(tmp_path / "c.mp4", shared_data(), (320, 180), 4))
    served = tmp_path / "served"
    served.mkdir()
    writer = cv2.VideoWriter(str(served / "walk.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25,
                             (320, 180))
    for frame in frames:
        writer.write(frame[..., ::-1])
    writer.release()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/walk.avi"
        code = main(["infer", url, "--model", str(shared_data(TINYPOSE)), "--detector",
                     str(shared_data(PICODET)), "--out", str(tmp_path / "out"),
                     "--max-frames", "10", "--json"])
    finally:
        server.shutdown()
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 10 and summary["videos"][0]["input"] == url
    assert (tmp_path / "out" / "walk.avi.mp4").is_file()
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {r["file_name"] for r in results} == {"walk.avi"} and len(results) >= 10


def test_a_missing_camera_is_one_line(tmp_path, capsys):
    code = main(["infer", "9", "--model", str(shared_data(TINYPOSE)), "--detector", "none",
                 "--out", str(tmp_path / "out")])
    assert code != 0
    err = message_lines(capsys.readouterr().err)
    assert err == ["hrpose: error: camera 9: cannot open the video (no camera there, or it is "
                   "in use)"]


def test_a_broken_frame_is_skipped_and_counted_and_the_video_goes_on(tmp_path, capsys):
    clip = write_damaged_avi(tmp_path / "damaged.avi", 20, broken=(3,))
    out = tmp_path / "out"
    assert main(["infer", str(clip), "--model", str(shared_data(TINYPOSE)), "--detector",
                 "none", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "19 frames at" in said and "1 could not be decoded (skipped)" in said
    # the drawing shows the frame before in its place: the source's 20 frames
    drawn = cv2.VideoCapture(str(out / "damaged.avi.mp4"))
    assert int(drawn.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    summary_args = ["infer", str(clip), "--model", str(shared_data(TINYPOSE)), "--detector",
                    "none", "--out", str(tmp_path / "again"), "--no-draw", "--json"]
    assert main(summary_args) == 0
    video = json.loads(capsys.readouterr().out)["videos"][0]
    assert (video["frames"], video["undecodable"]) == (19, 1)
    frames = {r["frame"] for r in json.loads((out / "results.json").read_text())}
    assert frames == set(range(20)) - {3}          # frames keep their index in the source


def test_a_video_with_too_many_broken_frames_fails_in_one_line(tmp_path):
    clip = write_damaged_avi(tmp_path / "ruined.avi", 230, broken=tuple(range(1, 230, 2)))
    reader = VideoReader(clip)
    with pytest.raises(HrposeError, match=r"ruined\.avi: more than 100 frames could not be "
                                          r"decoded"):
        for _ in reader:
            pass


def test_a_stated_frame_count_is_checked_by_reading(tmp_path):
    for stated in (2**31 - 2, 10**7, 20):
        clip = write_damaged_avi(tmp_path / f"claims{stated}.avi", 20, stated=stated)
        reader = VideoReader(clip)
        assert reader.frame_count == stated          # what the header says
        assert reader.counted_frames() == 20          # what is there
        assert [i for i, _ in reader.indexed()] == list(range(20))   # and reading starts over
