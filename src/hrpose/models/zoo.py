"""Named models: the one dict that maps a name to an architecture, its input and its weights."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..errors import HrposeError, did_you_mean, looks_like_path
from ..hub import download
from ..skeletons import SKELETONS, get_skeleton
from .arch import Arch, HigherHRNetArch, HRNetArch, LiteHRNetArch, arch_from_dict, family_of
from .card import IMAGENET_MEAN, IMAGENET_STD, ModelCard
from .family import PAPER_FLOPS, PaperFlops
from .heads import TopDownModel
from .higherhrnet import BottomUpModel

MMPOSE_HRNET = "https://download.openmmlab.com/mmpose/top_down/hrnet/"
MMPOSE_HIGHER = "https://download.openmmlab.com/mmpose/bottom_up/"
MMPOSE_LITE = "https://download.openmmlab.com/mmpose/top_down/litehrnet/"
# ImageNet-pretrained HRNet classification weights, the published initialisation for training.
IMAGENET_BACKBONES = {
    32: "https://download.openmmlab.com/mmpose/pretrain_models/hrnet_w32-36af842e.pth",
    48: "https://download.openmmlab.com/mmpose/pretrain_models/hrnet_w48-8ef0771d.pth",
}


@dataclass(frozen=True)
class ModelSpec:
    """What a named model is. `input_hw` is (height, width): "256x192" is 256 high, 192 wide."""

    name: str
    arch: Arch
    input_hw: tuple[int, int]
    keypoints: str                      # a built-in set: coco, mpii, crowdpose, coco_wholebody
    weights_url: str | None = None
    # Published accuracy of the architecture (paper) and of the weights at `weights_url`.
    published: dict[str, float] = field(default_factory=dict)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    codec: str = "classic"              # heatmap decoding of the published figures (dark)

    def create(self) -> TopDownModel | BottomUpModel:
        return self.arch.create()

    @property
    def width(self) -> int:             # a LiteHRNet's is its branch 0's
        return self.arch.width

    @property
    def num_joints(self) -> int:
        return self.arch.num_joints

    @property
    def kind(self) -> str:              # topdown (person crops) | bottomup (whole images)
        return self.arch.kind

    def card(self) -> ModelCard:
        return ModelCard(self.arch.to_dict(), self.input_hw, get_skeleton(self.keypoints),
                         self.mean, self.std, "associative_embedding" if self.kind == "bottomup"
                         else self.codec, self.kind, self.name)

    @property
    def paper_flops(self) -> PaperFlops:
        """How its family's papers count FLOPs (models/family.py)."""
        return PAPER_FLOPS[family_of(self.arch).paper_flops]

    @property
    def paper_unit(self) -> float:
        """The divisor of the official summary tool's "GFLOPs" (see models/complexity.py)."""
        return self.paper_flops.divisor or 2**30


JOINTS = {name: skeleton.num_joints for name, skeleton in SKELETONS.items()}


def _published_hrnet(width: int, input_hw: tuple[int, int], keypoints: str, file: str,
                     published: dict[str, float], codec: str = "classic") -> ModelSpec:
    """A zoo entry named from its shape: hrnet_w{width}_{H}x{W}, with "_{set}" for a keypoint
    set other than COCO's (mpii, crowdpose, coco_wholebody) and "_dark" for weights published
    with DARK decoding."""
    suffix = ("" if keypoints == "coco" else f"_{keypoints}") + (
        "" if codec == "classic" else f"_{codec}")
    name = f"hrnet_w{width}_{input_hw[0]}x{input_hw[1]}{suffix}"
    return ModelSpec(name, HRNetArch(width=width, num_joints=JOINTS[keypoints]), input_hw,
                     keypoints, MMPOSE_HRNET + file, published, codec=codec)


def _wholebody() -> list[ModelSpec]:
    """mmpose's COCO-WholeBody HRNets: v1.0 val AP / AR with the AP-56 person boxes, as
    published per part (body, foot, face, hand) and whole (weights_AP)."""
    published = {  # (width, input): (file, body, foot, face, hand, whole AP; whole AR)
        (32, (256, 192)): ("hrnet_w32_coco_wholebody_256x192-853765cd_20200918.pth",
                           0.678, 0.543, 0.630, 0.467, 0.536, 0.636),
        (32, (384, 288)): ("hrnet_w32_coco_wholebody_384x288-78cacac3_20200922.pth",
                           0.700, 0.585, 0.726, 0.515, 0.586, 0.673),
        (48, (256, 192)): ("hrnet_w48_coco_wholebody_256x192-643e18cb_20200922.pth",
                           0.701, 0.675, 0.656, 0.535, 0.579, 0.681),
        (48, (384, 288)): ("hrnet_w48_coco_wholebody_384x288-6e061c6a_20200922.pth",
                           0.722, 0.696, 0.776, 0.587, 0.632, 0.717),
        (48, (384, 288), "dark"): ("hrnet_w48_coco_wholebody_384x288_dark-f5726563_20200918.pth",
                                   0.742, 0.707, 0.841, 0.602, 0.661, 0.743),
    }
    specs = []
    for (width, size, *codec), (file, body, foot, face, hand, whole, recall) in (
            published.items()):
        figures = {"weights_AP": 100 * whole, "weights_AR": 100 * recall,
                   "weights_body_AP": 100 * body, "weights_foot_AP": 100 * foot,
                   "weights_face_AP": 100 * face, "weights_hand_AP": 100 * hand}
        specs.append(_published_hrnet(width, size, "coco_wholebody", file,
                                      {k: round(v, 1) for k, v in figures.items()},
                                      *codec))
    return specs


def _litehrnets() -> list[ModelSpec]:
    published = {  # name: (file, paper AP, weights AP, paper MFLOPs)
        "litehrnet_18_256x192": ("litehrnet18_coco_256x192-6bace359_20211230.pth", 64.8, 64.2,
                                 205.2),
        "litehrnet_18_384x288": ("litehrnet18_coco_384x288-8d4dac48_20211230.pth", 67.6, 67.6,
                                 461.6),
        "litehrnet_30_256x192": ("litehrnet30_coco_256x192-4176555b_20210626.pth", 67.2, 67.6,
                                 319.2),
        "litehrnet_30_384x288": ("litehrnet30_coco_384x288-a3aef5c4_20210626.pth", 70.4, 70.0,
                                 717.8),
    }
    specs = []
    for name, (file, paper, weights, mflops) in published.items():
        _, depth, size = name.split("_")
        h, w = (int(v) for v in size.split("x"))
        modules = (2, 4, 2) if depth == "18" else (3, 8, 3)
        specs.append(ModelSpec(name, LiteHRNetArch(stage_modules=modules), (h, w), "coco",
                               MMPOSE_LITE + file, {"paper_AP": paper, "weights_AP": weights,
                                                    "paper_MFLOPs": mflops}))
    specs.append(ModelSpec("naive_litehrnet_18_256x192", LiteHRNetArch(width=30, naive=True),
                           (256, 192), "coco"))
    specs.append(ModelSpec("wider_naive_litehrnet_18_256x192", LiteHRNetArch(naive=True),
                           (256, 192), "coco"))
    return specs


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        _published_hrnet(32, (256, 192), "coco", "hrnet_w32_coco_256x192-c78dce93_20200708.pth",
                         {"paper_AP": 74.4, "weights_AP": 74.6}),
        _published_hrnet(32, (384, 288), "coco", "hrnet_w32_coco_384x288-d9f0d786_20200708.pth",
                         {"paper_AP": 75.8, "weights_AP": 76.1}),
        _published_hrnet(48, (256, 192), "coco", "hrnet_w48_coco_256x192-b9e0b3ab_20200708.pth",
                         {"paper_AP": 75.1, "weights_AP": 75.6}),
        _published_hrnet(48, (384, 288), "coco", "hrnet_w48_coco_384x288-314c8528_20200708.pth",
                         {"paper_AP": 76.3, "weights_AP": 76.7}),
        # MPII val PCKh@0.5 (paper; mmpose weights, with mpii_gt_val.mat's head boxes).
        _published_hrnet(32, (256, 256), "mpii", "hrnet_w32_mpii_256x256-6c4f923f_20200812.pth",
                         {"paper_PCKh": 90.3, "weights_PCKh": 90.0}),
        _published_hrnet(48, (256, 256), "mpii", "hrnet_w48_mpii_256x256-92cab7bd_20200812.pth",
                         {"weights_PCKh": 90.1}),
        # CrowdPose test AP and AP easy / medium / hard with mmpose's person boxes (YOLOv3).
        _published_hrnet(32, (256, 192), "crowdpose",
                         "hrnet_w32_crowdpose_256x192-960be101_20201227.pth",
                         {"weights_AP": 67.5, "weights_AP_easy": 77.0,
                          "weights_AP_medium": 68.7, "weights_AP_hard": 55.3}),
        *_wholebody(),
        # COCO val2017 AP without multi-scale test (paper), and of the mmpose 0.x weights. The
        # official weights (Google Drive / OneDrive) load the same way: hrpose convert FILE OUT.
        ModelSpec("higherhrnet_w32_512", HigherHRNetArch(), (512, 512), "coco",
                  MMPOSE_HIGHER + "higher_hrnet32_coco_512x512-8ae85183_20200713.pth",
                  {"paper_AP": 67.1, "weights_AP": 67.7}),
        ModelSpec("higherhrnet_w32_640", HigherHRNetArch(), (640, 640), "coco",
                  MMPOSE_HIGHER + "higher_hrnet32_coco_640x640-a22fe938_20200712.pth",
                  {"paper_AP": 68.5, "weights_AP": 68.6}),
        ModelSpec("higherhrnet_w48_640", HigherHRNetArch(width=48), (640, 640), "coco", None,
                  {"paper_AP": 69.9}),
        # CrowdPose test AP without multi-scale test (mmpose 0.x weights).
        ModelSpec("higherhrnet_w32_512_crowdpose", HigherHRNetArch(num_joints=14), (512, 512),
                  "crowdpose",
                  MMPOSE_HIGHER + "higher_hrnet32_crowdpose_512x512-1aa4a132_20201017.pth",
                  {"weights_AP": 65.5, "weights_AP_easy": 72.8, "weights_AP_medium": 66.0,
                   "weights_AP_hard": 57.7}),
        # COCO val2017 AP with detector boxes (paper; mmpose weights), and the paper's
        # "FLOPs" (torchstat: MACs plus BN and activation elements, last call of each module,
        # / 2^20), which `hrpose info` shows beside the MACs.
        *_litehrnets(),
        # PP-TinyPose (PaddleDetection): a Wider-Naive LiteHRNet-18 whose batch norm is folded
        # into biased convolutions. Weights: `hrpose convert tinypose_256x192/model.xml OUT`.
        ModelSpec("tinypose_256x192", LiteHRNetArch(naive=True, conv_bias=True), (256, 192),
                  "coco", None, {"paper_AP": 68.3}),
        ModelSpec("tinypose_128x96", LiteHRNetArch(naive=True, conv_bias=True), (128, 96),
                  "coco", None, {"paper_AP": 58.1}),
    ]
}


@dataclass(frozen=True)
class DetectorSpec:
    """A person detector in PicoDet's deployment layout (inference/detector.py): its files
    (the model file first), each pinned to a commit and checked by its SHA-256."""

    name: str
    files: tuple[tuple[str, str], ...]      # (url, sha256)
    licence: str


_GUOJIN = ("https://github.com/guojin-yan/Csharp_and_OpenVINO_deploy_PP-TinyPose/raw/"
           "456426437889131f0c50983d24b4aab1d2fc3174/model/picodet_v2_s_320_pedestrian/ir_fp16/")
# PicoDet-S 320 pedestrian (PaddleDetection, Apache-2.0) as an OpenVINO IR with FP16 weights:
# 3 MB, about 10 ms an image on two CPU cores.
DETECTORS: dict[str, DetectorSpec] = {
    "picodet_s_320_pedestrian": DetectorSpec(
        "picodet_s_320_pedestrian",
        ((_GUOJIN + "picodet_s_320_lcnet_pedestrian.xml",
          "fc69d950abc656f657e59874e2466f82da5370166c975367fa83b1f4f72c92da"),
         (_GUOJIN + "picodet_s_320_lcnet_pedestrian.bin",
          "f3b8b2de41f9b34c05f10bd4640f9dd66f4ec191be3740b261183eaff9e554d2")),
        "Apache-2.0"),
}
# Used by `hrpose infer`, PoseEstimator (and the service) when a top-down model gets no boxes
# and no detector.
DEFAULT_DETECTOR = "picodet_s_320_pedestrian"


def check_detector(source: str) -> None:
    """A --detector argument that is neither a zoo detector nor an existing file or folder is
    refused here, in one line (before any model loads): a name gets the closest zoo name."""
    if source in DETECTORS or Path(source).exists():
        return
    if looks_like_path(source):
        raise missing_file(source)
    raise _unknown_detector(source)


def _unknown_detector(name: str) -> HrposeError:
    return HrposeError(f"unknown detector {name!r}{did_you_mean(name, DETECTORS)}; known "
                       f"detectors: {', '.join(DETECTORS)}, or an exported detector's file")


def detector_file(name: str) -> Path:
    """The model file of zoo detector `name`, downloaded (with its companions) into the cache
    on first use."""
    if name not in DETECTORS:
        raise _unknown_detector(name)
    other = ("or give another detector (--detector FILE), or --detector none to take the whole "
             "image as one person")
    paths = [download(url, sha256=sha, alternative=other) for url, sha in DETECTORS[name].files]
    return paths[0]


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise unknown_model(name) from None


def zoo_kind(name: str) -> str | None:
    """A zoo model's kind (topdown | bottomup) without building it; None for other names."""
    return MODELS[name].card().kind if name in MODELS else None


def check_model(source: str) -> None:
    """A model argument that is a zoo name, a URL or an existing file or folder passes; any
    other is refused at once (`unknown_model`), before data is read or anything loads."""
    if source in MODELS or source.startswith(("http://", "https://")) or Path(source).exists():
        return
    raise unknown_model(source, MODEL_FILES)


def missing_file(source: str) -> HrposeError:
    """"no such file or folder", naming the files of the same kind the folder does hold (a
    misnamed model.xml beside picodet.xml)."""
    path = Path(source)
    beside = sorted(p.name for p in path.parent.glob(f"*{path.suffix}") if p.is_file()) \
        if path.suffix and path.parent.is_dir() else []
    return HrposeError(f"{source}: no such file or folder"
                       + (f" (the folder has {', '.join(beside[:5])})" if beside else ""))


# What a model argument may be besides a zoo name, where exported files are taken too.
MODEL_FILES = "a checkpoint, or an exported .onnx / .xml file (or its folder)"


def unknown_model(source: str, files: str = "a checkpoint or a URL") -> HrposeError:
    """The error for a model argument that is neither a zoo name nor an existing file: a
    path-looking one is a missing file; a name gets the closest zoo name and the list."""
    if looks_like_path(source):
        return missing_file(source)
    return HrposeError(f"unknown model {source!r}{did_you_mean(source, MODELS)}: give a zoo "
                       f"name ({', '.join(MODELS)}), {files}")


def create_model(name: str, device: str | torch.device | None = None
                 ) -> TopDownModel | BottomUpModel:
    """The named architecture with fresh (official) initialisation, no weights loaded."""
    spec = get_spec(name)
    if device is None:
        return spec.create()
    with torch.device(device):
        return spec.create()


def zoo_name_for(arch: dict, input_hw: tuple[int, int], any_joints: bool = False
                 ) -> str | None:
    """The named model with exactly this architecture and input size, if there is one; with
    `any_joints`, the one that differs at most in its number of joints (the published weights
    a model for another keypoint set is fine-tuned from), else one of another input size."""
    wanted = arch_from_dict(arch)
    for spec in MODELS.values():
        if tuple(spec.input_hw) == tuple(input_hw) and spec.arch == wanted:
            return spec.name
    if not any_joints:
        return None
    alike = [spec for spec in MODELS.values() if spec.weights_url and
             replace(spec.arch, num_joints=wanted.num_joints) == wanted]
    same_size = [spec for spec in alike if tuple(spec.input_hw) == tuple(input_hw)]
    found = same_size or alike
    return found[0].name if found else None
