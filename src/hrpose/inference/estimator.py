"""`PoseEstimator`: images (+ person boxes) -> people with keypoints in image pixels.

The top-down pipeline as one object: person boxes (given, a detector, or the whole image) ->
crops (data/topdown.py) -> one runner (inference/backends.py) -> heatmaps -> keypoints
(codecs/heatmap.py) -> image pixels. `predict_batch` fills model batches with the crops of many
images, so a crowded frame and a folder of single-person photos both run at full batch size.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from ..codecs.associative_embedding import GroupingSettings
from ..codecs.heatmap import HeatmapCodec
from ..data.topdown import crop_people
from ..data.transforms import BOX_PADDING, apply_affine, boxes_to_crops, invert_affine, normalize
from ..errors import HrposeError
from ..metrics.coco import rescore
from ..models.zoo import DEFAULT_DETECTOR
from ..skeletons import Skeleton, get_skeleton, skeleton_for
from .backends import Runner, open_model
from .bottomup import bottomup_keypoints
from .boxes import check_boxes
from .detector import Detector, ExportedDetector
from .images import to_rgb

# A whole-image box whose joints score below this on average is probably not one person
# (measured on real photos with PP-TinyPose: tests/test_first_contact.py).
UNSURE_WHOLE_IMAGE = 0.3


@dataclass
class Person:
    """One person found in an image."""

    box: np.ndarray            # (4,) x, y, w, h in image pixels
    keypoints: np.ndarray      # (K, 3) x, y in image pixels, joint score
    score: float               # box score x mean of the joint scores above 0.2 (as published)
    box_score: float = 1.0
    track_id: int | None = None   # set by video tracking


def heatmap_keypoints(runner: Runner, crops: np.ndarray, matrices: np.ndarray,
                      codec: HeatmapCodec, mean: Sequence[float], std: Sequence[float],
                      flip_index: np.ndarray | None = None) -> np.ndarray:
    """uint8 RGB crops (n, H, W, 3) and their image -> crop matrices -> keypoints (n, K, 3) in
    image pixels with joint scores. With `flip_index` the mirrored crops run in the same call
    (a fuller batch) and their heatmaps are flipped back and averaged (flip test)."""
    x = normalize(crops, mean, std)
    if flip_index is not None:
        both = runner(np.concatenate([x, x[..., ::-1]]))
        heatmaps = (both[: len(x)] + codec.flip_back(both[len(x) :], flip_index)) / 2
    else:
        heatmaps = runner(x)
    coords, scores = codec.decode(heatmaps)
    keypoints = np.empty((len(x), heatmaps.shape[1], 3), np.float32)
    keypoints[..., :2] = apply_affine(invert_affine(matrices), coords)
    keypoints[..., 2] = scores
    return keypoints


class PoseEstimator:
    """A pose model ready to run on images: top-down (HRNet: person boxes, then keypoints) or
    bottom-up (HigherHRNet: every person in one pass, no boxes; `scales` for multi-scale test,
    `grouping` for the tag grouping settings).

    model: a zoo name ("hrnet_w32_256x192": its published weights unless `weights` says
    otherwise), a checkpoint file (.safetensors from `hrpose train`, or any published layout), or
    an exported .onnx / OpenVINO .xml file. The keypoint set, input size, normalisation and
    heatmap codec come from the model; `decode` overrides the codec's decoding ("classic",
    "dark", "udp"). `detector` finds people in images given without boxes: "default" (the zoo's
    PicoDet-S pedestrian detector, downloaded on first use), a zoo detector name, an exported
    detector file or a `Detector`; None (or "none") takes the whole image as one person, with a
    warning when the pose found that way is unsure. `box_threshold`: the detector's score
    threshold (a named or file detector). `flip` turns on the flip
    test (about 2x the model time, a little more accurate). `batch`: crops per model call
    (default 8 on the CPU, 32 on a GPU)."""

    def __init__(self, model: str | Path = "hrnet_w32_256x192", backend: str | None = None,
                 device: str = "cpu", precision: str = "auto", *, weights: str | None = None,
                 detector: str | Path | Detector | None = "default",
                 box_threshold: float = 0.5, flip: bool = False,
                 decode: str | None = None, batch: int | None = None,
                 threads: int | None = None,
                 padding: float = BOX_PADDING, scales: Sequence[float] = (1.0,),
                 grouping: GroupingSettings | None = None) -> None:
        # Crops per model call. On a CPU, HRNet-W32 runs fastest at 4-8 (measured: 11.3
        # images/s at 8, 8.0 at 32, whose activations spill out of the caches); GPUs want more.
        batch = batch if batch is not None else 8 if str(device) == "cpu" else 32
        if batch < 1:
            raise HrposeError(f"batch must be at least 1, got {batch}")
        if not 0 <= box_threshold <= 1:
            raise HrposeError(f"box_threshold must be in [0, 1], got {box_threshold}")
        if not scales or min(scales) <= 0:
            raise HrposeError(f"scales must be positive numbers, got {tuple(scales)}")
        loaded = open_model(str(model), weights, backend, device, precision, threads)
        self.runner, self.mean, self.std = loaded.runner, loaded.mean, loaded.std
        self.kind = loaded.kind
        self.flip, self.batch, self.padding = flip, batch, padding
        self.scales, self.grouping = tuple(scales), grouping or GroupingSettings()
        h, w = self.input_hw = self.runner.input_hw
        if detector == "none":
            detector = None
        if self.kind == "bottomup":
            if detector not in (None, "default"):
                raise HrposeError(f"{model}: a bottom-up model finds people itself; drop the "
                                  "detector")
            probe = self.runner.run_all(np.zeros((1, 3, 64, 64), np.float32))[-1]  # type: ignore[attr-defined]
        else:
            probe = self.runner(np.zeros((1, 3, h, w), np.float32))
        joints = probe.shape[1]
        self.skeleton: Skeleton = (get_skeleton(loaded.keypoints) if loaded.keypoints
                                   else skeleton_for(joints))
        if self.skeleton.num_joints != joints:
            raise HrposeError(f"{model}: the model predicts {joints} joints, its keypoint set "
                              f"{self.skeleton.name!r} has {self.skeleton.num_joints}")
        self.detector: Detector | None = None
        self._lazy_detector: str | None = None     # a zoo detector, loaded when first needed
        self._threads, self._box_threshold = threads, box_threshold
        self._warned_whole_image = False
        if self.kind == "bottomup":
            self.codec = None
            return
        if self.scales != (1.0,):
            raise HrposeError(f"{model}: scales {self.scales} are for bottom-up models; a "
                              "top-down model sees person crops at one size")
        self.codec = HeatmapCodec((w, h), (probe.shape[3], probe.shape[2]),
                                  method=decode or loaded.codec)
        if detector == "default":
            self._lazy_detector = DEFAULT_DETECTOR
        elif isinstance(detector, (str, Path)):
            self.detector = ExportedDetector(detector, precision="fp32", threads=threads,
                                             score_threshold=box_threshold)
        else:
            self.detector = detector

    def __call__(self, image: object, boxes: object | None = None, *,
                 color: str | None = None) -> list[Person]:
        """People in one image (a path, a numpy array with `color` "rgb" or "bgr", or a PIL
        image). `boxes`: (N, 4) x, y, w, h or (N, 5) with scores; None: the detector's, or the
        whole image."""
        return self.predict_batch([image], None if boxes is None else [boxes], color=color)[0]

    def predict_batch(self, images: Sequence[object], boxes: Sequence[object] | None = None,
                      *, color: str | None = None,
                      names: Sequence[str] | None = None) -> list[list[Person]]:
        """People in each of many images, the crops of all of them batched together. `boxes`
        is one entry per image (None for an image: detect, or the whole image); `names` label
        errors (default: the path, or "image i")."""
        if boxes is not None and len(boxes) != len(images):
            raise HrposeError(f"{len(images)} images but {len(boxes)} box lists")
        names = list(names) if names is not None else [
            str(im) if isinstance(im, (str, Path)) else f"image {i}" for i, im in enumerate(images)]
        rgb = [to_rgb(im, color, name) for im, name in zip(images, names)]
        return self.predict_rgb(rgb, boxes, names)

    def predict_rgb(self, images: Sequence[np.ndarray], boxes: Sequence[object] | None,
                    names: Sequence[str]) -> list[list[Person]]:
        """`predict_batch` for images already RGB uint8 (H, W, 3)."""
        if self.kind == "bottomup":
            return self._bottomup(images, boxes, names)
        per_image = self.person_boxes(images, boxes, names)
        given = list(boxes) if boxes is not None else [None] * len(images)
        whole = np.concatenate([np.full(len(p), b is None and self.detector is None, bool)
                                for p, b in zip(per_image, given)])
        counts = [len(b) for b in per_image]
        if not sum(counts):
            return [[] for _ in images]
        all_boxes = np.concatenate(per_image)
        w, h = self.codec.input_wh
        centers, sizes = boxes_to_crops(all_boxes[:, :4], w / h, self.padding)
        starts = np.cumsum([0, *counts])
        crops, matrices = zip(*(crop_people(im, centers[a:b], sizes[a:b], (w, h), self.codec.udp)
                                for im, (a, b) in zip(images, pairwise(starts))))
        crops, matrices = np.concatenate(crops), np.concatenate(matrices)
        flip_index = self.skeleton.flip_index if self.flip else None
        keypoints = np.concatenate([
            heatmap_keypoints(self.runner, crops[i : i + self.batch],
                              matrices[i : i + self.batch], self.codec, self.mean, self.std,
                              flip_index)
            for i in range(0, len(crops), self.batch)])
        scores = rescore(all_boxes[:, 4], keypoints[..., 2])
        self._warn_unsure_whole_image(keypoints, whole, counts, names)
        people = [Person(box.astype(np.float32)[:4], kp, float(s), float(box[4]))
                  for box, kp, s in zip(all_boxes, keypoints, scores)]
        return [people[a:b] for a, b in pairwise(starts)]

    def _bottomup(self, images: Sequence[np.ndarray], boxes: Sequence[object] | None,
                  names: Sequence[str]) -> list[list[Person]]:
        """Every person of each image; a person's box is the extent of its found joints."""
        if boxes is not None and any(b is not None for b in boxes):
            raise HrposeError("a bottom-up model finds people itself; it takes no boxes")
        flip_index = self.skeleton.flip_index if self.flip else None
        out = []
        for image, name in zip(images, names):
            if min(image.shape[:2]) < 1:
                raise HrposeError(f"{name}: the image is empty ({image.shape[1]}x"
                                  f"{image.shape[0]})")
            keypoints, scores = bottomup_keypoints(self.runner, image, self.mean, self.std,
                                                   self.input_hw[0], flip_index, self.scales,
                                                   self.grouping)
            people = []
            for kp, score in zip(keypoints, scores):
                seen = kp[kp[:, 2] > 0, :2]
                lo, hi = seen.min(0), seen.max(0)
                people.append(Person(np.r_[lo, hi - lo].astype(np.float32), kp, float(score)))
            out.append(people)
        return out

    def person_boxes(self, images: Sequence[np.ndarray], boxes: Sequence[object] | None,
                     names: Sequence[str]) -> list[np.ndarray]:
        """(N, 5) boxes per image: checked given boxes, else detected, else the whole image."""
        given = list(boxes) if boxes is not None else [None] * len(images)
        missing = [i for i, b in enumerate(given) if b is None]
        if missing and self.detector is None and self._lazy_detector is not None:
            self.detector = ExportedDetector(self._lazy_detector, precision="fp32",
                                             threads=self._threads,
                                             score_threshold=self._box_threshold)
            self._lazy_detector = None
        if missing and self.detector is not None:
            for i, found in zip(missing, self.detector([images[i] for i in missing])):
                given[i] = found
        out = []
        for image, b, name in zip(images, given, names):
            height, width = image.shape[:2]
            if b is None:
                out.append(np.array([[0.0, 0.0, width, height, 1.0]]))
            else:
                out.append(check_boxes(b, (width, height), name))
        return out

    def _warn_unsure_whole_image(self, keypoints: np.ndarray, whole: np.ndarray,
                                 counts: list[int], names: Sequence[str]) -> None:
        """Once per estimator: a whole-image "person" whose joints are mostly unsure is what a
        photo of several people (or of none) gives; a detector would split it."""
        if self._warned_whole_image or not whole.any():
            return
        mean = keypoints[whole][..., 2].mean(-1)
        if (mean >= UNSURE_WHOLE_IMAGE).all():
            return
        row = int(np.flatnonzero(whole)[int(np.argmin(mean))])
        image = int(np.searchsorted(np.cumsum(counts), row, side="right"))
        self._warned_whole_image = True
        warnings.warn(f"{names[image]}: the whole image was taken as one person and the pose "
                      f"found is unsure (mean joint score {mean.min():.2f}); a photo of several "
                      "people needs a person detector (the default one, or --detector FILE)",
                      stacklevel=3)
