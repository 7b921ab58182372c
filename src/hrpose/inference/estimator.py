"""`PoseEstimator`: images (+ person boxes) -> people with keypoints in image pixels.

A small factory over the two pipelines: it opens the model (inference/backends.py), reads its
card, checks its joints against its keypoint set and hands the images to a
`TopDownEstimator` (inference/topdown.py: boxes, crops, heatmaps) or a `BottomUpEstimator`
(inference/bottomup.py: whole images, grouped tags). Both run preprocess -> run -> postprocess.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..codecs.associative_embedding import GroupingSettings
from ..codecs.heatmap import HeatmapCodec
from ..data.transforms import BOX_PADDING
from ..errors import HrposeError
from ..skeletons import Skeleton, resolve_skeleton_option, unnamed_skeleton
from .backends import LoadedModel, bottomup_joints, open_model
from .bottomup import BottomUpEstimator
from .images import to_rgb
from .options import DEFAULT, EstimatorOptions, RuntimeOptions
from .person import Person
from .topdown import TopDownEstimator


class PoseEstimator:
    """A pose model ready to run on images: top-down (HRNet: person boxes, then keypoints) or
    bottom-up (HigherHRNet: every person in one pass, no boxes; `scales` for multi-scale test,
    `grouping` for the tag grouping settings).

    model: a zoo name ("hrnet_w32_256x192": its published weights unless `weights` says
    otherwise), a checkpoint file (.safetensors from `hrpose train`, or any published layout), or
    an exported .onnx / OpenVINO .xml file. The keypoint set, input size, normalisation and
    heatmap codec come from the model.

    How it runs is an `EstimatorOptions` (inference/options.py), given whole as `options` or as
    keywords of the same names, which are the command line's flags with _ for -: backend,
    device, precision, threads, streams (where and how the model runs), weights, detector
    ("default": the zoo's PicoDet-S pedestrian detector, downloaded on first use; a zoo
    detector name, an exported detector file or a `Detector`; None: the whole image is one
    person, with a warning when the pose found that way is unsure), box_threshold, flip (the
    flip test: about 2x the model time, a little more accurate), decode ("classic", "dark",
    "udp"; default the model's), batch (crops per model call; default 8 on the CPU, 32 on a
    GPU), scales, keypoints (the set of a model file that states none: a built-in name, a set
    file or a `Skeleton`; a model that states its set must agree with it). Keywords change the
    given `options`. `detector_runtime`: how the detector runs, when not as the pose model
    (`RuntimeOptions.for_detector`)."""

    def __init__(self, model: str | Path = "hrnet_w32_256x192",
                 options: EstimatorOptions | None = None, *, padding: float = BOX_PADDING,
                 grouping: GroupingSettings | None = None,
                 detector_runtime: RuntimeOptions | None = None, **keywords: Any) -> None:
        options = (options or EstimatorOptions()).changed(**keywords)
        self.options = options
        loaded = open_model(str(model), options.runtime, options.weights)
        self.runner, self.card = loaded.runner, loaded.card
        h, w = self.input_hw = self.runner.input_hw
        if self.card.bottomup:
            if options.detector not in (None, DEFAULT):
                raise HrposeError(f"{model}: a bottom-up model finds people itself; drop the "
                                  "detector")
            joints = bottomup_joints(self.runner)
        else:
            if options.scales != (1.0,):
                raise HrposeError(f"{model}: scales {options.scales} are for bottom-up models; "
                                  "a top-down model sees person crops at one size")
            probe = self.runner(np.zeros((1, 3, h, w), np.float32))
            joints = probe.shape[1]
        self.skeleton: Skeleton = model_keypoints(str(model), self.card.keypoints,
                                                  options.keypoints, joints, options.flip)
        if self.skeleton.num_joints != joints:
            raise HrposeError(f"{model}: the model predicts {joints} joints, its keypoint set "
                              f"{self.skeleton.name!r} has {self.skeleton.num_joints}")
        if self.card.bottomup:
            self.pipeline: TopDownEstimator | BottomUpEstimator = BottomUpEstimator(
                self.runner, self.card, self.skeleton, flip=options.flip,
                scales=options.scales, grouping=grouping or GroupingSettings())
        else:
            self.pipeline = TopDownEstimator(
                self.runner, self.card, self.skeleton, (probe.shape[3], probe.shape[2]),
                options, padding, detector_runtime)

    @property
    def loaded(self) -> LoadedModel:
        """The pose model as opened: its runner and card."""
        return LoadedModel(self.runner, self.card)

    @property
    def kind(self) -> str:
        """topdown (person crops) | bottomup (whole images): the model's card says."""
        return self.card.kind

    @property
    def codec(self) -> HeatmapCodec | None:
        """The top-down heatmap codec; None for a bottom-up model."""
        return self.pipeline.codec

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

    def warm_up(self, people: int = 4) -> None:
        """Runs the model once at each batch size a frame of up to `people` people gives (and
        the detector once), so that none pays for a first call later (OpenVINO compiles each
        batch size of a light model): a live video must not stall on its first crowd."""
        h, w = self.input_hw
        if self.kind == "topdown":
            sizes = range(1, min(people, self.pipeline.batch) + 1)
            for n in sorted({n * (2 if self.pipeline.flip else 1) for n in sizes}):
                self.runner(np.zeros((n, 3, h, w), np.float32))
            detector = self.pipeline.load_detector()
            if detector is not None:
                detector([np.zeros((h, w, 3), np.uint8)])

    def predict_rgb(self, images: Sequence[np.ndarray], boxes: Sequence[object] | None,
                    names: Sequence[str]) -> list[list[Person]]:
        """`predict_batch` for images already RGB uint8 (H, W, 3)."""
        return self.pipeline.predict(images, boxes, names)


def model_keypoints(model: str, stated: Skeleton | None, given: str | Path | Skeleton | None,
                    joints: int, flip: bool) -> Skeleton:
    """The keypoint set a model runs with: the one its file states, else the one given; with
    neither, its joints are unnamed and unpaired (no flip test, no limbs), with a warning."""
    chosen = None
    if given is not None:
        chosen = resolve_skeleton_option(given if isinstance(given, Skeleton) else str(given),
                                         "keypoints")
        if not isinstance(chosen, Skeleton):
            raise HrposeError(f"keypoints: {given!r} is not a keypoint set (a built-in name, a "
                              "set file or a Skeleton)")
        if stated is not None and stated != chosen:
            raise HrposeError(f"{model}: the file states the keypoint set {stated.name!r}; "
                              f"the given {chosen.name!r} differs (drop --keypoints)")
    chosen = stated or chosen
    if chosen is not None:
        return chosen
    if flip:
        raise HrposeError(f"{model}: the file states no keypoint set, and the flip test needs "
                          "its flip pairs; give its set (--keypoints NAME or FILE)")
    warnings.warn(f"{model}: the file states no keypoint set: its {joints} joints are unnamed, "
                  "with no flip pairs or links (give --keypoints NAME or FILE)", stacklevel=3)
    return unnamed_skeleton(joints)

