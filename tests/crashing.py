"""Kill a short training run at a chosen point, the way a crash or a user would, then check what
it left: the driver of the crash-safety test (tests/test_reliability.py, a few points) and of
the longer sweep (benchmarks/fuzz_campaign.py --crash-sweep).

    python -m tests.crashing RUN_DIR DATA_ROOT [POINT SIGNAL N]

POINT: step (after optimiser step N is counted), optimizer (inside step N, right after the
weights change and before the step is counted: where a Ctrl-C used to land), save (half-way
through writing the N-th latest.pt), eval (inside the N-th model call of an evaluation).
SIGNAL: KILL or INT. Without a point the run goes to its end. Either way it resumes when the
run folder holds a latest.pt, else starts fresh.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
POINTS = ("step", "optimizer", "save", "eval")


def _on_call(n: int, action: Callable[[], None]) -> Callable[[], None]:
    """A function that runs `action` on its n-th call."""
    calls = [0]

    def call() -> None:
        calls[0] += 1
        if calls[0] == n:
            action()

    return call


def arm(point: str, sig: int, n: int) -> Callable[[int], None] | None:
    """Patches hrpose so that `sig` arrives at the n-th `point`; returns the on_step hook."""
    from hrpose.inference import backends

    send = _on_call(n, lambda: os.kill(os.getpid(), sig))
    if point == "step":
        return lambda step: send()
    if point == "optimizer":
        real_step = torch.amp.GradScaler.step

        def step(self, optimizer, *args, **kwargs):
            out = real_step(self, optimizer, *args, **kwargs)
            send()
            return out

        torch.amp.GradScaler.step = step
    elif point == "save":
        real_save = torch.save
        saves = [0]

        def save(obj, f, *args, **kwargs):
            real_save(obj, f, *args, **kwargs)
            if Path(str(f)).name.startswith(".latest.pt."):
                saves[0] += 1
                if saves[0] == n:
                    with open(f, "r+b") as handle:       # half-way through the write
                        handle.truncate(Path(f).stat().st_size // 2)
                    os.kill(os.getpid(), sig)
                    real_save(obj, f, *args, **kwargs)   # an interrupt: the write completes

        torch.save = save
    elif point == "eval":
        real_run = backends.TorchRunner.run_all

        def run_all(self, batch):
            send()
            return real_run(self, batch)

        backends.TorchRunner.run_all = run_all
    return None


def tiny_config(root: Path):
    from hrpose.config import load_config

    from .helpers import TINY_TRAIN

    return load_config(ROOT / "configs/synthetic/quickstart.yaml",
                       [*TINY_TRAIN, f"data.root={root}", "train.epochs=3", "train.eval_every=2"])


def main(argv: list[str]) -> int:
    from hrpose.engine.train import train

    run, root = Path(argv[0]), Path(argv[1])
    hook = arm(argv[2], getattr(signal, f"SIG{argv[3]}"), int(argv[4])) if len(argv) > 2 \
        else None
    resume = (run / "latest.pt").exists()
    try:
        train(tiny_config(root), run, resume=resume, progress=False, on_step=hook)
    except KeyboardInterrupt:
        return 130
    return 0


def run_driver(run: Path, root: Path, *point: str) -> int:
    """The driver in a fresh process; its exit status (negative: killed by that signal)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "tests.crashing", str(run), str(root),
                             *point], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    if result.returncode not in (0, 130, -signal.SIGKILL):
        raise AssertionError(f"driver failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.returncode


def check_left_files(run: Path) -> None:
    """Every checkpoint under its final name loads; no half-written file hides there."""
    from hrpose.models.loading import load_model

    if (run / "latest.pt").exists():
        state = torch.load(run / "latest.pt", map_location="cpu", weights_only=True)
        assert state["format"].startswith("hrpose-train"), run / "latest.pt"
    for name in ("latest.safetensors", "best.safetensors"):
        if (run / name).exists():
            load_model(run / name)


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "latest.safetensors")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
