"""Video as a pipeline: frames are read, posed and drawn in three threads joined by small
bounded queues, so decoding, the models and drawing + encoding overlap on different cores (each
releases the GIL in its C code), and memory stays bounded however long the video.

Realtime: the source sets the pace (a camera, or a file played at its frame rate) and a frame
the models cannot take in time is dropped, the newest kept, rather than queued: latency stays
bounded and the count of dropped frames says how far from real time the machine is. Otherwise
every frame is posed, as fast as the slowest stage allows.

Between detections the people are followed from their last keypoints (`FramePoses`): the
detector runs every `detect_every` frames while tracking holds, and at once when it does not.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .estimator import PoseEstimator
from .person import Person
from .video import PoseTracker, SceneCuts, SmoothingSettings, VideoReader, boxes_from_keypoints

_END = object()          # the last item of a queue


@dataclass
class Frame:
    index: int              # in the source, dropped frames counted
    time: float             # perf_counter when it was read (realtime: when it was due)
    image: np.ndarray       # RGB uint8


@dataclass
class PipelineStats:
    frames: int = 0                     # frames posed and written
    dropped: int = 0                    # realtime: frames given up for newer ones
    undecodable: int = 0                # frames of the source that could not be decoded
    seconds: float = 0.0
    interrupted: bool = False           # a live source stopped by Ctrl-C
    latencies: list[float] = field(default_factory=list)   # seconds, read -> written

    def summary(self) -> dict:
        """frames, dropped, frames/s and latency percentiles (ms)."""
        ms = np.array(self.latencies) * 1e3 if self.latencies else np.zeros(1)
        return {"frames": self.frames, "dropped": self.dropped,
                "undecodable": self.undecodable,
                "seconds": round(self.seconds, 3),
                "fps": round(self.frames / self.seconds, 2) if self.seconds > 0 else None,
                "latency_ms": {"p50": round(float(np.percentile(ms, 50)), 1),
                               "p95": round(float(np.percentile(ms, 95)), 1),
                               "max": round(float(ms.max()), 1)}}


class FramePoses:
    """A video's people, frame by frame, tracked (and smoothed). The detector runs on the first
    frame, then every `detect_every` frames while tracking holds; in between, each person's box
    comes from their keypoints in the frame before (`boxes_from_keypoints`), and the detector
    runs again as soon as someone's joints fall below `keypoint_threshold`. `boxes(index)`:
    given boxes for a frame (a box file), which replace the detector."""

    def __init__(self, estimator: PoseEstimator, name: str, fps: float,
                 smoothing: SmoothingSettings | None = None, detect_every: int = 1,
                 keypoint_threshold: float = 0.3,
                 boxes: Callable[[int], np.ndarray | None] | None = None) -> None:
        self.est, self.name, self.detect_every = estimator, name, detect_every
        self.keypoint_threshold, self.given = keypoint_threshold, boxes
        self.tracker = PoseTracker(fps, smoothing)
        self.cuts = SceneCuts()
        self.follows = (boxes is None and estimator.kind == "topdown" and detect_every > 1
                        and estimator.pipeline.load_detector() is not None)
        self.last: list[Person] = []
        self.detected_at = -detect_every
        self.detections = 0

    def __call__(self, frame: Frame) -> list[Person]:
        image = frame.image
        boxes = self.given(frame.index) if self.given is not None else None
        cut = self.cuts(image)
        if cut:                      # a new shot: new tracks, and the detector runs again
            self.tracker.cut()
        if self.follows and not cut and frame.index - self.detected_at < self.detect_every:
            boxes = boxes_from_keypoints(self.last, (image.shape[1], image.shape[0]),
                                         self.keypoint_threshold)
        if boxes is None and self.given is None and self.est.kind == "topdown":
            self.detected_at = frame.index
            self.detections += 1
        people = self.est.predict_rgb([image], None if boxes is None else [boxes],
                                      [f"{self.name} frame {frame.index}"])[0]
        self.last = self.tracker.update(people)
        return self.last


def _put(q: queue.Queue, item: object, *until: threading.Event) -> bool:
    """Put, waiting for room until one of the events is set; True when put."""
    while not any(e.is_set() for e in until):
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def run_pipeline(reader: VideoReader, pose: Callable[[Frame], list[Person]],
                 write: Callable[[Frame, list[Person]], None], *, realtime: bool = False,
                 max_frames: int | None = None, depth: int = 2,
                 progress: Callable[[int], None] | None = None) -> PipelineStats:
    """Reads `reader`'s frames in one thread, runs `pose` on each in this one and `write` (draw,
    encode, record) in a third. `realtime`: frames come at the source's pace (a file: its fps)
    and one not taken before the next arrives is dropped. Ctrl-C on a live source ends it as its
    last frame would (what was posed is written); elsewhere it aborts. An error in any stage
    stops all three and is raised here."""
    return _Pipeline(reader, pose, write, realtime, max_frames, depth, progress).run()


class _Pipeline:
    def __init__(self, reader: VideoReader, pose: Callable[[Frame], list[Person]],
                 write: Callable[[Frame, list[Person]], None], realtime: bool,
                 max_frames: int | None, depth: int,
                 progress: Callable[[int], None] | None) -> None:
        self.reader, self.pose, self.write, self.realtime = reader, pose, write, realtime
        self.max_frames, self.progress = max_frames, progress
        self.stats = PipelineStats()
        self.stop, self.enough = threading.Event(), threading.Event()  # abort all | stop reading
        # realtime: one frame waits, the newest; more would only add latency
        self.inbox: queue.Queue = queue.Queue(1 if realtime else depth)
        self.outbox: queue.Queue = queue.Queue(depth)
        self.errors: list[BaseException] = []

    def fail(self, error: BaseException) -> None:
        self.errors.append(error)
        self.stop.set()

    def run(self) -> PipelineStats:
        threads = [threading.Thread(target=self.read, name="hrpose-read", daemon=True),
                   threading.Thread(target=self.drain, name="hrpose-write", daemon=True)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        try:
            while not self.stop.is_set():
                try:
                    frame = self.inbox.get(timeout=0.05)
                except queue.Empty:
                    continue
                if frame is _END:
                    break
                _put(self.outbox, (frame, self.pose(frame)), self.stop)
        except KeyboardInterrupt:
            if not self.reader.live:
                self.stop.set()
                raise
            self.stats.interrupted = True
        except BaseException:
            self.stop.set()
            raise
        finally:
            self.enough.set()
            _put(self.outbox, _END, self.stop)     # the writer empties the queue, then ends
            for t in reversed(threads):
                t.join()
        if self.errors:
            raise self.errors[0]
        self.stats.seconds = time.perf_counter() - start
        return self.stats

    def read(self) -> None:
        frames = self.reader.indexed()
        start = time.perf_counter()
        try:
            for read, (index, image) in enumerate(frames):
                if self.stop.is_set() or self.enough.is_set() or read == self.max_frames:
                    break
                now = time.perf_counter()
                if self.realtime and not self.reader.live:     # a file played as if live
                    due = start + index / self.reader.fps
                    if due > now:
                        time.sleep(due - now)
                    now = due
                self.hand_on(Frame(index, now, image))
        except BaseException as e:
            self.fail(e)
        finally:
            frames.close()
            self.stats.undecodable = self.reader.undecodable
            _put(self.inbox, _END, self.stop, self.enough)

    def hand_on(self, frame: Frame) -> None:
        if not self.realtime:
            _put(self.inbox, frame, self.stop, self.enough)
            return
        try:
            self.inbox.put_nowait(frame)
        except queue.Full:                    # the models are busy: the newest frame wins
            try:
                self.inbox.get_nowait()
                self.stats.dropped += 1
            except queue.Empty:
                pass
            self.inbox.put_nowait(frame)

    def drain(self) -> None:
        try:
            while True:
                try:
                    item = self.outbox.get(timeout=0.05)
                except queue.Empty:
                    if self.stop.is_set():
                        return
                    continue
                if item is _END:
                    return
                frame, people = item
                self.write(frame, people)
                self.stats.latencies.append(time.perf_counter() - frame.time)
                self.stats.frames += 1
                if self.progress is not None:
                    self.progress(1)
        except BaseException as e:
            self.fail(e)
