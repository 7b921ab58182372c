"""Video in and out, people tracked across frames by box IoU, and One-Euro keypoint smoothing.

The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a low-pass filter whose cutoff rises
with speed: still joints are smoothed hard (no jitter), fast ones lightly (little lag). Here the
speed is measured in person heights per second, so one setting suits near and far people.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ..errors import HrposeError
from ..io import MAX_IMAGE_PIXELS
from .boxes import box_iou
from .person import Person

# Broken frames: a video ends where this many reads in a row give no frame (OpenCV says the
# same for its end and for a frame it cannot decode), and fails past MAX_UNDECODABLE skipped.
RETRIES = 25
MAX_UNDECODABLE = 100
# Network streams that run live (frames come at the sender's pace); http(s) may be a file
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "udp", "tcp", "srt")
STREAM_SCHEMES = (*LIVE_SCHEMES, "http", "https")


@dataclass(frozen=True)
class Stream:
    """A camera (its index: "0") or a network stream (its URL), read through OpenCV."""

    source: int | str

    @staticmethod
    def parse(text: str) -> Stream | None:
        """The stream an `hrpose infer` INPUT names, or None for a path (an existing file
        named "0" stays a file)."""
        if text.isdigit() and not Path(text).exists():
            return Stream(int(text))
        if "://" in text and text.split("://", 1)[0].lower() in STREAM_SCHEMES:
            return Stream(text)
        return None

    @property
    def live(self) -> bool:
        """Frames come at their own pace (a camera, RTSP, ...): what is not taken in time is
        dropped rather than queued."""
        return isinstance(self.source, int) or \
            str(self.source).split("://", 1)[0].lower() in LIVE_SCHEMES

    @property
    def name(self) -> str:
        """The drawing's file name: camera0.mp4, or the URL's last path part + .mp4."""
        if isinstance(self.source, int):
            return f"camera{self.source}.mp4"
        tail = self.source.split("://", 1)[1].split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in tail) or "stream"
        return stem if stem.lower().endswith(".mp4") else f"{stem}.mp4"

    def __str__(self) -> str:
        return f"camera {self.source}" if isinstance(self.source, int) else str(self.source)


class VideoReader:
    """RGB frames of a video file, a camera or a network stream; `fps` and `frame_count` (the
    container's estimate; 0 for a live source) known on opening. A source that cannot be
    opened is a one-line error naming it."""

    def __init__(self, source: str | Path | Stream) -> None:
        # FFmpeg prints a line for each frame it cannot decode; the reader counts and reports
        # them itself (set OPENCV_FFMPEG_LOGLEVEL to see FFmpeg's lines). Read when a capture
        # opens, so it applies to this one.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        self.live = isinstance(source, Stream) and source.live
        self.path = source if isinstance(source, Stream) else Path(source)
        if isinstance(source, Stream):
            # OpenCV warns on stderr for each backend it tries; the one-line error below says it
            level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
            try:
                self.capture = cv2.VideoCapture(source.source)
            finally:
                cv2.utils.logging.setLogLevel(level)
        elif not self.path.is_file():
            raise HrposeError(f"{source}: no such video file")
        else:
            self.capture = cv2.VideoCapture(str(source))
        if not self.capture.isOpened():
            reason = "no camera there, or it is in use" if isinstance(
                getattr(source, "source", None), int) else "unknown format, corrupt or unreachable"
            raise HrposeError(f"{source}: cannot open the video ({reason})")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and 0 < fps <= 1000 else 25.0
        count = self.capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if math.isfinite(count) and 0 < count < 2**31 \
            and not self.live else 0
        self.position = 0                # the index of the next frame read
        self.undecodable = 0             # frames skipped because they could not be decoded
        w, h = (self.capture.get(p) for p in (cv2.CAP_PROP_FRAME_WIDTH,
                                              cv2.CAP_PROP_FRAME_HEIGHT))
        if not (math.isfinite(w * h) and w * h <= MAX_IMAGE_PIXELS):
            self.capture.release()
            raise HrposeError(f"{source}: the video states {w:.0f}x{h:.0f} frames, more than "
                              f"the limit of {MAX_IMAGE_PIXELS:,} pixels")

    def seek(self, index: int) -> bool:
        """Starts reading at frame `index` of a file; False when the video ends before it (a
        container's frame count is an estimate). OpenCV seeks to the keyframe before it and
        decodes forward; where the container cannot seek, frames are read and dropped."""
        self.position = max(index, 0)
        if index <= 0:
            return True
        if self.capture.set(cv2.CAP_PROP_POS_FRAMES, index) and \
                int(self.capture.get(cv2.CAP_PROP_POS_FRAMES)) == index:
            return True
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        return all(self.capture.grab() for _ in range(index))

    def counted_frames(self) -> int:
        """The frames the file really has, its stated count never trusted: the last stated
        frame must read, else the frames are counted by reading them (at most the stated count;
        a header may claim 2^31 frames for 20). 0 for a live source or an unknown count.
        Reading starts from the beginning afterwards."""
        stated = self.frame_count
        if stated == 0:
            return 0
        if self.seek(stated - 1) and self._read_one():
            counted = stated
        else:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            counted, misses = 0, 0
            while counted + misses < stated and misses <= RETRIES:
                if self.capture.grab():
                    counted, misses = counted + misses + 1, 0
                else:
                    misses += 1
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self.position = 0
        return counted

    def _read_one(self) -> bool:
        try:
            ok, frame = self.capture.read()
        except cv2.error:
            return False
        return bool(ok) and frame is not None and frame.size > 0

    def __iter__(self) -> Iterator[np.ndarray]:
        return (frame for _, frame in self.indexed())

    def indexed(self) -> Iterator[tuple[int, np.ndarray]]:
        """(index in the source, RGB frame). A frame that cannot be decoded is skipped and
        counted (`undecodable`); more than MAX_UNDECODABLE of them fail the video in one line.
        OpenCV reports the end of a file as it reports a broken frame, so the video ends where
        RETRIES reads in a row give nothing."""
        misses = 0
        try:
            while True:
                try:
                    ok, frame = self.capture.read()
                except cv2.error:
                    ok, frame = False, None
                if not ok or frame is None or frame.size == 0:
                    misses += 1
                    if misses > RETRIES:
                        break
                    continue
                if misses:                   # frames were missing before this one
                    self.undecodable += misses
                    self.position += misses
                    misses = 0
                    if self.undecodable > MAX_UNDECODABLE:
                        raise HrposeError(f"{self.path}: more than {MAX_UNDECODABLE} frames "
                                          "could not be decoded; the file is damaged")
                yield self.position, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                self.position += 1
        finally:
            self.capture.release()


class VideoWriter:
    """RGB frames -> an MPEG-4 file (mp4v: written by every OpenCV build), at `fps`. The file
    appears under its name only when closed, complete."""

    def __init__(self, path: str | Path, fps: float, size_wh: tuple[int, int]) -> None:
        self.path = Path(path)
        self.partial = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                      tuple(int(v) for v in size_wh))
        if not self.writer.isOpened():
            raise HrposeError(f"{path}: cannot write a video here")
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        self.writer.release()
        self.partial.replace(self.path)

    def abort(self) -> None:
        """Stop and delete the unfinished file."""
        self.writer.release()
        self.partial.unlink(missing_ok=True)


@dataclass(frozen=True)
class SmoothingSettings:
    """Chosen on noisy synthetic tracks at 30 fps (3 px noise on a 200 px person): a still joint
    keeps 31% of the frame-to-frame jitter, a 0.5 Hz sway 38% with 35% less error than the
    raw track; fast 1.5 Hz swings lag (13% more error than raw). Raise beta for sports."""

    min_cutoff: float = 1.0     # Hz: the cutoff for a still joint (lower: smoother, more lag)
    beta: float = 10.0          # cutoff Hz added per person-height/s of speed (less lag)
    d_cutoff: float = 3.0       # Hz: the cutoff of the speed estimate


class OneEuroFilter:
    """One-Euro filter over an array of values (e.g. (K, 2) keypoints), sampled at `fps`.
    `scale` divides the values before the speed is measured (a person's height in pixels)."""

    def __init__(self, fps: float, settings: SmoothingSettings = SmoothingSettings(),
                 scale: float = 1.0) -> None:
        self.dt, self.settings, self.scale = 1.0 / fps, settings, scale
        self.value: np.ndarray | None = None
        self.speed: np.ndarray | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, dt: float | None = None) -> np.ndarray:
        """The filtered value of sample `x`, taken `dt` seconds after the last one (default:
        one frame at the filter's fps; a live stream passes its frames' real spacing)."""
        x = np.asarray(x, np.float64)
        if self.value is None:
            self.value, self.speed = x.copy(), np.zeros_like(x)
            return x.copy()
        s, dt = self.settings, self.dt if dt is None else dt
        speed = (x - self.value) / dt / self.scale
        self.speed = self.speed + self._alpha(s.d_cutoff, dt) * (speed - self.speed)
        cutoff = s.min_cutoff + s.beta * np.abs(self.speed)
        self.value = self.value + self._alpha(cutoff, dt) * (x - self.value)
        return self.value.copy()


# A cut (the next shot of an edited video) as against motion: the mean |difference| of two
# frames' 32x18 grey thumbnails (0..1). Measured on the test clips (three photos panned at
# 640x360): 0.015-0.029 between frames of a shot, 0.164 and 0.465 at the cuts.
SCENE_CUT = 0.1


class SceneCuts:
    """Called on each frame in turn: whether it starts a new shot."""

    def __init__(self, threshold: float = SCENE_CUT) -> None:
        self.threshold, self.last = threshold, None

    def __call__(self, image: np.ndarray) -> bool:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        thumb = cv2.resize(grey, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)
        thumb /= 255.0
        cut = self.last is not None and float(np.abs(thumb - self.last).mean()) > self.threshold
        self.last = thumb
        return cut


@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    missed: int
    filter: OneEuroFilter | None


class PoseTracker:
    """Gives each person a track id that follows them from frame to frame (greedy matching by
    box IoU, best pairs first) and, with `smoothing`, filters each track's keypoints. A track
    unseen for `max_missed` frames ends, every track at a scene cut (`cut`); a new person
    starts a new track."""

    def __init__(self, fps: float, smoothing: SmoothingSettings | None = None,
                 iou_threshold: float = 0.3, max_missed: int = 10) -> None:
        self.fps, self.smoothing = fps, smoothing
        self.iou_threshold, self.max_missed = iou_threshold, max_missed
        self.tracks: list[_Track] = []
        self.next_id = 0
        self.last_time: float | None = None

    def update(self, people: list[Person], time: float | None = None) -> list[Person]:
        """The frame's people with `track_id` set (and keypoints smoothed), as new objects.
        `time`: the frame's time in seconds, for frames that do not come at a steady rate (a
        live stream); None: one frame after the last at `fps`."""
        dt = None if time is None or self.last_time is None else max(time - self.last_time,
                                                                     1e-3)
        self.last_time = time
        matched = self._match(people)
        out = []
        for i, person in enumerate(people):
            track = matched.get(i)
            if track is None:
                scale = max(float(person.box[3]), 1.0)
                track = _Track(self.next_id, person.box, 0,
                               OneEuroFilter(self.fps, self.smoothing, scale)
                               if self.smoothing else None)
                self.next_id += 1
                self.tracks.append(track)
            track.box, track.missed = person.box, -1       # -1: seen this frame
            keypoints = person.keypoints
            if track.filter is not None:
                keypoints = keypoints.copy()
                keypoints[:, :2] = track.filter(keypoints[:, :2], dt)
            out.append(replace(person, keypoints=keypoints, track_id=track.track_id))
        for track in self.tracks:
            track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out

    def cut(self) -> None:
        """A new shot: every track ends (ids are never reused), so nobody of the last shot
        lends their id, or their smoothed joints, to someone of this one."""
        self.tracks = []

    def _match(self, people: list[Person]) -> dict[int, _Track]:
        if not people or not self.tracks:
            return {}
        iou = box_iou(np.stack([p.box for p in people]), np.stack([t.box for t in self.tracks]))
        matched: dict[int, _Track] = {}
        while iou.size and iou.max() > self.iou_threshold:
            i, j = np.unravel_index(int(iou.argmax()), iou.shape)
            matched[int(i)] = self.tracks[int(j)]
            iou[i, :], iou[:, j] = -1, -1
        return matched


def boxes_from_keypoints(people: list[Person], size_wh: tuple[int, int], threshold: float,
                         min_joints: int = 4, grow: float = 1.2) -> np.ndarray | None:
    """Each person's box for the next frame from this frame's keypoints: the extent of the
    joints scoring `threshold` or more, grown by `grow` (joints stop short of the head's top and
    the feet's soles, which a detector's box includes), clipped to the frame, with the person's
    detector score. None when tracking does not hold (no people, or one with fewer than
    `min_joints` sure joints): the detector must look again."""
    if not people:
        return None
    rows = []
    for person in people:
        sure = person.keypoints[:, 2] >= threshold
        if sure.sum() < min_joints:
            return None
        xy = person.keypoints[sure, :2].astype(np.float64)
        (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
        cx, cy, half_w, half_h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * grow / 2, \
            (y1 - y0) * grow / 2
        x0, x1 = max(cx - half_w, 0.0), min(cx + half_w, size_wh[0])
        y0, y1 = max(cy - half_h, 0.0), min(cy + half_h, size_wh[1])
        if x1 - x0 <= 1 or y1 - y0 <= 1:
            return None
        rows.append([x0, y0, x1 - x0, y1 - y0, person.box_score])
    return np.array(rows)
