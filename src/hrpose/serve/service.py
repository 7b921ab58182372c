"""The model side of the service: one `PoseEstimator` whose detector and pose model each run
behind a `Batcher`, and what it finds as JSON.

A top-down request goes: decode (worker thread) -> detector batcher (unless boxes are given, or
there is no detector: the whole image) -> crops (worker thread) -> pose batcher, which merges
the crops of concurrent requests into full model batches -> people. A bottom-up request sends
its whole image to the pose batcher. Requests share nothing mutable but the two batchers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import HrposeError
from ..inference.draw import drawing_style
from ..inference.estimator import PoseEstimator
from ..inference.person import Person
from ..inference.topdown import Crops, TopDownEstimator
from ..io import decode_image
from ..version import __version__
from .batcher import Batcher, Ticket
from .metrics import Metrics
from .settings import ServeSettings
from .uploads import ServeError

# The blank image the warm-up runs (a common camera size).
WARM_UP_HW = (480, 640)


class PoseService:
    def __init__(self, estimator: PoseEstimator, settings: ServeSettings,
                 metrics: Metrics) -> None:
        self.estimator, self.settings = estimator, settings
        self.pipeline = estimator.pipeline
        self.topdown = isinstance(self.pipeline, TopDownEstimator)
        wait, batch = settings.max_wait_ms, settings.max_batch
        self.detect: Batcher | None = None
        if self.topdown:
            self.pipeline.batch = batch         # the model call the batcher fills
            detector = self.pipeline.load_detector()
            if detector is not None:
                self.detect = Batcher("detector", detector, max_batch=batch, max_wait_ms=wait,
                                      on_batch=metrics.batch_observer("detector"))
            self.pose = Batcher("pose", self._run_crops, max_batch=batch, max_wait_ms=wait,
                                on_batch=metrics.batch_observer("pose"))
        else:
            self.pose = Batcher("pose", self._run_images, max_batch=batch, max_wait_ms=wait,
                                on_batch=metrics.batch_observer("pose"))
        for batcher in (self.detect, self.pose):
            if batcher is not None:
                metrics.watch_queue(batcher.name, lambda b=batcher: b.depth)
        self.card = model_card(estimator, settings, self.detect is not None)

    def warm_up(self) -> None:
        """Every model once at each batch size it will see, before the batchers start: a
        runtime compiles kernels and allocates on the first call of a shape, and no request
        should pay for that."""
        image = np.zeros((*WARM_UP_HW, 3), np.uint8)
        if not self.topdown:
            self._run_images([image])
            return
        h, w = WARM_UP_HW
        batch = self.settings.max_batch
        for size in range(1, batch + 1):
            if self.detect is not None:
                self.detect.run([image] * size)
            boxes = np.tile([[0.0, 0.0, w, h, 1.0]], (size, 1))
            crops = self.pipeline.preprocess([image], [boxes], ["warm-up"])   # size crops
            self._run_crops([crops])
        if self.detect is not None:
            # Under load both models run at once, and the runtime takes scratch memory for
            # that (up to 37 MB for PicoDet beside PP-TinyPose): most of it now, not later.
            both = threading.Thread(target=self.detect.run, args=([image] * batch,))
            both.start()
            self._run_crops([crops])
            both.join()

    def start(self) -> None:
        for batcher in (self.detect, self.pose):
            if batcher is not None:
                batcher.start()

    def stop(self) -> None:
        for batcher in (self.detect, self.pose):
            if batcher is not None:
                batcher.stop()

    def _run_crops(self, parts: list[Crops]) -> list[np.ndarray]:
        """The keypoints of several requests' crops, merged into model batches."""
        keypoints = self.pipeline.run(Crops.concat(parts))
        ends = np.cumsum([len(p.boxes) for p in parts])
        return np.split(keypoints, ends[:-1])

    def _run_images(self, images: list[np.ndarray]) -> list[list[Person]]:
        """Bottom-up: every person of each whole image."""
        return self.pipeline.predict(images, None, [f"image {i}" for i in range(len(images))])

    async def estimate(self, data: bytes, boxes: np.ndarray | None, name: str = "image"
                       ) -> tuple[np.ndarray, list[Person], dict[str, float]]:
        """The decoded RGB image, the people in it and the time each stage took (ms)."""
        detecting = boxes is None and self.detect is not None
        tickets = [self.pose.ticket(), *([self.detect.ticket()] if detecting else [])]
        try:
            return await self._estimate(data, boxes, name, *tickets)
        finally:
            for ticket in tickets:
                ticket.release()

    async def _estimate(self, data: bytes, boxes: np.ndarray | None, name: str,
                        pose: Ticket, detect: Ticket | None = None
                        ) -> tuple[np.ndarray, list[Person], dict[str, float]]:
        start = time.perf_counter()
        try:
            image = await asyncio.to_thread(decode_image, data, name, self.settings.max_pixels)
        except HrposeError as e:
            raise ServeError(422, str(e)) from None
        decoded = time.perf_counter()
        if not self.topdown:
            people = await self.pose.submit(image, 1, pose)
            return image, people, _timing(start, decoded, decoded, time.perf_counter())
        if detect is not None:
            boxes = await self.detect.submit(image, 1, detect)
        detected = time.perf_counter()
        crops = await asyncio.to_thread(self.pipeline.preprocess, [image], [boxes], [name])
        if not len(crops.boxes):
            return image, [], _timing(start, decoded, detected, time.perf_counter())
        keypoints = await self._keypoints(crops, pose)
        people = self.pipeline.postprocess(keypoints, crops, [name])[0]
        return image, people, _timing(start, decoded, detected, time.perf_counter())


    async def _keypoints(self, crops: Crops, ticket: Ticket) -> np.ndarray:
        """The crops' keypoints, sent as jobs of at most one model batch each: a request
        that times out or whose client leaves has its jobs not yet run dropped (the batcher
        skips cancelled jobs), and other requests' jobs fit in between."""
        size, count = self.settings.max_batch, len(crops.boxes)
        chunks = [crops.take(slice(i, i + size)) for i in range(0, count, size)]
        found = await asyncio.gather(*(self.pose.submit(c, len(c.boxes), ticket)
                                       for c in chunks))
        return np.concatenate(found)


def _timing(start: float, decoded: float, detected: float, done: float) -> dict[str, float]:
    return {"decode": round((decoded - start) * 1000, 2),
            "detect": round((detected - decoded) * 1000, 2),
            "pose": round((done - detected) * 1000, 2),
            "total": round((done - start) * 1000, 2)}


def people_json(people: list[Person]) -> list[dict]:
    """People as the API answers them: box x, y, w, h, score, the box's own score, keypoints
    [[x, y, score], ...] in image pixels (0.01 px), and the track id on a stream."""
    out = []
    for person in people:
        entry = {"box": np.round(person.box.astype(np.float64), 2).tolist(),
                 "score": round(float(person.score), 5),
                 "box_score": round(float(person.box_score), 5),
                 "keypoints": np.round(person.keypoints.astype(np.float64), 2).tolist()}
        if person.track_id is not None:
            entry["track_id"] = person.track_id
        out.append(entry)
    return out


def _file_name(model: str) -> str:
    """An exported model's name: its file's ("model.xml" is named by its folder)."""
    path = Path(model)
    return path.parent.name if path.stem == "model" and path.parent.name else path.stem


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def model_card(estimator: PoseEstimator, settings: ServeSettings, detector: bool) -> dict:
    """What a client needs to send images and draw what comes back (`GET /v1/model`)."""
    card, skeleton, runner = estimator.card, estimator.skeleton, estimator.runner
    style = drawing_style(skeleton)
    options = settings.options
    h, w = estimator.input_hw
    codec = estimator.codec
    return {
        "name": card.name or _file_name(settings.model), "source": Path(settings.model).name,
        "kind": card.kind, "input_size": {"width": w, "height": h},
        "keypoints": {"set": skeleton.name, "names": list(skeleton.joints),
                      "links": [list(link) for link in skeleton.links],
                      "flip_pairs": [list(pair) for pair in skeleton.flip_pairs],
                      "joint_colours": [_hex(c) for c in style.joint_colours],
                      "link_colours": [_hex(c) for c in style.link_colours],
                      # sizes as fractions of the body's line width and dot radius
                      "link_widths": list(style.link_widths),
                      "joint_sizes": list(style.joint_sizes),
                      "joint_outlined": list(style.joint_outlined)},
        "codec": codec.method if codec is not None else card.codec,
        "backend": runner.backend, "precision": runner.precision,
        "flip": options.flip,
        # top-down: the detector that finds people without given boxes ("none": the whole
        # image is one person); bottom-up: none is needed
        "detector": None if card.bottomup else options.detector if detector else "none",
        "thresholds": {"box": options.box_threshold, "keypoint": settings.keypoint_threshold,
                       "person": settings.person_threshold},
        "batching": {"max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms},
        "limits": {"max_upload_mb": settings.max_upload_mb, "max_pixels": settings.max_pixels,
                   "max_queue": settings.max_queue, "timeout_s": settings.timeout_s,
                   "max_uploads": settings.max_uploads,
                   "upload_timeout_s": settings.upload_timeout_s,
                   "max_pixels_in_flight": settings.max_pixels_in_flight,
                   "max_boxes": settings.max_boxes},
        "version": __version__,
    }

