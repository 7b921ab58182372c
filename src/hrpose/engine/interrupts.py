"""Ctrl-C while training: stop at a step where the saved state is exactly what the weights
hold, so that a resumed run is bit for bit the uninterrupted one."""

from __future__ import annotations

import signal
import sys
import threading

from tqdm import tqdm


class SafeStop(KeyboardInterrupt):
    """Raised at a point where the training state is consistent: saving it is safe."""


class Interrupts:
    """Ctrl-C (SIGINT) while training: the first one is held until the step in progress is
    complete and counted, so the saved state is exactly what the weights hold and a resumed run
    is bit-exact; a second one stops at once, without saving. Installed in the main thread only
    (signal handlers live there)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write("hrpose: stopping after this step and saving (Ctrl-C again: stop now, "
                   "unsaved)", file=sys.stderr)


def ignore_interrupts(worker: int) -> None:
    """Data workers leave Ctrl-C to the main process, which stops at a consistent step."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
