"""The FastAPI application of `hrpose serve`.

Routes: POST /v1/pose (JSON, or COCO results rows with ?format=coco), POST /v1/pose/draw
(JPEG), GET /v1/model (the model card), WS /v1/stream (frames in, tracked people out),
GET /healthz, /readyz, /metrics, the web page at / and the OpenAPI document at /docs.

Errors are JSON {"error": {"status", "message"}} with the status that says what went wrong;
nothing a request sends is written to disk. The model loads (when not given) and warms up in
a thread after start-up: /healthz answers at once, /readyz and the pose routes say 503 until
the model is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.websockets import WebSocketDisconnect

from ..errors import HrposeError
from ..inference.draw import draw_found
from ..inference.estimator import PoseEstimator
from ..inference.person import coco_result
from ..inference.video import PoseTracker, SmoothingSettings
from ..io import encode_jpeg
from ..version import __version__
from .connections import configure as configure_connections
from .metrics import Metrics, route_label
from .schema import ERRORS, CocoRow, PoseOut, upload_body
from .service import PoseService, people_json
from .settings import ServeSettings, open_estimator
from .uploads import ClientGone, ServeError, check_image, parse_boxes, parse_upload, read_body

STATIC = Path(__file__).parent / "static"
# Answered without the API key: no data, no model. The web page and the API document must
# load in a browser, which cannot send a key with a page load; both then ask for it.
PUBLIC = ("/healthz", "/", "/docs", "/openapi.json")
PUBLIC_FOLDERS = ("/static/", "/docs/assets/")
SUBPROTOCOL = "hrpose"                      # the WebSocket protocol the page speaks
log = logging.getLogger("uvicorn.error")    # uvicorn's own log: one stream, one format


class ServiceState:
    """Everything the routes share: the settings, the metrics, and the model once ready."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings, self.metrics = settings, Metrics()
        self.service: PoseService | None = None
        self.ready = False
        self.failure: str | None = None
        self.in_flight = 0
        self.uploading = 0
        self.pixels = PixelBudget(settings.max_pixels_in_flight)
        self.metrics.in_flight.set_function(lambda: self.in_flight)
        self.metrics.uploads.set_function(lambda: self.uploading)
        self.metrics.pixels.set_function(lambda: self.pixels.used)
        self._trim: asyncio.TimerHandle | None = None

    async def start(self, estimator: PoseEstimator | None) -> None:
        """Open the model (unless given) and warm it up, off the event loop."""
        try:
            if estimator is None:
                estimator = await asyncio.to_thread(open_estimator, self.settings)
            service = PoseService(estimator, self.settings, self.metrics)
            await asyncio.to_thread(service.warm_up)
            await asyncio.to_thread(release_freed_memory)       # what warming up left
        except Exception as e:            # any failure is one line on /readyz and in the log
            self.failure = (str(e).strip().splitlines() or [type(e).__name__])[0]
            log.error("hrpose: error: %s", self.failure)
            return
        service.start()
        self.service, self.ready = service, True
        log.info("hrpose: %s ready (%s, %s)", service.card["name"], service.card["backend"],
                 service.card["precision"])

    def stop(self) -> None:
        self.ready = False
        if self.service is not None:
            self.service.stop()

    def check_ready(self) -> PoseService:
        if self.service is None:
            why = f"the model failed to load: {self.failure}" if self.failure else \
                "the model is loading"
            raise ServeError(503, why, {"Retry-After": "5"})
        return self.service

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """One request (or stream frame) being answered; past --max-queue: 503."""
        if self.in_flight >= self.settings.max_queue:
            raise ServeError(503, f"busy: {self.in_flight} requests are being answered "
                             "(--max-queue); retry shortly", {"Retry-After": "1"})
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._release_memory_when_idle()

    async def receive(self, request: Request) -> bytes:
        """The request's body: one of --max-uploads being received at once (else 503), whole
        within --upload-timeout-s (else 408: a slow client loses its own request only)."""
        s = self.settings
        if self.uploading >= s.max_uploads:
            raise ServeError(503, f"busy: {self.uploading} uploads are in progress "
                             "(--max-uploads); retry shortly", {"Retry-After": "1"})
        self.uploading += 1
        try:
            return await asyncio.wait_for(read_body(
                request.stream(), request.headers.get("content-length"),
                int(s.max_upload_mb * 2**20),
                request.headers.get("expect", "").lower() == "100-continue"), s.upload_timeout_s)
        except asyncio.TimeoutError:
            raise ServeError(408, f"the body did not arrive within {s.upload_timeout_s:g} s "
                             "(--upload-timeout-s)", {"Connection": "close"}) from None
        except ClientDisconnect:
            raise ClientGone("during its upload") from None
        finally:
            self.uploading -= 1

    def _release_memory_when_idle(self) -> None:
        """A second after the last request, if none came since, hand the memory the requests
        freed back to the system (glibc keeps it in its arenas: under 32 clients the process
        held 100 MB more after a run than before it, all of it free)."""
        loop = asyncio.get_running_loop()
        if self._trim is not None:
            self._trim.cancel()

        def trim() -> None:
            if self.in_flight == 0:
                loop.run_in_executor(None, release_freed_memory)
        self._trim = loop.call_later(1.0, trim)


class PixelBudget:
    """Decoded pixels of the requests being answered, at most `limit` at once: a request whose
    image does not fit waits (within its --timeout-s) for others to finish. Every image is at
    most --max-pixels, so memory for images stays bounded however many requests arrive."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._waiting: list[asyncio.Future] = []

    @asynccontextmanager
    async def hold(self, pixels: int) -> AsyncIterator[None]:
        while self.used + pixels > self.limit:
            freed = asyncio.get_running_loop().create_future()
            self._waiting.append(freed)
            try:
                await freed
            finally:
                self._waiting.remove(freed)
        self.used += pixels
        try:
            yield
        finally:
            self.used -= pixels
            for waiter in self._waiting:
                if not waiter.done():
                    waiter.set_result(None)


def release_freed_memory() -> None:
    """glibc's malloc_trim: free heap pages back to the system (nothing elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):     # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def create_app(settings: ServeSettings, estimator: PoseEstimator | None = None,
               ready_first: bool = False) -> FastAPI:
    """The service for `settings`; `estimator`: an already opened model (else it is opened
    from the settings after start-up). The model warms up in the background while /healthz
    and /readyz answer; with `ready_first`, start-up waits for it (a worker process that takes
    no connections until it can answer them)."""
    state = ServiceState(settings)
    configure_connections(settings.header_timeout_s, settings.max_uploads + settings.max_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        starting = asyncio.create_task(state.start(estimator))
        if ready_first:
            await starting
            if state.failure:
                raise HrposeError(state.failure)
        yield
        starting.cancel()
        await asyncio.to_thread(state.stop)

    app = FastAPI(title="hrpose", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, description="HRNet human pose estimation: people and their "
                  "keypoints in images and video frames.")
    app.state.hrpose = state
    _add_error_handlers(app)
    app.add_middleware(AccessMiddleware, state=state)
    if settings.cors_origins:          # outermost: preflight requests carry no API key
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"],
                           expose_headers=["Server-Timing", "X-People"])
    _add_status_routes(app, state)
    _add_pose_routes(app, state)
    app.add_api_websocket_route("/v1/stream", _stream_route(state))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_docs(app, settings)
    return app


def _add_docs(app: FastAPI, settings: ServeSettings) -> None:
    """Swagger UI at /docs from files installed with the package (fastapi-offline's copy of
    swagger-ui), so the document works without internet; with an API key the document says
    so and its Authorize button takes the key."""
    import fastapi_offline
    from fastapi.openapi.utils import get_openapi

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="hrpose API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon.png")

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            if settings.api_key:
                schema.setdefault("components", {})["securitySchemes"] = {
                    "bearer": {"type": "http", "scheme": "bearer"}}
                schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def app_from_environment() -> FastAPI:
    """The factory each `--workers N` process calls: the settings come as JSON through the
    environment, and each worker opens its own model and takes connections once it is ready
    (the others, not a loading worker, answer meanwhile)."""
    return create_app(ServeSettings.from_environment(), ready_first=True)


def error_response(status: int, message: str, headers: dict[str, str] | None = None
                   ) -> Response:
    return Response(orjson.dumps({"error": {"status": status, "message": message}}), status,
                    headers, media_type="application/json")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def serve_error(request: Request, e: ServeError) -> Response:
        if isinstance(e, ClientGone):    # nobody to answer: one line, counted as 499
            log.info("hrpose: %s %s: the client went away %s", request.method,
                     request.url.path, e.message)
        return error_response(e.status, e.message, e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> Response:
        return error_response(e.status_code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, e: RequestValidationError) -> Response:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(HrposeError)
    async def model_error(request: Request, e: HrposeError) -> Response:
        return error_response(500, str(e))


class AccessMiddleware:
    """The API key (every route but /healthz and the page's own files) and the request
    metrics, as plain ASGI so that streamed bodies and WebSockets pass untouched."""

    def __init__(self, app: object, state: ServiceState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path, key = scope["path"], self.state.settings.api_key
        public = path in PUBLIC or path.startswith(PUBLIC_FOLDERS)
        if key and not public and not _authorised(scope, key):
            if scope["type"] == "websocket":     # refused before the handshake: HTTP 403
                return await send({"type": "websocket.close", "code": 1008})
            response = error_response(401, "missing or wrong API key: send Authorization: "
                                      "Bearer KEY", {"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        if scope["type"] == "websocket":         # counted per frame by the stream itself
            return await self.app(scope, receive, send)
        status, start = 500, time.perf_counter()

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_label(path)
            self.state.metrics.requests.labels(route, str(status)).inc()
            self.state.metrics.latency.labels(route).observe(time.perf_counter() - start)


def _authorised(scope: dict, key: str) -> bool:
    """Authorization: Bearer KEY, or (a browser's WebSocket, which cannot set headers) the
    subprotocol "bearer.KEY"."""
    # Compared as bytes: compare_digest refuses str with non-ASCII characters, and any
    # client may send those.
    expected = key.encode()
    headers = dict(scope.get("headers") or [])
    given = headers.get(b"authorization", b"")
    if given.startswith(b"Bearer ") and secrets.compare_digest(given[7:].strip(), expected):
        return True
    return any(p.startswith("bearer.") and secrets.compare_digest(
        p[7:].encode("utf-8", "surrogateescape"), expected)
        for p in scope.get("subprotocols") or [])


def _add_status_routes(app: FastAPI, state: ServiceState) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="The model is loaded and warmed up",
             responses={503: ERRORS[503]})
    async def readyz() -> Response:
        if state.ready:
            return Response(orjson.dumps({"status": "ready"}), media_type="application/json")
        state.check_ready()
        raise ServeError(503, "stopping")

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(state.metrics.text(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/model", summary="The model card: what a client needs to draw",
             responses={503: ERRORS[503]})
    async def model() -> Response:
        return Response(orjson.dumps(state.check_ready().card), media_type="application/json")


async def _answer(state: ServiceState, request: Request, boxes: str | None,
                  finish: Callable[[np.ndarray, list, dict], Awaitable[Response]]) -> Response:
    """Receive and check one request, then run it within the limits and `finish` the answer
    from (image, people, timing)."""
    service = state.check_ready()
    settings = state.settings
    body = await state.receive(request)
    upload = parse_upload(body, request.headers.get("content-type", ""), boxes)
    size = check_image(upload.image, settings.max_pixels)
    given = parse_boxes(upload.boxes, size, settings.max_boxes)
    if given is not None and not service.topdown:
        raise ServeError(422, "boxes: a bottom-up model finds people itself; send no boxes")

    async def work() -> Response:
        async with state.pixels.hold(size[0] * size[1]):
            image, people, timing = await service.estimate(upload.image, given)
            state.metrics.people.observe(len(people))
            return await finish(image, people, timing)
    return await _within_limits(state, work, request)


async def _within_limits(state: ServiceState, work: Callable[[], Awaitable[Any]],
                         request: Request | None = None) -> Any:
    """`work()` admitted under --max-queue and cut off after --timeout-s, or as soon as the
    client of `request` goes away: its jobs still queued for the model are then dropped."""
    async with state.admit():
        task = asyncio.ensure_future(work())
        watch = asyncio.ensure_future(_gone(request)) if request is not None else None
        try:
            done, _ = await asyncio.wait([t for t in (task, watch) if t is not None],
                                         timeout=state.settings.timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (task, watch):
                if t is not None and not t.done():
                    t.cancel()
        if task in done:
            return task.result()
        if watch is not None and watch in done:
            raise ClientGone("while its answer was being computed")
        raise ServeError(504, f"no answer within {state.settings.timeout_s:g} s "
                         "(--timeout-s)")


async def _gone(request: Request) -> None:
    """Returns when the client disconnects (its body is read: nothing else comes first)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _server_timing(timing: dict[str, float]) -> dict[str, str]:
    return {"Server-Timing": ", ".join(f"{k};dur={v}" for k, v in timing.items())}


BOXES = Query(None, description="JSON [[x, y, w, h(, score)], ...] for a raw image body: "
              "skip the detector")


def _add_pose_routes(app: FastAPI, state: ServiceState) -> None:
    responses = {k: v for k, v in ERRORS.items() if k != 401 or state.settings.api_key}
    body = upload_body(state.settings)

    @app.post("/v1/pose", summary="People and their keypoints in one image",
              response_model=PoseOut | list[CocoRow], responses=responses,
              openapi_extra=body)
    async def pose(request: Request, boxes: str | None = BOXES,
                   format: str = Query("json", pattern="^(json|coco)$",
                                       description="json, or coco: COCO results rows"),
                   image_id: int = Query(0, ge=-2**63, le=2**63 - 1,
                                         description="?format=coco: the rows' image_id")
                   ) -> Response:
        async def finish(image: np.ndarray, people: list, timing: dict) -> Response:
            if format == "coco":
                answer: object = [coco_result(p, image_id) for p in people]
            else:
                answer = {"people": people_json(people), "model": state.service.card["name"],
                          "image": {"width": image.shape[1], "height": image.shape[0]},
                          "timing_ms": timing}
            return Response(orjson.dumps(answer), media_type="application/json",
                            headers=_server_timing(timing))
        return await _answer(state, request, boxes, finish)

    @app.post("/v1/pose/draw", summary="The image with its people drawn, as JPEG",
              response_class=Response, responses=responses, openapi_extra=body)
    async def pose_draw(request: Request, boxes: str | None = BOXES,
                        keypoint_threshold: float = Query(None, ge=0, le=1),
                        person_threshold: float = Query(None, ge=0, le=1)) -> Response:
        s = state.settings

        async def finish(image: np.ndarray, people: list, timing: dict) -> Response:
            drawn = await asyncio.to_thread(
                draw_found, image, people, state.service.estimator.skeleton,
                s.keypoint_threshold if keypoint_threshold is None else keypoint_threshold,
                s.person_threshold if person_threshold is None else person_threshold)
            jpeg = await asyncio.to_thread(encode_jpeg, drawn)
            return Response(jpeg, media_type="image/jpeg",
                            headers={**_server_timing(timing), "X-People": str(len(people))})
        return await _answer(state, request, boxes, finish)


def _stream_route(state: ServiceState) -> object:
    async def stream(websocket: WebSocket, smooth: bool = True,
                     fps: float = Query(30.0, gt=0, le=1000),
                     min_cutoff: float = Query(SmoothingSettings.min_cutoff, gt=0),
                     beta: float = Query(SmoothingSettings.beta, ge=0)) -> None:
        """Binary JPEG (or PNG) frames in; per frame one JSON text message out: {frame,
        people (with track_id), image, timing_ms}, or {frame, error}. People are tracked by
        box IoU and, with `smooth`, their keypoints One-Euro filtered, per connection."""
        if state.service is None:
            await websocket.close(1013, "the model is not ready")
            return
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(SUBPROTOCOL if SUBPROTOCOL in offered else None)
        tracker = PoseTracker(fps, SmoothingSettings(min_cutoff, beta) if smooth else None)
        frame = 0
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                reply = await _stream_frame(state, tracker, frame, message.get("bytes"))
                await websocket.send_text(orjson.dumps(reply).decode())
                frame += 1
        except WebSocketDisconnect:
            pass
    return stream


async def _stream_frame(state: ServiceState, tracker: PoseTracker, frame: int,
                        data: bytes | None) -> dict:
    start, status = time.perf_counter(), 200
    try:
        if data is None:
            raise ServeError(415, "send frames as binary messages (JPEG or PNG bytes)")
        limit = int(state.settings.max_upload_mb * 2**20)
        if len(data) > limit:
            raise ServeError(413, f"the frame is {len(data):,} bytes; the limit is {limit:,}")
        width, height = check_image(data, state.settings.max_pixels)
        service = state.check_ready()

        async def work() -> tuple:
            async with state.pixels.hold(width * height):
                return await service.estimate(data, None)
        image, people, timing = await _within_limits(state, work)
        people = tracker.update(people, time.monotonic())
        state.metrics.people.observe(len(people))
        reply = {"frame": frame, "people": people_json(people),
                 "image": {"width": image.shape[1], "height": image.shape[0]},
                 "timing_ms": timing}
    except ServeError as e:
        status, reply = e.status, {"frame": frame, "error": {"status": e.status,
                                                             "message": e.message}}
    except HrposeError as e:
        status, reply = 500, {"frame": frame, "error": {"status": 500, "message": str(e)}}
    state.metrics.requests.labels("/v1/stream", str(status)).inc()
    state.metrics.latency.labels("/v1/stream").observe(time.perf_counter() - start)
    return reply
