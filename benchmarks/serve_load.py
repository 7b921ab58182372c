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
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, median, report

SHARED = Path(os.environ.get("HRPOSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
MODEL = SHARED / "models" / "tinypose_256x192" / "model.xml"
DETECTOR = SHARED / "models" / "picodet_s_320_pedestrian"
UPLOAD_MB = 2
JPEG = {"Content-Type": "image/jpeg"}


def workload(total: int) -> list[tuple[bytes, bool]]:
    """(body, good) per request: the photos in turn, every tenth request a bad one."""
    photos = [p.read_bytes() for p in sorted((SHARED / "coco-mini-train" / "train2017").glob(
        "*.jpg"))]
    bad = [photos[0][: len(photos[0]) // 3], b"this is not an image\n" * 20,
           b"\xff\xd8" + os.urandom(int(UPLOAD_MB * 2**20) + 1000)]
    return [(bad[(i // 10) % 3], False) if i % 10 == 9 else (photos[i % len(photos)], True)
            for i in range(total)]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(kind: str, port: int) -> subprocess.Popen:
    if kind == "plain":
        command = [sys.executable, __file__, "--plain-server", str(port)]
    else:
        command = [sys.executable, "-m", "hrpose", "serve", str(MODEL), "--detector",
                   str(DETECTOR), "--port", str(port), "--log-level", "warning",
                   "--max-upload-mb", str(UPLOAD_MB), "--max-queue", "256",
                   *(["--max-batch", "1"] if kind == "batch 1" else [])]
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


async def load(url: str, requests: list[tuple[bytes, bool]], clients: int) -> dict:
    """Every request, `clients` at a time; statuses, latencies and people found."""
    pending = list(enumerate(requests))
    results: list[tuple[bool, int, float, int]] = []

    async def client(http: httpx.AsyncClient) -> None:
        while pending:
            _, (body, good) = pending.pop()
            start = time.perf_counter()
            r = await http.post(url + "/v1/pose", content=body, headers=JPEG)
            people = len(r.json().get("people", [])) if r.status_code == 200 else 0
            results.append((good, r.status_code, time.perf_counter() - start, people))

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
            "5xx": sum(r[1] >= 500 for r in results),
            "rps": len(results) / seconds, "people_s": sum(r[3] for r in good) / seconds,
            "p50": float(np.percentile(latency, 50)), "p95": float(np.percentile(latency, 95)),
            "p99": float(np.percentile(latency, 99))}


def one_at_a_time(url: str, requests: list[tuple[bytes, bool]], count: int = 100) -> float:
    bodies = [b for b, good in requests if good][:count]
    with httpx.Client(timeout=60) as http:
        times = []
        for body in bodies:
            start = time.perf_counter()
            http.post(url + "/v1/pose", content=body, headers=JPEG)
            times.append(time.perf_counter() - start)
    return median(times) * 1000


def measure(kind: str, port: int, requests: list[tuple[bytes, bool]], clients: int) -> dict:
    url = f"http://127.0.0.1:{port}"
    process = start_server(kind, port)
    try:
        wait_for(url, process, "/healthz")
        start_rss = rss_mb(process.pid)
        wait_for(url, process, "/readyz")
        warm_rss = rss_mb(process.pid)
        figures = asyncio.run(load(url, requests, clients))
        figures["single_ms"] = one_at_a_time(url, requests)
        figures.update(rss_start=start_rss, rss_warm=warm_rss, rss_end=rss_mb(process.pid))
    finally:
        process.terminate()
        process.wait(60)
    return figures


def plain_server(port: int) -> None:
    """The baseline: one PoseEstimator per request under a lock, no batching, no limits."""
    import threading

    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool

    from hrpose.inference.estimator import PoseEstimator
    from hrpose.io import decode_image

    estimator = PoseEstimator(str(MODEL), detector=str(DETECTOR))
    lock = threading.Lock()
    app = FastAPI()

    def run(body: bytes) -> dict:
        image = decode_image(body)
        with lock:
            people = estimator(image, color="rgb")
        return {"people": [{"box": p.box.tolist(), "score": p.score,
                            "keypoints": p.keypoints.tolist()} for p in people]}

    @app.post("/v1/pose")
    async def pose(request: Request) -> dict:
        return await run_in_threadpool(run, await request.body())

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
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--plain-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_server:
        plain_server(args.plain_server)
        return
    requests = workload(args.requests)
    kinds = ("batched", "batch 1", "plain")
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for repeat in range(args.repeats):
        for kind in kinds:
            runs[kind].append(measure(kind, args.port, requests, args.clients))
            print(repeat, kind, {k: round(v, 1) for k, v in runs[kind][-1].items()},
                  flush=True)
    lines = _table(runs, args)
    report(f"Serving: hrpose serve under {args.clients} concurrent clients", lines,
           append=not args.no_report)


def _table(runs: dict[str, list[dict]], args: argparse.Namespace) -> list[str]:
    def m(kind: str, key: str) -> float:
        return median([r[key] for r in runs[kind]])

    base = m("batch 1", "rps")
    lines = [f"`python benchmarks/serve_load.py --requests {args.requests} --clients "
             f"{args.clients} --repeats {args.repeats}`: PP-TinyPose 256x192 + PicoDet "
             "(OpenVINO, default precision), COCO photos, every tenth request bad; medians of "
             f"{args.repeats} interleaved runs per server.", "",
             "| server | good → 200 | bad → 4xx | 5xx | requests/s | people/s | vs batch 1 | "
             "p50 / p95 / p99 ms | one at a time ms | RSS start / warm / end MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    names = {"batched": "hrpose serve (batching, max 8 / 5 ms)",
             "batch 1": "hrpose serve --max-batch 1", "plain": "plain FastAPI + lock (baseline)"}
    for kind, name in names.items():
        last = runs[kind][-1]
        lines.append(
            f"| {name} | {last['good_200']}/{last['good']} | {last['bad_4xx']}/{last['bad']} | "
            f"{last['5xx']} | {m(kind, 'rps'):.1f} | {m(kind, 'people_s'):.1f} | "
            f"{m(kind, 'rps') / base:.2f}x | {m(kind, 'p50'):.0f} / {m(kind, 'p95'):.0f} / "
            f"{m(kind, 'p99'):.0f} | {m(kind, 'single_ms'):.1f} | {m(kind, 'rss_start'):.0f} / "
            f"{m(kind, 'rss_warm'):.0f} / {m(kind, 'rss_end'):.0f} |")
    return lines


if __name__ == "__main__":
    main()
