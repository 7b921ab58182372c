"""Top-down test time: person boxes (given, a detector's, or the whole image) -> crops
(data/topdown.py) -> one runner -> heatmaps -> keypoints (codecs/heatmap.py) -> image pixels.
Crops of many images fill each model batch, so a crowded frame and a folder of single-person
photos both run at full batch size."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from ..codecs.heatmap import HeatmapCodec
from ..data.topdown import crop_people
from ..data.transforms import BOX_PADDING, apply_affine, boxes_to_crops, invert_affine, normalize
from ..metrics.coco import rescore
from ..models.card import ModelCard
from ..models.zoo import DEFAULT_DETECTOR
from ..skeletons import Skeleton
from .backends import Runner, check_finite
from .boxes import check_boxes
from .detector import Detector, ExportedDetector
from .options import DEFAULT, EstimatorOptions, RuntimeOptions
from .person import Person, as_confidences

# A whole-image box whose joints score below this on average is probably not one person
# (measured on real photos with PP-TinyPose: tests/test_first_contact.py).
UNSURE_WHOLE_IMAGE = 0.3


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
    return decode_keypoints(check_finite(heatmaps), matrices, codec)


def decode_keypoints(heatmaps: np.ndarray, matrices: np.ndarray, codec: HeatmapCodec
                     ) -> np.ndarray:
    """Heatmaps (n, K, h, w) of crops and their image -> crop matrices -> keypoints (n, K, 3)
    in image pixels with joint scores."""
    coords, scores = codec.decode(heatmaps)
    keypoints = np.empty((len(heatmaps), heatmaps.shape[1], 3), np.float32)
    keypoints[..., :2] = apply_affine(invert_affine(matrices), coords)
    keypoints[..., 2] = scores
    return keypoints


@dataclass
class Crops:
    """Every person crop of a batch of images, and where each came from."""

    images: np.ndarray         # (n, H, W, 3) uint8 RGB
    matrices: np.ndarray       # (n, 2, 3) image -> crop
    boxes: np.ndarray          # (n, 5) x, y, w, h, score
    counts: list[int]          # crops per image
    whole: np.ndarray          # (n,) the box is the whole image (no boxes, no detector)

    def take(self, rows: slice) -> Crops:
        """Some crops of one image's batch (the service sends a request's crops a model batch
        at a time)."""
        if len(self.counts) != 1:
            raise ValueError("take() slices the crops of one image")
        images = self.images[rows]
        return Crops(images, self.matrices[rows], self.boxes[rows], [len(images)],
                     self.whole[rows])

    @staticmethod
    def concat(parts: Sequence[Crops]) -> Crops:
        """The crops of several batches as one (the service's batcher merges requests)."""
        return Crops(*(np.concatenate([getattr(c, f) for c in parts])
                       for f in ("images", "matrices", "boxes")),
                     [n for c in parts for n in c.counts],
                     np.concatenate([c.whole for c in parts]))


class TopDownEstimator:
    """Boxes, then keypoints in each box, as `options` say. Its detector: "default" (the
    zoo's, loaded when an image first needs it), a zoo name or file, a `Detector`, or None (the
    whole image); it runs as `detector_runtime` says (default: `options.runtime.for_detector`)."""

    def __init__(self, runner: Runner, card: ModelCard, skeleton: Skeleton,
                 heatmap_wh: tuple[int, int], options: EstimatorOptions,
                 padding: float = BOX_PADDING, detector_runtime: RuntimeOptions | None = None
                 ) -> None:
        h, w = runner.input_hw
        self.runner, self.mean, self.std, self.skeleton = runner, card.mean, card.std, skeleton
        self.codec = HeatmapCodec((w, h), heatmap_wh, method=options.decode or card.codec)
        self.flip, self.batch, self.padding = options.flip, options.model_batch, padding
        self.detector: Detector | None = None
        self._lazy_detector: str | None = None     # a zoo detector, loaded when first needed
        self._box_threshold = options.box_threshold
        self._detector_runtime = detector_runtime or options.runtime.for_detector()
        self._warned_whole_image = False
        detector = options.detector
        if detector == DEFAULT:
            self._lazy_detector = DEFAULT_DETECTOR
        elif isinstance(detector, (str, Path)):
            self.detector = self._open_detector(detector)
        else:
            self.detector = detector  # type: ignore[assignment]

    def predict(self, images: Sequence[np.ndarray], boxes: Sequence[object] | None,
                names: Sequence[str]) -> list[list[Person]]:
        crops = self.preprocess(images, boxes, names)
        if not len(crops.boxes):
            return [[] for _ in images]
        return self.postprocess(self.run(crops), crops, names)

    def preprocess(self, images: Sequence[np.ndarray], boxes: Sequence[object] | None,
                   names: Sequence[str]) -> Crops:
        """Every person's crop: given boxes checked, else detected, else the whole image."""
        per_image = self.person_boxes(images, boxes, names)
        given = list(boxes) if boxes is not None else [None] * len(images)
        whole = np.concatenate([np.full(len(p), b is None and self.detector is None, bool)
                                for p, b in zip(per_image, given)])
        counts = [len(b) for b in per_image]
        all_boxes = np.concatenate(per_image)
        w, h = self.codec.input_wh
        if not len(all_boxes):
            return Crops(np.zeros((0, h, w, 3), np.uint8), np.zeros((0, 2, 3)), all_boxes,
                         counts, whole)
        centers, sizes = boxes_to_crops(all_boxes[:, :4], w / h, self.padding)
        starts = np.cumsum([0, *counts])
        crops, matrices = zip(*(crop_people(im, centers[a:b], sizes[a:b], (w, h), self.codec.udp)
                                for im, (a, b) in zip(images, pairwise(starts))))
        return Crops(np.concatenate(crops), np.concatenate(matrices), all_boxes, counts, whole)

    def run(self, crops: Crops) -> np.ndarray:
        """Keypoints (n, K, 3) in image pixels, `batch` crops per model call."""
        flip_index = self.skeleton.flip_index if self.flip else None
        return np.concatenate([
            heatmap_keypoints(self.runner, crops.images[i : i + self.batch],
                              crops.matrices[i : i + self.batch], self.codec, self.mean,
                              self.std, flip_index)
            for i in range(0, len(crops.images), self.batch)])

    def postprocess(self, keypoints: np.ndarray, crops: Crops, names: Sequence[str]
                    ) -> list[list[Person]]:
        """People per image, scored as published (box score x confident joints' mean)."""
        scores = rescore(crops.boxes[:, 4], keypoints[..., 2])
        self._warn_unsure_whole_image(keypoints, crops.whole, crops.counts, names)
        keypoints, scores = as_confidences(keypoints, scores)
        people = [Person(box.astype(np.float32)[:4], kp, float(s), float(box[4]),
                         skeleton=self.skeleton)
                  for box, kp, s in zip(crops.boxes, keypoints, scores)]
        return [people[a:b] for a, b in pairwise(np.cumsum([0, *crops.counts]))]

    def person_boxes(self, images: Sequence[np.ndarray], boxes: Sequence[object] | None,
                     names: Sequence[str]) -> list[np.ndarray]:
        """(N, 5) boxes per image: checked given boxes, else detected, else the whole image."""
        given = list(boxes) if boxes is not None else [None] * len(images)
        missing = [i for i, b in enumerate(given) if b is None]
        if missing:
            self.load_detector()
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

    def load_detector(self) -> Detector | None:
        """The detector, the zoo's default loaded (downloaded) now if it has not been yet."""
        if self.detector is None and self._lazy_detector is not None:
            self.detector = self._open_detector(self._lazy_detector)
            self._lazy_detector = None
        return self.detector

    def _open_detector(self, detector: str | Path) -> Detector:
        # "auto": bf16 where it is native, as the pose model: PicoDet-S 8.0 -> 5.7 ms a 720p
        # frame, the same people on a test clip (box IoU with fp32: median 0.994, lowest 0.94)
        return ExportedDetector(detector, self._detector_runtime,
                                score_threshold=self._box_threshold)

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
                      stacklevel=5)
