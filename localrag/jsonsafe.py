"""Bounds on JSON-like data that comes from outside: nesting depth, finite numbers, namespace names.

Python's ``json`` module recurses once per nesting level, so a body of a few thousand
brackets raises ``RecursionError`` wherever it is parsed, serialised or walked. The depth is
therefore checked on the raw text, before anything recurses. Non-finite numbers (``NaN``,
``Infinity``, ``1e999``) parse fine but cannot be written back as JSON, so they are refused
where metadata enters instead of failing every later read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from localrag.errors import InvalidInputError

# Deep enough for any sane body: a filter at its own limit of 16 $and/$or levels is ~36 levels
# of JSON; far below the ~1000 at which the interpreter's recursion limit is hit.
MAX_DEPTH = 64

# A JSON string, escapes included (the unrolled loop has no nested quantifier to backtrack on).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes | str, limit: int = MAX_DEPTH) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings, counted up to ``limit + 1``."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:  # the common case: cannot be deeper than that
        return min(limit, data.count(b"[") + data.count(b"{"))
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def check_depth(raw: bytes | str, what: str = "request body", limit: int = MAX_DEPTH) -> None:
    if json_depth(raw, limit) > limit:
        raise InvalidInputError(f"{what} is nested more than {limit} levels deep")


def loads(raw: bytes | str, what: str = "request body", limit: int = MAX_DEPTH) -> Any:
    """``json.loads`` with the depth bounded first; every failure is an ``InvalidInputError``."""
    check_depth(raw, what, limit)
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"{what} is not valid JSON: {e}") from e
    except RecursionError as e:  # not reachable within the limit; kept so it can never be a 500
        raise InvalidInputError(f"{what} is nested too deeply") from e


def check_metadata(metadata: Any, what: str = "metadata", limit: int = MAX_DEPTH) -> None:
    """Refuse metadata that is not an object, nests deeper than ``limit`` or holds a non-finite
    number; the error names the offending field (``metadata.scores[2]``)."""
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"{what} must be an object (a mapping of field names to values)")
    # An explicit stack rather than recursion: the value may come from a Python caller, unchecked.
    stack: list[tuple[Any, str, int]] = [(metadata, what, 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, Mapping):
            if depth > limit:
                raise InvalidInputError(f"{path}: nested more than {limit} levels deep")
            stack.extend((v, f"{path}.{k}", depth + 1) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            if depth > limit:
                raise InvalidInputError(f"{path}: nested more than {limit} levels deep")
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
        elif not isinstance(value, (str, int, type(None))) and _non_finite(value):
            raise InvalidInputError(f"{path}: numbers must be finite, got {value!r}")


def _non_finite(value: Any) -> bool:
    """Floats, numpy scalars and other float-like values (ints are always finite)."""
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def check_namespace(namespace: Any) -> None:
    """A namespace is a string of at most 512 characters (Pinecone's own bound on names)."""
    if not isinstance(namespace, str) or len(namespace) > 512:
        raise InvalidInputError("namespace must be a string of at most 512 characters")
