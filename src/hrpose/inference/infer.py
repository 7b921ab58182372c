"""The `hrpose infer` job: images, folders, globs and videos -> drawings + one COCO results JSON.

Images are decoded in background threads while the model runs, and the crops of several images
share model batches. A file that cannot be read is reported and skipped; the rest go on. Video
frames keep their order, rate and count; people are tracked across frames and can be smoothed.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from ..data.coco import is_wholebody_record, wholebody_keypoints
from ..errors import HrposeError, plural
from ..io import atomic_path, read_json, remove_stale_temporaries, write_image, write_json
from ..paths import check_output, output_folder
from .boxes import load_box_file
from .draw import draw_found, draw_text
from .estimator import PoseEstimator
from .images import is_video, prefetch
from .person import Person, check_result_layout, coco_result
from .pipeline import Frame, FramePoses, run_pipeline
from .video import SmoothingSettings, Stream, VideoReader, VideoWriter


@dataclass
class InferSettings:
    boxes: str | None = None           # COCO detection or annotation file
    box_threshold: float = 0.5         # boxes from the file below this score are dropped
    keypoint_threshold: float = 0.3    # joints drawn at or above this score
    person_threshold: float = 0.1      # people drawn at or above this score (all in the JSON)
    # Images whose crops share model batches: enough that few batches run part-full (PP-TinyPose
    # on coco-mini-train, batch 8: 82% of the model alone's crops/s with 8 images a call, 86-89%
    # with 32), within a pixel budget so that big photos do not pile up in memory.
    images_per_call: int = 32
    pixels_per_call: int = 64_000_000
    draw: bool = True
    smooth: bool = False               # One-Euro smoothing of video keypoints
    smoothing: SmoothingSettings = field(default_factory=SmoothingSettings)
    show_fps: bool = False
    detect_every: int = 1              # video: the detector every k-th frame while tracking holds
    realtime: bool | None = None       # video: drop frames rather than fall behind (None: live)
    max_frames: int | None = None      # video: stop after this many frames
    progress: bool = True
    csv: bool = False                  # also OUT/results.csv: one row per joint
    results_layout: str = "joints"     # "parts": COCO-WholeBody's part fields (133 joints)


@dataclass
class _Source:
    """Where one image or frame came from and how the results JSON names it."""

    file: Path
    image_id: int
    frame: int | None = None


PROGRESS = "progress.json"     # beside the results of an interrupted run: what it finished


def infer(inputs: Sequence[Path | Stream], estimator: PoseEstimator, out_dir: str | Path,
          settings: InferSettings = InferSettings()) -> dict:
    """Runs every input; writes OUT/results.json and the drawings. Returns the summary.

    Interrupted (Ctrl-C), it writes the results of the inputs done so far (and of the video
    in progress) and OUT/progress.json; the same command then goes on from there."""
    out = Path(out_dir)
    check_output(out, [*(p for p in inputs if isinstance(p, Path)), settings.boxes])
    job = _Job(estimator, out, settings, inputs)
    if not any(_is_video(p) for p in inputs) and (settings.smooth or settings.detect_every > 1):
        warnings.warn("--smooth and --detect-every act on video frames across time; still "
                      "images are each posed on their own", stacklevel=2)
    start = time.perf_counter()
    with output_folder(out):
        remove_stale_temporaries(out)          # what a killed earlier run left
        todo = job.resume(inputs)
        try:
            job.run(todo)
        except KeyboardInterrupt:
            job.save_interrupted()
            raise
        frames = job.images + job.frames
        if not frames and not job.done_before:
            if len(job.failed) == 1:
                raise HrposeError(job.failed[0]["error"])
            reasons = "; ".join(f["error"] for f in job.failed[:3])
            raise HrposeError(f"nothing could be processed: {reasons}")
    seconds = time.perf_counter() - start
    write_json(out / "results.json", job.results)
    (out / PROGRESS).unlink(missing_ok=True)
    if settings.csv:
        write_csv(out / "results.csv", job.results, estimator.skeleton.joints)
    return {"inputs": len(inputs), "images": job.images, "frames": job.frames,
            "done_before": job.done_before,
            "people": len(job.results), "failed": job.failed, "drawings": job.drawings,
            "results": str(out / "results.json"), "videos": job.videos,
            "seconds": round(seconds, 3),
            "fps": round(frames / seconds, 2) if seconds > 0 else None}


class _Job:
    def __init__(self, estimator: PoseEstimator, out: Path, settings: InferSettings,
                 inputs: Sequence[Path | Stream]) -> None:
        self.est, self.out, self.settings = estimator, out, settings
        self.by_part = check_result_layout(settings.results_layout, estimator.skeleton)
        self.results: list[dict] = []
        self.failed: list[dict] = []
        self.drawings: list[str] = []
        self.videos: list[dict] = []           # per video: frames, dropped, fps, latency
        self.images = self.frames = 0
        self.finished: list[str] = []          # inputs done, in order, for a resumed run
        self.finished_rows = 0                 # result rows of those
        self.done_before = 0
        self.many = len(inputs) > 1 or (not _is_video(inputs[0]) and inputs[0].is_dir())
        self.targets = output_names(inputs, out)
        self.box_file: dict[int, np.ndarray] | None = None
        self.box_names: dict[str, int] = {}
        if settings.boxes:
            self.box_file, self.box_names = load_box_file(settings.boxes)
        self.ids = _image_ids([p for p in inputs if not _is_video(p)], self.box_names)
        if self.box_file is not None and self.ids and not set(self.ids.values()) & set(
                self.box_file):
            raise HrposeError(f"{settings.boxes}: none of its image ids "
                              f"({', '.join(map(str, sorted(self.box_file)[:3]))}, ...) is an "
                              "input image's; ids match numbered file names (000000000785.jpg "
                              "is 785) or the file's 'images' list")

    def resume(self, inputs: Sequence[Path | Stream]) -> list[Path | Stream]:
        """The inputs still to run: all of them, unless OUT holds an interrupted run's
        progress, whose finished inputs (and their result rows) are kept."""
        saved = self.out / PROGRESS
        if not saved.is_file():
            return list(inputs)
        progress = read_json(saved)
        if not isinstance(progress, dict) or not isinstance(progress.get("done"), list):
            raise HrposeError(f"{saved}: not an hrpose progress file; remove it to start over")
        done = set(progress["done"]) & {str(p) for p in inputs}
        results = read_json(self.out / "results.json") if done else []
        self.results = list(results[: int(progress.get("rows", 0))])
        self.finished, self.done_before = [str(p) for p in inputs if str(p) in done], len(done)
        if done:
            tqdm.write(f"hrpose: {plural(len(done), 'input')} done before (in {saved}); "
                       "going on with the rest", file=sys.stderr)
        return [p for p in inputs if str(p) not in done]

    def run(self, inputs: Sequence[Path | Stream]) -> None:
        images = [p for p in inputs if not _is_video(p)]
        if images:
            self.run_images(images)
        for video in (p for p in inputs if _is_video(p)):
            try:
                self.run_video(video)
            except HrposeError as e:
                self.fail(video, str(e))

    def _finish(self, source: Path | Stream) -> None:
        self.finished.append(str(source))
        self.finished_rows = len(self.results)

    def save_interrupted(self) -> None:
        """On Ctrl-C: the results so far and what finished, for the next run to go on."""
        write_json(self.out / "results.json", self.results)
        write_json(self.out / PROGRESS, {"done": self.finished, "rows": self.finished_rows})
        tqdm.write(f"hrpose: interrupted; the results of {plural(len(self.finished), 'input')} "
                   f"done so far are in {self.out / 'results.json'}; the same command goes on "
                   "with the rest", file=sys.stderr)

    def fail(self, path: Path, message: str) -> None:
        self.failed.append({"input": str(path), "error": message})
        if self.many:
            tqdm.write(f"hrpose: skipped {message}", file=sys.stderr)

    def _boxes(self, key: int) -> np.ndarray | None:
        """The box file's boxes for an image id / frame (none: no people), or None: detect."""
        if self.box_file is None:
            return None
        boxes = self.box_file.get(key, np.zeros((0, 5)))
        return boxes[boxes[:, 4] >= self.settings.box_threshold]

    def run_images(self, paths: list[Path]) -> None:
        bar = tqdm(total=len(paths), desc="infer", unit="img", disable=not self.settings.progress)

        def failed(path: Path, error: HrposeError) -> None:
            bar.update(1)
            self.fail(path, str(error))

        for group in image_groups(prefetch(paths), self.settings, failed):
            self._image_group(group)
            bar.update(len(group))
        bar.close()

    def _image_group(self, group: list[tuple[Path, np.ndarray]]) -> None:
        start = time.perf_counter()
        paths = [p for p, _ in group]
        try:
            people = self.est.predict_rgb([im for _, im in group],
                                          [self._boxes(self.ids[p]) for p in paths]
                                          if self.box_file is not None else None,
                                          [str(p) for p in paths])
        except HrposeError as e:
            if len(group) == 1:
                self.fail(paths[0], str(e))
                return
            for item in group:              # one bad box list must not cost the others
                self._image_group([item])
            return
        fps = len(group) / max(time.perf_counter() - start, 1e-9)
        for (path, image), found in zip(group, people):
            self._record(_Source(path, self.ids[path]), found)
            if self.settings.draw:
                target = self.targets[path]
                target.parent.mkdir(parents=True, exist_ok=True)
                write_image(target, self._draw(image, found, fps))
                self.drawings.append(str(target))
            self.images += 1
            self._finish(path)

    def run_video(self, path: Path | Stream) -> None:
        """One video, file or live stream, through the threaded pipeline (pipeline.py)."""
        reader = VideoReader(path)
        name = str(path)
        if isinstance(path, Stream):
            name = path.name.removesuffix(".mp4")
        poses = FramePoses(self.est, name, reader.fps,
                           self.settings.smoothing if self.settings.smooth else None,
                           self.settings.detect_every, self.settings.keypoint_threshold,
                           self._boxes if self.box_file is not None else None)
        target = self.targets[path]
        writer: VideoWriter | None = None
        recent: deque[float] = deque(maxlen=30)      # write times, for the drawn rate
        bar = tqdm(total=reader.frame_count or None, desc=name, unit="frame",
                   disable=not self.settings.progress)
        recorded = len(self.results)
        source = Path(str(path)) if isinstance(path, Stream) else path

        drawn: np.ndarray | None = None
        next_index = 0                   # the source frame the drawing's next frame shows

        def write(frame: Frame, found: list[Person]) -> None:
            nonlocal writer, drawn, next_index
            self._record(_Source(source, frame.index, frame.index), found)
            if not self.settings.draw:
                return
            recent.append(time.perf_counter())
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else None
            if writer is None:
                writer = VideoWriter(target, reader.fps, (frame.image.shape[1],
                                                          frame.image.shape[0]))
            picture = self._draw(frame.image, found, fps)
            # Frames given up (realtime) or undecodable show the drawing before them, so the
            # drawing keeps the source's frame count and timing.
            for _ in range(next_index, frame.index):
                writer.write(picture if drawn is None else drawn)
            writer.write(picture)
            drawn, next_index = picture, frame.index + 1

        realtime = reader.live if self.settings.realtime is None else self.settings.realtime
        if realtime:
            self.est.warm_up()             # no first-call stall may drop frames
        try:
            stats = run_pipeline(reader, poses, write, realtime=realtime,
                                 max_frames=self.settings.max_frames, progress=bar.update)
        except KeyboardInterrupt:              # what was drawn and posed is kept
            if writer is not None:
                writer.close()
                self.drawings.append(str(target))
            raise
        except BaseException:
            del self.results[recorded:]        # a failed video leaves no partial results
            if writer is not None:
                writer.abort()
            raise
        finally:
            bar.close()
        if stats.frames == 0:
            raise HrposeError(f"{path}: the video has no readable frames")
        if writer is not None:
            writer.close()
            self.drawings.append(str(target))
        self.frames += stats.frames
        self._finish(path)
        self.videos.append({"input": str(path), "realtime": realtime,
                            "detect_every": self.settings.detect_every,
                            "detector_runs": poses.detections, **stats.summary()})

    def _draw(self, image: np.ndarray, people: list[Person], fps: float | None) -> np.ndarray:
        drawn = draw_found(image, people, self.est.skeleton, self.settings.keypoint_threshold,
                           self.settings.person_threshold)
        if self.settings.show_fps and fps is not None:
            draw_text(drawn, f"{fps:.1f} FPS", (4, 0))
        return drawn

    def _record(self, source: _Source, people: list[Person]) -> None:
        for person in people:
            entry = {**coco_result(person, source.image_id, self.by_part),
                     "file_name": source.file.name}
            if source.frame is not None:
                entry["frame"] = source.frame
                entry["track_id"] = person.track_id
            self.results.append(entry)


T = TypeVar("T")


def image_groups(images: Iterable[tuple[T, np.ndarray | HrposeError]],
                 settings: InferSettings,
                 failed: Callable[[T, HrposeError], None]) -> Iterator[list[tuple[T, np.ndarray]]]:
    """Decoded images in groups whose crops share model batches: `images_per_call` images, or
    fewer when they reach `pixels_per_call`; an image that could not be read goes to
    `failed`."""
    group: list[tuple[T, np.ndarray]] = []
    pixels = 0
    for item, image in images:
        if isinstance(image, HrposeError):
            failed(item, image)
            continue
        group.append((item, image))
        pixels += image.shape[0] * image.shape[1]
        if len(group) == settings.images_per_call or pixels >= settings.pixels_per_call:
            yield group
            group, pixels = [], 0
    if group:
        yield group


def _is_video(source: Path | Stream) -> bool:
    return isinstance(source, Stream) or is_video(source)


def output_names(inputs: Sequence[Path | Stream], out: Path) -> dict[Path | Stream, Path]:
    """Each input's drawing: the input tree mirrored under `out` (from the inputs' common
    folder), the input's own name kept whole, ".jpg" (".mp4" for videos) added unless it is
    already a format the drawing is written in: p.jpg -> p.jpg, p.bmp -> p.bmp.jpg,
    clip.avi -> clip.avi.mp4. Names are unique because input paths are; a name that still
    meets another (p.bmp beside a real p.bmp.jpg) is refused. A camera or stream is drawn to
    OUT/camera0.mp4 or OUT/<the URL's last part>.mp4."""
    files = [p for p in inputs if isinstance(p, Path)]
    # absolute, links not followed: a linked file is drawn under its own name
    root = Path(os.path.commonpath([_absolute(p).parent for p in files])) if files else out
    names: dict[Path | Stream, Path] = {}
    taken: dict[Path, Path | Stream] = {}
    for path in inputs:
        if isinstance(path, Stream):
            target = out / path.name
            if target in taken:
                raise HrposeError(f"{path} and {taken[target]} would both be drawn to {target}")
            names[path], taken[target] = target, path
            continue
        target = out / _absolute(path).relative_to(root)
        kept = (".mp4",) if is_video(path) else (".jpg", ".jpeg", ".png")
        if target.suffix.lower() not in kept:
            target = target.with_name(target.name + kept[0])
        if target in taken:
            raise HrposeError(f"{path} and {taken[target]} would both be drawn to {target}; "
                              "rename one or use --no-draw")
        names[path] = target
        taken[target] = path
    return names


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


CSV_COLUMNS = ("file", "frame", "track_id", "person", "joint", "x", "y", "score")


def write_csv(path: Path, results: list[dict], joints: Sequence[str]) -> None:
    """The results as a flat table, one row per person and joint: file, frame and track id
    (video; empty for images), the person's index in its image or frame, joint name, x, y in
    image pixels, score. Written atomically."""
    import csv

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        person, last = 0, None
        for r in results:
            key = (r["file_name"], r["image_id"], r.get("frame"))
            person = person + 1 if key == last else 0
            last = key
            rows = (wholebody_keypoints(r, "result") if is_wholebody_record(r)
                    else np.reshape(r["keypoints"], (-1, 3)))
            for name, (x, y, score) in zip(joints, rows.tolist()):
                writer.writerow([r["file_name"], r.get("frame", ""), r.get("track_id", "")
                                 if r.get("track_id") is not None else "", person, name, x, y,
                                 score])


def _image_ids(paths: Sequence[Path], names: dict[str, int]) -> dict[Path, int]:
    """COCO image ids for the input images: the box file's ids by file name, else the number a
    file is named by (COCO's 000000000785.jpg is 785), else 1, 2, ... in input order."""
    if all(p.name in names for p in paths):
        return {p: names[p.name] for p in paths}
    if all(p.stem.isdigit() for p in paths) and len({int(p.stem) for p in paths}) == len(paths):
        return {p: int(p.stem) for p in paths}
    return {p: i + 1 for i, p in enumerate(paths)}
