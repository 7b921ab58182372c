"""hrpose checkpoints: safetensors files of plain tensors with string metadata, written
atomically (temporary file, fsync, rename) so that a crash never leaves a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..errors import HrposeError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it over `path` only if the block succeeds.
    The file gets the mode a plain `open` would give it (0666 less the umask): mkstemp's 0600
    would keep a run's files from the teammates who read it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)      # reading the umask means setting it; put it back at once
    os.umask(mask)
    return mask


def check_weights_name(path: str | os.PathLike) -> None:
    """hrpose writes weights as safetensors: a `.pth` name would promise a pickle."""
    if Path(path).suffix.lower() != ".safetensors":
        raise HrposeError(f"{path}: hrpose writes weights as safetensors; name the file "
                          f"{Path(path).with_suffix('.safetensors').name}")


def save_weights(path: str | os.PathLike, state_dict: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> Path:
    """Writes `state_dict` as safetensors with `metadata`, atomically."""
    if Path(path).is_dir():
        raise HrposeError(f"{path}: is a folder; give a file name such as model.safetensors")
    check_weights_name(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp),
                      metadata={"format": "pt", "producer": "hrpose", **(metadata or {})})
    except OSError as e:
        raise HrposeError(f"{path}: cannot write ({e.strerror or e})") from None
    return Path(path)
