"""Checked reads of the records in users' JSON files (annotations, detections, results, box
files): every field hrpose takes from such a file goes through one of these, so a bad value is
one line naming the file, the record and the field, and the arrays built from them can be
trusted: finite, of the stated length, within range.

`where` is the record's label, the file included: "person_keypoints.json: annotation 17".
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import chain

import numpy as np

from .errors import HrposeError

# Pixels. A coordinate beyond this is garbage: no image is that large (the decoders refuse
# more pixels than io.MAX_IMAGE_PIXELS), and float32 no longer holds whole pixels there.
COORDINATE_LIMIT = 2.0**24
_INT64 = 2**63


def fail(where: str, message: str) -> HrposeError:
    return HrposeError(f"{where}: {message}")


def record(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise fail(where, f"must be an object, got {_kind(value)}")
    return value


def of_category(entries: list, category_id: int, label: str) -> Iterator[tuple[str, dict]]:
    """(label + index, record) of the entries of a COCO list (annotations, detections,
    results) whose category_id is `category_id` (or missing); other categories are skipped, as
    COCO's API skips them. `label` names the file and the kind: "ann.json: annotation #"."""
    for i, entry in enumerate(entries):
        where = f"{label}{i}"
        entry = record(entry, where)
        if integer(entry.get("category_id", category_id), where, "category_id") == category_id:
            yield where, entry


def required(entry: dict, name: str, where: str) -> object:
    if name not in entry or entry[name] is None:
        raise fail(where, f"missing field {name!r}")
    return entry[name]


def integer(value: object, where: str, name: str, low: int | None = None,
            high: int | None = None) -> int:
    """An integer (a float with an integral value is one too, as JSON writers may make
    them), within int64 and [low, high]."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(where, f"field {name!r} must be an integer, got {_shown(value)}")
    if not -_INT64 <= value < _INT64:
        raise fail(where, f"field {name!r} is out of range ({value})")
    if (low is not None and value < low) or (high is not None and value > high):
        raise fail(where, f"field {name!r} must be {_range(low, high)}, got {value}")
    return value


def number(value: object, where: str, name: str, low: float | None = None,
           high: float | None = None) -> float:
    """A finite number within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(where, f"field {name!r} must be a number, got {_shown(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise fail(where, f"field {name!r} is not a finite number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise fail(where, f"field {name!r} must be {_range(low, high)}, got {value:g}")
    return value


def flag(value: object, where: str, name: str) -> bool:
    """COCO's 0 / 1 flags (iscrowd), true / false accepted."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise fail(where, f"field {name!r} must be 0 or 1, got {_shown(value)}")


def string(value: object, where: str, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise fail(where, f"field {name!r} must be a non-empty string, got {_shown(value)}")
    if "\0" in value:                 # no file name or label holds one; the OS refuses it
        raise fail(where, f"field {name!r} holds a NUL character: {value!r}")
    return value


def numbers(value: object, where: str, name: str, length: int | None = None,
            limit: float = COORDINATE_LIMIT) -> np.ndarray:
    """A list of finite numbers within +-limit, flattened (MPII nests joints as [[x, y], ...]);
    `length`: how many it must hold."""
    if isinstance(value, list) and _NUMBER_TYPES.issuperset(map(type, value)):
        flat = value                            # a flat list of numbers: no walk needed
    else:
        flat = _flatten(value) if isinstance(value, list) else None
    if flat is None:
        raise fail(where, f"field {name!r} must be a list of numbers, got {_shown(value)}")
    try:
        array = np.asarray(flat, np.float64)
    except (TypeError, ValueError, OverflowError):
        raise fail(where, f"field {name!r} must be a list of numbers") from None
    if length is not None and array.size != length:
        raise fail(where, f"field {name!r} has {array.size} numbers, expected {length}")
    if not np.isfinite(array).all():
        raise fail(where, f"field {name!r} has a non-finite number")
    if array.size and np.abs(array).max() > limit:
        raise fail(where, f"field {name!r} has a value beyond +-{limit:g} "
                   f"({array[np.argmax(np.abs(array))]:g})")
    return array


_NUMBER_TYPES = frozenset((int, float))


def number_rows(rows: list, length: int, limit: float = COORDINATE_LIMIT) -> np.ndarray | None:
    """Rows that are each a flat list of `length` finite numbers within +-limit, as one
    (len(rows), length) array in a few whole-array steps; None when any row is not (then
    `numbers` row by row names the one that is wrong). A large results file's fast path."""
    if not rows:
        return np.zeros((0, length))
    if set(map(type, rows)) != {list} or not _NUMBER_TYPES.issuperset(
            map(type, chain.from_iterable(rows))):
        return None
    try:
        array = np.array(rows, np.float64)
    except (ValueError, OverflowError):         # rows of different lengths
        return None
    if array.shape != (len(rows), length):
        return None
    if not np.isfinite(array).all() or (array.size and np.abs(array).max() > limit):
        return None
    return array


def _flatten(value: object) -> list | None:
    """Nested lists of numbers -> one flat list; None when anything else is inside."""
    out: list = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            out.append(item)
        else:
            return None
    return out


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"in [{low:g}, {high:g}]"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__)


def _shown(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else f"{_kind(value)} ({shown[:30]}...)"
