"""Evaluation protocols: how each benchmark's published numbers are computed.

One record per protocol. `hrpose eval` picks one from the annotation file (or `--protocol`) and
writes its name and parameters into metrics.json beside the numbers, so that a figure never
travels without the rules that produced it.

- coco: pycocotools' COCOeval, iouType "keypoints" (the official COCO evaluation).
- crowdpose: CrowdPose's evaluation (crowdposetools; xtcocotools' "keypoints_crowd", which mmpose
  uses): OKS area 0.53 x box area, AP / AR and AP easy / medium / hard by the images'
  `crowdIndex`.
- ochuman: COCO's rules on OCHuman's val or test file with ground-truth boxes, as xtcocotools'
  "keypoints" mode scores it for mmpose's published table.
- coco-wholebody: COCO-WholeBody's evaluation as xtcocotools' whole-body modes compute it for
  mmpose's published tables: COCO's numbers for the body, foot, face, left hand, right hand and
  the whole person, each part's OKS over its own joints and sigmas.
- mpii: PCKh with the official head boxes (MPII's MATLAB evaluation, as the HRNet code ports it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import HrposeError
from ..skeletons import MPII as MPII_JOINTS
from .pckh import EXCLUDED

COCO_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
CROWD_STATS = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")


@dataclass(frozen=True)
class Protocol:
    """The rules of one benchmark's published evaluation."""

    name: str
    metric: str                          # "oks": AP / AR; "pckh": PCKh
    reference: str                       # the implementation whose numbers it reproduces
    boxes: str                           # the person boxes of the published setting
    stats: tuple[str, ...] = COCO_STATS
    # OKS area: this factor x the box's w x h; None: the annotation's 'area' (box area when the
    # file has none).
    box_area_factor: float | None = None
    # AP easy / medium / hard: images with crowdIndex below the first bound, below the second,
    # and the rest.
    crowd_bounds: tuple[float, float] | None = None
    # A person counts as unlabelled (ignored) by its labelled joint flags (xtcocotools'
    # "keypoints" mode) rather than by its num_keypoints field (pycocotools, CrowdPose).
    ignore_by_flags: bool = False
    # Results whose joint scores are all 0 are dropped before matching (xtcocotools).
    drop_unscored: bool = False
    max_dets: int = 20
    # Scored part by part (the keypoint set's parts) and as a whole, each part's numbers under
    # its name ("foot_AP"); the whole person's are the plain names.
    by_part: bool = False

    def parameters(self, sigmas: tuple[float, ...] | None = None) -> dict:
        """The protocol as metrics.json records it."""
        if self.metric == "pckh":
            return {"name": self.name, "reference": self.reference, "boxes": self.boxes,
                    "threshold": 0.5, "head_size": "0.6 x head box diagonal",
                    "mean": "per-joint PCKh weighted by labelled joints",
                    "left_out_of_mean": [MPII_JOINTS.joints[j] for j in EXCLUDED],
                    "also": {"PCKh@0.1": "threshold 0.1",
                             "PCKh@0.11": "threshold 0.11, what the HRNet code prints as "
                                          "Mean@0.1"}}
        return {"name": self.name, "reference": self.reference, "boxes": self.boxes,
                "oks_area": (f"{self.box_area_factor} x box area" if self.box_area_factor
                             else "annotation area (box area when missing)"),
                "max_dets": self.max_dets,
                "unlabelled_person": "no labelled joint flags" if self.ignore_by_flags
                else "num_keypoints = 0",
                "results_without_scored_joints": "dropped" if self.drop_unscored else "kept",
                **({"crowd_index_bounds": list(self.crowd_bounds)} if self.crowd_bounds
                   else {}),
                **({"scored": "each part over its own joints and sigmas, and the whole person; "
                              "a part's numbers are prefixed by its name"} if self.by_part
                   else {}),
                **({"sigmas": [round(float(s), 6) for s in sigmas]} if sigmas is not None
                   else {})}


COCO = Protocol("coco", "oks", "pycocotools COCOeval, iouType keypoints",
                "detector boxes (COCO_val2017_detections_AP_H_56_person.json) or ground truth")
CROWDPOSE = Protocol(
    "crowdpose", "oks", "CrowdPose's evaluation (xtcocotools keypoints_crowd, use_area=False)",
    "detector boxes (CrowdPose test) or ground truth", CROWD_STATS, box_area_factor=0.53,
    crowd_bounds=(0.2, 0.8), drop_unscored=True)
OCHUMAN = Protocol("ochuman", "oks", "xtcocotools COCOeval, iouType keypoints (mmpose)",
                   "ground truth (the published setting)", ignore_by_flags=True,
                   drop_unscored=True)
COCO_WHOLEBODY = Protocol(
    "coco-wholebody", "oks", "xtcocotools COCOeval, iouTypes keypoints_body / _foot / _face / "
    "_lefthand / _righthand / _wholebody (mmpose)",
    "detector boxes (COCO_val2017_detections_AP_H_56_person.json) or ground truth",
    ignore_by_flags=True, drop_unscored=True, by_part=True)
MPII = Protocol("mpii", "pckh", "MPII's PCKh evaluation (the HRNet code's port)",
                "the annotated people (centre and scale)")

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (COCO, CROWDPOSE, OCHUMAN, COCO_WHOLEBODY,
                                                     MPII)}
AUTO = "auto"
PROTOCOL_CHOICES = (AUTO, *PROTOCOLS)


def choose_protocol(asked: str, kind: str, has_crowd_index: bool, file_name: str,
                    wholebody: bool = False) -> tuple[Protocol, str]:
    """The protocol for an annotation file and how it was chosen: `asked` (a name, or "auto":
    MPII files are mpii, COCO-WholeBody's layout read with its 133 joints (`wholebody`) is
    coco-wholebody, a file whose images carry crowdIndex is CrowdPose's, a file named like
    OCHuman's is OCHuman's, anything else COCO's)."""
    if asked != AUTO:
        if asked not in PROTOCOLS:
            raise HrposeError(f"unknown protocol {asked!r}; choose {AUTO} or one of "
                              f"{', '.join(PROTOCOLS)}")
        protocol = PROTOCOLS[asked]
        if (protocol.metric == "pckh") != (kind == "mpii"):
            scores = "MPII files" if protocol.metric == "pckh" else "COCO-format keypoint files"
            raise HrposeError(f"{file_name}: the {asked} protocol scores {scores}, and this "
                              f"is {'an MPII' if kind == 'mpii' else 'a COCO-format'} file")
        if protocol.crowd_bounds and not has_crowd_index:
            raise HrposeError(f"{file_name}: the crowdpose protocol splits images by their "
                              "'crowdIndex', and this file's images have none")
        if protocol.by_part and not wholebody:
            raise HrposeError(f"{file_name}: the coco-wholebody protocol scores COCO-WholeBody "
                              "files read with its 133 joints, and this is not one")
        return protocol, "--protocol"
    if kind == "mpii":
        return MPII, "the file is MPII's"
    if wholebody:
        return COCO_WHOLEBODY, "the file has COCO-WholeBody's part fields"
    if has_crowd_index:
        return CROWDPOSE, "the file's images carry crowdIndex (CrowdPose)"
    if "ochuman" in file_name.lower():
        return OCHUMAN, "the file is named like OCHuman's"
    return COCO, "a COCO-format file"
