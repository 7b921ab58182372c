"""Batch pose extraction over many files: `PosePredictor` (the function Ray Data's
`map_batches` and Spark's `predict_batch_udf` call), and the jobs behind `hrpose infer
--format parquet`, `--shard I/N` and `--engine ray`, which write resumable Parquet parts.
Nothing here imports Ray but `ray_engine`, when a job runs on it.
"""

from .job import BatchSettings, run_batch
from .parts import read_rows
from .predictor import PosePredictor

__all__ = ["BatchSettings", "PosePredictor", "read_rows", "run_batch"]
