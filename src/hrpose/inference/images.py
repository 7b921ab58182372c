"""What `PoseEstimator` and `hrpose infer` accept as images, turned into RGB uint8 (H, W, 3).

- a file path (any format cv2 reads; EXIF orientation applied; see `hrpose.io.read_image`);
- a numpy array, with its channel order stated: `color="rgb"` or `color="bgr"` (cv2.imread gives
  BGR, PIL and most other readers RGB; guessing would silently swap left and right colours).
  Grayscale (H, W) or (H, W, 1), RGBA / BGRA (alpha dropped), uint8, uint16 (scaled to 8 bits)
  and float in [0, 1];
- a PIL image (any mode; EXIF orientation applied).
"""

from __future__ import annotations

import glob
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import HrposeError
from ..io import IMAGE_SUFFIXES, read_image

T = TypeVar("T")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def to_rgb(image: object, color: str | None = None, name: str = "image") -> np.ndarray:
    """Any accepted image -> RGB uint8 (H, W, 3), C-contiguous. `name` labels errors."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if hasattr(image, "getexif") and hasattr(image, "convert"):       # a PIL image
        from PIL import ImageOps

        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise HrposeError(f"{name}: expected a file path, a numpy array or a PIL image, got "
                          f"{type(image).__name__}")
    return _array_to_rgb(image, color, name)


def _array_to_rgb(array: np.ndarray, color: str | None, name: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise HrposeError(f"{name}: an image array is (H, W), (H, W, 1), (H, W, 3) or "
                          f"(H, W, 4); got shape {array.shape}")
    if min(array.shape[:2]) == 0:
        raise HrposeError(f"{name}: the image is empty (shape {array.shape})")
    array = _to_uint8(array, name)
    if array.ndim == 2:
        return np.ascontiguousarray(np.repeat(array[..., None], 3, axis=2))
    if color not in ("rgb", "bgr"):
        raise HrposeError(f"{name}: say which channel order the array has: color='rgb' or "
                          f"color='bgr' (cv2.imread gives BGR); got {color!r}")
    rgb = array[..., :3] if color == "rgb" else array[..., 2::-1]
    return np.ascontiguousarray(rgb)


def _to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)       # as cv2 reads 16-bit files as 8-bit
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        if low < 0.0 or high > 1.0:
            raise HrposeError(f"{name}: a float image must hold values in [0, 1]; got "
                              f"[{low:.3g}, {high:.3g}]")
        return np.round(array * 255).astype(np.uint8)
    raise HrposeError(f"{name}: unsupported image dtype {array.dtype} (use uint8, uint16 or "
                      "float in [0, 1])")


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def find_inputs(source: str) -> list[Path]:
    """The files an `hrpose infer` INPUT names: an image or video file, a folder (its images,
    sorted, not recursive) or a glob pattern (its images and videos, sorted)."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise HrposeError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
        return files
    if path.is_file():
        return [path]
    if any(c in source for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file()
                       and Path(p).suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        if not files:
            raise HrposeError(f"{source}: the pattern matches no image or video files")
        return files
    raise HrposeError(f"{source}: no such file or folder")


def _read(path: T, read: Callable[[T], np.ndarray]) -> np.ndarray | HrposeError:
    try:
        return read(path)
    except HrposeError as e:
        return e


def prefetch(paths: Sequence[T], ahead: int = 8,
             read: Callable[[T], np.ndarray] = to_rgb
             ) -> Iterator[tuple[T, np.ndarray | HrposeError]]:
    """(path, RGB image or the error reading it), in order, decoded `ahead` images in advance
    by two threads (the decoders release the GIL). `read`: path -> RGB image (default: a
    local file)."""
    with ThreadPoolExecutor(2) as pool:
        queue: deque[tuple[T, Future]] = deque()
        for path in paths:
            queue.append((path, pool.submit(_read, path, read)))
            if len(queue) > ahead:
                done, future = queue.popleft()
                yield done, future.result()
        while queue:
            done, future = queue.popleft()
            yield done, future.result()
