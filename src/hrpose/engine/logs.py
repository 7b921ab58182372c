"""A training run's records: RUN_DIR/log.jsonl (one JSON object per line) and TensorBoard
scalars and pictures (RUN_DIR/tb), written by rank 0 only."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from pathlib import Path

from ..io import write_failure

log = logging.getLogger(__name__)


class RunLog:
    """log.jsonl and TensorBoard for one run; `open` starts TensorBoard (the training loop),
    `close` ends it. On other ranks than the main one every call does nothing."""

    def __init__(self, run_dir: Path, main: bool) -> None:
        self.run_dir, self.main, self.writer = run_dir, main, None

    def open(self) -> None:
        if self.main:
            self.writer = _tensorboard(self.run_dir / "tb")

    def close(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(OSError):    # a full disk was reported already
                self.writer.close()
            self.writer = None

    def record(self, record: dict) -> None:
        """One line of log.jsonl (with the time), and its numbers as TensorBoard scalars
        under train/ or val/."""
        if not self.main:
            return
        record = {"time": round(time.time(), 3), **record}
        try:
            with open(self.run_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:
            raise write_failure(e, self.run_dir / "log.jsonl") from None
        if self.writer is not None:
            prefix = "train" if record["kind"] == "train" else "val"
            for key, value in record.items():
                if key not in ("time", "kind", "epoch", "step", "iter") and isinstance(
                        value, (int, float)):
                    self.writer.add_scalar(f"{prefix}/{key}", value, record["step"])

    def picture(self, tag: str, path: Path, step: int) -> None:
        """A drawing (a JPEG the evaluation wrote) as a TensorBoard image."""
        if self.writer is None or not path.exists():
            return
        import cv2

        image = cv2.imread(str(path))[:, :, ::-1]
        self.writer.add_image(tag, image.copy(), step, dataformats="HWC")


def _tensorboard(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:    # tensorboard is a dependency; a stripped environment still trains
        log.warning("tensorboard is not installed: no TensorBoard scalars")
        return None
    _quiet_writer_threads()
    return SummaryWriter(str(folder))


def _quiet_writer_threads() -> None:
    """TensorBoard writes from a thread of its own: a failed write there (a full disk) is one
    warning, not a traceback beside the one-line error the training loop reports."""
    previous = threading.excepthook
    if getattr(previous, "hrpose", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        writer = type(args.thread).__module__.startswith(("tensorboard", "torch.utils"))
        if writer and issubclass(args.exc_type, OSError):
            log.warning("TensorBoard events not written: %s", args.exc_value)
        else:
            previous(args)

    hook.hrpose = True
    threading.excepthook = hook
