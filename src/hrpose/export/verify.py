"""How closely one runner reproduces another on the same inputs: the largest difference of the
model's outputs and how many joints land within one heatmap pixel (what `hrpose export` prints
after every export and `hrpose bench` uses to accept a bf16 or INT8 path). A top-down model is
compared on crops, joint by joint; a bottom-up model on whole images, person by person after
grouping, and an INT8 bottom-up export also by COCO AP on annotated images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..codecs.associative_embedding import STRIDES, GroupingSettings
from ..codecs.heatmap import HeatmapCodec
from ..errors import plural
from ..inference.backends import Runner
from ..inference.bottomup import bottomup_keypoints
from ..inference.draw import PERSON_THRESHOLD
from ..io import read_image
from ..metrics.coco import KeypointResults, choose_data_protocol, evaluate_keypoints, rescore
from ..models.card import ModelCard
from ..skeletons import Skeleton
from .calibration import AnnotatedImages, People


@dataclass(frozen=True)
class Agreement:
    crops: int            # inputs compared: person crops, or whole images (`unit`)
    max_abs: float        # largest |output difference| over all inputs, maps and pixels
    peak: float           # mean heatmap maximum of the reference: the scale of max_abs
    within_1px: float     # fraction of joints decoded within 1 heatmap pixel of the reference
    mean_px: float        # mean distance of the decoded joints, heatmap pixels
    unit: str = "crops"
    people: int | None = None          # bottom-up: the people the reference found
    reference_ap: float | None = None  # INT8: COCO AP of the source and the export
    ap: float | None = None
    ap_data: str = ""                  # on what data AP was measured
    oks: float | None = None           # top-down INT8: mean OKS of the export's joints to the
    held_out: bool | None = None       # source's, on people calibration did (not) see

    def as_dict(self) -> dict[str, float | int | str | None]:
        return asdict(self)

    def describe(self) -> str:
        found = "" if self.people is None else \
            f", {plural(self.people, 'person', 'people')} found by the source"
        text = (f"{self.crops} {self.unit}{found}: max |output difference| {self.max_abs:.2e} "
                f"(heatmap peaks {self.peak:.3f}); joints within 1 heatmap px "
                f"{100 * self.within_1px:.2f}%, mean distance {self.mean_px:.3f} px")
        if self.oks is not None:
            text += (f"; mean OKS to the source {self.oks:.3f} on "
                     f"{'held-out' if self.held_out else 'the calibration'} people")
        if self.ap is not None:
            text += (f"; COCO AP {self.ap:.3f} against the source's {self.reference_ap:.3f} on "
                     f"{self.ap_data}")
        return text


def run_batched(runner: Runner, x: np.ndarray, batch: int = 8) -> np.ndarray:
    return np.concatenate([runner(x[i : i + batch]) for i in range(0, len(x), batch)])


def heatmap_positions(heatmaps: np.ndarray) -> np.ndarray:
    """(N, K, h, w) -> (N, K, 2) decoded joint positions in heatmap pixels (argmax with the
    quarter-pixel shift, as the classic decoding does)."""
    wh = (heatmaps.shape[3], heatmaps.shape[2])
    return HeatmapCodec(wh, wh).decode(heatmaps)[0]


def compare(reference: Runner, candidate: Runner, x: np.ndarray, batch: int = 8,
            reference_heatmaps: np.ndarray | None = None) -> Agreement:
    """`x`: normalised float32 crops (N, 3, H, W). `reference_heatmaps` skips running the
    reference again."""
    ref = run_batched(reference, x, batch) if reference_heatmaps is None else reference_heatmaps
    return compare_heatmaps(ref, run_batched(candidate, x, batch))


def compare_heatmaps(ref: np.ndarray, out: np.ndarray) -> Agreement:
    """Two runs' heatmaps of the same crops."""
    distance = np.linalg.norm(heatmap_positions(ref) - heatmap_positions(out), axis=-1)
    return Agreement(len(ref), float(np.abs(ref - out).max()),
                     float(ref.reshape(*ref.shape[:2], -1).max(-1).mean()),
                     float((distance <= 1.0).mean()), float(distance.mean()))


class _Recording:
    """A runner that keeps the outputs of its calls (the raw maps behind a grouping)."""

    def __init__(self, runner: Runner) -> None:
        self.runner, self.input_hw, self.outputs = runner, runner.input_hw, []

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        out = self.runner.run_all(batch)
        self.outputs.append(out)
        return out


def compare_people(reference: Runner, candidate: Runner, images: Sequence[np.ndarray],
                   card: ModelCard, skeleton: Skeleton,
                   settings: GroupingSettings = GroupingSettings()) -> Agreement:
    """A bottom-up model's two runs on whole RGB `images`, grouping included: each image's
    people (those a drawing shows: person score at least PERSON_THRESHOLD) are paired
    (Hungarian, by mean joint distance) and a joint agrees when it lies within one heatmap
    pixel (a stride-4 pixel of the model's input) of the reference's.
    `within_1px` counts the agreeing joints of every person either run found (a person only
    one found counts all its joints as disagreeing); no person in either is full agreement."""
    runs = [_Recording(reference), _Recording(candidate)]
    agree = total = people = 0
    distances = []
    for image in images:
        found = [_seen(*bottomup_keypoints(r, image, card.mean, card.std, card.input_hw[0],
                                           None, (1.0,), settings, skeleton.order))
                 for r in runs]
        people += len(found[0])
        # one heatmap pixel in image pixels: the input's stride-4 cell brought back
        cell = STRIDES[0] * min(image.shape[:2]) / card.input_hw[0]
        matched, joints = _paired_distances(*found)
        agree += int((matched / cell <= 1.0).sum())
        total += joints
        distances.append(matched[np.isfinite(matched)] / cell)
    ref_maps, out_maps = ([o for call in r.outputs for o in call] for r in runs)
    max_abs = max(float(np.abs(a - b).max()) for a, b in zip(ref_maps, out_maps))
    k = skeleton.num_joints
    peak = float(np.mean([m[:, :k].reshape(*m.shape[:1], k, -1).max(-1).mean()
                          for m in ref_maps]))
    spread = np.concatenate(distances) if distances else np.zeros(0)
    return Agreement(len(images), max_abs, peak, agree / total if total else 1.0,
                     float(spread.mean()) if len(spread) else 0.0, "images", people)


def _seen(people: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The people a drawing shows: grouping's low-scoring fragments (under the drawings'
    person threshold) are left out of the comparison."""
    return people[scores >= PERSON_THRESHOLD]


def _paired_distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """People (P, K, 3) and (Q, K, 3) paired by mean joint distance -> the paired people's
    joint distances (pairs, K; infinite where either lacks the joint) and the joints to
    account for: those either of a pair found, and every joint of a person left unpaired."""
    found_a, found_b = a[..., 2] > 0, b[..., 2] > 0
    if not len(a) or not len(b):
        return np.zeros((0, a.shape[1])), int(found_a.sum() + found_b.sum())
    d = np.linalg.norm(a[:, None, :, :2] - b[None, :, :, :2], axis=-1)       # (P, Q, K)
    both = found_a[:, None] & found_b[None]
    mean = np.where(both.any(-1), np.where(both, d, 0).sum(-1) / np.maximum(both.sum(-1), 1),
                    1e9)
    rows, cols = linear_sum_assignment(mean)
    either = int((found_a[rows] | found_b[cols]).sum())
    unpaired = int(found_a.sum() + found_b.sum() - found_a[rows].sum() - found_b[cols].sum())
    return np.where(both[rows, cols], d[rows, cols], np.inf), either + unpaired


def bottomup_ap(runner: Runner, sets: Sequence[AnnotatedImages], card: ModelCard,
                skeleton: Skeleton, settings: GroupingSettings = GroupingSettings()) -> float:
    """COCO AP (each set's protocol, the mean over sets) of a bottom-up model on annotated
    images: scale 1, no flip, the default grouping."""
    aps = []
    for images in sets:
        data = images.data
        ids, found, scores = [], [], []
        for image_id, path in zip(sorted(data.images), images.paths()):
            people, s = bottomup_keypoints(runner, read_image(path), card.mean, card.std,
                                           card.input_hw[0], None, (1.0,), settings,
                                           skeleton.order)
            ids += [image_id] * len(people)
            found.append(people)
            scores.append(s)
        results = KeypointResults(np.array(ids, np.int64), np.concatenate(found),
                                  np.concatenate(scores), data.category_id)
        aps.append(evaluate_keypoints(data, results, choose_data_protocol(data)[0])["AP"])
    return float(np.mean(aps))


def oks_agreement(reference: np.ndarray, candidate: np.ndarray, boxes: np.ndarray,
                  sigmas: Sequence[float], min_score: float = 0.2) -> float | None:
    """Mean OKS of `candidate`'s joints to `reference`'s (both (n, K, 3) in image pixels), each
    person's area its box's (as OKS-NMS takes it), over the joints the reference scores above
    `min_score` (the joints the published person score counts); a person with none is left
    out, and None when no person has one (nothing to judge by). 1.0: the same joints; COCO
    counts a detection at OKS 0.5 to 0.95 as right."""
    seen = reference[..., 2] > min_score
    var = (2 * np.asarray(sigmas, np.float64)) ** 2
    area = np.maximum(boxes[:, 2] * boxes[:, 3], 1.0)[:, None]
    d2 = ((reference[..., :2] - candidate[..., :2]) ** 2).sum(-1)
    oks = np.exp(-d2 / (2 * area * var))
    counted = seen.sum(-1)
    keep = counted > 0
    if not keep.any():
        return None
    return float(((oks * seen).sum(-1)[keep] / counted[keep]).mean())


def topdown_ap(keypoints: np.ndarray, people: People, rows: np.ndarray
               ) -> tuple[float, str] | None:
    """COCO AP (each data set's protocol, the mean over sets) of `keypoints`, the people `rows`
    of annotated images, with ground-truth boxes as inference would crop them; and on what.
    None when none of them is annotated."""
    sets: dict[int, tuple[AnnotatedImages, list[int], list[int]]] = {}
    for j, r in enumerate(rows):
        where = people.annotated[people.image[r]]
        if where is not None:
            entry = sets.setdefault(id(where[0]), (where[0], [], []))
            entry[1].append(j)
            entry[2].append(where[1])
    aps, named = [], []
    for images, mine, image_ids in sets.values():
        ids = np.array(image_ids, np.int64)
        data = images.data.subset(np.unique(ids).tolist())
        found = keypoints[mine]
        results = KeypointResults(ids, found, rescore(np.ones(len(found)), found[..., 2]),
                                  data.category_id)
        aps.append(evaluate_keypoints(data, results, choose_data_protocol(data)[0])["AP"])
        named.append(f"{plural(len(data.images), 'image')} of {data.path.name}")
    return (float(np.mean(aps)), ", ".join(named)) if aps else None
