"""The Ray engine: parts as a Ray Data dataset, `PartWriter` actors (each loads the model once)
mapping them to part files. Ray schedules, retries lost tasks and spreads the actors over the
cluster's nodes; resuming is the part files' (parts.py), so a killed driver costs only the
parts in flight.

Measured (benchmarks/batch_scale.py): decoding in the actors from paths beats
`ray.data.read_images` feeding `PosePredictor`, whose reading tasks compete with the actors for
the same cores and ship every decoded image through the object store.
"""

from __future__ import annotations

import json
import logging
import socket
import warnings
from collections.abc import Iterator
from dataclasses import replace

from ..errors import HrposeError
from .inputs import Part
from .parts import PartInfo
from .writer import PartWriter


def import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise HrposeError("--engine ray needs Ray: pip install 'hrpose[ray]'") from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None):
    """Ray, connected: to the cluster at `address` ("auto": the one this machine belongs to,
    HOST:PORT, ray://HOST:PORT), or with None (and no RAY_ADDRESS) a local one started here."""
    # Ray's own deprecation notices (its internals setting its renamed options) say nothing
    # to a user of hrpose.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="ray")
    ray = import_ray()
    if not ray.is_initialized():
        if address not in (None, "auto", "local"):
            check_reachable(address)
        try:
            ray.init(address=address, num_cpus=num_cpus if address is None else None,
                     include_dashboard=False, logging_level=logging.ERROR,
                     configure_logging=True)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise HrposeError(f"Ray at {address or 'a new local cluster'}: cannot connect "
                              f"({str(e).strip().splitlines()[-1][:200]})") from None
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False            # the driver's tqdm counts items
    return ray


def check_reachable(address: str) -> None:
    """HOST:PORT (or ray://HOST:PORT) answers, else one line now: Ray itself retries an
    unreachable address for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise HrposeError(f"--address {address!r}: expected auto, HOST:PORT or "
                          "ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise HrposeError(f"--address {address}: no Ray cluster answers there "
                          f"({e.strerror or e})") from None


def run_parts(parts: list[Part], writer: dict, address: str | None = None,
              concurrency: int | None = None, num_gpus: float = 0) -> Iterator[PartInfo]:
    """Each part written by a pool of `concurrency` actors (default: as many as the cluster's
    GPUs / CPUs allow), each with `num_gpus` GPUs and the writer options' threads CPUs, in any
    order; yields each part's outcome as it completes. An actor reserves its threads on the
    cluster, so threads not given are 1 (many actors share the cores), not every core."""
    ray = connect(address)
    runtime = writer["options"].runtime
    threads = runtime.threads or 1
    if concurrency is None:
        resources = ray.cluster_resources()
        concurrency = int(resources.get("GPU", 0) // num_gpus) if num_gpus else \
            int(resources.get("CPU", 1) // threads)
    concurrency = max(1, min(concurrency, len(parts)))
    options = replace(writer["options"], runtime=replace(runtime, threads=threads))
    dataset = ray.data.from_items(
        [{"name": p.name, "items": json.dumps([i.to_dict() for i in p.items])} for p in parts],
        override_num_blocks=len(parts))
    done = dataset.map_batches(
        PartWriter, fn_constructor_kwargs={**writer, "options": options}, batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=concurrency), num_cpus=threads,
        **({"num_gpus": num_gpus} if num_gpus else {}))
    try:
        for row in done.iter_rows():
            yield PartInfo(row["name"], json.loads(row["items"]), int(row["rows"]),
                           json.loads(row["failed"]), json.loads(row["model"]),
                           float(row["seconds"]), float(row["load_seconds"]))
    except Exception as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, HrposeError):
            raise HrposeError(str(cause)) from None
        if type(e).__module__.startswith("ray"):
            lines = [line for line in str(e).strip().splitlines() if line.strip()]
            raise HrposeError(f"the Ray job failed: {lines[-1][:300] if lines else e!r}"
                              ) from None
        raise
