"""Evaluation: boxes -> crops -> runner -> heatmaps -> keypoints -> COCO AP or MPII PCKh.

The same crop, runner and codec code as inference; this module only composes them and scores.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..codecs.heatmap import HeatmapCodec
from ..config import EvalSettings
from ..data.coco import (
    HEAD_FALLBACK,
    Detections,
    KeypointData,
    check_images,
    find_dataset,
    group_by_image,
    load_detections,
    load_keypoints,
)
from ..data.topdown import ImageCrops, crop_batches, ground_truth_boxes
from ..data.transforms import BOX_PADDING, boxes_to_crops
from ..errors import HrposeError
from ..inference.backends import Runner, runner_record
from ..inference.bottomup import bottomup_keypoints
from ..inference.draw import draw_people, tile
from ..inference.topdown import heatmap_keypoints
from ..io import read_image, write_image, write_json
from ..metrics.coco import (
    KeypointResults,
    choose_data_protocol,
    evaluate_keypoints,
    format_stats,
    load_results,
    nms_per_image,
    rescore,
)
from ..metrics.pckh import format_pckh, pckh
from ..metrics.protocols import AUTO, Protocol
from ..skeletons import FROM_DATA, Skeleton
from .distributed import all_reduce_sum

log = logging.getLogger(__name__)


@dataclass
class Predictions:
    """Keypoints for each evaluated box, in image pixels."""

    boxes: Detections
    keypoints: np.ndarray              # (P, K, 3) x, y, joint score
    areas: np.ndarray                  # (P,) the padded crop's area, used by OKS-NMS


def predict(runner: Runner, boxes: Detections, data: KeypointData, image_dir: str | Path,
            codec: HeatmapCodec, mean: tuple[float, ...], std: tuple[float, ...],
            flip: bool = True, batch: int = 32, workers: int = 0,
            progress: bool = True) -> Predictions:
    """Keypoints for every box, crops batched across images."""
    crops = ImageCrops(boxes, data.images, image_dir, codec.input_wh, codec.udp)
    flip_index = data.skeleton.flip_index if flip else None
    k = data.skeleton.num_joints
    keypoints = np.zeros((len(boxes.scores), k, 3), np.float32)
    bar = tqdm(total=len(boxes.scores), desc="eval", unit="person", disable=not progress,
               leave=False)
    for crop, matrices, index in crop_batches(crops, batch, workers):
        keypoints[index] = heatmap_keypoints(runner, crop, matrices, codec, mean, std,
                                             flip_index)
        bar.update(len(index))
    bar.close()
    return Predictions(boxes, keypoints, crops.sizes.prod(-1))


def coco_results(pred: Predictions, data: KeypointData, settings: EvalSettings
                 ) -> KeypointResults:
    """Rescoring and OKS-NMS as published."""
    scores = rescore(pred.boxes.scores, pred.keypoints[..., 2], settings.rescore_threshold)
    results = KeypointResults(pred.boxes.image_ids, pred.keypoints, scores, data.category_id)
    if settings.nms == "none":
        return results
    if settings.nms not in ("oks", "soft"):
        raise HrposeError(f"unknown NMS {settings.nms!r}; choose oks, soft or none")
    return nms_per_image(results, pred.areas, data.skeleton.sigmas, settings.nms_threshold,
                         soft=settings.nms == "soft")


# The settings that mean nothing for the other kind of model, left out of its metrics.json.
TOPDOWN_SETTINGS = ("decode", "batch", "workers", "det_json", "min_det_score",
                    "rescore_threshold", "nms", "nms_threshold")
BOTTOMUP_SETTINGS = ("scales", "grouping")


def settings_record(settings: EvalSettings, bottomup: bool) -> dict:
    """The evaluation settings a run of this kind of model used, for metrics.json."""
    drop = TOPDOWN_SETTINGS if bottomup else BOTTOMUP_SETTINGS
    return {k: v for k, v in asdict(settings).items() if k not in drop}


def check_eval_data(data_root: str | Path, ann: str | Path | None, images: str | Path | None,
                    keypoints: Skeleton | str, settings: EvalSettings) -> KeypointData:
    """The evaluation set read and checked (annotations, every image, the detector's boxes),
    before a model loads or a training run's first epoch: a wrong path costs nothing."""
    ann_file, image_dir = find_dataset(data_root, ann, images)
    data = load_keypoints(ann_file, keypoints, settings.headboxes)
    check_images(data, image_dir, "evaluation")
    if settings.det_json:
        load_detections(settings.det_json, data, settings.min_det_score)
    return data


def evaluate(runner: Runner, data_root: str | Path, out_dir: str | Path,
             mean: tuple[float, ...], std: tuple[float, ...],
             settings: EvalSettings = EvalSettings(), ann: str | Path | None = None,
             images: str | Path | None = None, progress: bool = True,
             extra: dict | None = None, draw: int = 4, picture: str = "predictions.jpg",
             shard: tuple[int, int] = (0, 1), keypoints: Skeleton | str = FROM_DATA
             ) -> dict[str, float]:
    """Run and score; writes OUT/results.json (COCO results; MPII: one entry per person),
    OUT/metrics.json, both atomically, and OUT/`picture`: the predictions on the first `draw`
    images. Returns the metrics.

    `shard=(rank, world)`: this process predicts every world-th image from rank; the keypoints
    are summed over the process group, every rank scores, and only rank 0 writes.
    `keypoints`: the model's keypoint set (the data must name its joints), else FROM_DATA."""
    ann_file, image_dir = find_dataset(data_root, ann, images)
    data = load_keypoints(ann_file, keypoints, settings.headboxes)
    protocol, chosen = choose_data_protocol(data, settings.protocol)
    if data.kind == "mpii" and settings.det_json:
        raise HrposeError("MPII is evaluated on its annotated people; --det-json is for COCO")
    if data.kind == "mpii":
        boxes = Detections(data.image_ids, data.boxes, np.ones(len(data)))
    elif settings.det_json:
        boxes = load_detections(settings.det_json, data, settings.min_det_score)
    else:
        boxes = ground_truth_boxes(data)
    if len(boxes.scores) == 0:
        raise HrposeError(f"{settings.det_json or ann_file}: no person boxes to evaluate")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h, w = runner.input_hw
    probe = runner(np.zeros((1, 3, h, w), np.float32))
    if probe.shape[1] != data.skeleton.num_joints:
        raise HrposeError(f"the model predicts {probe.shape[1]} joints, the data set "
                          f"{ann_file.name} has {data.skeleton.num_joints} "
                          f"({data.skeleton.name})")
    codec = HeatmapCodec((w, h), (probe.shape[3], probe.shape[2]), method=settings.decode)
    rank, world = shard
    mine = _image_shard(boxes.image_ids, rank, world)
    pred = predict(runner, _subset(boxes, mine), data, image_dir, codec, mean, std,
                   settings.flip, settings.batch, settings.workers, progress)
    if world > 1:
        keypoints = np.zeros((len(boxes.scores), *pred.keypoints.shape[1:]), np.float32)
        keypoints[mine] = pred.keypoints
        areas = boxes_to_crops(boxes.boxes, w / h, BOX_PADDING)[1].prod(-1)
        pred = Predictions(boxes, all_reduce_sum(keypoints), areas)
    if data.kind == "mpii":
        results = KeypointResults(boxes.image_ids, pred.keypoints, np.ones(len(data)))
    else:
        results = coco_results(pred, data, settings)
    metrics = score(data, results, protocol)
    if rank == 0:
        _write_outputs(out, results, data, image_dir, metrics, picture, draw, {
            "dataset": str(ann_file), "people": len(boxes.scores),
            "boxes": settings.det_json or "ground truth",
            "settings": settings_record(settings, bottomup=False), **runner_record(runner),
            **protocol_record(data, protocol, chosen), **(extra or {})})
    return metrics


def evaluate_bottomup(runner: Runner, data_root: str | Path, out_dir: str | Path,
                      mean: tuple[float, ...], std: tuple[float, ...], input_size: int,
                      settings: EvalSettings = EvalSettings(), ann: str | Path | None = None,
                      images: str | Path | None = None, progress: bool = True,
                      extra: dict | None = None, draw: int = 4,
                      picture: str = "predictions.jpg",
                      shard: tuple[int, int] = (0, 1), keypoints: Skeleton | str = FROM_DATA
                      ) -> dict[str, float]:
    """A bottom-up model on every image of a COCO keypoint set (no boxes): the same outputs as
    `evaluate`. With `shard`, each rank runs every world-th image and the people are gathered."""
    ann_file, image_dir = find_dataset(data_root, ann, images)
    data = load_keypoints(ann_file, keypoints)
    if data.kind == "mpii":
        raise HrposeError(f"{ann_file}: bottom-up models are scored on COCO-style data (OKS AP)")
    protocol, chosen = choose_data_protocol(data, settings.protocol)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rank, world = shard
    flip_index = data.skeleton.flip_index if settings.flip else None
    image_ids = sorted(data.images)[rank::world]
    found: list[tuple[int, np.ndarray, np.ndarray]] = []
    for image_id in tqdm(image_ids, desc="eval", unit="img", disable=not progress, leave=False):
        image = read_image(image_dir / data.images[image_id].file_name)
        people, scores = bottomup_keypoints(runner, image, mean, std, input_size, flip_index,
                                            settings.scales, settings.grouping,
                                            data.skeleton.order)
        if people.shape[1:2] != (data.skeleton.num_joints,) and len(people):
            raise HrposeError(f"the model predicts {people.shape[1]} joints, the data set "
                              f"{ann_file.name} has {data.skeleton.num_joints}")
        found.append((image_id, people, scores))
    if world > 1:
        import torch.distributed as dist

        gathered: list = [None] * world
        dist.all_gather_object(gathered, found)
        found = [item for part in gathered for item in part]
    k = data.skeleton.num_joints
    results = KeypointResults(
        np.array([i for i, p, _ in found for _ in range(len(p))], np.int64),
        np.concatenate([p for _, p, _ in found]) if found else np.zeros((0, k, 3), np.float32),
        np.concatenate([s for _, _, s in found]) if found else np.zeros(0, np.float32),
        data.category_id)
    metrics = evaluate_keypoints(data, results, protocol)
    if rank == 0:
        _write_outputs(out, results, data, image_dir, metrics, picture, draw, {
            "dataset": str(ann_file), "people": len(results), "boxes": "none (bottom-up)",
            "settings": settings_record(settings, bottomup=True), **runner_record(runner),
            **protocol_record(data, protocol, chosen), **(extra or {})})
    return metrics


def _write_outputs(out: Path, results: KeypointResults, data: KeypointData, image_dir: Path,
                   metrics: dict[str, float], picture: str, draw: int, record: dict) -> None:
    """OUT/results.json, OUT/metrics.json (the metrics and `record`) and the drawing."""
    results.save(out / "results.json", data.wholebody)
    _write_metrics(out, metrics, record)
    if draw:
        draw_results(results, data, image_dir, out / picture, draw)


def _image_shard(image_ids: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Rows of the boxes of every world-th image, from `rank`."""
    if world == 1:
        return np.arange(len(image_ids))
    _, groups = group_by_image(image_ids)
    mine = groups[rank::world]
    return np.sort(np.concatenate(mine)) if mine else np.zeros(0, np.int64)


def _subset(boxes: Detections, rows: np.ndarray) -> Detections:
    if len(rows) == len(boxes.scores):
        return boxes
    return Detections(boxes.image_ids[rows], boxes.boxes[rows], boxes.scores[rows])


def draw_results(results: KeypointResults, data: KeypointData, image_dir: Path, path: Path,
                 count: int, threshold: float = 0.3) -> None:
    """The predictions on the first `count` images (by id) that have any, tiled in one picture."""
    # Images with predictions first; with none at all, the first images as they are (a
    # picture of "nothing found" still says something).
    ids = np.unique(results.image_ids)[:count] if len(results) else sorted(data.images)[:count]
    drawn = []
    for image_id in ids:
        rows = results.image_ids == image_id
        image = read_image(image_dir / data.images[int(image_id)].file_name)
        drawn.append(draw_people(image, results.keypoints[rows], data.skeleton, threshold))
    if drawn:
        write_image(path, tile(drawn))


def protocol_record(data: KeypointData, protocol: Protocol, chosen: str) -> dict:
    """metrics.json's "protocol": its name, parameters, and how it was chosen."""
    sigmas = data.skeleton.sigmas if protocol.metric == "oks" else None
    record = {**protocol.parameters(sigmas), "chosen": chosen}
    if protocol.metric == "pckh":
        record["head_sizes"] = data.head_source
    return {"protocol": record}


def score(data: KeypointData, results: KeypointResults, protocol: Protocol) -> dict:
    """OKS AP by `protocol`, or MPII PCKh (results list the annotated people in file order)."""
    if protocol.metric == "oks":
        return evaluate_keypoints(data, results, protocol)
    if len(results) != len(data) or not np.array_equal(results.image_ids, data.image_ids):
        raise HrposeError(f"MPII results must list the {len(data)} annotated people of "
                          f"{data.path.name} in file order (image ids numbered by first "
                          f"appearance); got {len(results)} entries in another order")
    if data.head_source and HEAD_FALLBACK in data.head_source:
        log.warning("%s: PCKh normalised by the upper neck to head top distance, not MPII's "
                    "published protocol; give --headboxes mpii_gt_val.mat", data.path.name)
    return pckh(results.keypoints, data.keypoints, data.head_sizes, data.skeleton.joints)


def score_results_file(results_file: str | Path, data_root: str | Path, out_dir: str | Path,
                       ann: str | Path | None = None, protocol: str = AUTO,
                       headboxes: str | Path | None = None) -> dict:
    """Score an existing results file (from hrpose or any tool) by `protocol` (a name or
    "auto"); writes OUT/metrics.json."""
    ann_file, _ = find_dataset(data_root, ann, images=Path(data_root))
    data = load_keypoints(ann_file, FROM_DATA, headboxes)
    rules, chosen = choose_data_protocol(data, protocol)
    results = load_results(results_file, data.skeleton.num_joints, data.category_id)
    metrics = score(data, results, rules)
    _write_metrics(Path(out_dir), metrics, {"dataset": str(ann_file),
                                            "results": str(results_file),
                                            **protocol_record(data, rules, chosen)})
    return metrics


def _write_metrics(out: Path, metrics: dict, record: dict) -> None:
    write_json(out / "metrics.json", {**metrics, **record}, indent=True)


def format_metrics(metrics: dict) -> str:
    return format_pckh(metrics) if "PCKh" in metrics else format_stats(metrics)
