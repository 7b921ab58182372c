"""Downloading published weights into a local cache, with progress, resume and hash checks.

Files go to `$HRPOSE_HOME/checkpoints/` (default `~/.cache/hrpose`). A name that carries a hash
prefix (`hrnet_w32_coco_256x192-c78dce93_20200708.pth`: the first hex digits of the file's SHA-256,
the open-mmlab and torch.hub convention) is verified before it enters the cache. An interrupted
download leaves `NAME.part`, which the next call resumes with an HTTP range request.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from tqdm import tqdm

from .errors import HrposeError

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})(?:_\d{8})?\.[A-Za-z0-9]+$")
_CHUNK = 1 << 20


class DownloadError(HrposeError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("HRPOSE_HOME", "~/.cache/hrpose")).expanduser() / "checkpoints"


def cached_path(url: str) -> Path:
    """Where `download(url)` keeps its file (it may not exist yet)."""
    name = Path(urlparse(url).path).name
    if not name:
        raise DownloadError(f"{url}: the URL names no file")
    return cache_dir() / name


def expected_hash_prefix(filename: str) -> str | None:
    match = _HASH_IN_NAME.search(filename)
    return match.group(1) if match else None


def sha256_of(path: Path) -> str:
    return file_digests(path, ("sha256",), progress=False)["sha256"]


def file_digests(path: Path, algorithms: tuple[str, ...], progress: bool = True
                 ) -> dict[str, str]:
    """Hex digests of `path` by each of `algorithms` (hashlib names), in one pass."""
    hashes = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                                     desc=f"checking {path.name}", disable=not progress,
                                     leave=False) as bar:
        for block in iter(lambda: f.read(_CHUNK), b""):
            for h in hashes.values():
                h.update(block)
            bar.update(len(block))
    return {name: h.hexdigest() for name, h in hashes.items()}


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock so that several processes (DDP ranks) download a file once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _offline_hint(name: str, model_name: str | None, alternative: str | None = None
                  ) -> str:
    """Where the file goes when it is fetched by hand: the cache folder and its name there."""
    how = alternative or (
        f"or pass it as a file (--weights /path/to/{name}, or build_model({model_name!r}, "
        f"weights='/path/to/{name}'))" if model_name else
        f"or use the local path /path/to/{name} instead of the URL")
    return (f"download it on a connected machine and put it in {cache_dir()} as {name} "
            f"(HRPOSE_HOME moves the cache), {how}")


def download(url: str, model_name: str | None = None, progress: bool = True,
             timeout: float = 30.0, sha256: str | None = None,
             alternative: str | None = None) -> Path:
    """The cached file for `url`, downloading (or resuming) it first when needed. The download
    is checked against `sha256` (the whole digest) when given, else against the hash prefix in
    its name, if any. `alternative` ends the offline message (what else the user can pass)."""
    dest = cached_path(url)
    folder, name = dest.parent, dest.name
    if dest.exists():
        return dest
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / (name + ".part")
    locks = folder / ".locks"
    locks.mkdir(exist_ok=True)
    with _locked(locks / (name + ".lock")):
        if dest.exists():  # another process finished it while we waited
            return dest
        fetch(url, part, _offline_hint(name, model_name, alternative), progress, timeout)
        want = sha256 or expected_hash_prefix(name)
        if want is not None:
            got = sha256_of(part)
            if not got.startswith(want):
                part.unlink()
                raise DownloadError(
                    f"{url}: SHA-256 of the download starts with {got[:len(want)]}, "
                    f"{'expected' if sha256 else 'the file name says'} {want[:16]}; the "
                    "corrupt file was deleted, try again")
        os.replace(part, dest)
    return dest


def fetch(url: str, part: Path, offline_hint: str, progress: bool = True,
          timeout: float = 30.0) -> None:
    """Download `url` into `part`, resuming what `part` already holds with an HTTP range
    request. `offline_hint` ends the message when the server cannot be reached: what the user
    can do instead. Raises DownloadError when the transfer stops early (run again to resume)."""
    name = Path(urlparse(url).path).name or url
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "hrpose"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # the part file is already complete
            return
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; {offline_hint}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"cannot download {url} ({reason}); {offline_hint}") from None
    with response:
        if response.status != 206:  # the server ignored the range: start over
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        mode = "ab" if offset else "wb"
        try:
            with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B",
                                             unit_scale=True, desc=name,
                                             disable=not progress) as bar:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    f.write(block)
                    bar.update(len(block))
        except (OSError, http.client.HTTPException) as e:
            raise DownloadError(f"{url}: download interrupted ({e}); run again to resume "
                                f"from {part}") from None
    if total is not None and part.stat().st_size < total:
        raise DownloadError(f"{url}: download interrupted at {part.stat().st_size} of {total} "
                            f"bytes; run again to resume from {part}")
