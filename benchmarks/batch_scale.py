"""Batch pose extraction at scale: the same 240 real photos (coco-mini-train's 80, three times
under distinct names) through PicoDet-S + PP-TinyPose (OpenVINO, the default precision), every
path decoding, detecting, posing and writing its results:

- plain loop: `hrpose infer --no-draw` in this process (results.json), the baseline;
- parquet, local: `hrpose infer --format parquet` in this process (parts of 32 images);
- ray, 1 actor of 2 threads / 2 actors of 1 thread: `--engine ray` on a local Ray cluster
  (the same parts, decoded in the actors from their paths);
- ray read_images: `ray.data.read_images` -> `map_batches(PosePredictor)`, 2 actors: the
  the usual alternative (Ray's read tasks decode, the actors pose).

Per path: images/s end to end; for `--engine ray` also the actors' rate while they write parts,
their model load, and the overhead (wall time less the actors' working time: actor start,
imports, model load, scheduling). The machine's cores are shared by
everything, the Ray daemons included. Then a projection of a 1M-image job from the measured
per-image CPU cost. Paths interleaved; medians of the rounds.

    python benchmarks/batch_scale.py [--rounds 3] [--no-report]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from common import SHARED, median, report

from hrpose.batch.inputs import expand, list_sources, plan_parts
from hrpose.batch.ray_engine import connect, run_parts
from hrpose.inference.estimator import PoseEstimator
from hrpose.inference.infer import InferSettings, infer
from hrpose.inference.options import EstimatorOptions
from hrpose.io import read_image

TINYPOSE = str(SHARED / "models/tinypose_256x192/model.xml")
PICODET = str(SHARED / "models/picodet_s_320_pedestrian")
OPTIONS = EstimatorOptions(detector=PICODET)
PART = 32


def photos(folder: Path, copies: int = 3) -> list[Path]:
    sources = sorted((SHARED / "coco-mini-train" / "train2017").glob("*.jpg"))
    for k in range(copies):
        for photo in sources:
            (folder / f"c{k}_{photo.name}").symlink_to(photo)
    return sorted(folder.iterdir())


def plain_loop(folder: Path, out: Path) -> dict:
    start = time.perf_counter()
    est = PoseEstimator(TINYPOSE, OPTIONS)
    summary = infer(sorted(folder.iterdir()), est, out, InferSettings(draw=False,
                                                                      progress=False))
    seconds = time.perf_counter() - start
    return {"images/s": summary["images"] / seconds, "people": summary["people"]}


def parquet_local(folder: Path, out: Path) -> dict:
    from hrpose.batch.job import BatchSettings, run_batch

    summary = run_batch(str(folder), str(out), TINYPOSE, OPTIONS,
                        BatchSettings(part_size=PART, progress=False))
    return {"images/s": summary["done"] / summary["seconds"], "people": summary["rows"]}


def ray_parts(folder: Path, out: Path, actors: int, threads: int) -> dict:
    """`--engine ray`'s parts on `actors` actors. Besides the end-to-end rate: the actors'
    model load, and their rate while writing parts (images / time inside write_part per
    actor); the rest of the wall time is the per-job overhead (actor start, scheduling)."""
    parts = plan_parts(expand(list_sources(str(folder)), 500), set(), PART)
    options = OPTIONS.changed(threads=threads)
    writer = {"model": TINYPOSE, "options": options, "out": str(out), "settings": {}}
    start = time.perf_counter()
    rows = images = 0
    busy: list[float] = []
    loads: set[float] = set()
    for info in run_parts(parts, writer, concurrency=actors):
        rows += info.rows
        images += len(info.items)
        busy.append(info.seconds)
        loads.add(info.load_seconds)
    seconds = time.perf_counter() - start
    working = sum(busy) / actors
    return {"images/s": images / seconds, "people": rows, "working images/s": images / working,
            "model load s": max(loads), "overhead s": seconds - working}


def ray_read_images(folder: Path, actors: int) -> dict:
    ray = connect()
    from hrpose.batch import PosePredictor

    start = time.perf_counter()
    dataset = ray.data.read_images(str(folder), include_paths=True, mode="RGB")
    posed = dataset.map_batches(PosePredictor, fn_constructor_args=(TINYPOSE,),
                                fn_constructor_kwargs={"options": OPTIONS, "threads": 1},
                                batch_size=PART, num_cpus=1,
                                compute=ray.data.ActorPoolStrategy(size=actors))
    people = images = 0
    for batch in posed.select_columns(["path", "people"]).iter_batches(batch_size=PART):
        images += len(batch["path"])
        people += sum(len(p) for p in batch["people"])
    seconds = time.perf_counter() - start
    return {"images/s": images / seconds, "people": people}


def stage_costs(folder: Path) -> dict:
    """ms per image of each stage, one thread, in this process: decode, detector, the pose
    pipeline's CPU work (crops before, heatmap decoding after) and its model."""
    est = PoseEstimator(TINYPOSE, OPTIONS, threads=1)
    files = sorted(folder.iterdir())[:80]
    names = [str(p) for p in files]
    clock = {}
    t = time.perf_counter()
    images = [read_image(p) for p in files]
    clock["decode"] = time.perf_counter() - t
    detector = est.pipeline.load_detector()
    t = time.perf_counter()
    boxes = [detector([im])[0] for im in images]
    clock["detector"] = time.perf_counter() - t
    t = time.perf_counter()
    crops = est.pipeline.preprocess(images, boxes, names)
    clock["crops"] = time.perf_counter() - t
    est.pipeline.run(crops)                # compiles each batch size (OpenVINO, light models)
    t = time.perf_counter()
    keypoints = est.pipeline.run(crops)                # normalise, model, heatmap decoding
    run = time.perf_counter() - t
    h, w = est.input_hw
    t = time.perf_counter()
    for i in range(0, len(crops.images), est.pipeline.batch):
        est.runner(np.zeros((len(crops.images[i : i + est.pipeline.batch]), 3, h, w),
                            np.float32))
    clock["pose model"] = time.perf_counter() - t
    clock["normalise + heatmap decoding"] = run - clock["pose model"]
    t = time.perf_counter()
    found = est.pipeline.postprocess(keypoints, crops, names)
    clock["scoring"] = time.perf_counter() - t
    costs = {f"{k} ms": v / len(files) * 1e3 for k, v in clock.items()}
    return {**costs, "crops/image": sum(map(len, found)) / len(files)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = Path(tempfile.mkdtemp(prefix="batch_scale_"))
    folder = work / "in"
    folder.mkdir()
    count = len(photos(folder))
    t = time.perf_counter()
    # Ray's CPU count is a scheduling label: 2 more than the cores, so that read_images' read
    # tasks can run beside two actors of one CPU each (with 2 they wait for ever)
    connect(num_cpus=(os.cpu_count() or 1) + 2)
    init = time.perf_counter() - t
    paths = {"plain loop (baseline)": lambda o: plain_loop(folder, o),
             "parquet, local": lambda o: parquet_local(folder, o),
             "ray, 1 actor x 2 threads": lambda o: ray_parts(folder, o, 1, 2),
             "ray, 2 actors x 1 thread": lambda o: ray_parts(folder, o, 2, 1),
             "ray read_images, 2 actors x 1 thread": lambda o: ray_read_images(folder, 2)}
    results: dict[str, list[dict]] = {name: [] for name in paths}
    for r in range(args.rounds):
        for name, run in paths.items():
            results[name].append(run(work / f"{r}-{len(results[name])}-{hash(name)}"))
            print(name, json.dumps(results[name][-1]), flush=True)
    costs = stage_costs(folder)
    lines = table(results, count, init, costs)
    report("Batch pose extraction: in-process loop, Parquet parts, Ray actors", lines,
           append=not args.no_report)


def table(results: dict[str, list[dict]], count: int, init: float, costs: dict) -> list[str]:
    base = median([r["images/s"] for r in results["plain loop (baseline)"]])
    lines = [f"{count} coco-mini-train photos (80 x 3 names), PicoDet-S + PP-TinyPose "
             "(OpenVINO, default precision), results written; "
             f"medians of {len(next(iter(results.values())))} interleaved rounds. "
             f"Ray local cluster start: {init:.1f} s (once, not in the figures).", "",
             "| path | images/s | vs plain | actors working, images/s | model load, s | "
             "overhead, s |", "|---|---:|---:|---:|---:|---:|"]
    for name, rows in results.items():
        rate = median([r["images/s"] for r in rows])
        extra = [f"{median([r[k] for r in rows]):.1f}" if k in rows[0] else ""
                 for k in ("working images/s", "model load s", "overhead s")]
        lines.append(f"| {name} | {rate:.1f} | {rate / base:.2f}x | {' | '.join(extra)} |")
    people = {name: rows[0]["people"] for name, rows in results.items()}
    stages = ", ".join(f"{k.removesuffix(' ms')} {v:.1f} ms" for k, v in costs.items()
                       if k.endswith(" ms"))
    lines += ["", f"People found per path (all must agree): {json.dumps(people)}.", "",
              f"Per image, one thread ({costs['crops/image']:.2f} people an image): {stages}."]
    lines += projection(costs)
    return lines


def projection(costs: dict) -> list[str]:
    """1M images on N GPUs, from the measured CPU costs (see the assumptions)."""
    cpu_ms = sum(v for k, v in costs.items() if k.endswith(" ms") and k != "pose model ms")
    cores = 8
    lines = ["", "Projection, 1M images (paper, not run): with the pose model on a GPU, the "
             "CPU still decodes each image, runs the detector (hrpose's detectors run on the "
             "CPU), cuts the crops and decodes the heatmaps: "
             f"{cpu_ms:.1f} ms an image on one core, measured above. Assumed: {cores} CPU cores "
             "per GPU, each as fast as one of this machine's; the GPU's pose model (not "
             "measured: no GPU here) keeps up with them; storage is not the limit; each "
             "job pays the overhead above (seconds) once.", "",
             "| GPUs | CPU-bound images/s | 1M images |", "|---:|---:|---:|"]
    for gpus in (1, 8, 64):
        rate = gpus * cores * 1e3 / cpu_ms
        lines.append(f"| {gpus} | {rate:,.0f} | {1e6 / rate / 60:.1f} min |")
    return lines


if __name__ == "__main__":
    main()
