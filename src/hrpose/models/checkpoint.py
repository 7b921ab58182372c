"""Checkpoint files: reading every supported container without running its code, and
writing hrpose's own (safetensors with string metadata, atomically).

Reading: safetensors, `torch.load(weights_only=True)`, a restricted unpickler for Paddle's
`.pdparams` (numpy arrays and plain containers only) and a protobuf wire-format reader for
MindSpore `.ckpt`. Errors are one line that names the file.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from safetensors.torch import save_file

from ..errors import CheckpointError, HrposeError, first_line
from ..io import atomic_path

Tensors = dict[str, "np.ndarray | torch.Tensor"]


_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"refusing to decode bytes as {encoding!r}")
    return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """Admits numpy arrays, dtypes, scalars and plain containers; any other global is refused."""

    _ALLOWED: ClassVar[dict[str, object]] = {
        "_reconstruct": np.ndarray(0).__reduce__()[0],
        "ndarray": np.ndarray,
        "dtype": np.dtype,
        "scalar": np.float32(0).__reduce__()[0],
    }

    def find_class(self, module: str, name: str) -> object:
        if module.split(".")[0] == "numpy" and name in self._ALLOWED:
            return self._ALLOWED[name]
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        if (module, name) == ("_codecs", "encode"):  # protocol 2 stores bytes this way
            return _latin1_bytes
        raise pickle.UnpicklingError(f"refusing to unpickle the global {module}.{name}")


# Numpy data (arrays, scalars, dtypes) that training checkpoints keep in their metadata, such as
# mmcv's best score: plain data, admitted by torch.load(weights_only=True) as well.
_NUMPY_DATA = [*_ArrayUnpickler._ALLOWED.values(),
               *(type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int8,
                                             np.int16, np.int32, np.int64, np.uint8, np.bool_))]


def _torch_load(path: Path) -> object:
    with torch.serialization.safe_globals(_NUMPY_DATA):
        return torch.load(path, map_location="cpu", weights_only=True)


_MS_DTYPES = {
    "Float16": np.float16, "Float32": np.float32, "Float64": np.float64,
    "Int8": np.int8, "Int16": np.int16, "Int32": np.int32, "Int64": np.int64,
    "UInt8": np.uint8, "Bool": np.bool_,
}


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _proto_fields(buf: memoryview):
    """Yields (field number, value) of a protobuf message: int for varints, bytes otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated message")
        yield field, value


def _read_mindspore(data: bytes) -> Tensors:
    """MindSpore .ckpt: `Checkpoint {repeated Value value = 1}`, `Value {string tag = 1;
    TensorProto tensor = 2}`, `TensorProto {repeated int64 dims = 1; string tensor_type = 2;
    bytes tensor_content = 3}`. A large tensor may be split over several values with one tag."""
    parts: dict[str, list] = {}
    for field, value in _proto_fields(memoryview(data)):
        if field != 1:
            continue
        tag, tensor = None, None
        for f, v in _proto_fields(value):
            if f == 1:
                tag = bytes(v).decode()
            elif f == 2:
                tensor = v
        if tag is None or tensor is None:
            continue  # map tensors and other entries carry no weights
        dims: list[int] = []
        dtype, content = "", b""
        for f, v in _proto_fields(tensor):
            if f == 1 and isinstance(v, int):
                dims.append(v)
            elif f == 1:  # packed
                pos = 0
                while pos < len(v):
                    d, pos = _varint(v, pos)
                    dims.append(d)
            elif f == 2:
                dtype = bytes(v).decode()
            elif f == 3:
                content = bytes(v)
        parts.setdefault(tag, []).append((dims, dtype, content))
    tensors: Tensors = {}
    for tag, chunks in parts.items():
        dims, dtype, _ = chunks[0]
        raw = b"".join(c for _, _, c in chunks)
        if dtype == "BFloat16":
            bits = np.frombuffer(raw, np.uint16).astype(np.uint32) << 16
            array = bits.view(np.float32)
        elif dtype in _MS_DTYPES:
            array = np.frombuffer(raw, _MS_DTYPES[dtype])
        else:
            raise ValueError(f"tensor {tag!r} has unsupported type {dtype!r}")
        shape = dims if int(np.prod(dims)) == array.size else [-1, *dims[1:]]
        tensors[tag] = array.reshape(shape)
    if not tensors:
        raise ValueError("no tensors found")
    return tensors


def _check_expansion(path: Path, size: int) -> None:
    """PyTorch stores its zip records uncompressed; records that would expand far beyond the
    file (a zip bomb) are refused before anything is decompressed."""
    with zipfile.ZipFile(path) as archive:
        expanded = sum(info.file_size for info in archive.infolist())
    if expanded > 4 * size + (64 << 20):
        raise CheckpointError(f"{path}: its records expand to {expanded / 2**20:,.0f} MiB from "
                              f"{size / 2**20:,.1f} MiB (a zip bomb, not a PyTorch file)")


def _unwrap(obj: object) -> dict:
    """The state dict inside a training checkpoint (`{'state_dict': ...}`, `{'model': ...}`)."""
    while isinstance(obj, dict):
        inner = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), dict)),
                     None)
        if inner is None:
            return obj
        obj = inner
    raise ValueError(f"expected a dict of tensors, found {type(obj).__name__}")


def read_checkpoint(path: str | os.PathLike) -> tuple[Tensors, dict[str, str]]:
    """(tensors by name, metadata) from any supported container, without running its code."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(16)  # enough to tell the formats apart; each reader reads the file once
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror})") from None
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    metadata: dict[str, str] = {}
    try:
        header = struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else 0
        if head[8:9] == b"{" and 8 + header <= size:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                metadata = dict(f.metadata() or {})
                obj = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        elif head[:4] == b"PK\x03\x04" or head.startswith(_TORCH_LEGACY_MAGIC):
            if head[:4] == b"PK\x03\x04":
                _check_expansion(path, size)
            obj = _torch_load(path)
        elif head[:1] == b"\x80":
            obj = _ArrayUnpickler(io.BytesIO(path.read_bytes())).load()
        elif head[:1] == b"\x0a":
            obj = _read_mindspore(path.read_bytes())
        else:
            raise CheckpointError(
                f"{path}: not a checkpoint (neither safetensors, PyTorch, Paddle .pdparams "
                "nor MindSpore .ckpt)")
        state = _unwrap(obj)
    except pickle.UnpicklingError as e:
        msg = first_line(e, 1000)
        if "Weights only load failed" in str(e):
            refused = re.search(r"GLOBAL ([\w.]+)", str(e))
            what = f" ({refused.group(1)})" if refused else ""
            msg = (f"it holds a Python object{what} besides tensors, which is never unpickled; "
                   "save the state dict alone")
        raise CheckpointError(f"{path}: unsafe or corrupt pickle: {msg}") from None
    except (EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: the file is truncated or corrupt ({e})") from None
    except HrposeError:
        raise
    except Exception as e:        # anything else the parsers raise on a corrupt file
        raise CheckpointError(f"{path}: the file is truncated or corrupt ({first_line(e, 1000)})"
                              ) from None
    tensors = {
        k: v for k, v in state.items() if isinstance(v, (torch.Tensor, np.ndarray))
    }
    if not tensors:
        raise CheckpointError(f"{path}: the file holds no tensors")
    if all(k.startswith("module.") for k in tensors):  # saved from DataParallel
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors, metadata



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
