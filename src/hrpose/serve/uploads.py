"""What a request brings, checked before any model work, in memory only.

- The body is read under a size limit: a stated Content-Length over it is refused before a byte
  is read, and a body without one is cut off as soon as it passes the limit (413).
- Multipart forms are parsed in memory (python-multipart's parser; Starlette's form reader
  spools large files to disk).
- An image must name a known format in its first bytes (else 415) and state its size in its
  header, at most `max_pixels` (413), so a decompression bomb never allocates; it is decoded
  later, in a worker thread (a corrupt one is 422).
- Boxes are JSON [[x, y, w, h(, score)], ...], at most --max-boxes of them, checked against
  the image's stated size (422).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import orjson

from ..errors import HrposeError
from ..inference.boxes import check_boxes
from ..io import image_format, image_size, jpeg_orientation

IMAGE_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/gif", "image/webp",
               "image/tiff", "application/octet-stream")


class ServeError(Exception):
    """A request the service answers with `status` and a one-line JSON error."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class ClientGone(ServeError):
    """The client disconnected (mid-upload, or while its answer was computed): nobody is
    answered; the service logs one line and counts it as status 499, apart from its errors."""

    def __init__(self, when: str) -> None:
        super().__init__(499, when)


@dataclass
class Upload:
    image: bytes
    boxes: str | None = None             # the JSON text, as sent


# A refused body is read on and thrown away up to this much, so that a client still sending
# it reads the 413 instead of a reset connection (closing a socket with unread data resets it).
DISCARD_BYTES = 64 * 2**20


async def read_body(chunks: AsyncIterator[bytes], content_length: str | None,
                    limit: int, expect_continue: bool = False) -> bytes:
    """The whole body, refused (413) once it is longer than `limit` bytes. A client that
    asked to be told before it sends (Expect: 100-continue) is refused before anything is
    read; one already sending is refused once its body is read and thrown away (up to
    DISCARD_BYTES more)."""
    stated = None
    if content_length is not None:
        try:
            stated = int(content_length)
        except ValueError:
            raise ServeError(400, f"Content-Length {content_length!r} is not a number") \
                from None
    if stated is not None and stated > limit:
        if not expect_continue and stated <= limit + DISCARD_BYTES:
            await _discard(chunks, stated)
        raise ServeError(413, f"the body is {stated:,} bytes; the limit is {limit:,} "
                         "(--max-upload-mb)", {"Connection": "close"})
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            await _discard(chunks, limit + DISCARD_BYTES - len(body))
            raise ServeError(413, f"the body is over the limit of {limit:,} bytes "
                             "(--max-upload-mb)", {"Connection": "close"})
    return bytes(body)


async def _discard(chunks: AsyncIterator[bytes], most: int) -> None:
    async for chunk in chunks:
        most -= len(chunk)
        if most <= 0:
            return


def parse_upload(body: bytes, content_type: str, boxes_query: str | None) -> Upload:
    """The image (and boxes) of a request: a multipart form with fields `image` and `boxes`,
    or the raw image as the body (boxes in the query)."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        parts = parse_multipart(body, content_type)
        if "image" not in parts:
            raise ServeError(422, "the form has no field 'image' (fields: "
                             f"{', '.join(sorted(parts)) or 'none'})")
        boxes = parts.get("boxes")
        text = boxes.decode("utf-8", "replace") if boxes is not None else boxes_query
        return Upload(parts["image"], text)
    if kind and kind not in IMAGE_TYPES:
        raise ServeError(415, f"Content-Type {kind!r} is not an image: send the image as the "
                         "body (image/jpeg, image/png, ...) or as the 'image' field of a "
                         "multipart form")
    return Upload(body, boxes_query)


def parse_multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    """Field name -> bytes of a multipart/form-data body, parsed in memory."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise ServeError(400, "multipart/form-data without a boundary")
    parts: dict[str, bytes] = {}
    state: dict = {"headers": {}, "field": b"", "data": bytearray()}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        name = state["field"].lower()
        state["headers"][name] = state["headers"].get(name, b"") + data[start:end]

    def on_header_end() -> None:
        state["field"] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        state["data"] += data[start:end]

    def on_part_end() -> None:
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        parts[name] = bytes(state["data"])
        state.update(headers={}, field=b"", data=bytearray())

    try:              # the constructor refuses a boundary it cannot use (over 256 bytes)
        parser = MultipartParser(boundary, {
            "on_header_field": on_header_field, "on_header_value": on_header_value,
            "on_header_end": on_header_end, "on_part_data": on_part_data,
            "on_part_end": on_part_end})
        parser.write(body)
        parser.finalize()
    except Exception as e:               # python-multipart's own errors
        raise ServeError(400, f"malformed multipart body ({e})") from None
    return parts


def check_image(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) as the image's header states them, before anything is decoded."""
    if not data:
        raise ServeError(422, "the image is empty")
    if image_format(data) is None:
        raise ServeError(415, "not an image: expected JPEG, PNG, BMP, GIF, WebP or TIFF "
                         f"(the body starts with {data[:8]!r})")
    size = image_size(data)
    if size is None or min(size) < 1:
        raise ServeError(422, "corrupt image: its header does not state its size")
    if data[:2] == b"\xff\xd8" and jpeg_orientation(data) >= 5:    # turned a quarter
        size = size[1], size[0]
    if size[0] * size[1] > max_pixels:
        raise ServeError(413, f"the image states {size[0]}x{size[1]} pixels, more than the "
                         f"limit of {max_pixels:,} (--max-pixels)")
    return size


def parse_boxes(text: str | None, size: tuple[int, int], max_boxes: int) -> np.ndarray | None:
    """Boxes JSON [[x, y, w, h(, score)], ...] -> checked (N, 5) boxes, at most `max_boxes`
    (each is a crop the model runs on); None when not given."""
    if text is None or not text.strip():
        return None
    try:
        boxes = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise ServeError(422, f"boxes: not JSON ({e})") from None
    if isinstance(boxes, list) and len(boxes) > max_boxes:
        raise ServeError(422, f"boxes: {len(boxes):,} boxes; the limit is {max_boxes:,} "
                         "(--max-boxes)")
    if not isinstance(boxes, list) or not all(
            isinstance(b, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                        for v in b) for b in boxes):
        raise ServeError(422, "boxes: expected a list of [x, y, w, h] or [x, y, w, h, score] "
                         "number lists")
    if all(len(b) in (4, 5) for b in boxes):     # a box without a score scores 1
        boxes = [b if len(b) == 5 else [*b, 1.0] for b in boxes]
    try:
        return check_boxes(boxes, size, "boxes")
    except HrposeError as e:
        raise ServeError(422, str(e)) from None
