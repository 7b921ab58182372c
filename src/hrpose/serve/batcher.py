"""Dynamic batching across requests: one thread per model, fed by a queue.

Requests `await submit(payload, cost)`; the model thread takes the oldest job, then more until
their cost (crops, or images) reaches `max_batch` or the oldest job has waited `max_wait_ms`,
runs them in one call and hands each job its own result. Under load the queue fills while a
batch runs, so the next batch is full at once. A request on its way to a batcher holds a
`Ticket` until it submits; the thread waits for more jobs only while some ticket is out, so a
request alone is never kept waiting for company that is not coming.

The model is only ever called from this thread: runners (an OpenVINO infer request, a torch
module) are not safe to share between threads, and the event loop never blocks on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import HrposeError


class Ticket:
    """A request that will (probably) submit a job: counted until it does, or gives up."""

    def __init__(self, batcher: Batcher) -> None:
        self.batcher, self.out = batcher, True
        batcher.coming += 1

    def release(self) -> None:
        if self.out:
            self.out = False
            self.batcher.coming -= 1


@dataclass
class _Job:
    payload: Any
    cost: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    queued: float = field(default_factory=time.monotonic)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():                  # the request timed out or its client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Batcher:
    """Runs `run(payloads) -> results` (one result per payload, in order) on batches of
    jobs. `on_batch(cost, seconds)` is told about every call (metrics)."""

    def __init__(self, name: str, run: Callable[[list[Any]], Sequence[Any]], *,
                 max_batch: int, max_wait_ms: float,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        self.name, self.run = name, run
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self.on_batch = on_batch
        self.calls = 0                  # batches run (a test reads it)
        self.coming = 0                 # tickets out: requests on their way here
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._carry: _Job | None = None
        self._thread = threading.Thread(target=self._loop, name=f"hrpose-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the batch in hand, fail whatever still waits, end the thread."""
        self._queue.put(None)
        self._thread.join()

    @property
    def depth(self) -> int:
        """Jobs waiting for the model."""
        return self._queue.qsize() + (self._carry is not None)

    def ticket(self) -> Ticket:
        """Say that a job is coming (release it when none will)."""
        return Ticket(self)

    async def submit(self, payload: Any, cost: int = 1, ticket: Ticket | None = None) -> Any:
        """The job's result; `ticket` (the request's) is released once the job is queued."""
        if not self._thread.is_alive():
            raise HrposeError(f"the {self.name} model is not running (the server is stopping)")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Job(payload, max(1, cost), future, loop))
        if ticket is not None:
            ticket.release()
        return await future

    def _loop(self) -> None:
        while True:
            jobs = self._next_batch()
            if jobs is None:
                break
            self._run(jobs)
        self._fail_waiting()

    def _next_batch(self) -> list[_Job] | None:
        """The oldest job and those that fit beside it; None once stopped."""
        first = self._carry if self._carry is not None else self._queue.get()
        self._carry = None
        if first is None:
            return None
        jobs, cost = [first], first.cost
        while cost < self.max_batch:
            if self.coming <= 0 and self._queue.empty():
                break                       # nobody else is on the way
            wait = first.queued + self.max_wait - time.monotonic()
            try:
                job = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._queue.put(None)       # stop after this batch
                break
            if cost + job.cost > self.max_batch:
                self._carry = job           # first of the next batch
                break
            jobs.append(job)
            cost += job.cost
        return jobs

    def _run(self, jobs: list[_Job]) -> None:
        jobs = [j for j in jobs if not j.future.done()]
        if not jobs:
            return
        start = time.perf_counter()
        try:
            results = self.run([j.payload for j in jobs])
        except Exception as e:
            if len(jobs) > 1:               # one bad job must not fail the others
                for job in jobs:
                    self._run([job])
                return
            self._reply(jobs[0], None, e)
            return
        self.calls += 1
        if self.on_batch is not None:
            self.on_batch(sum(j.cost for j in jobs), time.perf_counter() - start)
        for job, result in zip(jobs, results):
            self._reply(job, result, None)

    @staticmethod
    def _reply(job: _Job, result: Any, error: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):    # the event loop closed: nobody waits
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)

    def _fail_waiting(self) -> None:
        stopped = HrposeError(f"the {self.name} model stopped (the server is shutting down)")
        pending = [self._carry] if self._carry is not None else []
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                pending.append(job)
        for job in pending:
            self._reply(job, None, stopped)
