"""`PartWriter`: a part's items -> its Parquet file, the same way on every engine: it is the
Ray actor's class (ray_engine.py), and the local engine (job.py) makes one. A part's images are
read and decoded in the worker (two threads ahead of the model), their crops share model
batches, and the part is written whole; a video segment is read from its first frame in order,
people tracked across it.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import HrposeError, plural
from ..inference.images import prefetch
from ..inference.infer import InferSettings, image_groups
from ..inference.options import EstimatorOptions
from ..inference.person import Person
from ..inference.pipeline import Frame, FramePoses
from ..inference.video import SmoothingSettings, Stream, VideoReader
from ..io import decode_image, read_image
from ..version import __version__
from .inputs import Item, Part, image_id, is_url
from .parts import PartInfo, Store, encode_part
from .predictor import PosePredictor, people_rows


@dataclass
class BatchSettings:
    part_size: int = 256              # images per part file
    segment_frames: int = 500         # video frames per segment (one part each)
    shard: str | None = None          # "I/N": this job's share of the inputs
    detect_every: int = 1             # video, within a segment
    smooth: bool = False
    smoothing: SmoothingSettings = field(default_factory=SmoothingSettings)
    keypoint_threshold: float = 0.3   # video: joints that keep a person followed
    progress: bool = True


class PartWriter:
    """Parts in, part files out: `{"name": [...], "items": [JSON list of items]}` -> one row
    per part: name, rows, completed items, failures (JSON), seconds. The model loads once."""

    def __init__(self, model: str, options: EstimatorOptions, out: str, settings: dict,
                 expect: dict | None = None) -> None:
        """`expect`: the footer of a part already in `out`; a model or settings that would
        give other rows than its are refused before anything is written."""
        start = time.perf_counter()
        self.predictor = PosePredictor(model, options)
        self.settings = BatchSettings(**{**settings, "smoothing": SmoothingSettings(
            **settings.get("smoothing", {}))})
        self.store = Store(out)
        est = self.predictor.estimator
        self.fields = {"model": est.card.name or Path(str(model)).name,
                       "keypoint_set": est.skeleton.name,
                       "codec": est.codec.method if est.codec is not None else est.card.codec,
                       "precision": est.runner.precision,
                       "hrpose_version": __version__}
        self.info = {"card": est.card.to_metadata(), "joints": self.predictor.joints,
                     **self.fields, "backend": est.runner.backend,
                     "settings": result_settings(options, self.settings)}
        if expect:
            check_same_rows(expect, self.info, out)
        self.load_seconds = time.perf_counter() - start

    def __call__(self, batch: dict) -> dict:
        out: dict[str, list] = {"name": [], "rows": [], "items": [], "failed": [],
                                "seconds": [], "load_seconds": [], "model": []}
        for name, items in zip(batch["name"], batch["items"]):
            info = self.write_part(Part(str(name), tuple(Item(**d) for d in json.loads(items))))
            out["name"].append(info.name)
            out["rows"].append(info.rows)
            out["items"].append(json.dumps(info.items))
            out["failed"].append(json.dumps(info.failed))
            out["seconds"].append(info.seconds)
            out["load_seconds"].append(info.load_seconds)
            out["model"].append(json.dumps(self.info))
        return out

    def write_part(self, part: Part) -> PartInfo:
        start = time.perf_counter()
        rows: list[dict] = []
        done: list[str] = []
        failed: list[dict] = []
        images = [i for i in part.items if not i.video]
        if images:
            self._images(images, rows, done, failed)
        for item in (i for i in part.items if i.video):
            try:
                rows += self._segment(item)
                done.append(item.key)
            except HrposeError as e:
                failed.append({"input": item.key, "error": str(e)})
        if done:      # a part of failures only is not written: a rerun tries them again
            self.store.write(part.name, encode_part(rows, {**self.info, "items": done,
                                                           "failed": failed}))
        return PartInfo(part.name, done, len(rows), failed, self.info,
                        time.perf_counter() - start, self.load_seconds)

    def _images(self, items: list[Item], rows: list[dict], done: list[str],
                failed: list[dict]) -> None:
        def fail(item: Item, error: HrposeError) -> None:
            failed.append({"input": item.key, "error": str(error)})

        for group in image_groups(prefetch(items, read=read_item), InferSettings(), fail):
            self._image_group(group, rows, done, failed)

    def _image_group(self, group: list[tuple[Item, np.ndarray]], rows: list[dict],
                     done: list[str], failed: list[dict]) -> None:
        try:
            found = self.predictor.estimator.predict_rgb([im for _, im in group], None,
                                                         [i.source for i, _ in group])
        except HrposeError as e:
            if len(group) == 1:
                failed.append({"input": group[0][0].key, "error": str(e)})
                return
            for one in group:               # one bad image must not cost the others
                self._image_group([one], rows, done, failed)
            return
        for (item, image), people in zip(group, found):
            rows += self._rows(item, image, people, image_id(item.key))
            done.append(item.key)

    def _segment(self, item: Item) -> list[dict]:
        reader = VideoReader(Stream(item.source) if is_url(item.source) else item.source)
        if not reader.seek(item.start or 0):       # past the real end: no frames, done
            reader.capture.release()
            return []
        s = self.settings
        poses = FramePoses(self.predictor.estimator, item.key, reader.fps,
                           s.smoothing if s.smooth else None, s.detect_every,
                           s.keypoint_threshold)
        rows: list[dict] = []
        end = (item.start or 0) + item.frames if item.frames else None
        for index, image in reader.indexed():
            if end is not None and index >= end:
                break
            people = poses(Frame(index, time.perf_counter(), image))
            rows += self._rows(item, image, people, index, frame=index)
        reader.capture.release()
        if reader.undecodable:
            tqdm.write(f"hrpose: {item.key}: {plural(reader.undecodable, 'frame')} could not be "
                       "decoded (skipped)", file=sys.stderr)
        return rows

    def _rows(self, item: Item, image: np.ndarray, people: list[Person], image_id: int,
              frame: int | None = None) -> list[dict]:
        h, w = image.shape[:2]
        return [{"key": item.key, "file": item.source, "image_id": image_id, "frame": frame,
                 "segment": item.start if item.video else None,
                 "track_id": person.track_id if item.video else None, "person": k, **row,
                 "image_width": w, "image_height": h, **self.fields}
                for k, (person, row) in enumerate(zip(people, people_rows(people)))]


# What decides a part's rows besides the model: a rerun must keep them.
IDENTITY = ("model", "card", "keypoint_set", "codec", "precision", "backend", "settings")


def result_settings(options: EstimatorOptions, settings: BatchSettings) -> dict:
    """The options and settings that change rows (not threads, streams or batch sizes)."""
    chosen = options.to_dict()
    return {**{k: chosen[k] for k in ("weights", "detector", "box_threshold", "flip", "decode",
                                      "scales", "keypoints")},
            "detect_every": settings.detect_every, "smooth": settings.smooth,
            "smoothing": asdict(settings.smoothing) if settings.smooth else None,
            "keypoint_threshold": settings.keypoint_threshold}


def check_same_rows(written: dict, running: dict, out: str) -> None:
    """Refuses a job whose rows would differ from the parts `out` holds (another model,
    precision, backend or setting): one folder, one model's rows. Fields a part written by an
    earlier version lacks are not compared."""
    differ = [k for k in IDENTITY if k in written and k in running and
              json.dumps(written[k], sort_keys=True) != json.dumps(running[k], sort_keys=True)]
    if not differ:
        return
    key = differ[0]
    if key == "settings":
        then, now = written[key], running[key]
        name = next(k for k in sorted(set(then) | set(now)) if then.get(k) != now.get(k))
        what = f"setting {name} {then.get(name)!r}; this job: {now.get(name)!r}"
    elif key == "card":                 # one name (model.xml), another model: say how
        then, now = written[key], running[key]
        name = next(k for k in sorted(set(then) | set(now)) if then.get(k) != now.get(k))
        what = (f"another model {written.get('model', '')} (its card's {name} "
                f"{then.get(name)!r}; this job's: {now.get(name)!r})")
    else:
        what = f"{key} {written[key]!r}; this job: {running[key]!r}"
    raise HrposeError(f"{out} holds parts written with {what}: a folder holds one model's "
                      "rows; write to another --out")


def read_item(item: Item) -> np.ndarray:
    """An image item -> RGB: a local file, or any fsspec URL's bytes."""
    if not is_url(item.source):
        return read_image(item.source)
    import fsspec

    try:
        with fsspec.open(item.source, "rb") as f:
            data = f.read()
    except (OSError, ValueError) as e:
        raise HrposeError(f"{item.source}: cannot read ({e})") from None
    return decode_image(data, item.source)

