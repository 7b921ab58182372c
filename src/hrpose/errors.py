"""The one exception type that reaches users as a one-line message, and the wording of the
messages many places share."""

import math


class HrposeError(Exception):
    """A user-facing error: bad input, a bad file, a failed download.

    The CLI prints its message on one line and exits with status 2; the message names the file,
    field or value at fault.
    """


class CheckpointError(HrposeError):
    """A checkpoint file that cannot be read or does not fit the model."""


def first_line(error: BaseException, limit: int = 160) -> str:
    """An exception as one line for a message: its message's first non-empty line (cut at
    `limit`), or its type's name when it has none (an empty file's EOFError says nothing)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:limit] if lines else type(error).__name__


def out_of_range(value: object, low: float, high: float = math.inf, low_open: bool = False,
                 whole: bool = False) -> str | None:
    """Why `value` breaks the rule "a (whole) number in [low, high] ((low, high] with
    `low_open`)", or None when it keeps it. The one wording of a range for command-line flags
    and config values alike: "expected a whole number >= 1, got 0"."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        (not whole or float(value).is_integer()) and \
        (low < value <= high if low_open else low <= value <= high)
    if ok:
        return None
    kind = "a whole number" if whole else "a number"
    lo, hi = _plain_number(low), _plain_number(high)
    span = f"in [{lo}, {hi}]" if high != math.inf else f"> {lo}" if low_open else f">= {lo}"
    return f"expected {kind} {span}, got {value!r}"


def _plain_number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def plural(count: int, noun: str) -> str:
    """"1 frame", "3 frames"."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
