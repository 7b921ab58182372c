"""The service's Prometheus metrics, in a registry of its own (one per application, so tests
and several apps in one process do not share counters). With `--workers N` each worker
process answers `/metrics` with its own figures."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# The *_created series (a timestamp per label set) double the output and no dashboard uses them.
disable_created_metrics()

ROUTES = ("/", "/healthz", "/readyz", "/metrics", "/v1/model", "/v1/pose", "/v1/pose/draw",
          "/v1/stream", "/docs", "/openapi.json")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def route_label(path: str) -> str:
    """The route a path counts under: known routes by name, static files as one, anything
    else as "other" (so random paths cannot grow the label set)."""
    if path in ROUTES:
        return path
    return "/static" if path.startswith("/static/") else "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("hrpose_requests", "Requests answered (WebSocket: frames), by "
                                "route and status (499: the client went away first)",
                                ["route", "status"], registry=r)
        self.latency = Histogram("hrpose_request_seconds", "Time to answer a request "
                                 "(WebSocket: a frame), by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("hrpose_batch_size", "Jobs' rows per batched model call "
                                    "(pose: crops; detector and bottom-up: images)", ["model"],
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.batch_seconds = Histogram("hrpose_batch_seconds", "Time of one batched model "
                                       "call", ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("hrpose_queue_depth", "Jobs waiting for a model", ["model"],
                                 registry=r)
        self.in_flight = Gauge("hrpose_requests_in_flight", "Pose requests and stream frames "
                               "being answered (at most --max-queue)", registry=r)
        self.uploads = Gauge("hrpose_uploads_in_progress", "Request bodies being received (at "
                             "most --max-uploads)", registry=r)
        self.pixels = Gauge("hrpose_decoded_pixels_in_flight", "Image pixels held by the "
                            "requests being answered (at most --max-pixels-in-flight)", registry=r)
        self.people = Histogram("hrpose_people_per_image", "People found per image",
                                buckets=(0, 1, 2, 3, 5, 10, 20, 50, 100), registry=r)

    def batch_observer(self, model: str) -> Callable[[int, float], None]:
        """What a batcher calls after each model call."""
        size, seconds = self.batch_size.labels(model), self.batch_seconds.labels(model)

        def observe(rows: int, took: float) -> None:
            size.observe(rows)
            seconds.observe(took)
        return observe

    def watch_queue(self, model: str, depth: Callable[[], int]) -> None:
        self.queue_depth.labels(model).set_function(depth)

    def text(self) -> bytes:
        return generate_latest(self.registry)
