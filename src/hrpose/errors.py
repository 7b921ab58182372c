"""The one exception type that reaches users as a one-line message, and the wording of the
messages many places share."""

import difflib
import math
from collections.abc import Iterable


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


def plural(count: int, noun: str, many: str | None = None) -> str:
    """"1 frame", "3 frames"; `many` for an irregular plural ("1 person", "3 people")."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


def did_you_mean(given: str, known: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the known name closest to a misspelt one, else ""."""
    close = difflib.get_close_matches(given, list(known), n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def looks_like_path(name: str) -> bool:
    """Whether a model or file argument was meant as a path rather than a name: it has a
    folder separator, a suffix or a leading '.' or '~'."""
    return any(sep in name for sep in ("/", "\\")) or name.startswith((".", "~")) or \
        "." in name.rsplit("/", 1)[-1]
