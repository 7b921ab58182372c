"""hrpose serve: every route on the real shared models (PP-TinyPose and the PicoDet detector,
OpenVINO) through a real uvicorn on 127.0.0.1, every limit with its status, the API key, CORS,
batching across requests, readiness, metrics, SIGTERM draining, the stream and the client."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from hrpose.cli import main
from hrpose.client import PoseClient, ServiceError
from hrpose.errors import HrposeError
from hrpose.inference.options import EstimatorOptions
from hrpose.io import encode_jpeg, read_image
from hrpose.serve.service import PoseService
from hrpose.serve.settings import ServeSettings
from hrpose.skeletons import get_skeleton

from .helpers import shared_data
from .serving import free_port, serving, tinypose_settings

JPEG = {"Content-Type": "image/jpeg"}


@pytest.fixture(scope="module")
def settings() -> ServeSettings:
    return tinypose_settings()


@pytest.fixture(scope="module")
def estimator(served_estimator):
    return served_estimator


@pytest.fixture(scope="module")
def server(settings, estimator):
    with serving(settings, estimator) as url:
        yield url


@pytest.fixture(scope="module")
def demo() -> Path:
    return shared_data("images", "hrnet_demo.jpg")


def png_header(width: int, height: int) -> bytes:
    """A PNG that states width x height pixels and holds one tiny compressed row: a
    decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of Prometheus text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)"
    found = re.search("^" + pattern + "$", text, re.M)
    return float(found.group(1)) if found else 0.0


# --- the routes -------------------------------------------------------------------------------


def test_pose_answers_what_the_estimator_finds(server, estimator, demo):
    r = httpx.post(server + "/v1/pose", content=demo.read_bytes(), headers=JPEG)
    assert r.status_code == 200, r.text
    body = r.json()
    image = read_image(demo)
    expected = estimator(image, color="rgb")
    assert body["image"] == {"width": image.shape[1], "height": image.shape[0]}
    assert body["model"] == "tinypose_256x192"
    assert len(body["people"]) == len(expected) == 1
    person = body["people"][0]
    np.testing.assert_allclose(person["keypoints"], expected[0].keypoints, atol=0.0051)
    np.testing.assert_allclose(person["box"], expected[0].box, atol=0.0051)
    assert person["score"] == pytest.approx(expected[0].score, abs=1e-5)
    timing = body["timing_ms"]
    assert set(timing) == {"decode", "detect", "pose", "total"}
    assert 0 < timing["pose"] <= timing["total"]
    assert r.headers["server-timing"].startswith("decode;dur=")


def test_a_form_with_boxes_skips_the_detector(server, estimator, demo):
    boxes = [[60, 10, 240, 400, 0.9], [0, 0, 120, 120]]
    r = httpx.post(server + "/v1/pose", files={"image": ("p.jpg", demo.read_bytes(), "image/jpeg")},
                   data={"boxes": json.dumps(boxes)})
    assert r.status_code == 200, r.text
    people = r.json()["people"]
    expected = estimator(read_image(demo), np.array(boxes[:1] + [[0, 0, 120, 120, 1.0]]),
                         color="rgb")
    assert [p["box"] for p in people] == [[60, 10, 240, 400], [0, 0, 120, 120]]
    assert [p["box_score"] for p in people] == [0.9, 1.0]
    for got, want in zip(people, expected):
        np.testing.assert_allclose(got["keypoints"], want.keypoints, atol=0.0051)
    # The raw body takes its boxes in the query.
    r = httpx.post(server + "/v1/pose", params={"boxes": json.dumps(boxes[:1])},
                   content=demo.read_bytes(), headers=JPEG)
    np.testing.assert_allclose(r.json()["people"][0]["keypoints"], people[0]["keypoints"])


def test_coco_rows_score_like_hrpose_eval_on_coco_tiny(server, tmp_path):
    """?format=coco gives the exchange format: coco-tiny's images with their ground-truth
    boxes, posted one by one, score what `hrpose eval` scores for the same model."""
    root = shared_data("coco-tiny")
    data = json.loads((root / "annotations/person_keypoints_val2017.json").read_text())
    rows = []
    for image in data["images"]:
        boxes = []
        for a in data["annotations"]:
            if a["image_id"] == image["id"] and not a.get("iscrowd"):
                x, y, w, h = a["bbox"]          # clipped to the image, as eval clips them
                x1, y1 = min(x + w, image["width"]), min(y + h, image["height"])
                boxes.append([max(x, 0), max(y, 0), x1 - max(x, 0), y1 - max(y, 0)])
        r = httpx.post(server + "/v1/pose", params={"format": "coco", "image_id": image["id"],
                                                   "boxes": json.dumps(boxes)},
                       content=(root / "val2017" / image["file_name"]).read_bytes(), headers=JPEG)
        assert r.status_code == 200, r.text
        assert all(row["image_id"] == image["id"] and len(row["keypoints"]) == 51
                   for row in r.json())
        rows += r.json()
    (tmp_path / "served.json").write_text(json.dumps(rows))
    model = str(shared_data("models", "tinypose_256x192", "model.xml"))
    stats = {}
    for name, extra in (("served", ["--results", str(tmp_path / "served.json")]),
                        ("eval", [model, "--no-flip", "--decode", "classic", "--precision",
                                  "fp32"])):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["eval", *extra, "--data", str(root), "--json",
                         "--out", str(tmp_path / name)]) == 0
        stats[name] = json.loads(out.getvalue())["AP"]
    assert 0.80 <= stats["served"] <= 0.85, stats       # ../shared/data/README.md's band
    assert stats["served"] == pytest.approx(stats["eval"], abs=0.005), stats


def test_draw_answers_a_jpeg_with_the_skeleton_on_the_person(server, demo):
    r = httpx.post(server + "/v1/pose/draw", content=demo.read_bytes(), headers=JPEG)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-people"] == "1"
    drawn = cv2.cvtColor(cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR),
                         cv2.COLOR_BGR2RGB)
    original = read_image(demo)
    assert drawn.shape == original.shape
    changed = np.abs(drawn.astype(int) - original).max(-1) > 60
    ys, xs = np.nonzero(changed)
    box = httpx.post(server + "/v1/pose", content=demo.read_bytes(),
                     headers=JPEG).json()["people"][0]["box"]
    inside = (xs >= box[0] - 8) & (xs <= box[0] + box[2] + 8) & (ys >= box[1] - 30) & (
        ys <= box[1] + box[3] + 8)
    assert changed.sum() > 2000 and inside.mean() > 0.99


def test_model_card_says_what_a_client_needs_to_draw(server):
    card = httpx.get(server + "/v1/model").json()
    coco = get_skeleton("coco")
    assert card["kind"] == "topdown" and card["input_size"] == {"width": 192, "height": 256}
    assert card["keypoints"]["names"] == list(coco.joints)
    assert card["keypoints"]["links"] == [list(link) for link in coco.links]
    assert len(card["keypoints"]["link_colours"]) == len(coco.links)
    assert all(re.fullmatch("#[0-9a-f]{6}", c) for c in card["keypoints"]["joint_colours"])
    left = coco.joints.index("left_wrist")
    assert card["keypoints"]["joint_colours"][left] == "#00c8ff"      # draw.LEFT
    assert (card["backend"], card["precision"], card["codec"]) == ("openvino", "fp32",
                                                                    "classic")
    assert card["detector"].endswith("picodet_s_320_pedestrian")
    docs = httpx.get(server + "/openapi.json").json()
    assert {"/v1/pose", "/v1/pose/draw", "/v1/model", "/healthz", "/readyz",
            "/metrics"} <= set(docs["paths"])
    assert "multipart/form-data" in docs["paths"]["/v1/pose"]["post"]["requestBody"]["content"]
    assert httpx.get(server + "/docs").status_code == 200
    assert httpx.get(server + "/docs/assets/swagger-ui-bundle.js").status_code == 200


# --- limits -----------------------------------------------------------------------------------


def test_every_limit_answers_its_status_with_a_json_error(estimator, demo, tmp_path):
    settings = tinypose_settings(max_upload_mb=1.0, max_pixels=1_000_000)
    good = demo.read_bytes()
    big = encode_jpeg(np.random.default_rng(0).integers(0, 255, (1100, 1000, 3), np.uint8))
    assert len(big) > 2**20
    cases = [
        ("oversize body", {"content": big, "headers": JPEG}, 413, "--max-upload-mb"),
        ("oversize, no length", {"content": iter([big[:600_000], big[600_000:]]),
                                 "headers": JPEG}, 413, "--max-upload-mb"),
        ("pixel bomb", {"content": png_header(30_000, 30_000),
                        "headers": {"Content-Type": "image/png"}}, 413, "--max-pixels"),
        ("text type", {"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415,
         "not an image"),
        ("text body", {"content": b"hello there", "headers": JPEG}, 415, "not an image"),
        ("empty body", {"content": b"", "headers": JPEG}, 422, "empty"),
        ("truncated JPEG", {"content": good[:3000], "headers": JPEG}, 422, "cannot decode"),
        ("form without image", {"files": {"picture": ("p.jpg", good, "image/jpeg")}}, 422,
         "no field 'image'"),
        ("boxes not JSON", {"content": good, "headers": JPEG, "params": {"boxes": "[[1,2"}},
         422, "not JSON"),
        ("boxes of 2", {"content": good, "headers": JPEG, "params": {"boxes": "[[1, 2]]"}},
         422, "shape"),
        ("box outside", {"content": good, "headers": JPEG,
                         "params": {"boxes": "[[5000, 10, 50, 50]]"}}, 422, "outside"),
        ("bad format", {"content": good, "headers": JPEG, "params": {"format": "xml"}}, 422,
         "format"),
        ("image_id past 64 bits", {"content": good, "headers": JPEG,
                                   "params": {"format": "coco", "image_id": str(2**64)}}, 422,
         "image_id"),
        ("long boundary", {"content": b"--" + b"b" * 300 + b"\r\n", "headers": {
            "Content-Type": "multipart/form-data; boundary=" + "b" * 300}}, 400, "multipart"),
        ("box beyond float32", {"content": good, "headers": JPEG,
                                "params": {"boxes": "[[0, 0, 1e200, 1e200]]"}}, 422, "finite"),
        ("too many boxes", {"content": good, "headers": JPEG,
                            "params": {"boxes": json.dumps([[1, 1, 20, 20]] * 101)}}, 422,
         "--max-boxes"),
    ]
    before = set(os.listdir(tmp_path))
    with serving(settings, estimator) as url:
        for name, request, status, words in cases:
            r = httpx.post(url + "/v1/pose", **request)
            assert r.status_code == status, (name, r.text)
            error = r.json()["error"]
            assert error["status"] == status and words in error["message"], (name, error)
            assert "\n" not in error["message"]
        assert httpx.post(url + "/v1/pose", content=good, headers=JPEG).status_code == 200
        metrics = httpx.get(url + "/metrics").text
    assert metric(metrics, "hrpose_requests_total", route="/v1/pose", status="413") == 3
    assert metric(metrics, "hrpose_requests_total", route="/v1/pose", status="415") == 2
    assert set(os.listdir(tmp_path)) == before


def _post_all(url: str, bodies: list[bytes], **params: str) -> list[httpx.Response]:
    """Every body posted at once (one connection each)."""
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=64)) as c:
            return await asyncio.gather(*(c.post(url + "/v1/pose", content=b, headers=JPEG,
                                                 params=params) for b in bodies))
    return asyncio.run(run())


def slow_body(data: bytes, seconds: float, pieces: int = 10) -> Iterator[bytes]:
    """`data` sent in pieces over `seconds` (chunked): a request that stays in flight."""
    step = -(-len(data) // pieces)
    for i in range(0, len(data), step):
        time.sleep(seconds / pieces)
        yield data[i : i + step]


def _post_in_threads(url: str, bodies: list[object]) -> tuple[list[threading.Thread], list]:
    """Each body posted from its own thread; answers (or the exception a client whose
    connection was closed under it gets) in the list as they come."""
    answers: list[httpx.Response | Exception] = []

    def post(body: object) -> None:
        try:
            answers.append(httpx.post(url + "/v1/pose", content=body, headers=JPEG, timeout=30))
        except httpx.HTTPError as e:
            answers.append(e)
    threads = [threading.Thread(target=post, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    return threads, answers


@pytest.mark.slow
def test_slow_uploads_lose_their_own_requests_and_hold_no_place_in_the_queue(estimator, demo):
    data = demo.read_bytes()
    with serving(tinypose_settings(max_queue=1, max_uploads=2, upload_timeout_s=1.0),
                 estimator) as url:
        # Two clients send a byte now and then: they hold both upload places, not the queue.
        threads, slow = _post_in_threads(url, [slow_body(data, 4.0, 40) for _ in range(2)])
        time.sleep(0.4)
        busy = httpx.post(url + "/v1/pose", content=data, headers=JPEG)
        assert busy.status_code == 503 and "--max-uploads" in busy.json()["error"]["message"]
        assert busy.headers["retry-after"] == "1"
        time.sleep(1.0)             # past their deadline: 408, and their places are free
        assert httpx.post(url + "/v1/pose", content=data, headers=JPEG).status_code == 200
        for t in threads:
            t.join(30)
        assert all(isinstance(a, httpx.HTTPError) or a.status_code == 408 for a in slow), slow
        text = httpx.get(url + "/metrics").text
        assert metric(text, "hrpose_requests_total", route="/v1/pose", status="408") == 2


@pytest.mark.slow
def test_a_full_queue_is_503_and_a_slow_answer_504_with_its_work_dropped(estimator, demo,
                                                                        monkeypatch):
    data = demo.read_bytes()
    estimate = PoseService.estimate

    async def slowly(self, *args, **kwargs):      # work that takes a while
        await asyncio.sleep(1.0)
        return await estimate(self, *args, **kwargs)
    monkeypatch.setattr(PoseService, "estimate", slowly)
    with serving(tinypose_settings(max_queue=2), estimator) as url:
        answers = _post_all(url, [data] * 5)
        codes = sorted(r.status_code for r in answers)
        assert codes == [200, 200, 503, 503, 503]
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.headers["retry-after"] == "1"
        assert "--max-queue" in busy.json()["error"]["message"]
    with serving(tinypose_settings(timeout_s=0.5), estimator) as url:
        r = httpx.post(url + "/v1/pose", content=data, headers=JPEG)
        assert r.status_code == 504 and "--timeout-s" in r.json()["error"]["message"]


def test_the_api_key_guards_every_route_but_health_and_the_page(estimator, demo):
    key = "k3y-for-tests-0123456789"
    with serving(tinypose_settings(api_key=key), estimator) as url:
        assert httpx.get(url + "/healthz").status_code == 200
        assert httpx.get(url + "/").status_code == 200
        assert httpx.get(url + "/static/app.js").status_code == 200
        for route in ("/readyz", "/metrics", "/v1/model"):
            r = httpx.get(url + route)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", route
            assert httpx.get(url + route, headers={"Authorization": "Bearer nope"}
                             ).status_code == 401
            # any byte may come: a key with non-ASCII characters is wrong, not an error
            assert httpx.get(url + route, headers={"Authorization": "Bearer k\xe9y".encode(
                "latin-1")}).status_code == 401
            assert httpx.get(url + route, headers={"Authorization": f"Bearer {key}"}
                             ).status_code == 200
        assert httpx.post(url + "/v1/pose", content=demo.read_bytes(), headers=JPEG
                          ).status_code == 401
        with pytest.raises(ServiceError) as refused:
            PoseClient(url).pose(demo)
        assert refused.value.status == 401
        assert len(PoseClient(url, api_key=key).pose(demo)["people"]) == 1
        from websockets.exceptions import InvalidStatus
        from websockets.sync.client import connect

        ws_url = url.replace("http", "ws") + "/v1/stream"
        with pytest.raises(InvalidStatus):
            connect(ws_url)
        with connect(ws_url, subprotocols=["hrpose", f"bearer.{key}"]) as socket:
            socket.send(demo.read_bytes())
            assert len(json.loads(socket.recv())["people"]) == 1
        [frame] = PoseClient(url, api_key=key).stream([demo])
        assert frame["frame"] == 0
    with pytest.raises(HrposeError, match="at least 16 characters"):
        ServeSettings(api_key="short")


def test_cors_is_off_unless_origins_are_named(server, estimator):
    origin = {"Origin": "http://example.test"}
    assert "access-control-allow-origin" not in httpx.get(server + "/v1/model",
                                                          headers=origin).headers
    with serving(tinypose_settings(cors_origins=("http://example.test",)), estimator) as url:
        pre = httpx.options(url + "/v1/pose", headers={
            **origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "http://example.test"
        other = httpx.get(url + "/v1/model", headers={"Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in other.headers


# --- batching, readiness, metrics, draining ---------------------------------------------------


@pytest.mark.slow
def test_concurrent_requests_share_model_calls_and_get_single_call_answers(estimator):
    root = shared_data("coco-tiny", "val2017")
    images = [read_image(p) for p in sorted(root.glob("*.jpg"))]
    bodies = [encode_jpeg(im) for im in images] + [encode_jpeg(im[:, ::-1]) for im in images]
    settings = tinypose_settings(max_wait_ms=300, max_batch=16)
    with serving(settings, estimator) as url:
        single = [httpx.post(url + "/v1/pose", content=b, headers=JPEG).json()
                  for b in bodies]
        before = httpx.get(url + "/metrics").text
        together = [r.json() for r in _post_all(url, bodies)]
        after = httpx.get(url + "/metrics").text
    crops = sum(len(s["people"]) for s in single)
    assert crops >= 20
    for one, many in zip(single, together):
        assert len(one["people"]) == len(many["people"])
        for a, b in zip(one["people"], many["people"]):
            np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=1e-4)
    calls = (metric(after, "hrpose_batch_size_count", model="pose")
             - metric(before, "hrpose_batch_size_count", model="pose"))
    rows = (metric(after, "hrpose_batch_size_sum", model="pose")
            - metric(before, "hrpose_batch_size_sum", model="pose"))
    assert rows == crops
    assert calls < len(bodies) / 2, (calls, len(bodies))
    assert metric(after, "hrpose_batch_size_count", model="detector") - metric(
        before, "hrpose_batch_size_count", model="detector") < len(bodies) / 2


def test_readiness_waits_for_the_warm_up(estimator, demo, monkeypatch):
    release = threading.Event()
    warm_up = PoseService.warm_up

    def slow_warm_up(self: PoseService) -> None:
        release.wait(30)
        warm_up(self)

    monkeypatch.setattr(PoseService, "warm_up", slow_warm_up)
    with serving(tinypose_settings(), estimator, ready=False) as url:
        assert httpx.get(url + "/healthz").status_code == 200
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503 and "loading" in r.json()["error"]["message"]
        r = httpx.post(url + "/v1/pose", content=demo.read_bytes(), headers=JPEG)
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        release.set()
        deadline = time.monotonic() + 30
        while httpx.get(url + "/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert httpx.post(url + "/v1/pose", content=demo.read_bytes(), headers=JPEG
                          ).status_code == 200


def test_a_model_that_fails_to_load_says_why_on_readyz(tmp_path, demo):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    with serving(ServeSettings(model=str(broken), options=EstimatorOptions(detector=None)),
                 ready=False) as url:
        deadline = time.monotonic() + 30
        while "failed" not in httpx.get(url + "/readyz").text:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503 and "broken.onnx" in r.json()["error"]["message"]
        r = httpx.post(url + "/v1/pose", content=demo.read_bytes(), headers=JPEG)
        assert r.status_code == 503 and "failed to load" in r.json()["error"]["message"]
        assert httpx.get(url + "/healthz").status_code == 200


def test_freed_memory_goes_back_a_second_after_the_last_request(server, demo, monkeypatch):
    from hrpose.serve import app

    trims: list[float] = []
    monkeypatch.setattr(app, "release_freed_memory", lambda: trims.append(time.monotonic()))
    for _ in range(3):
        httpx.post(server + "/v1/pose", content=demo.read_bytes(), headers=JPEG)
    done = time.monotonic()
    time.sleep(1.6)
    assert len(trims) == 1 and trims[0] - done > 0.9       # once, after the last one


def test_metrics_move_with_requests(server, demo):
    before = httpx.get(server + "/metrics").text
    for _ in range(3):
        httpx.post(server + "/v1/pose", content=demo.read_bytes(), headers=JPEG)
    httpx.post(server + "/v1/pose", content=b"nope", headers=JPEG)
    after = httpx.get(server + "/metrics").text
    labels = {"route": "/v1/pose", "status": "200"}
    assert metric(after, "hrpose_requests_total", **labels) - metric(
        before, "hrpose_requests_total", **labels) == 3
    assert metric(after, "hrpose_requests_total", route="/v1/pose", status="415") >= 1
    assert metric(after, "hrpose_request_seconds_count", route="/v1/pose") - metric(
        before, "hrpose_request_seconds_count", route="/v1/pose") == 4
    assert metric(after, "hrpose_people_per_image_sum") - metric(
        before, "hrpose_people_per_image_sum") == 3
    assert metric(after, "hrpose_batch_size_count", model="pose") > metric(
        before, "hrpose_batch_size_count", model="pose")
    assert "hrpose_queue_depth{model=\"detector\"} 0.0" in after
    assert "hrpose_requests_in_flight 0.0" in after
    # Unknown paths count under one label, so they cannot grow the label set.
    httpx.get(server + "/no/such/path/123")
    assert 'route="other",status="404"' in httpx.get(server + "/metrics").text


def _serve_command(port: int, *extra: str) -> list[str]:
    settings = tinypose_settings()
    return [sys.executable, "-m", "hrpose", "serve", settings.model, "--detector",
            settings.options.detector, "--precision", "fp32", "--port", str(port), "--log-level",
            "warning", *extra]


def _wait_ready(url: str, process: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not get ready"
        time.sleep(0.1)


@pytest.mark.slow
def test_sigterm_answers_every_request_in_flight_then_exits(demo):
    sock = free_port()
    port = sock.getsockname()[1]
    sock.close()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(_serve_command(port), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        _wait_ready(url, process)
        # Six requests whose bodies take 1.5 s to arrive: all in flight when the signal comes.
        threads, answers = _post_in_threads(url, [slow_body(demo.read_bytes(), 1.5)
                                                  for _ in range(6)])
        time.sleep(0.5)
        assert not answers
        process.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(30)
        assert [r.status_code for r in answers] == [200] * 6
        assert all(len(r.json()["people"]) == 1 for r in answers)
        # uvicorn drains, shuts the application down, then dies of the signal it was sent
        assert process.wait(30) in (0, -signal.SIGTERM)
        log = process.communicate()[0]
        assert "Traceback" not in log and "ERROR" not in log, log
    finally:
        if process.poll() is None:
            process.kill()
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/healthz")


@pytest.mark.slow
def test_workers_each_serve_their_own_model(demo):
    sock = free_port()
    port = sock.getsockname()[1]
    sock.close()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(_serve_command(port, "--workers", "2"), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        _wait_ready(url, process)
        answers = _post_all(url, [demo.read_bytes()] * 6)
        assert [len(r.json()["people"]) for r in answers] == [1] * 6
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_refuses_bad_settings_in_one_line(capsys, tmp_path):
    assert main(["serve", str(tmp_path / "missing.xml")]) == 2
    assert main(["serve", "hrnet_w32_256x192", "--api-key", "short"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("hrpose: error: ") for line in err), err
    assert "missing.xml" in err[0] and "16 characters" in err[1]


# --- the stream and the client ----------------------------------------------------------------


def test_the_stream_tracks_and_smooths_like_infer_smooth(server, demo):
    image = read_image(demo)
    frames = [encode_jpeg(np.roll(image, 6 * i, axis=1)) for i in range(4)]
    client = PoseClient(server)
    raw = list(client.stream(frames, smooth=False))
    smooth = list(client.stream(frames, smooth=True))
    assert [f["frame"] for f in smooth] == [0, 1, 2, 3]
    assert all([p["track_id"] for p in f["people"]] == [0] for f in raw + smooth)
    single = [client.pose(f)["people"][0]["keypoints"] for f in frames]
    for r, s in zip(raw, single):
        np.testing.assert_allclose(r["people"][0]["keypoints"], s)
    first = [np.array(f["people"][0]["keypoints"]) for f in (raw[0], smooth[0])]
    np.testing.assert_allclose(first[0], first[1])
    # Later frames move right by 6 px a frame; the smoothed track lags behind the raw one.
    x_raw = np.array([np.array(f["people"][0]["keypoints"])[:, 0].mean() for f in raw])
    x_smooth = np.array([np.array(f["people"][0]["keypoints"])[:, 0].mean() for f in smooth])
    assert (x_smooth[1:] < x_raw[1:] - 0.5).all() and (x_smooth[1:] > x_raw[0]).all()


def test_a_bad_frame_is_answered_and_the_stream_goes_on(server, demo):
    from websockets.sync.client import connect

    with connect(server.replace("http", "ws") + "/v1/stream") as socket:
        socket.send("not a frame")
        assert json.loads(socket.recv())["error"]["status"] == 415
        socket.send(demo.read_bytes()[:2000])
        assert json.loads(socket.recv())["error"]["status"] == 422
        socket.send(demo.read_bytes())
        reply = json.loads(socket.recv())
        assert reply["frame"] == 2 and reply["people"][0]["track_id"] == 0


def test_the_client_takes_paths_arrays_pil_images_and_bytes(server, demo):
    from PIL import Image

    with PoseClient(server) as client:
        assert client.ready() and client.model()["name"] == "tinypose_256x192"
        found = [client.pose(x)["people"] for x in (demo, str(demo), demo.read_bytes())]
        assert found[0] == found[1] == found[2] and len(found[0]) == 1
        for image in (read_image(demo), Image.open(demo)):
            # sent as a new JPEG: near, not equal (a joint may move by a heatmap quarter pixel)
            people = client.pose(image)["people"]
            moved = np.abs(np.subtract(people[0]["keypoints"], found[0][0]["keypoints"]))
            assert np.median(moved[:, :2]) < 0.5 and moved[:, :2].max() < 8
        rows = client.pose(demo, format="coco", image_id=9)
        assert rows[0]["image_id"] == 9 and len(rows[0]["keypoints"]) == 51
        assert client.pose(demo, boxes=np.array([[60, 10, 240, 400]]))["people"][0]["box"] == [
            60, 10, 240, 400]
        assert client.draw(demo)[:2] == b"\xff\xd8"
        with pytest.raises(ServiceError, match="415"):
            client.pose(b"hello")


def test_a_bottom_up_model_serves_whole_images(demo):
    settings = ServeSettings(model="higherhrnet_w32_512", options=EstimatorOptions(
        weights="none"), max_batch=2)
    with serving(settings) as url:
        card = httpx.get(url + "/v1/model").json()
        assert card["kind"] == "bottomup" and card["detector"] is None
        r = httpx.post(url + "/v1/pose", content=demo.read_bytes(), headers=JPEG)
        assert r.status_code == 200 and isinstance(r.json()["people"], list)
        r = httpx.post(url + "/v1/pose", params={"boxes": "[[0, 0, 50, 50]]"},
                       content=demo.read_bytes(), headers=JPEG)
        assert r.status_code == 422 and "bottom-up" in r.json()["error"]["message"]


def test_the_batcher_fills_batches_in_order_and_one_bad_job_fails_alone():
    from hrpose.serve.batcher import Batcher

    calls: list[list[str]] = []

    def run(payloads: list[str]) -> list[str]:
        calls.append(list(payloads))
        if "bad" in payloads:
            raise ValueError("a bad job")
        return [p * 2 for p in payloads]

    batcher = Batcher("test", run, max_batch=4, max_wait_ms=300)
    batcher.start()

    async def submit_all(jobs: list[tuple[str, int]]) -> list[object]:
        tickets = [batcher.ticket() for _ in jobs]      # as requests take them on arrival
        return await asyncio.gather(*(batcher.submit(p, cost, t)
                                      for (p, cost), t in zip(jobs, tickets)),
                                    return_exceptions=True)

    assert asyncio.run(submit_all([("a", 1), ("b", 2), ("c", 2)])) == ["aa", "bb", "cc"]
    assert calls == [["a", "b"], ["c"]]         # c did not fit beside a and b: next batch
    calls.clear()
    found = asyncio.run(submit_all([("bad", 1), ("x", 1)]))
    assert isinstance(found[0], ValueError) and found[1] == "xx"
    assert calls == [["bad", "x"], ["bad"], ["x"]]
    assert batcher.calls == 3
    batcher.stop()
    # Alone, a job does not wait for company: no ticket is out.
    alone = Batcher("alone", run, max_batch=4, max_wait_ms=5000)
    alone.start()
    start = time.monotonic()
    assert asyncio.run(alone.submit("z")) == "zz" and time.monotonic() - start < 1
    alone.stop()
    late = asyncio.run(submit_all([("late", 1)]))[0]
    assert isinstance(late, HrposeError) and "not running" in str(late)
