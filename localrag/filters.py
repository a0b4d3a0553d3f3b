"""Metadata filters in Pinecone's filter language: validate, compile, evaluate.

A filter is parsed once into a small tree, then compiled into closures, so evaluating
it over many records costs one predicate call per record and no re-parsing.

Semantics (Pinecone docs "Filter by metadata" / "Understanding metadata", and the
database-limits page; the docs' examples are in tests/unit/test_filters.py):

* Metadata values are strings, numbers (compared as 64-bit floats, as Pinecone
  converts them), booleans, or lists of strings. ``True`` never equals ``1``.
* A list field "takes on all its values" (the docs' words): ``$eq``/``$in`` and the
  comparisons match when any element does; ``$ne``/``$nin`` match when no element
  does. The docs show only the positive case; the negative one follows MongoDB, whose
  query language Pinecone's is based on, and keeps ``$ne`` the negation of ``$eq``.
* A missing field (or a ``None`` value, which Pinecone does not store) matches only
  ``$exists: false``. In particular ``$ne``/``$nin`` do not match records that lack
  the field: Pinecone changed to this in 2024 ("``{field: {"$ne": value}}`` now
  returns only documents where the field is set and different from value",
  deepset-ai/haystack-core-integrations#590 and #647), unlike MongoDB.
* Several keys in one object are an implicit AND, both at the top level and inside
  one field's operator object (``{"year": {"$gte": 2000, "$lt": 2010}}``).
* ``None`` and ``{}`` mean "no filter" (match everything): an AND of no clauses.
  Inside ``$and``/``$or`` an empty object is rejected as almost surely a mistake.
* Invalid (FilterError): a list as a field's value or ``$eq`` operand (the docs call
  ``{"genre": ["comedy", "documentary"]}`` an invalid query), a comparison operator
  at the top level, a non-number for ``$gt``-``$lte``, ``$in``/``$nin`` that is not a
  non-empty list of at most 10,000 values, a non-boolean ``$exists``, non-finite
  numbers, unknown operators, and nesting deeper than ``MAX_DEPTH``. ``$in``/``$nin``
  values may also be booleans: the docs list "string, number", the Python client's
  types allow booleans too.

Evaluation is in Python over per-document metadata held in memory: measured on 100k
records it was 5-10x faster than the equivalent json_each SQL, so there is no SQL path.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from localrag.errors import FilterError

log = logging.getLogger(__name__)

Predicate = Callable[[Mapping[str, Any]], bool]
Scalar = str | float | bool

MAX_IN_VALUES = 10_000  # Pinecone: "Each $in or $nin operator accepts a maximum of 10,000 values"
MAX_DEPTH = 16  # levels of $and/$or; Pinecone documents none, this only bounds recursion

_COMPARE = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
_FIELD_OPS = frozenset({"$eq", "$ne", "$in", "$nin", "$exists", *_COMPARE})
_LOGICAL_OPS = frozenset({"$and", "$or"})


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _Cond:
    """One operator on one field; numbers are already floats, lists are tuples."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class _Logic:
    op: str  # "$and" or "$or"
    children: tuple[_Node, ...]


_Node = _Cond | _Logic


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _number(value: Any, path: str) -> float:
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise FilterError(f"{path}: numbers must be finite, got {value!r:.40}")
    return number


def _scalar(value: Any, path: str, op: str) -> Scalar:
    """A filter operand normalised for comparison: bools stay bools, numbers become floats."""
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return _number(value, path)
    hint = ' (use "$in" to match any of several values)' if isinstance(value, (list, tuple)) else ""
    raise FilterError(f"{path}: {op} expects a string, number or boolean, got {_kind(value)}{hint}")


def _parse_filter(node: Any, path: str, depth: int) -> _Node:
    if depth > MAX_DEPTH:
        raise FilterError(f"{path}: filter is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(node, Mapping):
        raise FilterError(f"{path}: expected a filter object, got {_kind(node)}")
    clauses: list[_Node] = []
    for key, value in node.items():
        if not isinstance(key, str):
            raise FilterError(f"{path}: keys must be strings, got {_kind(key)}")
        if key in _LOGICAL_OPS:
            clauses.append(_parse_logic(key, value, f"{path}.{key}", depth))
        elif key in _FIELD_OPS:
            raise FilterError(
                f'{path}: operator "{key}" must be nested under a field, e.g. {{"year": {{"{key}": ...}}}}'
            )
        elif key.startswith("$"):
            raise FilterError(f'{path}: unknown operator "{key}"')
        elif not key:
            raise FilterError(f"{path}: field names must not be empty")
        else:
            clauses.extend(_parse_field(key, value, f"{path}.{key}"))
    return clauses[0] if len(clauses) == 1 else _Logic("$and", tuple(clauses))


def _parse_logic(op: str, value: Any, path: str, depth: int) -> _Logic:
    if not isinstance(value, (list, tuple)) or not value:
        got = "an empty list" if isinstance(value, (list, tuple)) else _kind(value)
        raise FilterError(f"{path}: {op} expects a non-empty list of filters, got {got}")
    children = []
    for i, item in enumerate(value):
        item_path = f"{path}[{i}]"
        if isinstance(item, Mapping) and not item:
            raise FilterError(f"{item_path}: empty filter inside {op}")
        children.append(_parse_filter(item, item_path, depth + 1))
    return _Logic(op, tuple(children))


def _parse_field(field: str, value: Any, path: str) -> list[_Cond]:
    if not isinstance(value, Mapping):
        if isinstance(value, (bool, str, int, float)):
            return [_Cond(field, "$eq", _scalar(value, path, "$eq"))]
        hint = ' (use {"$in": [...]} for any of several values)' if isinstance(value, (list, tuple)) else ""
        raise FilterError(
            f"{path}: a field takes a string, number, boolean or operator object, got {_kind(value)}{hint}"
        )
    if not value:
        raise FilterError(f"{path}: empty operator object")
    conds = []
    for op, operand in value.items():
        op_path = f"{path}.{op}"
        if op not in _FIELD_OPS:
            if not isinstance(op, str):
                raise FilterError(f"{path}: operator keys must be strings, got {_kind(op)}")
            if op in _LOGICAL_OPS:
                raise FilterError(f'{path}: operator "{op}" is not allowed under a field')
            raise FilterError(f'{path}: unknown operator "{op}"')
        if op in ("$eq", "$ne"):
            conds.append(_Cond(field, op, _scalar(operand, op_path, op)))
        elif op in _COMPARE:
            if isinstance(operand, bool) or not isinstance(operand, (int, float)):
                raise FilterError(f"{op_path}: {op} expects a number, got {_kind(operand)}")
            conds.append(_Cond(field, op, _number(operand, op_path)))
        elif op == "$exists":
            if not isinstance(operand, bool):
                raise FilterError(f"{op_path}: $exists expects true or false, got {_kind(operand)}")
            conds.append(_Cond(field, op, operand))
        else:
            conds.append(_Cond(field, op, _parse_in(op, operand, op_path)))
    return conds


def _parse_in(op: str, operand: Any, path: str) -> tuple[Scalar, ...]:
    if not isinstance(operand, (list, tuple)):
        raise FilterError(f"{path}: {op} expects a list, got {_kind(operand)}")
    if not operand:
        raise FilterError(f"{path}: {op} expects a non-empty list")
    if len(operand) > MAX_IN_VALUES:
        raise FilterError(f"{path}: {op} accepts at most {MAX_IN_VALUES} values, got {len(operand)}")
    values = []
    for i, item in enumerate(operand):
        if not isinstance(item, (bool, str, int, float)):
            kind = _kind(item)
            raise FilterError(f"{path}[{i}]: {op} values must be strings, numbers or booleans, got {kind}")
        values.append(_scalar(item, f"{path}[{i}]", op))
    return tuple(values)


def _parse(filter: Mapping[str, Any] | None) -> _Node:
    if filter is None:
        return _Logic("$and", ())
    return _parse_filter(filter, "filter", 0)


# --------------------------------------------------------------------------- predicates


def _as_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond float64: Pinecone cannot hold it either
        return math.inf if value > 0 else -math.inf


def _num(value: Any) -> float | None:
    """The metadata value as a float64, or None when it is not a number (bools are not)."""
    kind = type(value)
    if kind is float:
        return value
    if kind is bool or not isinstance(value, (int, float)):
        return None
    return _as_float(value)


# Element matchers take a present (non-None) metadata value and apply "any element"
# semantics to lists; each is specialised on the operand's type for speed.


def _eq_matcher(x: Scalar) -> Callable[[Any], bool]:
    if isinstance(x, bool):

        def match_bool(v: Any) -> bool:
            if v is x:
                return True
            return isinstance(v, (list, tuple)) and any(e is x for e in v)

        return match_bool
    if isinstance(x, str):

        def match_str(v: Any) -> bool:
            if isinstance(v, str):
                return v == x
            # ``in`` compares in C; only strings can equal a string operand.
            return isinstance(v, (list, tuple)) and x in v

        return match_str

    def match_num(v: Any) -> bool:
        if type(v) is float:
            return v == x
        if isinstance(v, (list, tuple)):
            return any(_num(e) == x for e in v)
        return _num(v) == x

    return match_num


def _in_matcher(values: tuple[Scalar, ...]) -> Callable[[Any], bool]:
    # Separate sets per type: in one set, hashing would make True equal to 1.0.
    strs = frozenset(v for v in values if isinstance(v, str))
    bools = frozenset(v for v in values if isinstance(v, bool))
    nums = frozenset(v for v in values if isinstance(v, float))

    def scalar(v: Any) -> bool:
        if isinstance(v, str):
            return v in strs
        if isinstance(v, bool):
            return v in bools
        n = _num(v)
        return n is not None and n in nums

    if not bools and not nums:

        def match_strs(v: Any) -> bool:
            if isinstance(v, str):
                return v in strs
            if not isinstance(v, (list, tuple)):
                return False
            try:
                return not strs.isdisjoint(v)
            except TypeError:  # an unhashable element in malformed metadata
                return any(isinstance(e, str) and e in strs for e in v)

        return match_strs

    def match(v: Any) -> bool:
        if isinstance(v, (list, tuple)):
            return any(scalar(e) for e in v)
        return scalar(v)

    return match


def _compare_matcher(op: str, x: float) -> Callable[[Any], bool]:
    cmp = _COMPARE[op]

    def match(v: Any) -> bool:
        if type(v) is float:
            return cmp(v, x)
        if isinstance(v, (list, tuple)):
            return any((n := _num(e)) is not None and cmp(n, x) for e in v)
        n = _num(v)
        return n is not None and cmp(n, x)

    return match


def _cond_predicate(cond: _Cond) -> Predicate:
    field, op, x = cond.field, cond.op, cond.value
    if op == "$exists":
        if x:
            return lambda md: md.get(field) is not None
        return lambda md: md.get(field) is None
    if op in ("$eq", "$ne"):
        match = _eq_matcher(x)
    elif op in ("$in", "$nin"):
        match = _in_matcher(x)
    else:
        match = _compare_matcher(op, x)
    if op in ("$ne", "$nin"):

        def negative(md: Mapping[str, Any]) -> bool:
            v = md.get(field)
            return v is not None and not match(v)

        return negative
    # Hot cases get the common value type checked inline, saving a call per record.
    if op == "$eq" and isinstance(x, str):

        def eq_str(md: Mapping[str, Any]) -> bool:
            v = md.get(field)
            if type(v) is str:
                return v == x
            return v is not None and match(v)

        return eq_str
    if op == "$in" and all(isinstance(value, str) for value in x):
        strs = frozenset(x)

        def in_strs(md: Mapping[str, Any]) -> bool:
            v = md.get(field)
            if type(v) is str:
                return v in strs
            return v is not None and match(v)

        return in_strs
    if op in _COMPARE:
        cmp = _COMPARE[op]

        def compare(md: Mapping[str, Any]) -> bool:
            v: Any = md.get(field)
            kind = type(v)
            if kind is float:
                return cmp(v, x)
            if kind is int:
                return cmp(_as_float(v), x)
            return v is not None and match(v)

        return compare

    def positive(md: Mapping[str, Any]) -> bool:
        v = md.get(field)
        return v is not None and match(v)

    return positive


def _node_predicate(node: _Node) -> Predicate:
    if isinstance(node, _Cond):
        return _cond_predicate(node)
    preds = tuple(_node_predicate(child) for child in node.children)
    if not preds:
        return lambda md: True
    if len(preds) == 1:
        return preds[0]
    if node.op == "$and":
        if len(preds) == 2:
            first, second = preds
            return lambda md: first(md) and second(md)

        def all_of(md: Mapping[str, Any]) -> bool:
            return all(pred(md) for pred in preds)

        return all_of

    if len(preds) == 2:
        first, second = preds
        return lambda md: first(md) or second(md)

    def any_of(md: Mapping[str, Any]) -> bool:
        return any(pred(md) for pred in preds)

    return any_of


# --------------------------------------------------------------------------- public API


def validate_filter(filter: Mapping[str, Any] | None) -> None:
    """Raise FilterError naming the problem and where it is, if ``filter`` is not valid."""
    _parse(filter)


def is_match_all(filter: Mapping[str, Any] | None) -> bool:
    """True for the filters that select everything (``None`` and ``{}``); validates first."""
    node = _parse(filter)
    return isinstance(node, _Logic) and not node.children


def compile_filter(filter: Mapping[str, Any] | None) -> Predicate:
    """Validate once and return a predicate over one record's metadata dict."""
    return _node_predicate(_parse(filter))


def matches(filter: Mapping[str, Any] | None, metadata: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` satisfies ``filter`` (compiles it each call; use compile_filter in loops)."""
    return compile_filter(filter)(metadata)


def match_mask(filter: Mapping[str, Any] | None, metadatas: Sequence[Mapping[str, Any]]) -> NDArray[np.bool_]:
    """Boolean array: which of ``metadatas`` satisfy ``filter``."""
    pred = compile_filter(filter)
    return np.fromiter(map(pred, metadatas), dtype=np.bool_, count=len(metadatas))


def filter_keys(
    filter: Mapping[str, Any] | None, records: Iterable[tuple[int, Mapping[str, Any]]]
) -> NDArray[np.int64]:
    """Sorted int64 keys of the ``(key, metadata)`` records that satisfy ``filter`` (an Allow array)."""
    pred = compile_filter(filter)
    keys = np.fromiter((key for key, md in records if pred(md)), dtype=np.int64)
    keys.sort()
    return keys
