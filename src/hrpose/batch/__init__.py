"""Batch pose extraction over many files: `PosePredictor` (the function Ray Data's
`map_batches` and Spark's `predict_batch_udf` call), and the jobs behind `hrpose infer
--format parquet`, `--shard I/N` and `--engine ray`, which write resumable Parquet parts.

`PosePredictor` and `read_rows` are imported on first use; nothing here imports Ray.
"""

from __future__ import annotations

import importlib

_LAZY = {"PosePredictor": ".predictor", "read_rows": ".parts", "run_batch": ".job",
         "BatchSettings": ".writer"}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'hrpose.batch' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
