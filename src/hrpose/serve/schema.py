"""The shapes of the service's answers, for the OpenAPI document at /docs (the handlers write
JSON with orjson directly; these types describe it)."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
    (401, "missing or wrong API key (Authorization: Bearer KEY)"),
    (413, "body over --max-upload-mb, or image over --max-pixels"),
    (415, "not an image"),
    (422, "corrupt image, bad boxes or bad parameters"),
    (503, "model loading, or more than --max-queue requests at once (see Retry-After)"),
    (504, "the request took longer than --timeout-s"))}

UPLOAD = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "format": "binary"},
        "boxes": {"type": "string",
                  "description": "JSON [[x, y, w, h(, score)], ...]: skip the detector"}}}},
    **{kind: {"schema": {"type": "string", "format": "binary"}}
       for kind in ("image/jpeg", "image/png", "image/webp", "image/bmp")}}}}
