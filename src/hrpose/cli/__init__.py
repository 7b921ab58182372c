"""The `hrpose` command: one module per command, each with its parser (`add_parser`) beside
its handler (`run`). Every command that prints figures also takes `--json`. Building the parser
imports no torch: each handler imports what it runs."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from ..errors import HrposeError, did_you_mean, first_line, plural
from ..version import __version__
from . import bench, convert, data, evaluate, export, infer, info, serve, train

COMMANDS = (info, convert, evaluate, train, infer, export, bench, serve, data)   # in --help order


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, like every other hrpose error, with exit status 2,
    and that helps with the usual shell mistakes: a misspelt flag or command gets the closest
    one, and extra arguments that are files get the advice to quote the glob that made them."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"hrpose: error: {message} (see '{self.prog} --help')\n")

    def parse_args(self, args: Sequence[str] | None = None,    # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        args = sys.argv[1:] if args is None else list(args)
        command = self._check_flags(args)
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command.error(_unrecognized(command, extra))
        return parsed

    def _check_value(self, action: argparse.Action, value: object) -> None:
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            self.error(f"unknown command {value!r}{did_you_mean(str(value), action.choices)}")
        super()._check_value(action, value)

    def _check_flags(self, args: list[str]) -> argparse.ArgumentParser:
        """A misspelt --flag is named before anything else (a required argument it was meant
        to be, say), against the flags of the command it follows. Returns the (innermost)
        command's parser."""
        parser: argparse.ArgumentParser = self
        for arg in args:
            if arg == "--":
                break
            if not arg.startswith("--"):
                commands = parser._commands() if isinstance(parser, _Parser) else {}
                parser = commands.get(arg, parser)
                continue
            flag = arg.split("=", 1)[0]
            if not any(known.startswith(flag) for known in _flags(parser)):  # prefixes pass
                parser.error(f"unrecognized argument {flag}{did_you_mean(flag, _flags(parser))}")
        return parser

    def _commands(self) -> dict[str, argparse.ArgumentParser]:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action.choices
        return {}


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings]


def _unrecognized(parser: argparse.ArgumentParser, extra: list[str]) -> str:
    """The message for arguments a command does not take: the closest flag for a misspelt
    one; for several plain arguments that are files, the glob the shell expanded."""
    for arg in extra:
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            return f"unrecognized argument {flag}{did_you_mean(flag, _flags(parser))}"
    if any(os.path.exists(arg) for arg in extra):
        return (f"{plural(len(extra), 'extra argument')} ({extra[0]}, ...): the shell expanded "
                "a glob into many files; quote it ('dir/*.jpg') so that hrpose reads it, or "
                "give the folder")
    return f"unrecognized arguments: {' '.join(extra)}"


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
