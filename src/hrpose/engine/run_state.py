"""The training state file (RUN_DIR/latest.pt): everything `--resume` needs to continue a run
bit for bit (model, optimiser, scaler, where training stands, random streams), read without
running code from it, and checked against the run it is loaded into."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import HrposeError, first_line
from ..io import atomic_path

STATE_FORMAT = "hrpose-train-1"


@dataclass
class State:
    """Where training stands; saved in latest.pt with the model, optimiser and scaler."""

    epoch: int = 0            # the epoch in progress (or the next one)
    batch: int = 0            # batches of `epoch` already done
    step: int = 0             # optimiser steps so far
    best_ap: float = -1.0
    best_epoch: int = -1
    evaluated: int = 0        # the last epoch evaluated (an interrupt may fall between the two)


def read_state(path: Path) -> dict:
    """latest.pt as plain tensors and values (`weights_only`), or one line saying why not."""
    if not path.is_file():
        raise HrposeError(f"{path}: nothing to resume (no latest.pt in the run folder)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:   # truncated file, or one that is not a plain-tensor checkpoint
        raise HrposeError(f"{path}: cannot read the training state "
                          f"({first_line(e, 120)})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise HrposeError(f"{path}: not an hrpose training state")
    return state


def restore_state(saved: dict, path: Path, net: nn.Module, optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler, device: torch.device) -> State:
    """The saved state into this run's model, optimiser, scaler and random streams; one line
    naming the file when it does not fit (a different config, a corrupt or hand-edited file)."""
    try:
        model = saved["model"]
        bad = next((k for k, v in model.items() if isinstance(v, torch.Tensor)
                    and v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
        if bad is not None:
            raise HrposeError(f"{path}: tensor {bad} holds NaN or infinite values")
        net.load_state_dict(model)
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        where = dict(saved["state"])
        # States saved before `evaluated` existed were saved after their evaluation.
        state = State(**{"evaluated": where.get("epoch", 0), **where})
        torch.set_rng_state(saved["rng"]["torch"])
        if device.type == "cuda" and saved["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(saved["rng"]["cuda"], device)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise HrposeError(f"{path}: the training state does not fit this run ({first_line(e)})"
                          ) from None
    return state


def write_state(path: Path, net: nn.Module, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler, state: State, config: dict,
                device: torch.device) -> None:
    """latest.pt, written whole (a temporary renamed into place)."""
    rng = {"torch": torch.get_rng_state(),
           "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    saved = {"format": STATE_FORMAT, "model": net.state_dict(),
             "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
             "state": vars(state).copy(), "rng": rng, "config": config}
    with atomic_path(path) as tmp:
        torch.save(saved, tmp)
