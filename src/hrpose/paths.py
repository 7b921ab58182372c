"""Where outputs may go: never over an input. Plain pathlib, so the CLI checks its paths before
it imports anything heavy or writes anything."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import HrposeError


def check_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None],
                 flag: str = "--out", folder: bool = True) -> None:
    """Refuses, in one line and before anything is written, an output that is one of the
    inputs or (a folder) holds one: its files could replace them. `inputs` may hold None and
    names that are not files (a zoo model, a URL): only what exists can be replaced."""
    target = Path(out).resolve()
    for item in inputs:
        if item is None or not Path(item).exists():
            continue
        source = Path(item).resolve()
        if source == target or (folder and target in source.parents):
            verb = "is" if source == target else "holds"
            raise HrposeError(f"{out}: {flag} {verb} the input {item}; what is written there "
                              f"could replace it. Choose another {'folder' if folder else 'file'}")
