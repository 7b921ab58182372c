"""The output of a batch job: Parquet part files, one row per person, and a manifest.

A part file is written whole or not at all (a temporary file renamed; on an object store, one
PUT), and its footer lists the items it completed, so the files themselves say what is done: a
rerun reads the footers, not the manifest, and a job killed at any moment loses only the parts
it was writing. Readers of the folder (pandas, pyarrow, Spark, DuckDB) see `part-*.parquet`;
names starting with "_" or "." (the manifest, temporaries) are skipped by all of them.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HrposeError
from ..io import TMP_SUFFIX, atomic_path
from .inputs import is_url

# One row per person. bbox, box_score, score and keypoints are results.json's fields (COCO
# results, rounded to 0.01 px); frame, segment and track_id are null for images.
COLUMNS = ("key", "file", "image_id", "frame", "segment", "track_id", "person", "bbox",
           "box_score", "score", "keypoints", "image_width", "image_height", "model",
           "keypoint_set", "codec", "precision", "hrpose_version")
METADATA_KEY = b"hrpose"


def pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet
    except ImportError:
        raise HrposeError("Parquet output needs pyarrow: pip install 'hrpose[parquet]' (or "
                          "'hrpose[ray]')") from None
    return pa


def schema():
    pa = pyarrow()
    floats = pa.list_(pa.float32())
    types = {"key": pa.string(), "file": pa.string(), "image_id": pa.int64(),
             "frame": pa.int32(), "segment": pa.int32(), "track_id": pa.int32(),
             "person": pa.int32(), "bbox": floats, "box_score": pa.float32(),
             "score": pa.float32(), "keypoints": floats, "image_width": pa.int32(),
             "image_height": pa.int32(), "model": pa.string(), "keypoint_set": pa.string(),
             "codec": pa.string(), "precision": pa.string(), "hrpose_version": pa.string()}
    return pa.schema([(name, types[name]) for name in COLUMNS])


@dataclass
class PartInfo:
    name: str
    items: list[str]                     # the keys it completed
    rows: int
    failed: list[dict] = field(default_factory=list)    # {"input", "error"}: not completed
    model: dict = field(default_factory=dict)           # the footer's model fields and card
    seconds: float = 0.0                                # writing it took (this run)
    load_seconds: float = 0.0                           # its writer's model load (this run)


def encode_part(rows: list[dict], info: dict) -> bytes:
    """A Parquet file (zstd) of `rows`, with `info` (items, failures, the model card) as JSON
    in its footer."""
    pa = pyarrow()
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema())
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(info).encode()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


class Store:
    """The output folder: a local path, or an fsspec URL (s3://bucket/poses, ...)."""

    def __init__(self, out: str) -> None:
        self.out = out
        if is_url(out):
            from fsspec.core import url_to_fs

            self.fs, self.root = url_to_fs(out)
            self.fs.makedirs(self.root, exist_ok=True)
        else:
            self.fs, self.root = None, out
            Path(out).mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}" if self.fs else str(Path(self.root) / name)

    def write(self, name: str, data: bytes) -> None:
        """Whole or not at all: a renamed temporary file here, one PUT on an object store."""
        if self.fs is not None:
            self.fs.pipe_file(self.path(name), data)
            return
        with atomic_path(self.path(name)) as tmp:
            tmp.write_bytes(data)

    def open(self, name: str):
        return self.fs.open(self.path(name), "rb") if self.fs else open(self.path(name), "rb")

    def parts(self) -> list[str]:
        if self.fs is not None:
            return sorted(p.rsplit("/", 1)[-1] for p in self.fs.glob(self.path("part-*.parquet")))
        return sorted(p.name for p in Path(self.root).glob("part-*.parquet"))

    def remove(self, name: str) -> None:
        if self.fs is not None:
            self.fs.rm(self.path(name))
        else:
            Path(self.path(name)).unlink(missing_ok=True)

    def remove_temporaries(self, names: list[str]) -> None:
        """What a killed job left of these parts (only these: other shards' jobs may be
        writing theirs beside them)."""
        if self.fs is None:
            for name in names:
                for stale in Path(self.root).glob(f".{name}.*{TMP_SUFFIX}"):
                    stale.unlink(missing_ok=True)


def read_info(store: Store, name: str) -> PartInfo:
    import pyarrow.parquet as pq

    try:
        with store.open(name) as f:
            meta = pq.ParquetFile(f).metadata
            info = json.loads(meta.metadata[METADATA_KEY])
            model = {k: v for k, v in info.items() if k not in ("items", "failed")}
            return PartInfo(name, list(info["items"]), meta.num_rows, info.get("failed", []),
                            model)
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise HrposeError(f"{store.path(name)}: not an hrpose part file ({e}); move it out of "
                          "the output folder") from None


def completed(store: Store) -> dict[str, PartInfo]:
    """The parts in the output folder, each item in exactly one: an item found in two parts
    (two jobs raced over it, or a killed job's actor finished a part its rerun planned again)
    is kept in the part named first and its rows taken out of the others."""
    pyarrow()
    parts = {name: read_info(store, name) for name in store.parts()}
    owner: dict[str, str] = {}
    for info in parts.values():
        extra = [k for k in info.items if k in owner]
        owner.update({k: info.name for k in info.items if k not in owner})
        if extra:
            parts[info.name] = _without(store, info, set(extra))
    return {name: info for name, info in parts.items() if info.items}


def _without(store: Store, info: PartInfo, keys: set[str]) -> PartInfo:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with store.open(info.name) as f:
        table = pq.read_table(f)
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    kept = [k for k in info.items if k not in keys]
    if not kept:
        store.remove(info.name)
        return PartInfo(info.name, [], 0)
    table = table.filter(pc.invert(pc.is_in(table["key"], value_set=pyarrow().array(keys))))
    meta["items"] = kept
    store.write(info.name, encode_part(table.to_pylist(), meta))
    return PartInfo(info.name, kept, table.num_rows, info.failed, info.model)


def write_manifest(store: Store, name: str, manifest: dict) -> None:
    manifest = {**manifest, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    store.write(name, json.dumps(manifest, indent=1).encode())


def read_rows(out: str | Path):
    """Every part of an output folder as one pyarrow Table (pandas: `.to_pandas()`)."""
    import pyarrow.parquet as pq

    store = Store(str(out))
    tables = []
    for name in store.parts():
        with store.open(name) as f:
            tables.append(pq.read_table(f))
    pa = pyarrow()
    return pa.concat_tables(tables) if tables else schema().empty_table()
