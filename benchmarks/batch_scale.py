"""Batch pose extraction at scale: the same 240 real photos (coco-mini-train's 80, three times
under distinct names) through PicoDet-S + PP-TinyPose (OpenVINO, the default precision), every
path decoding, detecting, posing and writing its results:

- plain loop: `hrpose infer --no-draw` in this process (results.json), the baseline;
- parquet, local: `hrpose infer --format parquet` in this process (parts of 32 images);
- ray, 1 actor of 2 threads / 2 actors of 1 thread: `--engine ray` on a local Ray cluster
  (the same parts, decoded in the actors from their paths);
- ray read_images: `ray.data.read_images` -> `map_batches(PosePredictor)`, 2 actors: the
  alternative the issue names (Ray's read tasks decode, the actors pose).

Per path: images/s end to end; for Ray also the time to the first part done (actor start:
process, imports, model load), and the steady rate after it. The machine's cores are shared by
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
from common import SHARED, median, report

from hrpose.batch.inputs import expand, list_sources, plan_parts
from hrpose.batch.ray_engine import connect, run_parts
from hrpose.inference.estimator import PoseEstimator
from hrpose.inference.infer import InferSettings, infer
from hrpose.io import read_image

TINYPOSE = str(SHARED / "models/tinypose_256x192/model.xml")
PICODET = str(SHARED / "models/picodet_s_320_pedestrian")
OPTIONS = {"detector": PICODET}
PART = 32


def photos(folder: Path, copies: int = 3) -> list[Path]:
    sources = sorted((SHARED / "coco-mini-train" / "train2017").glob("*.jpg"))
    for k in range(copies):
        for photo in sources:
            (folder / f"c{k}_{photo.name}").symlink_to(photo)
    return sorted(folder.iterdir())


def plain_loop(folder: Path, out: Path) -> dict:
    start = time.perf_counter()
    est = PoseEstimator(TINYPOSE, **OPTIONS)
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
    parts = plan_parts(expand(list_sources(str(folder)), 500), set(), PART)
    writer = {"model": TINYPOSE, "options": OPTIONS, "out": str(out), "settings": {}}
    start = time.perf_counter()
    first, rows, images = None, 0, 0
    for info in run_parts(parts, writer, concurrency=actors, threads=threads):
        first = first if first is not None else time.perf_counter() - start
        rows += info.rows
        images += len(info.items)
    seconds = time.perf_counter() - start
    steady = (images - PART * actors) / max(seconds - first, 1e-9) if images > PART * actors \
        else float("nan")
    return {"images/s": images / seconds, "people": rows, "first part s": first,
            "steady images/s": steady}


def ray_read_images(folder: Path, actors: int) -> dict:
    ray = connect()
    from hrpose.batch import PosePredictor

    start = time.perf_counter()
    dataset = ray.data.read_images(str(folder), include_paths=True, mode="RGB")
    posed = dataset.map_batches(PosePredictor, fn_constructor_args=(TINYPOSE,),
                                fn_constructor_kwargs={**OPTIONS, "threads": 1},
                                batch_size=PART, num_cpus=1,
                                compute=ray.data.ActorPoolStrategy(size=actors))
    people = images = 0
    for batch in posed.select_columns(["path", "people"]).iter_batches(batch_size=PART):
        images += len(batch["path"])
        people += sum(len(p) for p in batch["people"])
    seconds = time.perf_counter() - start
    return {"images/s": images / seconds, "people": people}


def stage_costs(folder: Path) -> dict:
    """ms per image of decode, detector and pose model (one thread each, in this process)."""
    est = PoseEstimator(TINYPOSE, threads=1, **OPTIONS)
    files = sorted(folder.iterdir())[:80]
    t = time.perf_counter()
    images = [read_image(p) for p in files]
    decode = (time.perf_counter() - t) / len(files)
    detector = est.pipeline.load_detector()
    t = time.perf_counter()
    boxes = [detector([im])[0] for im in images]
    detect = (time.perf_counter() - t) / len(files)
    t = time.perf_counter()
    found = est.predict_rgb(images, boxes, [str(p) for p in files])
    pose = (time.perf_counter() - t) / len(files)
    crops = sum(map(len, found)) / len(files)
    return {"decode ms": decode * 1e3, "detector ms": detect * 1e3, "pose ms": pose * 1e3,
            "crops/image": crops}


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
    connect(num_cpus=os.cpu_count())
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
             "| path | images/s | vs plain | first part done, s | steady images/s |",
             "|---|---:|---:|---:|---:|"]
    for name, rows in results.items():
        rate = median([r["images/s"] for r in rows])
        first = [r["first part s"] for r in rows if "first part s" in r]
        steady = [r["steady images/s"] for r in rows if "steady images/s" in r]
        lines.append(f"| {name} | {rate:.1f} | {rate / base:.2f}x | "
                     f"{f'{median(first):.1f}' if first else ''} | "
                     f"{f'{median(steady):.1f}' if steady else ''} |")
    people = {name: rows[0]["people"] for name, rows in results.items()}
    cpu_ms = costs["decode ms"] + costs["detector ms"] + costs["pose ms"]
    lines += ["", f"People found per path (all must agree): {json.dumps(people)}.", "",
              f"Per image, one thread: decode {costs['decode ms']:.1f} ms, detector "
              f"{costs['detector ms']:.1f} ms, pose model + crops + decoding "
              f"{costs['pose ms']:.1f} ms ({costs['crops/image']:.2f} people an image); "
              f"{cpu_ms:.1f} ms in all."]
    lines += projection(costs)
    return lines


def projection(costs: dict) -> list[str]:
    """1M images on N GPU nodes, from the measured CPU costs (see the assumptions)."""
    cpu_s = (costs["decode ms"] + costs["detector ms"]) / 1e3
    cores = 8
    lines = ["", "Projection, 1M images (paper, not run): with the pose model on a GPU, the "
             "CPU still decodes each image and runs the detector (hrpose's detectors run on "
             f"the CPU): {cpu_s * 1e3:.1f} ms an image, measured above. Assumed: {cores} CPU "
             "cores per GPU, each an actor's reader and detector at this CPU's per-core "
             "speed; the GPU's pose time (not measured: no GPU lent) hidden behind that CPU "
             "work; reading from storage not the limit; startup (the first part above) "
             "once per actor.", "",
             "| GPUs | CPU-bound images/s | 1M images |", "|---:|---:|---:|"]
    for gpus in (1, 8, 64):
        rate = gpus * cores / cpu_s
        lines.append(f"| {gpus} | {rate:,.0f} | {1e6 / rate / 60:.1f} min |")
    return lines


if __name__ == "__main__":
    main()
