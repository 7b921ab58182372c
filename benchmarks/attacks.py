"""Hostile clients against a real `hrpose serve`, batch jobs killed and rerun, and damaged
videos: the campaigns `fuzz_campaign.py --service / --batch / --videos` run.

Each scenario returns a row: what was done, what the attacked clients saw, what everyone else
saw meanwhile, and the server's memory (RSS, sampled every 50 ms from /proc). The service is the
PP-TinyPose + PicoDet pair of the shared data, in fp32, as `hrpose serve` starts it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import numpy as np
from common import ROOT, SHARED

sys.path.insert(0, str(ROOT))

JPEG = {"Content-Type": "image/jpeg"}


# --- the server ---------------------------------------------------------------------------------


class Server:
    """`hrpose serve` in a child process, and its memory sampled in a thread."""

    def __init__(self, *extra: str) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "hrpose", "serve",
                   str(SHARED / "models" / "tinypose_256x192" / "model.xml"), "--detector",
                   str(SHARED / "models" / "picodet_s_320_pedestrian"), "--precision", "fp32",
                   "--port", str(self.port), "--log-level", "warning", *extra]
        # HRPOSE_ATTACK_SRC: serve another checkout's src/ (a baseline before a change)
        env = {**os.environ, **({"PYTHONPATH": os.environ["HRPOSE_ATTACK_SRC"]}
                                if os.environ.get("HRPOSE_ATTACK_SRC") else {})}
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - read back in output(), closed in stop()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=env)
        self.rss: list[int] = []
        self._stop = threading.Event()
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start: " + self.output())
            time.sleep(0.2)
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                text = Path(f"/proc/{self.process.pid}/status").read_text()
                self.rss.append(int(text.split("VmRSS:")[1].split()[0]) * 1024)
            except (OSError, IndexError):
                return
            time.sleep(0.05)

    def rss_now(self) -> int:
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(text.split("VmRSS:")[1].split()[0]) * 1024

    def metrics(self) -> dict[str, float]:
        """hrpose_requests_total by status, summed over routes."""
        counts: dict[str, float] = {}
        for line in httpx.get(self.url + "/metrics").text.splitlines():
            if line.startswith("hrpose_requests_total{"):
                status = line.split('status="')[1].split('"')[0]
                counts[status] = counts.get(status, 0) + float(line.rsplit(" ", 1)[1])
        return counts

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        self._stop.set()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@contextmanager
def serving(*extra: str):
    server = Server(*extra)
    try:
        yield server
    finally:
        server.stop()


def photo() -> bytes:
    return (SHARED / "images" / "hrnet_demo.jpg").read_bytes()


def bystanders(url: str, seconds: float, every: float = 0.25) -> dict:
    """An ordinary client posting a photo every `every` s for `seconds`, and /healthz: their
    statuses and latencies, while an attack runs."""
    data, codes, waits, health = photo(), {}, [], [0, 0]
    end = time.monotonic() + seconds
    with httpx.Client(timeout=60) as client:
        while time.monotonic() < end:
            start = time.monotonic()
            try:
                code = client.post(url + "/v1/pose", content=data, headers=JPEG).status_code
            except httpx.HTTPError as e:
                code = type(e).__name__
            codes[code] = codes.get(code, 0) + 1
            waits.append(time.monotonic() - start)
            with suppress(httpx.HTTPError):
                health[0] += client.get(url + "/healthz", timeout=5).status_code == 200
            health[1] += 1
            time.sleep(every)
    return {"codes": codes, "p50_s": round(float(np.median(waits)), 2) if waits else None,
            "max_s": round(max(waits), 2) if waits else None, "healthz": health}


def _in_thread(target, *args) -> tuple[threading.Thread, list]:
    box: list = []
    thread = threading.Thread(target=lambda: box.append(target(*args)), daemon=True)
    thread.start()
    return thread, box


# --- the scenarios ------------------------------------------------------------------------------


def slow_uploads(url: str, clients: int = 64, seconds: float = 30) -> dict:
    """`clients` connections that send a photo's headers, then one byte a second."""
    data, socks = photo(), []
    for _ in range(clients):
        s = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        s.sendall(b"POST /v1/pose HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(data))
        socks.append(s)
    stop = threading.Event()

    def drip() -> None:
        i = 0
        while not stop.is_set():
            for s in socks:
                with suppress(OSError):
                    s.sendall(data[i : i + 1])
            i += 1
            time.sleep(1)
    threading.Thread(target=drip, daemon=True).start()
    seen = bystanders(url, seconds)
    stop.set()
    answers = []
    for s in socks:
        s.settimeout(1)
        try:
            answers.append(s.recv(64).split(b" ")[1].decode())
        except (OSError, IndexError):
            answers.append("closed")
        s.close()
    return {"attack": f"{clients} uploads at 1 byte/s", "attackers": _count(answers),
            "others": seen}


def header_only(url: str, clients: int = 400, seconds: float = 15) -> dict:
    """`clients` connections that send half a request line and nothing more."""
    socks = []
    for _ in range(clients):
        s = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        s.sendall(b"GET /v1/mod")
        socks.append(s)
    seen = bystanders(url, seconds)
    answers = []
    for s in socks:
        s.settimeout(0.2)
        try:
            answers.append(s.recv(64).split(b" ")[1].decode() or "closed")
        except (OSError, IndexError):
            answers.append("open" if s.fileno() >= 0 else "closed")
        s.close()
    return {"attack": f"{clients} connections sending no headers", "attackers": _count(answers),
            "others": seen}


def many_boxes(url: str, requests: int = 8, boxes: int = 3000) -> dict:
    """Requests with `boxes` boxes each (100 KB of JSON: as many crops), then photos."""
    data = photo()
    text = json.dumps([[10 + i % 300, 10, 200, 300] for i in range(boxes)]).encode()
    with httpx.Client(timeout=120) as client:       # a form: 100 KB is too long for a URL
        codes = [client.post(url + "/v1/pose", files={"image": ("p.jpg", data, "image/jpeg"),
                                                      "boxes": (None, text, None)}).status_code
                 for _ in range(requests)]
    seen = bystanders(url, 5)
    return {"attack": f"{requests} requests of {boxes} boxes", "attackers": _count(codes),
            "others": seen}


def abandoned(url: str, requests: int = 32, boxes: int = 100) -> dict:
    """`requests` requests of `boxes` boxes each whose clients give up after 0.5 s: their work
    must not hold up the next photos."""
    data = photo()
    text = json.dumps([[10 + i % 300, 10, 200, 300] for i in range(boxes)]).encode()

    async def give_up() -> list:
        async with httpx.AsyncClient(timeout=0.5, limits=httpx.Limits(max_connections=64)) as c:
            answers = await asyncio.gather(*(c.post(url + "/v1/pose", files={
                "image": ("p.jpg", data, "image/jpeg"), "boxes": (None, text, None)})
                for _ in range(requests)), return_exceptions=True)
        return [a.status_code if isinstance(a, httpx.Response) else "gave up" for a in answers]
    codes = asyncio.run(give_up())
    return {"attack": f"{requests} requests of {boxes} boxes, abandoned after 0.5 s",
            "attackers": _count(codes), "others": bystanders(url, 10)}


def pixel_bombs(url: str, requests: int = 64) -> dict:
    """`requests` 6000x6000 PNGs (a few KB each) at once."""
    image = np.zeros((6000, 6000, 3), np.uint8)
    import cv2

    data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()

    async def flood() -> list:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=200)) as c:
            answers = await asyncio.gather(*(c.post(url + "/v1/pose", content=data, headers={
                "Content-Type": "image/png"}) for _ in range(requests)), return_exceptions=True)
        return [a.status_code if isinstance(a, httpx.Response) else type(a).__name__
                for a in answers]
    thread, seen = _in_thread(bystanders, url, 20)
    codes = asyncio.run(flood())
    thread.join()
    return {"attack": f"{requests} x 6000x6000 PNG ({len(data) // 1024} KB) at once",
            "attackers": _count(codes), "others": seen[0]}


def oversize(url: str, tries: int = 20, mb: float = 20) -> dict:
    """A body over --max-upload-mb sent whole by urllib (which reads only after sending)."""
    body, codes = os.urandom(int(mb * 2**20)), []
    for _ in range(tries):
        try:
            urllib.request.urlopen(urllib.request.Request(url + "/v1/pose", data=body,
                                                          headers=JPEG), timeout=60)
            codes.append(200)
        except urllib.error.HTTPError as e:
            codes.append(e.code)
        except OSError as e:
            codes.append(type(e).__name__)
    return {"attack": f"{tries} uploads of {mb:g} MB by urllib", "attackers": _count(codes),
            "others": bystanders(url, 3)}


def dropped(url: str, clients: int = 50) -> dict:
    """Clients that close their connection halfway through the upload, or while waiting."""
    data = photo()
    for i in range(clients):
        s = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        s.sendall(b"POST /v1/pose HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(data)
                  + (data[: len(data) // 2] if i % 2 else data))
        time.sleep(0.02)
        s.close()
    time.sleep(1)
    return {"attack": f"{clients} clients leaving mid-upload or mid-answer",
            "attackers": {}, "others": bystanders(url, 3)}


def websocket_errors(url: str) -> dict:
    """Frames that break the WebSocket protocol after the handshake: the close code each
    gets, and how long it took."""
    from tests.serving import raw_websocket, websocket_frame

    out = {}
    cases = {"unmasked": (0x82, False, b"jpeg"), "reserved opcode": (0x83, True, b"what"),
             "invalid UTF-8": (0x81, True, b"\xff\xfe"), "fragmented control": (0x09, True, b"")}
    for name, (first, masked, payload) in cases.items():
        s = raw_websocket(url)
        start = time.monotonic()
        s.sendall(websocket_frame(first, payload, masked))
        s.settimeout(30)
        try:
            answer = s.recv(64)
            code = struct.unpack(">H", answer[2:4])[0] if answer[:1] and \
                answer[0] & 0x0F == 8 else "no close frame"
        except OSError:
            code = "no answer"
        out[name] = f"{code} in {time.monotonic() - start:.2f} s"
        s.close()
    return {"attack": "WebSocket protocol errors", "attackers": out, "others": {}}


def hostile_requests(url: str, count: int, seed: int) -> dict:
    """`count` malformed requests: bodies cut or flipped, wrong types, odd headers, huge ids,
    long boundaries, non-ASCII keys, bad boxes. Any 5xx is a failure."""
    rng, data, codes = random.Random(seed), photo(), {}
    makers = [
        lambda: {"content": _flip(data, rng), "headers": JPEG},
        lambda: {"content": data[: rng.randrange(len(data))], "headers": JPEG},
        lambda: {"content": data, "headers": JPEG,
                 "params": {"image_id": str(rng.choice([2**64, -2**64, 2**63]) + rng.randrange(9)),
                            "format": "coco"}},
        lambda: {"content": b"--" + b"x" * rng.randrange(200, 2000), "headers": {
            "Content-Type": "multipart/form-data; boundary=" + "x" * rng.randrange(200, 2000)}},
        lambda: (b"POST /v1/pose HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xe9\xff"
                 + bytes([rng.randrange(128, 256)]) + b"\r\nContent-Type: image/jpeg\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(data) + data),
        lambda: {"content": data, "headers": JPEG, "params": {"boxes": json.dumps(
            [[rng.choice([0, 1e200, -1e39, 3e38, float("nan")]) for _ in range(4)]])}},
        lambda: {"files": {"image": ("p.jpg", data, "image/jpeg"), "boxes": (None, json.dumps(
            [[1, 1, 9, 9]] * rng.randrange(90, 5000)).encode(), None)}},
        lambda: {"content": _png_bomb(rng.randrange(7000, 60000)),
                 "headers": {"Content-Type": "image/png"}},
        lambda: {"content": os.urandom(rng.randrange(1, 5000)),
                 "headers": {"Content-Type": rng.choice(["image/jpeg", "text/plain", "",
                                                         "multipart/form-data"])}},
        lambda: (b"POST /v1/pose HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                 b"Content-Length: " + rng.choice([b"12x", b"-5", b"99999999999999999999",
                                                    b"1e3"]) + b"\r\n\r\n" + data),
    ]
    with httpx.Client(timeout=60) as client:
        for _ in range(count):
            request = rng.choice(makers)()
            try:
                code = _send_raw(url, request) if isinstance(request, bytes) else \
                    client.post(url + "/v1/pose", **request).status_code
            except (httpx.HTTPError, ValueError) as e:
                code = type(e).__name__
            codes[code] = codes.get(code, 0) + 1
    return {"attack": f"{count} malformed requests (seed {seed})", "attackers": codes,
            "others": bystanders(url, 2)}


def _send_raw(url: str, request: bytes) -> int | str:
    """A request written by hand (httpx refuses to send non-ASCII headers or a malformed
    length): the status of its answer."""
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock:
        sock.settimeout(5)              # no answer in 5 s: "TimeoutError"
        try:
            sock.sendall(request)
            answer = sock.recv(64)
        except OSError as e:
            return type(e).__name__
    parts = answer.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else "closed"


def _flip(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randrange(1, 30)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _png_bomb(side: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0,
                                                              0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _count(values: list) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def service_campaign(requests: int, seed: int) -> list[dict]:
    """Every scenario against one server; each row adds the server's peak RSS during it."""
    rows = []
    scenarios = [("hostile", lambda u: hostile_requests(u, requests, seed)), ("slow", slow_uploads),
                 ("headers", header_only), ("boxes", many_boxes), ("abandoned", abandoned),
                 ("bombs", pixel_bombs),
                 ("oversize", oversize), ("dropped", dropped), ("websocket", websocket_errors)]
    with serving() as server:
        idle = server.rss_now()
        for name, scenario in scenarios:
            server.rss.clear()
            before = server.metrics()
            row = scenario(server.url)
            after = server.metrics()
            row["server_5xx"] = sum(v - before.get(k, 0) for k, v in after.items()
                                    if k.startswith("5") and k != "503")
            row["peak_rss_mb"] = round(max(server.rss or [0]) / 2**20)
            row["rss_after_mb"] = round(server.rss_now() / 2**20)
            row["statuses"] = {k: int(v - before.get(k, 0)) for k, v in after.items()
                               if v - before.get(k, 0)}
            if name in ("dropped", "abandoned"):    # what the server made of them
                row["attackers"]["server counted 499"] = row["statuses"].get("499", 0)
            rows.append({"scenario": name, **row})
            print(json.dumps(rows[-1]), flush=True)
        alive = server.process.poll() is None
        tracebacks = server.output().count("Traceback")
    rows.append({"scenario": "server", "idle_rss_mb": round(idle / 2**20), "alive": alive,
                 "tracebacks_in_log": tracebacks})
    print(json.dumps(rows[-1]), flush=True)
    return rows


def service_table(rows: list[dict]) -> str:
    """The service campaign as markdown: what attackers saw, what everyone else saw."""
    def codes(counts: dict) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str)) or "-"
    lines = ["| scenario | the attacking clients got | other clients got (photo p50 / max s) "
             "| /healthz | server 5xx | peak RSS | RSS after |", "|---|---|---|---|---|---|---|"]
    for row in rows[:-1]:
        others = row["others"]
        seen = (f"{codes(others['codes'])} ({others['p50_s']} / {others['max_s']})"
                if others else "-")
        health = f"{others['healthz'][0]} of {others['healthz'][1]}" if others else "-"
        lines.append(f"| {row['attack']} | {codes(row['attackers'])} | {seen} | {health} | "
                     f"{row['server_5xx']} | {row['peak_rss_mb']} MB | {row['rss_after_mb']} MB |")
    server = rows[-1]
    lines.append(f"\nServer idle RSS {server['idle_rss_mb']} MB; alive at the end: "
                 f"{'yes' if server['alive'] else 'NO'}; tracebacks in its log: "
                 f"{server['tracebacks_in_log']}.")
    return "\n".join(lines)


# --- batch jobs ---------------------------------------------------------------------------------


def _batch_command(inputs: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "hrpose", "infer", inputs, "--model",
            str(SHARED / "models" / "tinypose_128x96" / "model.xml"), "--detector", "none",
            "--precision", "fp32", "--format", "parquet", "--part-size", "4", "--out",
            str(out), "--json"]


def _batch(inputs: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_batch_command(inputs, out), capture_output=True, text=True)


def batch_campaign(kills: int, seed: int) -> list[dict]:
    """A batch job over 48 photos in two folders killed `kills` times at random moments and
    rerun each time, then grown by a new folder, then rerun with another model: rows must
    equal an uninterrupted run's, no item twice, the other model refused."""
    from hrpose.batch import read_rows

    rng = random.Random(seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "in"
        photos = sorted((SHARED / "coco-mini-train" / "train2017").glob("*.jpg"))[:52]
        for i, p in enumerate(photos[:48]):
            (root / ("a" if i % 2 else "b")).mkdir(parents=True, exist_ok=True)
            (root / ("a" if i % 2 else "b") / p.name).symlink_to(p)
        pattern = str(root / "**" / "*.jpg")
        whole = Path(tmp) / "whole"
        _batch(pattern, whole)
        reference = sorted(map(json.dumps, _rows(read_rows(whole))))
        out = Path(tmp) / "killed"
        for _k in range(kills):
            process = subprocess.Popen(_batch_command(pattern, out), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(1.5, 6))
            process.send_signal(rng.choice([signal.SIGKILL, signal.SIGINT]))
            process.wait()
        final = _batch(pattern, out)
        got = _rows(read_rows(out))
        keys = [(r["key"], r["person"]) for r in got]
        rows.append({"scenario": f"{kills} kills, then a rerun", "exit": final.returncode,
                     "rows_equal_uninterrupted": sorted(map(json.dumps, got)) == reference,
                     "duplicates": len(keys) - len(set(keys))})
        (root / "c").mkdir()
        for p in photos[48:]:
            (root / "c" / p.name).symlink_to(p)
        grown = _batch(pattern, out)
        summary = json.loads(grown.stdout or "{}")
        got = _rows(read_rows(out))
        keys = [(r["key"], r["person"]) for r in got]
        rows.append({"scenario": "a new folder, then a rerun", "exit": grown.returncode,
                     "skipped": summary.get("skipped"), "done": summary.get("done"),
                     "duplicates": len(keys) - len(set(keys))})
        for p in photos[48:]:               # ... and with nothing left to do
            (root / "c" / p.name).unlink()
        other = subprocess.run(
            [sys.executable, "-m", "hrpose", "infer", pattern, "--model",
             str(SHARED / "models" / "tinypose_256x192" / "model.xml"), "--detector", "none",
             "--precision", "fp32", "--format", "parquet", "--out", str(out)],
            capture_output=True, text=True)
        rows.append({"scenario": "a rerun with another model", "exit": other.returncode,
                     "stderr_lines": other.stderr.count("\n"),
                     "refused": "write to another --out" in other.stderr})
        shutil.rmtree(out, ignore_errors=True)
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def _rows(table) -> list[dict]:
    columns = ("key", "person", "bbox", "score", "keypoints")
    return [{c: r[c] for c in columns} for r in table.to_pylist()]


# --- damaged videos -----------------------------------------------------------------------------


def video_campaign(count: int, seed: int) -> list[dict]:
    """`count` Motion-JPEG videos with random broken frames and random stated frame counts,
    through `hrpose infer` and batch planning: each must be posed with its broken frames
    counted, or refused in one line; planning must plan the frames that are there."""
    from tests.clips import write_damaged_avi

    from hrpose.batch.inputs import expand
    from hrpose.inference.video import MAX_UNDECODABLE

    rng, outcomes, examples = random.Random(seed), {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            frames = rng.randrange(2, 260)
            broken = tuple(sorted(rng.sample(range(frames), rng.randrange(0, frames // 2 + 1))))
            stated = rng.choice([None, frames * 3, 2**31 - 2, 10**7, 1])
            clip = write_damaged_avi(Path(tmp) / f"v{i}.avi", frames, broken, stated)
            done = subprocess.run([sys.executable, "-m", "hrpose", "infer", str(clip), "--model",
                                   str(SHARED / "models" / "tinypose_128x96" / "model.xml"),
                                   "--detector", "none", "--no-draw", "--json", "--out",
                                   str(Path(tmp) / f"o{i}")], capture_output=True, text=True)
            start = time.monotonic()
            planned = sum(it.frames for it in expand(str(clip), [str(clip)], 50))
            plan_s = time.monotonic() - start
            if done.returncode == 0:
                video = json.loads(done.stdout)["videos"][0]
                ok = video["frames"] + video["undecodable"] <= frames and \
                    video["undecodable"] <= MAX_UNDECODABLE
                outcome = "posed, broken frames counted" if ok else "WRONG count"
            elif "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1] \
                    .startswith("hrpose: error:"):
                outcome = "one-line error"
            else:
                outcome = "TRACEBACK"
                examples.append(f"v{i} ({frames} frames, {len(broken)} broken, stated "
                                f"{stated}): {done.stderr.strip().splitlines()[-1][:200]}")
            if planned > frames or plan_s > 10:
                outcome += f"; planning WRONG ({planned} of {frames} frames, {plan_s:.1f} s)"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    row = {"scenario": f"{count} damaged videos (seed {seed})", "outcomes": outcomes,
           **({"examples": examples} if examples else {})}
    print(json.dumps(row), flush=True)
    return [row]
