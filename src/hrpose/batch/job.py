"""Batch pose extraction: inputs -> Parquet parts (parts.py), in this process, in one shard
of many plain jobs (`--shard I/N`), or on a Ray cluster's actor pool (ray_engine.py); each
part written by a `PartWriter` (writer.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import asdict

from tqdm import tqdm

from ..errors import HrposeError
from ..inference.options import EstimatorOptions
from ..version import __version__
from .inputs import (
    Item,
    Part,
    check_segments,
    expand,
    list_sources,
    parse_shard,
    plan_parts,
    select_shard,
)
from .parts import COLUMNS, PartInfo, Store, completed, write_manifest
from .writer import BatchSettings, PartWriter

__all__ = ["BatchSettings", "run_batch"]


def run_batch(source: str, out: str, model: str, options: EstimatorOptions = EstimatorOptions(),
              settings: BatchSettings = BatchSettings(), engine: str = "local",
              ray: dict | None = None) -> dict:
    """Every item of `source` not done yet in `out` (this shard's, with settings.shard) ->
    part files, then the manifest, `model` run as `options` say (on every writer, Ray actors
    too). Returns the summary. engine "ray": on the Ray cluster at
    ray["address"] (None: a local one), ray["concurrency"] actors of ray["num_gpus"] GPUs."""
    start = time.perf_counter()
    if engine == "ray":
        from .ray_engine import import_ray

        import_ray()                      # before anything runs: a missing extra is one line
    elif engine != "local":
        raise HrposeError(f"engine {engine!r}: choose local or ray")
    items = expand(source, list_sources(source), settings.segment_frames)
    shard = parse_shard(settings.shard) if settings.shard else None
    if shard is not None:
        items = select_shard(items, *shard)
    store = Store(out)
    keys = {i.key for i in items}
    every = completed(store)
    check_segments(items, {k for info in every.values() for k in info.items}, out)
    parts = {n: info for n, info in every.items() if keys.intersection(info.items)}
    done = {k for info in parts.values() for k in info.items} & keys
    todo = plan_parts(items, done, settings.part_size)
    store.remove_temporaries([p.name for p in todo])
    if engine == "ray" and todo:
        from .ray_engine import connect

        connect((ray or {}).get("address"))
    # A rerun's rows must be those of the parts already there: checked as the model loads,
    # here before any work (a Ray job's actors check again as they load theirs).
    expect = next((info.model for info in every.values() if info.model), None)
    writer = {"model": model, "options": options, "out": out, "settings": _plain(settings),
              "expect": expect}
    local = PartWriter(**writer) if (engine == "local" and todo) or expect else None
    manifest = _Manifest(store, source, engine, settings, items, parts, shard)
    skipped = len(done)
    bar = tqdm(total=len(items), initial=skipped, desc="infer", unit="item",
               disable=not settings.progress)
    try:
        for result in _run(todo, local, writer, engine, ray or {}):
            manifest.add(result)
            bar.update(len(result.items) + len(result.failed))
            for failure in result.failed:
                tqdm.write(f"hrpose: skipped {failure['input']}: {failure['error']}",
                           file=sys.stderr)
    finally:
        bar.close()
    manifest.write()
    seconds = time.perf_counter() - start
    new = manifest.done - skipped
    return {"engine": engine, "shard": settings.shard, "items": len(items),
            "images": sum(not i.video for i in items), "video_segments": sum(
                i.video for i in items), "skipped": skipped, "done": new,
            "failed": manifest.failed, "parts_written": manifest.written,
            "parts": len(manifest.parts), "rows": manifest.rows, "complete": manifest.complete,
            "out": out, "manifest": store.path(manifest.name), "seconds": round(seconds, 3),
            "items_per_s": round(new / seconds, 2) if seconds > 0 else None}


def _plain(settings: BatchSettings) -> dict:
    plain = asdict(settings)
    plain.pop("progress")
    return plain


def _run(parts: list[Part], local: PartWriter | None, writer: dict, engine: str, ray: dict
         ) -> Iterator[PartInfo]:
    if not parts:
        return
    if engine == "ray":
        from .ray_engine import run_parts

        yield from run_parts(parts, writer, **ray)
        return
    for part in parts:
        yield local.write_part(part)


class _Manifest:
    """OUT/_manifest.json (a shard's job: _manifest.shard-I-of-N.json): what the job covers,
    what is done, the parts, the failures and the model. Rewritten as parts complete (at most
    every 10 s) and at the end; the parts' footers, not this, are what a rerun trusts."""

    def __init__(self, store: Store, source: str, engine: str, settings: BatchSettings,
                 items: list[Item], parts: dict[str, PartInfo],
                 shard: tuple[int, int] | None) -> None:
        self.store, self.items, self.parts = store, items, dict(parts)
        self.keys = {i.key for i in items}
        self.name = "_manifest.json" if shard is None else \
            f"_manifest.shard-{shard[0]}-of-{shard[1]}.json"
        self.head = {"input": source, "out": store.out, "engine": engine,
                     "shard": settings.shard, "part_size": settings.part_size,
                     "segment_frames": settings.segment_frames,
                     "columns": list(COLUMNS), "hrpose_version": __version__}
        self.failures: dict[str, str] = {}
        self.written = 0
        self.last = 0.0

    @property
    def done(self) -> int:
        """This job's items done (a part of another job may hold others too)."""
        return len({k for info in self.parts.values() for k in info.items} & self.keys)

    @property
    def rows(self) -> int:
        return sum(info.rows for info in self.parts.values())

    @property
    def failed(self) -> list[dict]:
        return [{"input": k, "error": e} for k, e in sorted(self.failures.items())]

    @property
    def complete(self) -> bool:
        return self.done == len(self.items)

    def add(self, result: PartInfo) -> None:
        for failure in result.failed:
            self.failures[failure["input"]] = failure["error"]
        if result.items:
            self.parts[result.name] = result
            self.written += 1
        if time.monotonic() - self.last > 10:
            self.write()

    def write(self) -> None:
        self.last = time.monotonic()
        model = next((info.model for info in self.parts.values() if info.model), {})
        write_manifest(self.store, self.name, {
            **self.head, "items": len(self.items), "done": self.done,
            "complete": self.complete, "rows": self.rows, "failed": self.failed,
            "model": model,
            "parts": [{"file": n, "items": len(info.items), "rows": info.rows}
                      for n, info in sorted(self.parts.items())]})
