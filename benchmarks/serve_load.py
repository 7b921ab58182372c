"""hrpose serve under load: 32 concurrent clients, a tenth of the requests bad.

Each server is a real `hrpose serve` process on 127.0.0.1 (PP-TinyPose 256x192 with the PicoDet
person detector, OpenVINO, the CPU's default precision), and each run posts at least 2,000
requests from 32 httpx async clients: real COCO photos (../shared/data/coco-mini-train, the
detector finds the people) with every tenth request bad, in turn a truncated JPEG (422), plain
text (415) and a body over --max-upload-mb (413). Servers compared in the same run, interleaved:

- hrpose serve, dynamic batching (--max-batch 8, --max-wait-ms 5: the defaults);
- hrpose serve --max-batch 1 (each request's crops alone; the detector one image at a time);
- the plain recipe, the baseline: a FastAPI handler that runs one PoseEstimator per request under a
  lock (the safe way to share one model between FastAPI's threads), no limits.

Reported per server: good requests answered 200, bad ones answered 4xx (and any 5xx),
requests/s and people/s, p50/p95/p99 latency of the good requests, the server's RSS at start,
after warm-up and at the end, and one-at-a-time latency (one client, 100 requests).

    python benchmarks/serve_load.py [--requests 2000] [--clients 32] [--repeats 2] [--no-report]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from fastapi import FastAPI, Request

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, median, report

MODEL = SHARED / "models" / "tinypose_256x192" / "model.xml"
DETECTOR = SHARED / "models" / "picodet_s_320_pedestrian"
UPLOAD_MB = 2
JPEG = {"Content-Type": "image/jpeg"}


def workload(total: int, boxes: bool = False) -> list[tuple[bytes, bool, str | None]]:
    """(body, good, boxes JSON) per request: the photos in turn (with their annotated person
    boxes when `boxes`), every tenth request a bad one."""
    root = SHARED / "coco-mini-train"
    gt = json.loads(next((root / "annotations").glob("*.json")).read_text())
    people: dict[int, list] = {}
    for a in gt["annotations"]:
        if not a.get("iscrowd") and a["bbox"][2] > 1 and a["bbox"][3] > 1:
            people.setdefault(a["image_id"], []).append(a["bbox"])
    images = sorted((im for im in gt["images"] if im["id"] in people or not boxes),
                    key=lambda im: im["file_name"])
    photos = [((root / "train2017" / im["file_name"]).read_bytes(),
               json.dumps(people[im["id"]]) if boxes else None) for im in images]
    bad = [photos[0][0][: len(photos[0][0]) // 3], b"this is not an image\n" * 20,
           b"\xff\xd8" + os.urandom(int(UPLOAD_MB * 2**20) + 1000)]
    return [(bad[(i // 10) % 3], False, None) if i % 10 == 9 else
            (*photos[i % len(photos)][:1], True, photos[i % len(photos)][1])
            for i in range(total)]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory (VmRSS), or its peak so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def idle_rss_mb(pid: int) -> float:
    """RSS once the server has been idle for 2 s (it hands freed memory back after 1 s)."""
    time.sleep(2)
    return rss_mb(pid)


def start_server(kind: str, port: int) -> subprocess.Popen:
    if kind == "plain":
        command = [sys.executable, __file__, "--plain-server", str(port)]
    else:
        command = [sys.executable, "-m", "hrpose", "serve", str(MODEL), "--detector",
                   str(DETECTOR), "--port", str(port), "--log-level", "warning",
                   "--max-upload-mb", str(UPLOAD_MB), "--max-queue", "256",
                   *(["--max-batch", "1"] if kind == "batch 1" else []),
                   *os.environ.get("SERVE_ARGS", "").split()]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(url: str, process: subprocess.Popen, route: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(url + route, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url}{route}: no answer in 120 s")


async def load(url: str, requests: list[tuple[bytes, bool, str | None]], clients: int) -> dict:
    """Every request, `clients` at a time; statuses, latencies and people found."""
    pending = list(enumerate(requests))
    results: list[tuple[bool, int, float, int]] = []

    async def client(http: httpx.AsyncClient) -> None:
        while pending:
            _, (body, good, boxes) = pending.pop()
            start = time.perf_counter()
            try:
                r = await http.post(url + "/v1/pose", content=body, headers=JPEG,
                                    params={"boxes": boxes} if boxes else None)
                status = r.status_code
                people = len(r.json().get("people", [])) if status == 200 else 0
            except httpx.TransportError:           # the server dropped the connection
                status, people = 0, 0
            results.append((good, status, time.perf_counter() - start, people))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - start
    good = [r for r in results if r[0]]
    bad = [r for r in results if not r[0]]
    latency = np.array([r[2] for r in good]) * 1000
    return {"good_200": sum(r[1] == 200 for r in good), "good": len(good),
            "bad_4xx": sum(400 <= r[1] < 500 for r in bad), "bad": len(bad),
            "5xx": sum(r[1] >= 500 or r[1] == 0 for r in results),
            "rps": len(results) / seconds, "people_s": sum(r[3] for r in good) / seconds,
            "p50": float(np.percentile(latency, 50)), "p95": float(np.percentile(latency, 95)),
            "p99": float(np.percentile(latency, 99))}


def one_at_a_time(url: str, requests: list[tuple[bytes, bool, str | None]],
                  count: int = 100) -> float:
    chosen = [(b, boxes) for b, good, boxes in requests if good][:count]
    with httpx.Client(timeout=60) as http:
        times = []
        for body, boxes in chosen:
            start = time.perf_counter()
            http.post(url + "/v1/pose", content=body, headers=JPEG,
                      params={"boxes": boxes} if boxes else None)
            times.append(time.perf_counter() - start)
    return median(times) * 1000


def measure(kind: str, port: int, requests: list[tuple[bytes, bool, str | None]],
            clients: int) -> dict:
    """One server's figures: the load run, one-at-a-time latency, and its RSS at start,
    after warm-up, after the run, after the same run once more (a leak grows run by run), and
    its peak (the working set of the requests in flight)."""
    url = f"http://127.0.0.1:{port}"
    process = start_server(kind, port)
    try:
        wait_for(url, process, "/healthz")
        start_rss = rss_mb(process.pid)
        wait_for(url, process, "/readyz")
        warm_rss = rss_mb(process.pid)
        figures = asyncio.run(load(url, requests, clients))
        figures.update(rss_start=start_rss, rss_warm=warm_rss, rss_run=idle_rss_mb(process.pid))
        asyncio.run(load(url, requests, clients))
        figures["rss_again"] = idle_rss_mb(process.pid)
        figures["rss_peak"] = rss_mb(process.pid, "VmHWM")
        figures["single_ms"] = one_at_a_time(url, requests)
    finally:
        process.terminate()
        process.wait(60)
    return figures


def model_alone(batch: int = 8) -> list[str]:
    """The ceiling of batching here: each model's time per item at batch 1 and at `batch`,
    called directly (no service), medians of 20 calls."""
    import numpy as np

    from hrpose.inference.estimator import PoseEstimator

    estimator = PoseEstimator(str(MODEL), detector=str(DETECTOR))
    detector = estimator.pipeline.load_detector()
    h, w = estimator.input_hw
    crops = np.random.default_rng(0).random((batch, 3, h, w), np.float32)
    images = [np.zeros((480, 640, 3), np.uint8)] * batch
    cases = {"PP-TinyPose, ms per crop": lambda n: estimator.runner(crops[:n]),
             "PicoDet, ms per image": lambda n: detector(images[:n])}
    lines = []
    for name, call in cases.items():
        per_item = {}
        for n in (1, batch):
            call(n)
            times = []
            for _ in range(20):
                start = time.perf_counter()
                call(n)
                times.append((time.perf_counter() - start) / n * 1000)
            per_item[n] = median(times)
        lines.append(f"| {name} | {per_item[1]:.2f} | {per_item[batch]:.2f} | "
                     f"{per_item[1] / per_item[batch]:.2f}x |")
    return ["", f"The models alone, called directly in the same run (batch 1 against batch "
            f"{batch}): the most batching can give here.", "",
            f"| model | batch 1 | batch {batch} | gain |", "|---|---|---|---|", *lines]


def plain_server(port: int) -> None:
    """The baseline: one PoseEstimator per request under a lock, no batching, no limits."""
    import threading

    import uvicorn
    from fastapi.concurrency import run_in_threadpool

    from hrpose.inference.estimator import PoseEstimator
    from hrpose.io import decode_image

    estimator = PoseEstimator(str(MODEL), detector=str(DETECTOR))
    lock = threading.Lock()
    app = FastAPI()

    def run(body: bytes, boxes: str | None) -> dict:
        image = decode_image(body)
        with lock:
            people = estimator(image, json.loads(boxes) if boxes else None, color="rgb")
        return {"people": [{"box": p.box.tolist(), "score": p.score,
                            "keypoints": p.keypoints.tolist()} for p in people]}

    @app.post("/v1/pose")
    async def pose(request: Request, boxes: str | None = None) -> dict:
        return await run_in_threadpool(run, await request.body(), boxes)

    @app.get("/healthz")
    @app.get("/readyz")
    async def up() -> dict:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--port", type=int, default=8471)
    parser.add_argument("--servers", default="batched,batch 1,plain",
                        help="which servers to run, comma-separated")
    parser.add_argument("--workload", choices=("detector", "boxes"), default="detector",
                        help="detector: the detector finds the people; boxes: each request "
                        "sends its annotated person boxes (the pose model alone)")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--plain-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_server:
        plain_server(args.plain_server)
        return
    requests = workload(args.requests, args.workload == "boxes")
    kinds = tuple(args.servers.split(","))
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for repeat in range(args.repeats):
        for kind in kinds:
            runs[kind].append(measure(kind, args.port, requests, args.clients))
            print(repeat, kind, {k: round(v, 1) for k, v in runs[kind][-1].items()},
                  flush=True)
    lines = _table(runs, args) + model_alone()
    what = "the detector in the loop" if args.workload == "detector" else "given boxes"
    report(f"Serving: hrpose serve under {args.clients} concurrent clients, {what}", lines,
           append=not args.no_report)


def _table(runs: dict[str, list[dict]], args: argparse.Namespace) -> list[str]:
    def m(kind: str, key: str) -> float:
        return median([r[key] for r in runs[kind]])

    base = m("batch 1", "rps") if "batch 1" in runs else float("nan")
    people = ("the detector finds the people" if args.workload == "detector" else
              "each request sends its annotated person boxes")
    lines = [f"`python benchmarks/serve_load.py --workload {args.workload} --requests "
             f"{args.requests} --clients {args.clients} --repeats {args.repeats}`: PP-TinyPose "
             "256x192 + PicoDet (OpenVINO, default precision), COCO photos "
             f"(coco-mini-train), {people}, every tenth request bad; medians of "
             f"{args.repeats} interleaved runs per server. RSS: at start, after warm-up, after "
             "the run and after the same run again (each 2 s after its last answer), and the "
             "peak under load.", "",
             "| server | good → 200 | bad → 4xx | 5xx or dropped | requests/s | people/s | "
             "vs batch 1 | p50 / p95 / p99 ms | one at a time ms | RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    names = {"batched": "hrpose serve (batching, max 8 / 5 ms)",
             "batch 1": "hrpose serve --max-batch 1", "plain": "plain FastAPI + lock (baseline)"}
    for kind, name in names.items():
        if kind not in runs:
            continue
        last = runs[kind][-1]
        lines.append(
            f"| {name} | {last['good_200']}/{last['good']} | {last['bad_4xx']}/{last['bad']} | "
            f"{last['5xx']} | {m(kind, 'rps'):.1f} | {m(kind, 'people_s'):.1f} | "
            f"{m(kind, 'rps') / base:.2f}x | {m(kind, 'p50'):.0f} / {m(kind, 'p95'):.0f} / "
            f"{m(kind, 'p99'):.0f} | {m(kind, 'single_ms'):.1f} | {m(kind, 'rss_start'):.0f} / "
            f"{m(kind, 'rss_warm'):.0f} / {m(kind, 'rss_run'):.0f} / "
            f"{m(kind, 'rss_again'):.0f}, peak {m(kind, 'rss_peak'):.0f} |")
    return lines


if __name__ == "__main__":
    main()
