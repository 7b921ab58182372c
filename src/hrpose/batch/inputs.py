"""What a batch job works through: its inputs listed once, split into items (an image, or a
segment of a video's frames), chosen by `--shard I/N` and grouped into parts.

Every name here is derived from the inputs alone, so that a rerun, another shard's job or a Ray
job plans the same items: an item's key is its path relative to its INPUT's base folder
(`input_keys`; a video segment adds "@first frame+frames"), the shard of an item is a hash
of its key, and a part is named by a hash of its items' keys.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import HrposeError
from ..inference.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, find_inputs, is_video

LIST_SUFFIXES = (".txt", ".lst")


@dataclass(frozen=True)
class Item:
    key: str                    # stable name: "sub/a.jpg"; a segment "clip.mp4@300+300"
    source: str                 # what to read: a local path or a URL
    start: int | None = None    # video: the segment's first frame
    frames: int = 0             # video: frames in the segment (0: to the end)

    @property
    def video(self) -> bool:
        return self.start is not None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Part:
    name: str                   # part-<16 hex>.parquet
    items: tuple[Item, ...]


def is_url(source: str) -> bool:
    return "://" in source


def list_sources(source: str) -> list[str]:
    """The files an INPUT names: a file, a folder (its images, sorted), a glob (its images and
    videos), a list file (.txt / .lst: one path or URL a line; relative paths are relative to
    the list file, # starts a comment) or any of these as an fsspec URL (s3://bucket/frames/,
    gs://..., file:///data/*.jpg)."""
    if is_url(source):
        return _list_url(source)
    path = Path(source)
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        return _read_list(path)
    return [str(p) for p in find_inputs(source)]


def _read_list(path: Path) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise HrposeError(f"{path}: cannot read the list file ({e})") from None
    sources: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        line = line.strip() if is_url(line) else line.split("#", 1)[0].strip()
        if not line:
            continue
        if "\0" in line:
            raise HrposeError(f"{path}, line {number}: the name holds a NUL character")
        if not is_url(line) and Path(line).suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
            raise HrposeError(f"{path}, line {number}: {line!r} is not an image or video file")
        source = line if is_url(line) or Path(line).is_absolute() else str(path.parent / line)
        if source in seen:
            raise HrposeError(f"{path}, line {number}: {line} is listed twice")
        seen.add(source)
        sources.append(source)
    if not sources:
        raise HrposeError(f"{path}: the list names no files")
    return sources


def _list_url(source: str) -> list[str]:
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise HrposeError(f"{source}: reading URLs needs fsspec: pip install 'hrpose[ray]'"
                          ) from None
    try:
        fs, path = url_to_fs(source)
        if any(c in path for c in "*?["):
            found = fs.glob(path)
            suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
        elif fs.isdir(path):
            found = [p for p in fs.ls(path, detail=False)]
            suffixes = IMAGE_SUFFIXES
        elif fs.isfile(path):
            return [source]
        else:
            raise HrposeError(f"{source}: no such file or folder")
    except (OSError, ValueError, ImportError) as e:
        raise HrposeError(f"{source}: cannot list ({e})") from None
    files = sorted(fs.unstrip_protocol(p) for p in found
                   if posixpath.splitext(p)[1].lower() in suffixes)
    if not files:
        raise HrposeError(f"{source}: no image or video files there")
    return files


def input_keys(source: str, files: list[str]) -> list[str]:
    """Each file's key: its path relative to the base of the INPUT that names it (a folder:
    itself; a file: its folder; a glob: the folder before its first wildcard; a list file: the
    list's folder), posix separators. Only the INPUT decides it, so adding files (a new
    subfolder under a glob, a line in a list) never changes the keys of the others, and the
    same files mounted elsewhere keep theirs. A file outside the base (an absolute path in a
    list) is keyed by its whole path."""
    base = _input_base(source)
    keys = []
    for file in files:
        if is_url(file):
            inside = is_url(base) and file.startswith(base.rstrip("/") + "/")
            keys.append(file[len(base.rstrip("/")) + 1:] if inside else file)
            continue
        path = os.path.abspath(file)                    # links keep their names
        relative = os.path.relpath(path, base) if not is_url(base) else ".."
        outside = relative == ".." or relative.startswith(".." + os.sep)
        keys.append(Path(path).as_posix().lstrip("/") if outside else
                    Path(relative).as_posix())
    if len(set(keys)) < len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise HrposeError(f"{source}: two inputs have the key {twice!r} (one inside the "
                          "list's folder, one outside it); list them relative to one folder")
    return keys


def _input_base(source: str) -> str:
    """The folder an INPUT's keys are relative to (a URL for a URL)."""
    wildcard = next((i for i, c in enumerate(source) if c in "*?["), None)
    if is_url(source):
        scheme, path = source.split("://", 1)
        if wildcard is not None:
            path = posixpath.dirname(path[:wildcard - len(scheme) - 3])
        elif posixpath.splitext(path)[1].lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
            path = posixpath.dirname(path)
        return f"{scheme}://{path.rstrip('/')}"
    path = Path(source)
    if path.is_dir():
        return os.path.abspath(path)
    if path.is_file():
        return os.path.abspath(path.parent)
    return os.path.abspath(os.path.dirname(source[:wildcard]) if wildcard is not None else
                           path.parent)


def expand(source: str, sources: list[str], segment_frames: int) -> list[Item]:
    """Items, sorted by key: each image, and each video split into segments of
    `segment_frames` frames (its frames counted: the container's count checked by reading its
    last frame, else by reading them all)."""
    from ..inference.video import Stream, VideoReader

    items = []
    for key, file in zip(input_keys(source, sources), sources):
        if not is_video(file):
            items.append(Item(key, file))
            continue
        if is_url(file) and not file.startswith(("http://", "https://")):
            raise HrposeError(f"{file}: videos are read from local paths or http(s) URLs "
                              "(OpenCV's reader); copy it to a local or shared folder")
        reader = VideoReader(Stream(file) if is_url(file) else file)
        count = reader.counted_frames()      # a header's count is never trusted
        reader.capture.release()
        if count == 0:                          # unknown length: one segment to the end
            items.append(Item(f"{key}@0+end", file, 0, 0))
        for start in range(0, count, segment_frames):
            frames = min(segment_frames, count - start)
            items.append(Item(f"{key}@{start}+{frames}", file, start, frames))
    return sorted(items, key=lambda i: i.key)


def check_segments(items: list[Item], done: set[str], out: str) -> None:
    """Refuses a rerun whose segments differ from those already written (another
    --segment-frames): their frames would be counted twice or not at all."""
    planned = {i.key for i in items if i.video}
    videos = {k.rsplit("@", 1)[0] for k in planned}
    stale = sorted(k for k in done if "@" in k and k.rsplit("@", 1)[0] in videos
                   and k not in planned)
    if stale:
        raise HrposeError(f"{out} holds segment {stale[0]}, which this run would not make: "
                          "rerun with the --segment-frames of the run that wrote it, or "
                          "write to a new folder")


def stable_hash(text: str, bits: int = 64) -> int:
    """A hash of `text` that every process and machine agrees on (Python's hash() does not)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - bits)


def parse_shard(text: str) -> tuple[int, int]:
    """"I/N" -> (I, N), 0 <= I < N."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise HrposeError(f"--shard {text!r}: expected I/N, such as 0/4") from None
    if not 0 <= index < count:
        raise HrposeError(f"--shard {text}: I must be in 0..N-1 (0..{count - 1})"
                          if count > 0 else f"--shard {text}: N must be at least 1")
    return index, count


def select_shard(items: list[Item], index: int, count: int) -> list[Item]:
    """The items of shard `index` of `count`: those whose key hashes to it."""
    return [i for i in items if stable_hash(i.key) % count == index]


def plan_parts(items: list[Item], done: set[str], part_size: int) -> list[Part]:
    """Parts for the items not done yet: `part_size` images each, in key order, and each video
    segment a part of its own (its frames run in order, tracked)."""
    pending = [i for i in items if i.key not in done]
    images = [i for i in pending if not i.video]
    groups = [images[k:k + part_size] for k in range(0, len(images), part_size)]
    groups += [[i] for i in pending if i.video]
    return [Part(part_name(g), tuple(g)) for g in groups]


def part_name(items: list[Item]) -> str:
    digest = hashlib.blake2b("\n".join(i.key for i in items).encode(), digest_size=8)
    return f"part-{digest.hexdigest()}.parquet"


def image_id(key: str) -> int:
    """The COCO image id of an image: the number it is named by (COCO's 000000000785.jpg is
    785), else a stable 48-bit hash of its key (exact in a JSON double)."""
    stem = posixpath.splitext(posixpath.basename(key))[0]
    return int(stem) if stem.isdigit() and len(stem) < 16 else stable_hash(key, 48)
