"""Metadata filters: Pinecone's documented examples, edge semantics, errors, and a property
test of the compiled predicate (and of the SQL translation) against a naive oracle."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localrag.errors import FilterError, InvalidInputError
from localrag.filters import (
    MAX_DEPTH,
    MAX_IN_VALUES,
    compile_filter,
    filter_keys,
    is_match_all,
    match_mask,
    matches,
    validate_filter,
)

PROPERTY = settings(
    max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# The movie records of Pinecone's metadata-filtering docs; D and E have no year.
MOVIES: dict[str, dict[str, Any]] = {
    "A": {"genre": "comedy", "year": 2020},
    "B": {"genre": "documentary", "year": 2019},
    "C": {"genre": "comedy", "year": 2019},
    "D": {"genre": "drama"},
    "E": {"genre": "drama"},
}


def selected(flt: dict[str, Any] | None) -> str:
    pred = compile_filter(flt)
    return "".join(name for name, md in MOVIES.items() if pred(md))


# ----------------------------------------------------------------- documented examples


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"genre": {"$eq": "documentary"}}, "B"),
        ({"genre": {"$ne": "drama"}}, "ABC"),
        ({"year": {"$gt": 2019}}, "A"),
        ({"year": {"$gte": 2020}}, "A"),
        ({"year": {"$lt": 2020}}, "BC"),
        ({"year": {"$lte": 2020}}, "ABC"),
        ({"genre": {"$in": ["comedy", "documentary"]}}, "ABC"),
        ({"genre": {"$nin": ["comedy", "documentary"]}}, "DE"),
        ({"genre": {"$exists": True}}, "ABCDE"),
        ({"$and": [{"genre": {"$eq": "drama"}}, {"year": {"$gte": 2020}}]}, ""),
        ({"$or": [{"genre": {"$eq": "drama"}}, {"year": {"$gte": 2020}}]}, "ADE"),
        ({"genre": "comedy"}, "AC"),  # implicit $eq
        ({"genre": "comedy", "year": 2019}, "C"),  # implicit AND of keys
        ({"year": {"$gte": 2019, "$lt": 2020}}, "BC"),  # implicit AND inside one field
        ({"$or": [{"genre": "drama"}], "year": 2019}, ""),  # logical and field keys side by side
        (None, "ABCDE"),
        ({}, "ABCDE"),
    ],
)
def test_documented_operator_examples(flt: dict[str, Any] | None, expected: str) -> None:
    assert selected(flt) == expected


def test_list_field_takes_on_every_value_as_documented() -> None:
    md = {"genre": ["comedy", "documentary"]}
    for flt in (
        {"genre": "comedy"},
        {"genre": {"$in": ["documentary", "action"]}},
        {"$and": [{"genre": "comedy"}, {"genre": "documentary"}]},
    ):
        assert matches(flt, md), flt
    assert not matches({"$and": [{"genre": "comedy"}, {"genre": "drama"}]}, md)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"genre": {"$ne": "comedy"}}, False),  # one element equals: no longer "not equal"
        ({"genre": {"$ne": "drama"}}, True),
        ({"genre": {"$nin": ["drama", "documentary"]}}, False),
        ({"genre": {"$nin": ["drama", "action"]}}, True),
        ({"genre": {"$gt": 0}}, False),  # comparisons are for numbers only
    ],
)
def test_negations_on_list_fields_require_that_no_element_matches(
    flt: dict[str, Any], expected: bool
) -> None:
    assert matches(flt, {"genre": ["comedy", "documentary"]}) is expected


def test_empty_list_field_is_present_but_equals_nothing() -> None:
    md: dict[str, Any] = {"tags": []}
    assert not matches({"tags": "a"}, md)
    assert matches({"tags": {"$ne": "a"}}, md)
    assert matches({"tags": {"$exists": True}}, md)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"year": {"$ne": 2020}}, False),
        ({"year": {"$nin": [2020]}}, False),
        ({"year": {"$exists": False}}, True),
        ({"year": {"$exists": True}}, False),
        ({"year": {"$lt": 10**9}}, False),
        ({"$or": [{"year": 2020}, {"genre": "drama"}]}, True),
    ],
)
def test_missing_field_matches_only_exists_false(flt: dict[str, Any], expected: bool) -> None:
    assert matches(flt, {"genre": "drama"}) is expected
    assert matches(flt, {"genre": "drama", "year": None}) is expected  # null counts as missing


def test_missing_field_under_ne_follows_pinecone_not_mongodb() -> None:
    # Pinecone (since 2024) excludes records without the field from $ne; MongoDB includes them.
    assert selected({"year": {"$ne": 2020}}) == "BC"
    assert selected({"year": {"$nin": [2019]}}) == "A"


@pytest.mark.parametrize(
    ("flt", "md", "expected"),
    [
        ({"x": 1}, {"x": True}, False),
        ({"x": True}, {"x": 1}, False),
        ({"x": 0}, {"x": False}, False),
        ({"x": {"$in": [1]}}, {"x": True}, False),
        ({"x": {"$in": [True]}}, {"x": 1}, False),
        ({"x": {"$in": [True]}}, {"x": 1.0}, False),
        ({"x": {"$nin": [1]}}, {"x": True}, True),
        ({"x": {"$ne": 1}}, {"x": True}, True),
        ({"x": {"$gt": 0}}, {"x": True}, False),
        ({"x": True}, {"x": True}, True),
        ({"x": {"$in": [False, "a"]}}, {"x": False}, True),
        ({"x": {"$ne": False}}, {"x": True}, True),
    ],
)
def test_booleans_are_not_numbers(flt: dict[str, Any], md: dict[str, Any], expected: bool) -> None:
    assert matches(flt, md) is expected


@pytest.mark.parametrize(
    ("flt", "md", "expected"),
    [
        ({"x": 2020}, {"x": 2020.0}, True),
        ({"x": 2020.0}, {"x": 2020}, True),
        ({"x": {"$in": [1, 2]}}, {"x": 2.0}, True),
        ({"x": 2**53}, {"x": 2**53 + 1}, True),  # both become the same float64, as in Pinecone
        ({"x": "1"}, {"x": 1}, False),
        ({"x": 1}, {"x": "1"}, False),
        ({"x": {"$lt": 10**400 // 10**100}}, {"x": 10**400}, False),  # ints beyond float64 are infinite
        ({"x": {"$gte": 0.5}}, {"x": 0.5}, True),
        ({"x": {"$gt": -1}}, {"x": -0.0}, True),
        ({"x": 0}, {"x": -0.0}, True),
    ],
)
def test_numbers_compare_as_float64(flt: dict[str, Any], md: dict[str, Any], expected: bool) -> None:
    assert matches(flt, md) is expected


def test_strings_compare_exactly() -> None:
    assert not matches({"g": "Comedy"}, {"g": "comedy"})
    assert not matches({"g": "comedy "}, {"g": "comedy"})
    assert matches({"g": ""}, {"g": ""})
    assert matches({"g": {"$in": ["é", "x"]}}, {"g": ["é"]})


# --------------------------------------------------------------------------- invalid


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ([{"genre": "drama"}], "filter: expected a filter object, got list"),
        ("genre", "filter: expected a filter object, got string"),
        ({"year": {"$gtx": 2000}}, 'filter.year: unknown operator "$gtx"'),
        ({"$not": {"genre": "drama"}}, 'filter: unknown operator "$not"'),
        ({"$gt": 1}, 'filter: operator "$gt" must be nested under a field'),
        ({"$in": ["a"]}, 'filter: operator "$in" must be nested under a field'),
        ({"$and": []}, "filter.$and: $and expects a non-empty list of filters, got an empty list"),
        ({"$or": {"genre": "drama"}}, "filter.$or: $or expects a non-empty list of filters, got object"),
        ({"$and": [{"genre": "drama"}, "x"]}, "filter.$and[1]: expected a filter object, got string"),
        ({"$or": [{}]}, "filter.$or[0]: empty filter inside $or"),
        (
            {"$and": [{"$or": [{"y": {"$lt": "9"}}]}]},
            "filter.$and[0].$or[0].y.$lt: $lt expects a number, got string",
        ),
        (
            {"genre": ["comedy", "documentary"]},
            "filter.genre: a field takes a string, number, boolean or operator",
        ),
        (
            {"genre": {"$eq": ["comedy", "documentary"]}},
            "filter.genre.$eq: $eq expects a string, number or boolean",
        ),
        (
            {"genre": None},
            "filter.genre: a field takes a string, number, boolean or operator object, got null",
        ),
        ({"genre": {"$ne": None}}, "filter.genre.$ne: $ne expects a string, number or boolean, got null"),
        ({"genre": {}}, "filter.genre: empty operator object"),
        ({"genre": {"sub": 1}}, 'filter.genre: unknown operator "sub"'),
        ({"genre": {"$or": [{"a": 1}]}}, 'filter.genre: operator "$or" is not allowed under a field'),
        ({"year": {"$gt": "2000"}}, "filter.year.$gt: $gt expects a number, got string"),
        ({"year": {"$lte": True}}, "filter.year.$lte: $lte expects a number, got boolean"),
        ({"year": {"$gte": [1]}}, "filter.year.$gte: $gte expects a number, got list"),
        ({"year": {"$lt": float("nan")}}, "filter.year.$lt: numbers must be finite"),
        ({"year": float("inf")}, "filter.year: numbers must be finite"),
        ({"year": {"$eq": 10**400}}, "filter.year.$eq: numbers must be finite"),
        ({"genre": {"$in": "comedy"}}, "filter.genre.$in: $in expects a list, got string"),
        ({"genre": {"$nin": []}}, "filter.genre.$nin: $nin expects a non-empty list"),
        (
            {"genre": {"$in": ["a", ["b"]]}},
            "filter.genre.$in[1]: $in values must be strings, numbers or booleans",
        ),
        (
            {"genre": {"$in": ["a", None]}},
            "filter.genre.$in[1]: $in values must be strings, numbers or booleans",
        ),
        ({"genre": {"$exists": 1}}, "filter.genre.$exists: $exists expects true or false, got number"),
        ({"genre": {"$exists": "yes"}}, "filter.genre.$exists: $exists expects true or false, got string"),
        ({"": 1}, "filter: field names must not be empty"),
        ({1: "a"}, "filter: keys must be strings, got number"),
    ],
)
def test_invalid_filters_name_the_problem_and_its_path(flt: Any, message: str) -> None:
    with pytest.raises(FilterError) as info:
        validate_filter(flt)
    assert message in str(info.value)
    with pytest.raises(FilterError):
        compile_filter(flt)


def test_filter_errors_are_client_errors() -> None:
    with pytest.raises(InvalidInputError) as info:
        matches({"year": {"$gtx": 1}}, {})
    assert info.value.http_status == 400


def test_in_accepts_up_to_the_documented_limit() -> None:
    values = [f"v{i}" for i in range(MAX_IN_VALUES)]
    assert MAX_IN_VALUES == 10_000
    assert matches({"id": {"$in": values}}, {"id": "v9999"})
    with pytest.raises(
        FilterError, match=r"filter\.id\.\$nin: \$nin accepts at most 10000 values, got 10001"
    ):
        validate_filter({"id": {"$nin": [*values, "extra"]}})


def test_nesting_depth_is_bounded() -> None:
    ok: dict[str, Any] = {"g": "a"}
    for _ in range(MAX_DEPTH):
        ok = {"$and": [ok]}
    assert matches(ok, {"g": "a"})
    with pytest.raises(FilterError, match=f"nested more than {MAX_DEPTH} levels"):
        validate_filter({"$or": [ok]})


def test_match_all_detection() -> None:
    assert is_match_all(None) and is_match_all({})
    assert not is_match_all({"g": "a"})
    with pytest.raises(FilterError):
        is_match_all({"g": {}})


def test_compiled_predicate_does_not_depend_on_the_filter_object_afterwards() -> None:
    flt: dict[str, Any] = {"genre": {"$in": ["comedy"]}}
    pred = compile_filter(flt)
    flt["genre"]["$in"].append("drama")
    assert not pred({"genre": "drama"})


# --------------------------------------------------------------------------- filter_keys


def test_filter_keys_returns_sorted_int64_keys() -> None:
    records: list[tuple[int, dict[str, Any]]] = [
        (9, {"g": "a"}),
        (3, {"g": "b"}),
        (5, {"g": ["a"]}),
        (2**40, {"g": "a"}),
        (1, {}),
    ]
    keys = filter_keys({"g": "a"}, records)
    assert keys.dtype == np.int64
    assert keys.tolist() == [5, 9, 2**40]
    assert filter_keys({"g": "z"}, iter(records)).tolist() == []
    assert filter_keys(None, records).tolist() == [1, 3, 5, 9, 2**40]


def test_match_mask_marks_matching_rows() -> None:
    mask = match_mask({"year": {"$gte": 2020}}, list(MOVIES.values()))
    assert mask.dtype == np.bool_
    assert mask.tolist() == [True, False, False, False, False]


# ----------------------------------------------------------------- property tests


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_num(a) and _is_num(b):
        return float(a) == float(b)
    return isinstance(a, str) and isinstance(b, str) and a == b


def _op_holds(op: str, arg: Any, value: Any) -> bool:
    if op == "$exists":
        return (value is not None) == arg
    if value is None:
        return False
    elems = value if isinstance(value, list) else [value]
    if op in ("$eq", "$ne"):
        hit = any(_same(e, arg) for e in elems)
        return hit if op == "$eq" else not hit
    if op in ("$in", "$nin"):
        hit = any(_same(e, a) for e in elems for a in arg)
        return hit if op == "$in" else not hit
    compare = {"$gt": float.__gt__, "$gte": float.__ge__, "$lt": float.__lt__, "$lte": float.__le__}[op]
    return any(_is_num(e) and compare(float(e), float(arg)) for e in elems)


def oracle(flt: dict[str, Any], md: dict[str, Any]) -> bool:
    """The spec read literally: every key must hold; lists take on all their values."""
    results = []
    for key, val in flt.items():
        if key == "$and":
            results.append(all(oracle(sub, md) for sub in val))
        elif key == "$or":
            results.append(any(oracle(sub, md) for sub in val))
        else:
            ops = val if isinstance(val, dict) else {"$eq": val}
            results.append(all(_op_holds(op, arg, md.get(key)) for op, arg in ops.items()))
    return all(results)


FIELDS = ["genre", "year", "tags", "flag"]
POOL_STRINGS = st.sampled_from(["a", "b", ""])
POOL_NUMBERS = st.sampled_from([0, 1, 2020, 0.5, -0.0, 2**53, 2**53 + 1])


def _scalars(text: st.SearchStrategy[str], ints: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    # Mostly values from small pools so that filters and metadata collide often; some arbitrary ones.
    pooled = st.one_of(POOL_STRINGS, POOL_NUMBERS, st.booleans())
    arbitrary = st.one_of(text, ints, st.floats(allow_nan=False, allow_infinity=False))
    return st.one_of(pooled, pooled, pooled, arbitrary)


def _operands(flt: Any, field: str = "", found: dict[str, list[Any]] | None = None) -> dict[str, list[Any]]:
    """The scalars a filter compares each field with, so generated metadata hits (and just misses) them."""
    found = {} if found is None else found
    if isinstance(flt, dict):
        for key, value in flt.items():
            _operands(value, field if key.startswith("$") else key, found)
    elif isinstance(flt, list):
        for value in flt:
            _operands(value, field, found)
    elif field:
        found.setdefault(field, []).append(flt)
    return found


_ABSENT = object()


def _metadata(
    text: st.SearchStrategy[str], ints: st.SearchStrategy[int], seen: dict[str, list[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    def value(name: str) -> st.SearchStrategy[Any]:
        near = st.sampled_from(seen.get(name) or [0])
        strings = st.sampled_from([x for x in seen.get(name, []) if isinstance(x, str)] or ["a"])
        tags = st.lists(st.one_of(strings, POOL_STRINGS, text), max_size=3)
        # Explicit weights: Hypothesis' own choice among branches leaves fields mostly absent.
        # None stands for JSON null, which both the predicate and SQL treat as absent.
        branches = [st.just(_ABSENT), near, near, tags, _scalars(text, ints), st.none()]
        return st.integers(0, len(branches) - 1).flatmap(lambda k: branches[k])

    fields = st.fixed_dictionaries({name: value(name) for name in FIELDS})
    return fields.map(lambda md: {k: v for k, v in md.items() if v is not _ABSENT})


def _filters(text: st.SearchStrategy[str], ints: st.SearchStrategy[int]) -> st.SearchStrategy[dict[str, Any]]:
    scalar = _scalars(text, ints)
    number = st.one_of(POOL_NUMBERS, POOL_NUMBERS, ints, st.floats(allow_nan=False, allow_infinity=False))
    op_pair = st.one_of(
        st.tuples(st.sampled_from(["$eq", "$ne"]), scalar),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), number),
        st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(scalar, min_size=1, max_size=5)),
        st.tuples(st.just("$exists"), st.booleans()),
    )
    op_dict = st.lists(op_pair, min_size=1, max_size=2).map(dict)
    field_value = st.integers(0, 2).flatmap(lambda k: op_dict if k else scalar)
    leaf = st.dictionaries(st.sampled_from(FIELDS), field_value, min_size=1, max_size=2)

    def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        subs = st.lists(children, min_size=1, max_size=3)
        return st.one_of(
            subs.map(lambda fs: {"$and": fs}),
            subs.map(lambda fs: {"$or": fs}),
            st.tuples(subs, leaf).map(lambda p: {"$or": p[0], **p[1]}),
        )

    return st.recursive(leaf, extend, max_leaves=6)


ANY_TEXT = st.text(max_size=4)
ANY_INT = st.integers(min_value=-(2**70), max_value=2**70)


@PROPERTY
@given(flt=_filters(ANY_TEXT, ANY_INT), data=st.data())
def test_compiled_filter_agrees_with_oracle(flt: dict[str, Any], data: st.DataObject) -> None:
    records = data.draw(st.lists(_metadata(ANY_TEXT, ANY_INT, _operands(flt)), min_size=4, max_size=10))
    pred = compile_filter(flt)
    expected = [oracle(flt, md) for md in records]
    assert [pred(md) for md in records] == expected
    keys = filter_keys(flt, reversed(list(enumerate(records))))
    assert keys.tolist() == [i for i, ok in enumerate(expected) if ok]


