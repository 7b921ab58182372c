"""Where outputs may go: never over an input. Plain pathlib, so the CLI checks its paths before
it imports anything heavy or writes anything."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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


@contextmanager
def output_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Creates the output folder `out`; when the work inside fails and leaves nothing in a
    folder made here, the folder goes too, so a failed run leaves no empty output behind.
    A folder that existed before is never removed."""
    path = Path(out)
    made = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        for folder in made:                  # deepest first; only empty ones
            try:
                folder.rmdir()
            except OSError:
                break
        raise
