"""A real uvicorn server in a thread, on a free port of 127.0.0.1, for the service's tests (and
the models they serve)."""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from hrpose.inference.estimator import PoseEstimator
from hrpose.inference.options import EstimatorOptions
from hrpose.serve.app import create_app
from hrpose.serve.connections import uvicorn_options
from hrpose.serve.settings import ServeSettings

from .helpers import shared_data


def tinypose_settings(**changes: object) -> ServeSettings:
    """PP-TinyPose 256x192 with the PicoDet person detector (both real, OpenVINO), in fp32 so
    that results do not depend on how requests were batched."""
    options = EstimatorOptions.build(
        detector=str(shared_data("models", "picodet_s_320_pedestrian")), precision="fp32")
    return ServeSettings(model=str(shared_data("models", "tinypose_256x192", "model.xml")),
                         options=options, **changes)


def free_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serving(settings: ServeSettings, estimator: PoseEstimator | None = None,
            ready: bool = True) -> Iterator[str]:
    """The service's base URL while it runs (ready, unless `ready=False`)."""
    sock = free_port()
    config = uvicorn.Config(create_app(settings, estimator), log_level="warning",
                            **uvicorn_options(settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        auth = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        while ready and httpx.get(url + "/readyz", headers=auth).status_code != 200:
            assert time.monotonic() < deadline, "the model did not get ready"
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def raw_websocket(url: str) -> socket.socket:
    """A socket past the WebSocket handshake of `url`'s /v1/stream, for frames written by hand
    (`websocket_frame`)."""
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    key = base64.b64encode(os.urandom(16))
    sock.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
                 b"Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13"
                 b"\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        byte = sock.recv(1)
        if not byte:
            break
        head += byte
    if b" 101 " not in head.split(b"\r\n")[0]:
        sock.close()
        raise ConnectionError(f"no WebSocket handshake: {head[:80]!r}")
    return sock


def websocket_frame(first_byte: int, payload: bytes, masked: bool = True) -> bytes:
    """One frame: `first_byte` is FIN and the opcode (0x82: a whole binary message); a client's
    frames are masked."""
    mask = os.urandom(4) if masked else b""
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if masked else payload
    return bytes([first_byte, (0x80 if masked else 0) | len(payload)]) + mask + data
