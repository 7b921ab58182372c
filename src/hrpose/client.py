"""`PoseClient`: the Python side of `hrpose serve` (httpx for HTTP, websockets for the stream).

    from hrpose.client import PoseClient

    with PoseClient("http://127.0.0.1:8000", api_key=None) as client:
        found = client.pose("photo.jpg")                 # {people, model, image, timing_ms}
        for frame in client.stream(["f0.jpg", "f1.jpg"]):  # tracked, smoothed people per frame
            print(frame["frame"], [p["track_id"] for p in frame["people"]])

Images are file paths, encoded bytes (JPEG, PNG, ...), RGB numpy arrays or PIL images (both
sent as JPEG). A refused request raises `ServiceError` with the service's status and message.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import HrposeError

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "bmp": "image/bmp", "gif": "image/gif",
                 "webp": "image/webp", "tiff": "image/tiff"}


class ServiceError(HrposeError):
    """The service answered with an error: `status` (HTTP, or the frame's) and its message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


def encode(image: object) -> tuple[bytes, str]:
    """An image as (bytes, content type): files and bytes as they are, arrays (RGB) and PIL
    images as JPEG."""
    from .io import encode_jpeg, image_format

    if isinstance(image, (str, Path)):
        try:
            data = Path(image).read_bytes()
        except OSError:
            raise HrposeError(f"{image}: image not found or unreadable") from None
    elif isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
    elif hasattr(image, "save") and hasattr(image, "convert"):      # a PIL image
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=90)
        data = buffer.getvalue()
    elif hasattr(image, "shape") and hasattr(image, "dtype"):
        from .inference.images import to_rgb

        data = encode_jpeg(to_rgb(image, "rgb"))
    else:
        raise HrposeError(f"expected an image file, bytes, an RGB array or a PIL image; got "
                          f"{type(image).__name__}")
    return data, CONTENT_TYPES.get(image_format(data) or "", "application/octet-stream")


class PoseClient:
    """A client of one `hrpose serve` service at `url`."""

    def __init__(self, url: str = "http://127.0.0.1:8000", api_key: str | None = None,
                 timeout: float = 60.0) -> None:
        import httpx

        self.url, self.api_key = url.rstrip("/"), api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> PoseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _check(self, response: Any) -> Any:
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise ServiceError(response.status_code, message)
        return response

    def _post(self, route: str, image: object, boxes: object | None, **params: Any) -> Any:
        data, kind = encode(image)
        if boxes is not None:
            params["boxes"] = json.dumps(_box_list(boxes))
        return self._check(self.http.post(route, content=data, params=params,
                                          headers={"Content-Type": kind}))

    def pose(self, image: object, boxes: object | None = None, *, format: str = "json",
             image_id: int = 0) -> Any:
        """People in one image: {people: [{box, score, box_score, keypoints}], model, image,
        timing_ms}; `format="coco"`: COCO results rows with `image_id`. `boxes`: (N, 4) or
        (N, 5) x, y, w, h(, score) to skip the detector."""
        return self._post("/v1/pose", image, boxes, format=format, image_id=image_id).json()

    def draw(self, image: object, boxes: object | None = None) -> bytes:
        """The image with its people drawn, as JPEG bytes."""
        return self._post("/v1/pose/draw", image, boxes).content

    def model(self) -> dict:
        """The model card: name, input size, keypoint names, links and colours, backend."""
        return self._check(self.http.get("/v1/model")).json()

    def ready(self) -> bool:
        return self.http.get("/readyz").status_code == 200

    def stream(self, frames: Iterable[object], *, smooth: bool = True, fps: float = 30.0
               ) -> Iterator[dict]:
        """Frames through WS /v1/stream, one at a time: per frame {frame, people (with
        track_id), image, timing_ms}. A frame the service refuses raises `ServiceError`."""
        from websockets.sync.client import connect

        url = "ws" + self.url.removeprefix("http") + (
            f"/v1/stream?smooth={str(smooth).lower()}&fps={fps}")
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        with connect(url, additional_headers=headers, subprotocols=["hrpose"],
                     max_size=None) as socket:
            for frame in frames:
                socket.send(encode(frame)[0])
                reply = json.loads(socket.recv())
                if "error" in reply:
                    raise ServiceError(reply["error"]["status"], reply["error"]["message"])
                yield reply


def _box_list(boxes: object) -> list:
    tolist = getattr(boxes, "tolist", None)
    return tolist() if tolist is not None else [list(b) for b in boxes]  # type: ignore[attr-defined]
