"""The `hrpose` command: one module per command, each with its parser (`add_parser`) beside
its handler (`run`). Every command that prints figures also takes `--json`. Building the parser
imports no torch: each handler imports what it runs."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from ..errors import HrposeError, first_line
from ..version import __version__
from . import bench, convert, data, evaluate, export, infer, info, serve, train

COMMANDS = (info, convert, evaluate, train, infer, export, bench, serve, data)   # in --help order


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, like every other hrpose error, with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"hrpose: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hrpose", description="HRNet human pose estimation: models, weights and tools.")
    parser.add_argument("--version", action="version", version=f"hrpose {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: object = None, line: str | None = None) -> None:
    print(f"hrpose: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():     # library warnings, one line each, like the errors
            warnings.simplefilter("default")
            warnings.showwarning = _one_line_warning
            return args.func(args)
    except HrposeError as e:
        print(f"hrpose: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # What the system refused (a disk that became read-only or full, a permission), for
        # a file the command's own checks could not foresee: named, on one line.
        if e.filename is None:
            raise
        print(f"hrpose: error: {e.filename}: {e.strerror or first_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hrpose: interrupted", file=sys.stderr)
        return 130
