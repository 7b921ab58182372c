"""What `hrpose serve` is told, as one typed value, and the estimator it opens.

Worker processes (`--workers N`) are started by uvicorn and get the settings through the
environment as JSON (`SETTINGS_VARIABLE`), so each opens the same model the same way."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace

from ..errors import HrposeError
from ..inference.draw import PERSON_THRESHOLD
from ..inference.estimator import PoseEstimator
from ..inference.options import EstimatorOptions, split_threads

SETTINGS_VARIABLE = "HRPOSE_SERVE_SETTINGS"
API_KEY_VARIABLE = "HRPOSE_API_KEY"


@dataclass(frozen=True)
class ServeSettings:
    # The model, and how it runs: as `hrpose infer` takes them (the options' batch is
    # max_batch: the batchers fill the model calls).
    model: str = "hrnet_w32_256x192"
    options: EstimatorOptions = field(default_factory=EstimatorOptions)
    keypoint_threshold: float = 0.3      # drawings: joints at or above this
    person_threshold: float = PERSON_THRESHOLD     # drawings: people at or above this
    # Batching: a model call takes up to max_batch crops (bottom-up: images), waiting at most
    # max_wait_ms after the oldest job for more to arrive.
    max_batch: int = 8
    max_wait_ms: float = 5.0
    # Limits. A request is first an upload (up to max_uploads at once, each with
    # upload_timeout_s to arrive: a slow client loses its own request), then work (up to
    # max_queue requests at once, each answered within timeout_s).
    max_queue: int = 64                  # requests being answered at once; more get 503
    max_uploads: int = 128               # bodies being received at once; more get 503
    max_upload_mb: float = 16.0
    upload_timeout_s: float = 20.0       # the body must arrive within this; then 408
    header_timeout_s: float = 10.0       # a connection's request headers, likewise
    max_pixels: int = 40_000_000         # stated in the image header, checked before decoding
    max_pixels_in_flight: int = 120_000_000  # decoded pixels of all requests at once; more wait
    max_boxes: int = 100                 # boxes a request may give (each is a crop); more: 422
    timeout_s: float = 30.0              # per request, from its body's arrival; then 504
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        checks = [("max_batch", self.max_batch >= 1), ("max_queue", self.max_queue >= 1),
                  ("max_wait_ms", 0 <= self.max_wait_ms <= 10_000),
                  ("max_upload_mb", self.max_upload_mb > 0), ("max_pixels", self.max_pixels >= 1),
                  ("timeout_s", self.timeout_s > 0), ("max_uploads", self.max_uploads >= 1),
                  ("upload_timeout_s", self.upload_timeout_s > 0),
                  ("header_timeout_s", self.header_timeout_s > 0),
                  ("max_boxes", self.max_boxes >= 1),
                  ("max_pixels_in_flight", self.max_pixels_in_flight >= self.max_pixels)]
        if not isinstance(self.options.detector, str | None):
            raise HrposeError("the service's detector is a name or a file (it is opened in "
                              "each worker process)")
        for name, ok in checks:
            if not ok:
                raise HrposeError(f"serve setting {name}={getattr(self, name)!r} is out of range"
                                  + (f" (at least max_pixels, {self.max_pixels:,})"
                                     if name == "max_pixels_in_flight" else ""))
        if self.api_key is not None and (len(self.api_key) < 16 or not all(
                c.isalnum() or c in "-._~+" for c in self.api_key)):
            # The web page sends the key as a WebSocket subprotocol: it must be a token.
            raise HrposeError("the API key must be at least 16 characters of letters, digits "
                              "and - . _ ~ + (e.g. python -c 'import secrets; "
                              "print(secrets.token_urlsafe(24))')")

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "options": self.options.to_dict()})

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        values = json.loads(text)
        values["cors_origins"] = tuple(values["cors_origins"])
        values["options"] = EstimatorOptions.from_dict(values["options"])
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    @classmethod
    def from_environment(cls) -> ServeSettings:
        text = os.environ.get(SETTINGS_VARIABLE)
        if not text:
            raise HrposeError(f"{SETTINGS_VARIABLE} is not set: start the service with "
                              "`hrpose serve`")
        return cls.from_json(text)


def open_estimator(settings: ServeSettings) -> PoseEstimator:
    """The service's model: a `PoseEstimator` as `hrpose infer` opens it, with the model
    batch the service's `max_batch`. The detector and the pose model run at once here (each
    behind its own batcher), so they share the threads: the detector a third, the pose model
    the rest (each at least one); `hrpose infer` runs them in turn, each with them all."""
    options = replace(settings.options, batch=settings.max_batch)
    if options.detector is None:
        return PoseEstimator(settings.model, options)
    pose, detector = split_threads(options.runtime)
    return PoseEstimator(settings.model, replace(options, runtime=pose),
                         detector_runtime=detector)
