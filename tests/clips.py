"""A real-looking test video: three COCO photos of one, two and three people (coco-mini-train),
each filling a 1280x720 frame and panned slowly, so people move across the frame the way a
hand-held camera moves them. Written with OpenCV's mp4v, as `hrpose infer` writes."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

# coco-mini-train images with 1, 2 and 3 large people (8000+ px area, 8+ keypoints each)
SCENES = ("000000030752.jpg", "000000442450.jpg", "000000000790.jpg")


def pan_frames(photo: np.ndarray, size_wh: tuple[int, int], frames: int,
               travel: float = 0.08) -> list[np.ndarray]:
    """`frames` views of `photo` scaled to cover `size_wh` (plus `travel` of margin), the
    window moving from one corner of the margin to the other."""
    w, h = size_wh
    scale = max(w / photo.shape[1], h / photo.shape[0]) * (1 + travel)
    big = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                     interpolation=cv2.INTER_LINEAR)
    spare_x, spare_y = big.shape[1] - w, big.shape[0] - h
    out = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        x, y = round(spare_x * t), round(spare_y * (1 - t))
        out.append(np.ascontiguousarray(big[y : y + h, x : x + w]))
    return out


def write_clip(path: Path, shared: Path, size_wh: tuple[int, int] = (1280, 720),
               frames_per_scene: int = 100, fps: float = 30.0) -> Path:
    """The three scenes one after the other, as an mp4v file at `path`."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size_wh)
    for name in SCENES:
        photo = cv2.imread(str(shared / "coco-mini-train" / "train2017" / name))
        if photo is None:
            raise FileNotFoundError(shared / "coco-mini-train" / "train2017" / name)
        for frame in pan_frames(photo, size_wh, frames_per_scene):
            writer.write(frame)
    writer.release()
    return path


def write_damaged_avi(path: Path, frames: int = 20, broken: tuple[int, ...] = (),
                      stated: int | None = None, size_wh: tuple[int, int] = (96, 64)) -> Path:
    """A Motion-JPEG AVI of `frames` numbered grey frames whose frames `broken` have their
    JPEG data overwritten (the decoder cannot read them) and whose header states `stated`
    frames (default: the truth)."""
    w, h = size_wh
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size_wh)
    for i in range(frames):
        frame = np.full((h, w, 3), 40 + (i * 7) % 200, np.uint8)
        cv2.putText(frame, str(i), (4, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
        writer.write(frame)
    writer.release()
    data = bytearray(path.read_bytes())
    chunks, at = [], data.find(b"movi")
    while (at := data.find(b"00dc", at)) > 0 and len(chunks) < frames:
        size = struct.unpack_from("<I", data, at + 4)[0]
        chunks.append((at + 8, size))   # a frame's chunk: "00dc", its size, its JPEG
        at += 8 + size + size % 2       # chunks are padded to even sizes
    for index in broken:                # no JPEG left in it at all
        start, size = chunks[index]
        data[start : start + size] = bytes(size)
    if stated is not None:             # AVI: the main header's and the stream header's count
        struct.pack_into("<I", data, data.find(b"avih") + 8 + 16, stated)
        struct.pack_into("<I", data, data.find(b"strh") + 8 + 32, stated)
    path.write_bytes(bytes(data))
    return path
