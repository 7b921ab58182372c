"""The shapes of the service's answers, for the OpenAPI document at /docs (the handlers write
JSON with orjson directly; these types describe it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from .settings import ServeSettings


class PersonOut(BaseModel):
    box: list[float] = Field(description="x, y, w, h in image pixels")
    score: float = Field(description="box score x mean of the joint scores above 0.2")
    box_score: float = Field(description="the detector's score (1 for given boxes)")
    keypoints: list[list[float]] = Field(description="[x, y, score] per joint, image pixels")
    track_id: int | None = Field(None, description="WebSocket stream only: the person's track")


class ImageSize(BaseModel):
    width: int
    height: int


class Timing(BaseModel):
    decode: float
    detect: float
    pose: float
    total: float


class PoseOut(BaseModel):
    people: list[PersonOut]
    model: str
    image: ImageSize
    timing_ms: Timing


class CocoRow(BaseModel):
    image_id: int
    category_id: int
    keypoints: list[float] = Field(description="x, y, score per joint, flattened")
    score: float
    bbox: list[float]
    box_score: float


class ErrorBody(BaseModel):
    status: int
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


ERRORS = {status: {"model": ErrorOut, "description": text} for status, text in (
    (400, "malformed request (Content-Length, multipart form)"),
    (401, "missing or wrong API key (Authorization: Bearer KEY)"),
    (408, "the body took longer than --upload-timeout-s to arrive"),
    (413, "body over --max-upload-mb, or image over --max-pixels"),
    (415, "not an image"),
    (422, "corrupt image, bad boxes (or more than --max-boxes), or bad parameters"),
    (503, "model loading, or more than --max-uploads uploads or --max-queue requests at once "
          "(see Retry-After)"),
    (504, "the request took longer than --timeout-s after its upload"))}


def upload_body(settings: ServeSettings) -> dict:
    """The request body of the pose routes, with the limits this service enforces."""
    limit = int(settings.max_upload_mb * 2**20)
    limits = (f"At most {limit:,} bytes (--max-upload-mb); an image of at most "
              f"{settings.max_pixels:,} pixels as its header states (--max-pixels): JPEG, PNG, "
              "BMP, GIF, WebP or TIFF.")
    image = {"type": "string", "format": "binary", "minLength": 1, "maxLength": limit}
    return {"requestBody": {"required": True, "description": limits, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                           "properties": {
            "image": image,
            "boxes": {"type": "string", "description": "JSON [[x, y, w, h(, score)], ...]: skip "
                      f"the detector; at most {settings.max_boxes} boxes (--max-boxes)"}}}},
        **{kind: {"schema": image}
           for kind in ("image/jpeg", "image/png", "image/webp", "image/bmp")}}}}
