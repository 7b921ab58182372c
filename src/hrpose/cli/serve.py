"""`hrpose serve`: the pose model as an HTTP and WebSocket service (hrpose/serve/)."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import socket
import sys

from ..errors import HrposeError, plural
from .common import DETECTOR_HELP, count, estimator_arguments, estimator_options, number


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="serve a pose model over HTTP and WebSocket, with a web page",
        description="Serves MODEL on HOST:PORT: POST /v1/pose (JSON people, or ?format=coco "
        "results rows), POST /v1/pose/draw (JPEG), GET /v1/model, WS /v1/stream (tracked, "
        "smoothed keypoints per frame), /healthz, /readyz, /metrics (Prometheus), the web "
        "page at / and the API at /docs. Crops of concurrent requests share model calls "
        "(--max-batch, --max-wait-ms). Nothing a request sends is written to disk. SIGTERM "
        "finishes the requests in flight, then exits.")
    p.add_argument("model", metavar="MODEL",
                   help="a zoo model name, a checkpoint, an exported .onnx / .xml file or its "
                   "folder (anything `hrpose infer --model` takes)")
    p.add_argument("--detector", metavar="MODEL", help=DETECTOR_HELP + "; a request's own "
                   "boxes skip it")
    estimator_arguments(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for "
                   "every interface, with --api-key)")
    p.add_argument("--port", type=count(0), default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=count(), default=1,
                   help="processes, each with its own model and batcher (default 1)")
    p.add_argument("--batch", "--max-batch", dest="max_batch", type=count(), default=8, metavar="N",
                   help="crops (bottom-up: images) per model call, from concurrent requests "
                   "together (default 8)")
    p.add_argument("--max-wait-ms", type=number(0, 10_000), default=5.0,
                   help="longest wait for a model batch to fill (default 5)")
    p.add_argument("--max-queue", type=count(), default=64,
                   help="requests answered at once; more get 503 with Retry-After (default 64)")
    p.add_argument("--max-uploads", type=count(), default=128,
                   help="request bodies received at once, apart from --max-queue (default 128; "
                   "more get 503 with Retry-After)")
    p.add_argument("--max-upload-mb", type=number(0, low_open=True), default=16.0,
                   help="largest request body (default 16; more: 413)")
    p.add_argument("--upload-timeout-s", type=number(0, low_open=True), default=20.0,
                   help="time for a request's body to arrive (default 20; then 408: a slow "
                   "client loses its own request)")
    p.add_argument("--header-timeout-s", type=number(0, low_open=True), default=10.0,
                   help="time for a request's headers to arrive (default 10; then 408)")
    p.add_argument("--max-pixels", type=count(), default=40_000_000,
                   help="largest image, as its header states (default 40,000,000; more: 413, "
                   "refused before decoding)")
    p.add_argument("--max-pixels-in-flight", type=count(), default=120_000_000,
                   help="decoded pixels of all requests being answered at once (default "
                   "120,000,000; more wait their turn)")
    p.add_argument("--max-boxes", type=count(), default=100,
                   help="boxes one request may give, each a crop the model runs (default 100; "
                   "more: 422)")
    p.add_argument("--timeout-s", type=number(0, low_open=True), default=30.0,
                   help="per request, from its body's arrival to its answer (default 30; then "
                   "504, and its work not yet run is dropped)")
    p.add_argument("--api-key", help="require Authorization: Bearer KEY on every route but "
                   "/healthz and the page's files (default: $HRPOSE_API_KEY; none: open)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from ORIGIN (repeatable; default: none)")
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"),
                   default="info", help="server log level (default info)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..inference.backends import describe_model
    from ..models.zoo import check_detector, check_model
    from ..serve.app import create_app
    from ..serve.connections import uvicorn_options
    from ..serve.settings import API_KEY_VARIABLE, SETTINGS_VARIABLE, ServeSettings, open_estimator

    settings = ServeSettings(
        model=args.model, options=estimator_options(args),
        keypoint_threshold=args.keypoint_threshold, person_threshold=args.person_threshold,
        max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
        max_uploads=args.max_uploads, max_upload_mb=args.max_upload_mb,
        upload_timeout_s=args.upload_timeout_s, header_timeout_s=args.header_timeout_s,
        max_pixels=args.max_pixels, max_pixels_in_flight=args.max_pixels_in_flight,
        max_boxes=args.max_boxes, timeout_s=args.timeout_s,
        api_key=args.api_key or os.environ.get(API_KEY_VARIABLE),
        cors_origins=tuple(args.cors_origin))
    if not settings.api_key and not _loopback(args.host):
        print(f"hrpose: warning: serving on {args.host} without an API key: anyone who can "
              "reach it can use it (--api-key)", file=sys.stderr)
    check_model(args.model)
    check_port(args.host, args.port)         # before the model's load and warm-up
    if args.detector and args.detector != "none":
        check_detector(args.detector)
    # The model opens here first, so that a bad model is one line before anything binds.
    estimator = open_estimator(settings)
    print(f"hrpose: serving {describe_model(args.model, estimator.loaded)} on "
          f"http://{args.host}:{args.port} ({plural(args.workers, 'worker process')})",
          file=sys.stderr)
    options = {"host": args.host, "port": args.port, "log_level": args.log_level,
               **uvicorn_options(settings)}
    if args.workers == 1:
        uvicorn.run(create_app(settings, estimator), **options)
    else:
        del estimator                     # each worker process opens its own
        os.environ[SETTINGS_VARIABLE] = settings.to_json()
        uvicorn.run("hrpose.serve.app:app_from_environment", factory=True,
                    workers=args.workers, **options)
    return 0


def check_port(host: str, port: int) -> None:
    """Refuses a port another program holds (with a free one to try), or one this process
    may not bind, in one line before the model loads: binding it as the server will
    (SO_REUSEADDR, as uvicorn does)."""
    def bind_error(candidate: int) -> OSError | None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, candidate))
            except OSError as e:
                return e
        return None

    error = bind_error(port)
    if error is None:
        return
    if error.errno != errno.EADDRINUSE:
        raise HrposeError(f"{host}:{port}: cannot listen there ({error.strerror})")
    spare = next((p for p in range(port + 1, min(port + 50, 65536)) if not bind_error(p)),
                 None)
    hint = f"; try --port {spare}" if spare else "; choose another --port"
    raise HrposeError(f"{host}:{port} is in use (another server?){hint}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise HrposeError(f"--host {host!r} is not an IP address (or localhost)") from None
