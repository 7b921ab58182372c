"""The service under clients that do not play by the rules: connections that never finish their
headers, bodies that stop halfway, clients that still send after their answer, work abandoned
by its client, WebSocket frames that break the protocol, and requests generated from the
OpenAPI document itself."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
import time
import urllib.error
import urllib.request

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hrpose.io import encode_jpeg
from hrpose.serve.app import PixelBudget
from hrpose.serve.connections import GuardedHttpProtocol

from .helpers import shared_data
from .serving import raw_websocket, serving, tinypose_settings, websocket_frame
from .test_serve import JPEG, metric, png_header


@pytest.fixture(scope="module")
def demo() -> bytes:
    return shared_data("images", "hrnet_demo.jpg").read_bytes()


@pytest.fixture(scope="module")
def hostile(served_estimator):
    """A service with short deadlines and small bounds, to reach them quickly."""
    options = tinypose_settings(header_timeout_s=1.0, upload_timeout_s=1.0, max_uploads=4,
                                max_queue=4, max_upload_mb=1.0, max_boxes=400,
                                max_pixels=1_000_000, max_pixels_in_flight=1_000_000)
    with serving(options, served_estimator) as url:
        yield url


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _read_all(sock: socket.socket, seconds: float = 5) -> bytes:
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_a_connection_that_never_finishes_its_headers_is_answered_408_and_closed(hostile):
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", _port(hostile))) as sock:
        sock.sendall(b"POST /v1/pose HTTP/1.1\r\nHost: x\r\nContent-Le")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"headers did not arrive" in answer
    assert 0.9 < time.monotonic() - start < 4          # header_timeout_s 1


def test_connections_waiting_for_headers_are_bounded_oldest_first(hostile, demo):
    # The bound is max_uploads + max_queue (8): the ninth waiting connection closes the first.
    socks = [socket.create_connection(("127.0.0.1", _port(hostile))) for _ in range(9)]
    try:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        first = _read_all(socks[0], 0.5)
        assert first.startswith(b"HTTP/1.1 408 ")
        assert len(GuardedHttpProtocol.waiting) <= 8
        # a client that sends its request whole is answered meanwhile
        assert httpx.post(hostile + "/v1/pose", content=demo, headers=JPEG).status_code == 200
    finally:
        for sock in socks:
            sock.close()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_client_that_leaves_mid_upload_is_one_log_line_and_counted_apart(hostile, demo):
    log, logger = _Records(), logging.getLogger("uvicorn.error")
    level = logger.level
    logger.addHandler(log)
    logger.setLevel(logging.INFO)             # the line is at info (the server logs warnings)
    try:
        _leave_mid_upload(hostile, demo)
    finally:
        logger.removeHandler(log)
        logger.setLevel(level)
    text = httpx.get(hostile + "/metrics").text
    assert metric(text, "hrpose_requests_total", route="/v1/pose", status="499") >= 1
    assert metric(text, "hrpose_requests_total", route="/v1/pose", status="500") == 0
    gone = [r for r in log.records if "went away during its upload" in r.getMessage()]
    assert gone and all(r.exc_info is None for r in log.records)


def _leave_mid_upload(hostile: str, demo: bytes) -> None:
    with socket.create_connection(("127.0.0.1", _port(hostile))) as sock:
        sock.sendall(b"POST /v1/pose HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(demo) + demo[:1000])
        time.sleep(0.2)
    time.sleep(0.3)


def test_an_oversize_upload_gets_its_413_while_the_client_is_still_sending(hostile):
    body = os.urandom(3 * 2**20)                   # the limit is 1 MiB
    for _ in range(5):                             # urllib sends it all, then reads
        request = urllib.request.Request(hostile + "/v1/pose", data=body, headers=JPEG)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 413
        assert "--max-upload-mb" in json.loads(refused.value.read())["error"]["message"]


def test_work_of_a_request_that_timed_out_is_dropped_not_computed(served_estimator, demo):
    options = tinypose_settings(max_boxes=400, timeout_s=0.2, max_batch=8)
    boxes = json.dumps([[100 + i % 50, 50, 200, 400] for i in range(400)])
    with serving(options, served_estimator) as url:
        r = httpx.post(url + "/v1/pose", content=demo, headers=JPEG, params={"boxes": boxes})
        assert r.status_code == 504
        time.sleep(1.5)
        crops = metric(httpx.get(url + "/metrics").text, "hrpose_batch_size_sum", model="pose")
        # 400 crops take about a second here; those not reached by 0.2 s are dropped
        assert 0 < crops < 300, crops
        assert httpx.post(url + "/v1/pose", content=demo, headers=JPEG).status_code == 200


def test_decoded_pixels_in_flight_are_bounded_and_requests_wait_their_turn(hostile):
    # Each image is 0.75 M pixels and the budget 1 M: they are answered one at a time.
    image = encode_jpeg(np.broadcast_to(np.arange(1000, dtype=np.uint8)[None, :, None] // 4,
                                        (750, 1000, 3)))

    async def run() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as client:
            answers = await asyncio.gather(*(client.post(hostile + "/v1/pose", content=image,
                                                         headers=JPEG) for _ in range(4)))
        return [a.status_code for a in answers]
    assert asyncio.run(run()) == [200] * 4
    budget = PixelBudget(100)
    held: list[str] = []

    async def hold(name: str, pixels: int, seconds: float) -> None:
        async with budget.hold(pixels):
            held.append(f"+{name}")
            await asyncio.sleep(seconds)
            held.append(f"-{name}")

    async def three() -> None:
        await asyncio.gather(hold("a", 60, 0.05), hold("b", 60, 0.01), hold("c", 40, 0.01))
    asyncio.run(three())
    assert held.index("+b") > held.index("-a") and budget.used == 0


def test_a_pixel_bomb_and_a_tiff_with_its_size_anywhere_are_refused_before_decoding(hostile):
    entries = [(65000 + i % 500, 3, 1, 0) for i in range(600)] + [
        (256, 4, 1, 20000), (257, 4, 1, 20000), (259, 3, 1, 8), (262, 3, 1, 2)]
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", *e) for e in entries) + b"\0" * 4
    for body, size in ((tiff, "20000x20000"), (png_header(30_000, 30_000), "30000x30000")):
        r = httpx.post(hostile + "/v1/pose", content=body, headers=JPEG)
        assert r.status_code == 413 and size in r.json()["error"]["message"]


@pytest.mark.parametrize(("frame", "code"), [
    (websocket_frame(0x82, b"jpeg", masked=False), 1002),  # a client's frames are masked
    (websocket_frame(0x83, b"what"), 1002),                # a reserved opcode
    (websocket_frame(0x81, b"\xff\xfe\xfd"), 1007),        # text that is not UTF-8
])
def test_websocket_protocol_errors_are_closed_at_once_with_their_code(hostile, frame, code,
                                                                      caplog):
    start = time.monotonic()
    with raw_websocket(hostile) as sock:
        sock.sendall(frame)
        answer = _read_all(sock)
    assert answer[0] & 0x0F == 8 and struct.unpack(">H", answer[2:4])[0] == code
    assert time.monotonic() - start < 2
    assert not any(r.exc_info for r in caplog.records)


# --- requests generated from the OpenAPI document ----------------------------------------------


def _value(schema: dict) -> st.SearchStrategy:
    """Values for a query parameter: what its schema allows, and what it does not."""
    kinds = schema.get("anyOf", [schema])
    anything = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                         st.text(max_size=30), st.just(""))
    typed = []
    for kind in kinds:
        if kind.get("type") == "integer":
            typed.append(st.integers(kind.get("minimum", -2**64), kind.get("maximum", 2**64)))
        elif kind.get("type") == "number":
            typed.append(st.floats(kind.get("minimum"), kind.get("maximum")))
        elif kind.get("type") == "string":
            typed.append(st.from_regex(kind["pattern"], fullmatch=True) if "pattern" in kind
                         else st.text(max_size=60))
    return st.one_of(*typed, anything) if typed else anything


@pytest.fixture(scope="module")
def document(hostile) -> dict:
    return httpx.get(hostile + "/openapi.json").json()


def _bodies(demo: bytes) -> st.SearchStrategy:
    image = st.sampled_from([demo, demo[:4000], b"", b"GIF89a\x01", png_header(2000, 2000)])
    mutated = st.builds(lambda b, i, v: b[:i] + bytes([v]) + b[i + 1:], st.just(demo),
                        st.integers(0, 3000), st.integers(0, 255))
    return st.one_of(image, mutated, st.binary(max_size=2000))


@pytest.mark.slow
def test_requests_from_the_openapi_document_never_get_a_server_error(hostile, document, demo):
    operations = [(path, method, op) for path, item in document["paths"].items()
                  for method, op in item.items()]
    kinds = ["image/jpeg", "image/png", "multipart/form-data", "text/plain", ""]
    statuses: dict[int, int] = {}

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one(data: st.DataObject) -> None:
        path, method, op = data.draw(st.sampled_from(operations))
        params = {p["name"]: data.draw(_value(p["schema"]))
                  for p in op.get("parameters", []) if data.draw(st.booleans())}
        params = {k: str(v) for k, v in params.items()}
        if method == "get":
            r = httpx.get(hostile + path, params=params, timeout=30)
        else:
            kind = data.draw(st.sampled_from(kinds))
            body = data.draw(_bodies(demo))
            if kind == "multipart/form-data":
                files = {"image": ("i.jpg", body, "image/jpeg")}
                if data.draw(st.booleans()):
                    files["boxes"] = (None, data.draw(st.text(max_size=40)).encode(), None)
                r = httpx.post(hostile + path, params=params, files=files, timeout=30)
            else:
                r = httpx.post(hostile + path, params=params, content=body,
                               headers={"Content-Type": kind} if kind else {}, timeout=30)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code < 500, (path, params, r.text)
        documented = {int(s) for s in op["responses"]}
        assert r.status_code in documented, (path, r.status_code, sorted(documented))
        if r.status_code >= 400:
            error = r.json()["error"]
            assert error["status"] == r.status_code and "\n" not in error["message"]
    one()
    assert statuses.get(200, 0) > 5 and len(statuses) >= 4      # both accepted and refused


def test_the_openapi_document_states_the_limits(document):
    body = document["paths"]["/v1/pose"]["post"]["requestBody"]
    assert "1,048,576 bytes" in body["description"] and "1,000,000 pixels" in body["description"]
    image = body["content"]["image/jpeg"]["schema"]
    assert (image["minLength"], image["maxLength"]) == (1, 2**20)
    assert "at most 400 boxes" in json.dumps(body)
    image_id = next(p for p in document["paths"]["/v1/pose"]["post"]["parameters"]
                    if p["name"] == "image_id")
    assert image_id["schema"]["maximum"] == 2**63 - 1
    assert {"408", "413", "503"} <= set(document["paths"]["/v1/pose"]["post"]["responses"])
