"""`hrpose bench`: images per second of a model on each runtime path, beside plain PyTorch fp32
measured in the same run.

Candidates (backend x precision) are timed in interleaved rounds, one batch call each per round,
so a noisy shared machine slows all of them alike; figures are medians. `backend="auto"` picks
the fastest path whose keypoints stay within one heatmap pixel of fp32 for >= 99% of joints
(fp32 and bf16; INT8 is judged by COCO AP, see the export tests). The pipeline figure runs the
chosen path end to end: decode the image files (two threads ahead), crop, model, keypoints.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from ..data.coco import find_dataset, load_keypoints
from ..data.synthetic import write_split
from ..data.topdown import ground_truth_boxes
from ..data.transforms import normalize
from ..errors import HrposeError, plural
from ..hardware import cpu_summary, cpu_threads, resolve_precision
from ..hub import cached_path
from ..inference.backends import (
    RUNTIMES,
    LoadedModel,
    Runner,
    TorchRunner,
    exported_file,
    open_exported,
    open_model,
)
from ..inference.bottomup import StageTimes, bottomup_keypoints
from ..inference.estimator import PoseEstimator
from ..inference.images import prefetch
from ..inference.infer import InferSettings
from ..inference.options import EstimatorOptions, RuntimeOptions
from ..io import read_image
from ..models.card import ModelCard
from ..models.checkpoint import save_weights
from ..models.loading import build_model
from ..models.zoo import MODELS
from ..skeletons import Skeleton
from .calibration import image_sources, person_crops
from .exporter import export_model
from .formats import format_for_runtime
from .verify import Agreement, compare, compare_people, run_batched

BENCH_BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
BENCH_PRECISIONS = ("auto", "fp32", "bf16", "int8")
# (backend, precision) paths a CPU offers, in the order they are tried.
PATHS = {"fp32": ("onnxruntime", "openvino", "torch"), "bf16": ("openvino", "torch"),
         "int8": ("openvino", "onnxruntime")}
ACCURATE = 0.99          # fraction of joints within 1 heatmap px of fp32 that `auto` requires
# A bottom-up model's joints are compared after grouping, which moves some of them for small
# changes of the maps: the bottom-up quickstart keeps 85% (OpenVINO bf16) and 82% (torch bf16)
# of its joints in place with the same AP (0.457 and 0.455 against 0.451 in fp32).
ACCURATE_BOTTOMUP = 0.75
BOTTOMUP_IMAGES = 12     # whole images in a bottom-up pipeline pass


@dataclass(eq=False)
class RuntimePath:
    backend: str
    precision: str
    runner: Runner
    model: str                           # what PoseEstimator opens for the pipeline
    latencies: list[float] = field(default_factory=list)
    agreement: Agreement | None = None
    streams: int = 1                     # OpenVINO: the CPU split into this many streams

    @property
    def name(self) -> str:
        return path_label(self.backend, self.precision, self.streams)

    def figures(self, batch: int) -> dict:
        lat = np.asarray(self.latencies)
        return {"backend": self.backend, "precision": self.precision, "streams": self.streams,
                "img_per_s": round(batch / float(np.median(lat)), 2),
                "p50_ms": round(1000 * float(np.percentile(lat, 50)), 1),
                "p95_ms": round(1000 * float(np.percentile(lat, 95)), 1),
                "within_1px": None if self.agreement is None else
                round(self.agreement.within_1px, 4)}


def _bench_images(images: str | None, work: Path) -> str:
    """An annotated data root for the pipeline: `images`, or a small synthetic set."""
    if images:
        return images
    write_split(work / "synthetic", "val", 24, seed=0, progress=False)
    return str(work / "synthetic")


def _paths(model: str, weights: str | None, backend: str, precision: str, calib: Sequence[str],
           threads: int | None, plain: RuntimePath | None, work: Path, say
           ) -> list[RuntimePath]:
    """The paths to time besides plain PyTorch (which is the torch fp32 path itself)."""
    backends = PATHS[precision] if backend == "auto" else (backend,)
    if backend != "auto" and backend not in PATHS[precision]:
        raise HrposeError(f"backend {backend} has no {precision} path on the CPU; choose from "
                          f"{', '.join(PATHS[precision])}")
    if precision == "int8" and not calib:
        raise HrposeError("INT8 needs calibration images: --calib FOLDER")
    exported = plain is None
    out = []
    for b in backends:
        if b == "torch":
            if plain is not None and precision != "fp32":
                runner = TorchRunner(plain.runner.model, plain.runner.input_hw,  # type: ignore
                                     RuntimeOptions(precision=precision, threads=threads)
                                     .resolve("torch"))
                out.append(RuntimePath(b, precision, runner, model))
            continue
        if exported and b == "onnxruntime" and exported_file(model).suffix.lower() != ".onnx":
            if backend == "auto":
                continue                # an OpenVINO IR has no ONNX Runtime path
            raise HrposeError(f"{model}: ONNX Runtime cannot run an OpenVINO IR; use "
                              "--backend openvino")
        if exported and precision != "int8" and (b == "openvino" or
                                                  exported_file(model).suffix == ".onnx"):
            file = str(exported_file(model))
        else:
            fmt = format_for_runtime(b)
            say(f"exporting for {b} {precision}")
            target = work / f"{b}_{precision}{fmt.suffix}"
            file = str(export_model(model, target, fmt.name, weights=weights,
                                    int8=precision == "int8", calib=calib, force=True,
                                    log=False).path)
        runtime = RuntimeOptions(b, precision="bf16" if precision == "bf16" else "fp32",
                                 threads=threads)
        out.append(RuntimePath(b, precision, open_exported(file, runtime), file))
        if b == "openvino" and cpu_threads(threads) >= 2:
            out.append(RuntimePath(b, precision, open_exported(file, replace(runtime, streams=2)),
                                   file, streams=2))
    if not out and not (plain is not None and precision == "fp32"):
        raise HrposeError(f"{model}: no {precision} path on backend {backend}")
    return out


def _time(paths: Sequence[RuntimePath], x: np.ndarray, rounds: int, warmup: int = 2) -> None:
    for p in paths:
        for _ in range(warmup):
            p.runner(x)
    for _ in range(rounds):
        for p in paths:
            start = time.perf_counter()
            p.runner(x)
            p.latencies.append(time.perf_counter() - start)


def _pipeline(estimators: dict[str, PoseEstimator], root: str, passes: int) -> dict[str, float]:
    """Person crops per second from image files to keypoints, median of `passes` interleaved
    passes over the images with their annotated boxes."""
    ann, image_dir = find_dataset(root)
    data = load_keypoints(ann)
    boxes = ground_truth_boxes(data)
    jobs = []
    for image_id, info in data.images.items():
        mine = boxes.boxes[boxes.image_ids == image_id]
        if len(mine):
            jobs.append((image_dir / info.file_name, mine))
    crops = sum(len(b) for _, b in jobs)
    times: dict[str, list[float]] = {name: [] for name in estimators}
    for _ in range(passes):
        for name, est in estimators.items():
            start = time.perf_counter()
            group: list[tuple[np.ndarray, np.ndarray]] = []
            box_of = dict(jobs)
            for path, image in prefetch([p for p, _ in jobs]):
                group.append((image, box_of[path]))
                if len(group) == InferSettings.images_per_call:
                    est.predict_rgb([g[0] for g in group], [g[1] for g in group],
                                    ["image"] * len(group))
                    group = []
            if group:
                est.predict_rgb([g[0] for g in group], [g[1] for g in group],
                                ["image"] * len(group))
            times[name].append(time.perf_counter() - start)
    return {name: crops / float(np.median(t)) for name, t in times.items()}


def bench(model: str, backend: str = "auto", precision: str = "auto", batch: int = 8, *,
          threads: int | None = None, calib: Sequence[str] = (), weights: str | None = None,
          images: str | None = None, rounds: int = 10, passes: int = 3,
          log: bool = True) -> dict:
    """Model-alone and pipeline speed of the asked path (or, with "auto", the fastest accurate
    one) beside plain PyTorch fp32. Returns the figures as one dict."""
    precision = _check_options(backend, precision, batch, rounds, passes)

    def say(message: str) -> None:
        if log:
            print(message, file=sys.stderr, flush=True)

    weights, trained = _weights(model, weights, say)
    with tempfile.TemporaryDirectory(prefix="hrpose-bench-") as tmp:
        work = Path(tmp)
        root = _bench_images(images, work)
        if not trained:      # one random initialisation, shared by every path
            weights = str(work / "random.safetensors")
            save_weights(weights, build_model(model).state_dict(), {"model": model})
        plain: RuntimePath | None = None
        fp32 = RuntimeOptions(precision="fp32", threads=threads)
        loaded = open_model(model, fp32, weights)
        if isinstance(loaded.runner, TorchRunner):
            plain = RuntimePath("torch", "fp32", loaded.runner, model)
        candidates = _paths(model, weights, backend, precision, calib, threads, plain, work, say)
        if plain is not None and backend in ("auto", "torch") and precision == "fp32":
            candidates.append(plain)
        reference = plain.runner if plain else open_exported(exported_file(model), fp32)
        if loaded.card.bottomup:
            return _bench_bottomup(model, loaded.card, reference, plain, candidates, precision,
                                   batch, threads, rounds, passes, images, root, trained,
                                   say)
        crops = person_crops([root], reference.input_hw, limit=64)
        x = normalize(crops, loaded.card.mean, loaded.card.std)
        ref_heatmaps = run_batched(reference, x, batch)
        for c in candidates:
            c.agreement = compare(reference, c.runner, x, batch, ref_heatmaps)
        timed = list(dict.fromkeys([*([plain] if plain else []), *candidates]))
        batch_x = np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:])))
        say(f"timing {', '.join(p.name for p in timed)}: {rounds} interleaved rounds, batch "
            f"{batch}")
        _time(timed, batch_x, rounds)
        accurate = [c for c in candidates if not trained or precision == "int8"
                    or c.agreement.within_1px >= ACCURATE]
        chosen = max(accurate or candidates,
                     key=lambda c: c.figures(batch)["img_per_s"])
        if not accurate:
            say(f"no {precision} path keeps 99% of joints within 1 heatmap px of fp32; "
                "timing the fastest anyway")
        say(f"pipeline: {passes} passes over {root}")
        torch_weights = weights if chosen.backend == "torch" else None
        estimators = {"chosen": PoseEstimator(chosen.model, EstimatorOptions(
            RuntimeOptions(None if chosen.backend == "torch" else chosen.backend, "cpu",
                           "bf16" if precision == "bf16" else "fp32", threads, chosen.streams),
            weights=torch_weights, batch=batch))}
        if plain is not None:
            estimators["plain"] = PoseEstimator(model, EstimatorOptions(
                RuntimeOptions("torch", threads=threads), weights=weights, batch=batch))
        pipeline = _pipeline(estimators, root, passes)

    return _result(model, precision, batch, threads, rounds, images, root, chosen, plain,
                   timed, pipeline, trained, chosen in accurate)


def _bench_bottomup(model: str, card: ModelCard, reference: Runner, plain: RuntimePath | None,
                    candidates: list[RuntimePath], precision: str, batch: int,
                    threads: int | None, rounds: int, passes: int, images: str | None,
                    root: str, trained: bool, say: Callable[[str], None]) -> dict:
    """A bottom-up model: the model alone on square inputs of its input size, the people of
    each path against the reference's (grouping included), and the pipeline from a decoded
    image to people with each stage's share, for the chosen path, plain PyTorch fp32 and
    PyTorch bf16 where the CPU has it."""
    skeleton = LoadedModel(reference, card).bottomup_keypoint_set()
    pictures = [read_image(p) for p in image_sources([root])[0][:BOTTOMUP_IMAGES]]
    for c in candidates:
        c.agreement = compare_people(reference, c.runner, pictures[:8], card, skeleton)
    side = card.input_hw[0]
    x = normalize(np.stack([cv2.resize(p, (side, side)) for p in pictures[:batch]]),
                  card.mean, card.std)
    timed = list(dict.fromkeys([*([plain] if plain else []), *candidates]))
    say(f"timing {', '.join(p.name for p in timed)}: {rounds} interleaved rounds, batch "
        f"{batch} at {side}x{side}")
    _time(timed, np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:]))), rounds)
    accurate = [c for c in candidates
                if not trained or c.agreement.within_1px >= ACCURATE_BOTTOMUP]
    chosen = max(accurate or candidates, key=lambda c: c.figures(batch)["img_per_s"])
    lanes = {"chosen": chosen.runner}
    if plain is not None:
        lanes["plain"] = plain.runner
        if resolve_precision("auto") == "bf16" and (chosen.backend, chosen.precision) != (
                "torch", "bf16"):
            lanes["torch bf16"] = TorchRunner(plain.runner.model, plain.runner.input_hw,
                                              RuntimeOptions(precision="bf16", threads=threads)
                                              .resolve("torch"))
    say(f"pipeline: {passes} passes over {len(pictures)} images (decoded), "
        f"{', '.join(lanes)}")
    pipeline = bottomup_pipeline(lanes, pictures, card, skeleton, passes)
    result = _result(model, precision, batch, threads, rounds, images, root, chosen, plain,
                     timed, {k: v["img_per_s"] for k, v in pipeline.items()}, trained,
                     chosen in accurate)
    return {**result, "kind": "bottomup", "pipelines": pipeline,
            "accurate_bar": ACCURATE_BOTTOMUP,
            "images": f"{root if images else 'synthetic'} ({len(pictures)} images)"}


def bottomup_pipeline(lanes: dict[str, Runner], pictures: list[np.ndarray], card: ModelCard,
                      skeleton: Skeleton, passes: int, side: int | None = None
                      ) -> dict[str, dict]:
    """Images per second from a decoded image to people (scale 1, no flip; `side`: the short
    side of the model's input, default its card's) and each stage's share, for each runner:
    median of `passes` passes interleaved across them, after one pass that warms each up
    (OpenVINO compiles every input shape on first use)."""
    seconds: dict[str, list[float]] = {name: [] for name in lanes}
    stages = {name: StageTimes() for name in lanes}
    for warm_up in (True, *[False] * passes):
        for name, runner in lanes.items():
            times = StageTimes() if warm_up else stages[name]
            start = time.perf_counter()
            for picture in pictures:
                bottomup_keypoints(runner, picture, card.mean, card.std,
                                   side or card.input_hw[0], None, (1.0,),
                                   order=skeleton.order, times=times)
            if not warm_up:
                seconds[name].append(time.perf_counter() - start)
    out = {}
    for name in lanes:
        total = sum(stages[name].as_dict().values())
        out[name] = {"img_per_s": round(len(pictures) / float(np.median(seconds[name])), 2),
                     "shares": {stage: round(value / total, 3)
                                for stage, value in stages[name].as_dict().items()}}
    return out


def _result(model: str, precision: str, batch: int, threads: int | None, rounds: int,
            images: str | None, root: str, chosen: RuntimePath, plain: RuntimePath | None,
            timed: list[RuntimePath], pipeline: dict[str, float], trained: bool,
            accurate: bool) -> dict:
    figures = chosen.figures(batch)
    plain_figures = plain.figures(batch) if plain else None
    return {
        "model": model, "backend": chosen.backend, "precision": precision, "batch": batch,
        "streams": chosen.streams,
        "machine": cpu_summary(),
        "threads": threads or len(os.sched_getaffinity(0)),
        "model_img_per_s": figures["img_per_s"],
        "pipeline_img_per_s": round(pipeline["chosen"], 2),
        "p50_ms": figures["p50_ms"], "p95_ms": figures["p95_ms"],
        "within_1px": figures["within_1px"], "trained_weights": trained,
        "accurate": accurate,
        "plain_torch_fp32": None if plain_figures is None else {
            **plain_figures, "pipeline_img_per_s": round(pipeline["plain"], 2)},
        "speedup": None if plain_figures is None else
        round(figures["img_per_s"] / plain_figures["img_per_s"], 2),
        "paths": [p.figures(batch) for p in timed],
        "rounds": rounds, "images": root if images else "synthetic (24 images)",
    }


def _check_options(backend: str, precision: str, batch: int, rounds: int, passes: int) -> str:
    """The precision to time, once the options agree; auto is bf16 only where it is native."""
    if backend not in BENCH_BACKENDS:
        raise HrposeError(f"unknown backend {backend!r}; choose one of "
                          f"{', '.join(BENCH_BACKENDS)}")
    if precision not in BENCH_PRECISIONS:
        raise HrposeError(f"unknown precision {precision!r}; choose one of "
                          f"{', '.join(BENCH_PRECISIONS)} (fp16 is a GPU precision)")
    if batch < 1 or rounds < 1 or passes < 1:
        raise HrposeError("batch, rounds and passes must be at least 1")
    return resolve_precision("auto") if precision == "auto" else precision


def _weights(model: str, weights: str | None, say: Callable[[str], None]
             ) -> tuple[str | None, bool]:
    """(weights, trained): a zoo model's published weights when they are cached, else None
    (random weights: speed only)."""
    if model not in MODELS or weights is not None:
        return weights, True
    url = MODELS[model].weights_url
    if url and cached_path(url).exists():
        return "published", True
    say(f"{model}: published weights not in the cache; timing random weights (keypoint "
        "agreement is then not meaningful)")
    return None, False


def path_label(backend: str, precision: str, streams: int = 1) -> str:
    """A path's row label: "OpenVINO bf16, 2 streams" (OpenVINO rows always say how many
    streams: the same file runs both ways)."""
    titles = {"torch": "PyTorch", **{r.name: r.title or r.name for r in RUNTIMES}}
    label = f"{titles.get(backend, backend)} {precision}"
    if backend == "openvino":
        label += f", {plural(streams, 'stream')}"
    return label


def format_bench(result: dict) -> str:
    lines = [f"{'path (model alone)':<28} {'img/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
             f"{'x plain':>8} {'joints <=1px':>12}"]
    plain = result["plain_torch_fp32"]
    for p in result["paths"]:
        name = path_label(p["backend"], p["precision"], p["streams"])
        chosen = (p["backend"], p["precision"], p["streams"]) == (
            result["backend"], result["precision"], result.get("streams", 1))
        if plain and (p["backend"], p["precision"]) == ("torch", "fp32"):
            name += " (plain)"
        x = f"{p['img_per_s'] / plain['img_per_s']:.2f}" if plain else "-"
        agree = "-" if p["within_1px"] is None else f"{100 * p['within_1px']:.1f}%"
        lines.append(f"{name:<28} {p['img_per_s']:>7.1f} {p['p50_ms']:>8.1f} "
                     f"{p['p95_ms']:>8.1f} {x:>8} {agree:>12}" + ("  <- chosen" if chosen
                                                                   else ""))
    if result.get("kind") == "bottomup":
        lines += _bottomup_lines(result)
    else:
        pipe = (f"pipeline (decode, crop, model, keypoints): "
                f"{result['pipeline_img_per_s']:.1f} crops/s = "
                f"{100 * result['pipeline_img_per_s'] / result['model_img_per_s']:.0f}% "
                "of the model alone")
        if plain:
            pipe += f"; plain PyTorch fp32 {plain['pipeline_img_per_s']:.1f}"
        lines.append(pipe)
    if not result["accurate"]:
        lines.append(f"warning: no {result['precision']} path keeps "
                     f"{100 * result.get('accurate_bar', ACCURATE):.0f}% of joints within 1 "
                     "heatmap px of fp32")
    lines.append(f"batch {result['batch']}, {result['threads']} threads, medians of "
                 f"{result['rounds']} interleaved rounds" +
                 ("" if result["trained_weights"] else "; random weights (speed only)"))
    return "\n".join(lines)


def _bottomup_lines(result: dict) -> list[str]:
    """The bottom-up pipeline's rows: images/s and each stage's share of the time."""
    names = {"chosen": path_label(result["backend"], result["precision"], result["streams"])
             + " (chosen)", "plain": "PyTorch fp32 (plain)", "torch bf16": "PyTorch bf16"}
    lines = [f"pipeline, decoded image -> people ({result['images']}):",
             f"  {'path':<30} {'img/s':>6} {'resize':>7} {'model':>6} {'maps':>6} "
             f"{'grouping':>8}"]
    for name, figures in result["pipelines"].items():
        shares = figures["shares"]
        lines.append(f"  {names[name]:<30} {figures['img_per_s']:>6.2f} "
                     + " ".join(f"{100 * shares[s]:>{n}.0f}%" for s, n in (
                         ("resize", 6), ("model", 5), ("maps", 5), ("grouping", 7))))
    return lines
