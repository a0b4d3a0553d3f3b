"""One congruence suite, three targets: in-process localrag.pinecone, the official SDK against
``localrag serve`` on 127.0.0.1, and a brute-force oracle. A hypothesis state machine drives random
upserts, updates, deletes, filtered queries, fetches, lists and stats over several namespaces, and
compares ids, scores (1e-5), metadata, values and error classes after every step."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from oracle import Oracle, OracleError

from localrag.errors import LocalRagError
from localrag.filters import matches as filter_matches
from localrag.pinecone import Pinecone

pytestmark = pytest.mark.server

DIM = 4
IDS = ["a", "b", "c", "d", "e", "Z", "doc#1", "doc#2", "doc#10", "doc#9"]
NAMESPACES = ["", "ns1", "ns-2"]
TOL = 1e-5
_names = itertools.count()
seen: Counter[str] = Counter()  # what the machine exercised, so a vacuous run fails

ids_ = st.sampled_from(IDS)
namespaces = st.sampled_from(NAMESPACES)
component = st.sampled_from([-1.0, -0.5, 0.25, 0.5, 1.0, 2.0, 0.0])
vectors = st.lists(component, min_size=DIM, max_size=DIM).filter(lambda v: any(v))
genre = st.sampled_from(["a", "b", "c"])
metadata = st.none() | st.fixed_dictionaries({}, optional={
    "genre": genre, "year": st.integers(2000, 2004), "tags": st.lists(st.sampled_from("xyz"), unique=True),
    "flag": st.booleans()})
leaf = st.one_of(
    genre.map(lambda g: {"genre": g}),
    st.lists(genre, min_size=1, max_size=2).map(lambda gs: {"genre": {"$in": gs}}),
    genre.map(lambda g: {"genre": {"$ne": g}}),
    st.integers(2000, 2004).map(lambda y: {"year": {"$gte": y}}),
    st.integers(2000, 2004).map(lambda y: {"year": {"$lt": y}}),
    st.sampled_from("xyz").map(lambda t: {"tags": {"$in": [t]}}),
    st.booleans().map(lambda b: {"flag": b}),
    st.booleans().map(lambda b: {"year": {"$exists": b}}),
)
filters = st.one_of(leaf, st.lists(leaf, min_size=2, max_size=3).map(lambda ls: {"$and": ls}),
                    st.lists(leaf, min_size=2, max_size=3).map(lambda ls: {"$or": ls}))
maybe_filter = st.integers(0, 2).flatmap(lambda i: filters if i == 0 else st.none())  # a third filtered
bad_filters = st.sampled_from([{"genre": {"$regex": "a"}}, {"$gt": 3}, {"year": {"$gte": "x"}},
                               {"genre": ["a", "b"]}, {"$or": []}])


def category(exc: BaseException) -> str:
    if isinstance(exc, OracleError):
        return exc.category
    status = getattr(exc, "status_code", None)
    if status is None and isinstance(exc, LocalRagError):
        status = exc.http_status
    if status is None and isinstance(exc, (ValueError, TypeError)):  # the SDK's client-side checks
        status = 400
    return {400: "invalid", 413: "invalid", 404: "not_found", 409: "conflict"}.get(status or 0, repr(exc))


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except Exception as e:
        return "error", category(e)


class Congruence(RuleBasedStateMachine):
    local_pc: Any = None
    sdk_pc: Any = None
    metric = "cosine"

    @initialize(seed=st.lists(st.tuples(namespaces, ids_, vectors, metadata), min_size=12, max_size=30))
    def create(self, seed: list[tuple[str, str, list[float], Any]]) -> None:
        self.name = f"cg-{self.metric[:3]}-{next(_names)}"
        self.local_pc.create_index(name=self.name, dimension=DIM, metric=self.metric)
        self.sdk_pc.create_index(name=self.name, dimension=DIM, metric=self.metric)
        self.targets = {"local": self.local_pc.Index(self.name), "sdk": self.sdk_pc.Index(self.name)}
        self.oracle = Oracle(DIM, self.metric)
        for ns in NAMESPACES:
            batch = [(rid, values, md) for n, rid, values, md in seed if n == ns]
            if batch:
                self.upsert(ns, batch)

    def teardown(self) -> None:
        if hasattr(self, "name"):
            self.local_pc.delete_index(self.name)
            self.sdk_pc.delete_index(self.name, timeout=-1)

    def run(self, oracle_fn: Callable[[], Any], target_fn: Callable[[Any], Any],
            compare: Callable[[Any, Any], None]) -> None:
        expected = outcome(oracle_fn)
        for label, index in self.targets.items():
            got = outcome(lambda index=index: target_fn(index))
            assert got[0] == expected[0], f"{label}: {got} but the oracle gave {expected}"
            seen[got[0]] += 1
            if got[0] == "error":
                assert got[1] == expected[1], f"{label}: error {got[1]}, oracle {expected[1]}"
            else:
                compare(got[1], expected[1])

    # -- writes ------------------------------------------------------------------------
    @rule(ns=namespaces, batch=st.lists(st.tuples(ids_, vectors, metadata), min_size=1, max_size=5))
    def upsert(self, ns: str, batch: list[tuple[str, list[float], Any]]) -> None:
        records = [(rid, values, md) for rid, values, md in batch]
        wire = [{"id": rid, "values": v, **({"metadata": md} if md is not None else {})} for rid, v, md in batch]
        self.run(lambda: self.oracle.upsert(ns, records), lambda i: i.upsert(vectors=wire, namespace=ns),
                 lambda got, want: _eq(got.upserted_count, want))

    @rule(ns=namespaces, rid=ids_, bad=st.sampled_from(["dimension", "null", "nested"]))
    def upsert_invalid(self, ns: str, rid: str, bad: str) -> None:
        values = [1.0] * (DIM + 1) if bad == "dimension" else [1.0] * DIM
        md = {"genre": None} if bad == "null" else {"genre": {"deep": 1}} if bad == "nested" else None
        wire = [{"id": rid, "values": values, **({"metadata": md} if md is not None else {})}]
        self.run(lambda: self.oracle.upsert(ns, [(rid, values, md)]), lambda i: i.upsert(vectors=wire, namespace=ns),
                 lambda got, want: pytest.fail("an invalid upsert was accepted"))
        self.check_fetch(ns, [rid])  # a refused request leaves the record as it was

    @rule(ns=namespaces, rid=ids_, values=st.none() | vectors, patch=metadata)
    def update(self, ns: str, rid: str, values: list[float] | None, patch: dict[str, Any] | None) -> None:
        if values is None and patch is None:
            patch = {"genre": "c"}
        self.run(lambda: self.oracle.update(ns, rid, values, patch),
                 lambda i: i.update(id=rid, values=values, set_metadata=patch, namespace=ns),
                 lambda got, want: None)
        self.check_fetch(ns, [rid])

    @rule(ns=namespaces, flt=filters, patch=st.fixed_dictionaries({"flag": st.booleans()}))
    def update_by_filter(self, ns: str, flt: dict[str, Any], patch: dict[str, Any]) -> None:
        self.run(lambda: self.oracle.update_by_filter(ns, flt, patch),
                 lambda i: i.update(filter=flt, set_metadata=patch, namespace=ns),
                 lambda got, want: _eq(got.matched_records, want))

    @rule(ns=namespaces, ids=st.lists(ids_, min_size=1, max_size=3), flt=filters,
          kind=st.sampled_from(["ids", "ids", "ids", "filter", "all"]))
    def delete(self, ns: str, ids: list[str], flt: dict[str, Any], kind: str) -> None:
        if kind == "ids":
            self.run(lambda: self.oracle.delete_ids(ns, ids), lambda i: i.delete(ids=ids, namespace=ns),
                     lambda got, want: None)
        elif kind == "filter":
            self.run(lambda: self.oracle.delete_filter(ns, flt), lambda i: i.delete(filter=flt, namespace=ns),
                     lambda got, want: None)
        else:
            self.run(lambda: self.oracle.delete_all(ns), lambda i: i.delete(delete_all=True, namespace=ns),
                     lambda got, want: None)

    # -- reads -------------------------------------------------------------------------
    @rule(ns=namespaces, vector=vectors, top_k=st.integers(1, 8), flt=maybe_filter, with_md=st.booleans(),
          with_values=st.booleans())
    def query(self, ns: str, vector: list[float], top_k: int, flt: Any, with_md: bool, with_values: bool) -> None:
        self.run(lambda: self.oracle.query(ns, vector, None, top_k, flt),
                 lambda i: i.query(vector=vector, top_k=top_k, filter=flt, namespace=ns,
                                   include_metadata=with_md, include_values=with_values),
                 lambda got, want: self.compare_matches(ns, got, want, with_md, with_values, flt, vector))

    @rule(ns=namespaces, rid=ids_, top_k=st.integers(1, 8), flt=maybe_filter)
    def query_by_id(self, ns: str, rid: str, top_k: int, flt: Any) -> None:
        self.run(lambda: self.oracle.query(ns, None, rid, top_k, flt),
                 lambda i: i.query(id=rid, top_k=top_k, filter=flt, namespace=ns),
                 lambda got, want: self.compare_matches(ns, got, want, False, False, flt,
                                                        self.oracle.data.get(ns, {}).get(rid, (None,))[0]))

    @rule(ns=namespaces, flt=bad_filters)
    def query_bad_filter(self, ns: str, flt: Any) -> None:
        def oracle() -> Any:
            raise OracleError("invalid")
        self.run(oracle, lambda i: i.query(vector=[1.0] * DIM, top_k=3, filter=flt, namespace=ns),
                 lambda got, want: pytest.fail("an invalid filter was accepted"))

    @rule(ns=namespaces, ids=st.lists(ids_, min_size=1, max_size=6))
    def fetch(self, ns: str, ids: list[str]) -> None:
        self.check_fetch(ns, ids)

    def check_fetch(self, ns: str, ids: list[str]) -> None:
        def compare(got: Any, want: dict[str, Any]) -> None:
            assert set(got.vectors) == set(want)
            for rid, (values, md) in want.items():
                assert got.vectors[rid].values == pytest.approx(values, abs=1e-6)
                assert got.vectors[rid].metadata == md
        self.run(lambda: self.oracle.fetch(ns, ids), lambda i: i.fetch(ids=ids, namespace=ns), compare)

    @rule(ns=namespaces, prefix=st.sampled_from(["", "doc#", "doc#1", "q"]), limit=st.integers(1, 4))
    def list_ids(self, ns: str, prefix: str, limit: int) -> None:
        def walk(index: Any) -> list[str]:
            return [item.id for page in index.list(prefix=prefix or None, limit=limit, namespace=ns) for item in page]
        self.run(lambda: self.oracle.ids(ns, prefix), walk, _eq)

    @rule(flt=maybe_filter)
    def stats(self, flt: Any) -> None:
        def counts(index: Any) -> dict[str, int]:
            stats = index.describe_index_stats(filter=flt)
            assert stats.total_vector_count == sum(ns.vector_count for ns in stats.namespaces.values())
            assert stats.dimension == DIM
            return {name: ns.vector_count for name, ns in stats.namespaces.items()}
        self.run(lambda: self.oracle.stats(flt), counts, _eq)

    @rule(ns=namespaces, flt=filters, limit=st.integers(1, 3))
    def fetch_by_metadata(self, ns: str, flt: dict[str, Any], limit: int) -> None:
        def walk(index: Any) -> list[str]:
            seen, token = [], None
            while True:
                page = index.fetch_by_metadata(filter=flt, namespace=ns, limit=limit, pagination_token=token)
                assert len(page.vectors) <= limit
                seen += sorted(page.vectors, key=str.encode)
                token = page.pagination.next if page.pagination else None
                if token is None:
                    return seen
        self.run(lambda: self.oracle.fetch_by_metadata(ns, flt), walk, _eq)

    def compare_matches(self, ns: str, got: Any, want: list[tuple[str, float]], with_md: bool,
                        with_values: bool, flt: Any, query: list[float] | None) -> None:
        matches = got.matches
        seen["matches"] += len(matches)
        assert len(matches) == len(want), f"{[(m.id, m.score) for m in matches]} vs {want}"
        assert [m.score for m in matches] == pytest.approx([s for _, s in want], abs=TOL, rel=TOL)
        space = self.oracle.data.get(ns, {})
        for match in matches:
            assert match.id in space, f"{match.id} is not in namespace {ns!r}"
            values, md = space[match.id]
            assert flt is None or filter_matches(flt, md or {}), f"{match.id} does not pass {flt}"
            # Equal scores may come back in either order, so each id must carry its own true score.
            if query is not None:
                assert math.isclose(match.score, self.oracle.score(values, query), abs_tol=TOL, rel_tol=TOL)
            assert match.metadata == (md if with_md else None)
            if with_values:
                assert match.values == pytest.approx(values, abs=1e-6)
            else:
                assert not match.values


def _eq(got: Any, want: Any) -> None:
    assert got == want


def run_machine(metric: str, local_pc: Any, sdk_pc: Any, max_examples: int, steps: int) -> None:
    machine = type(f"Congruence_{metric}", (Congruence,), {"metric": metric, "local_pc": local_pc, "sdk_pc": sdk_pc})
    run_state_machine_as_test(machine, settings=settings(max_examples=max_examples, stateful_step_count=steps,
                                                         deadline=None, derandomize=True,
                                                         suppress_health_check=list(HealthCheck)))


@pytest.fixture(scope="module")
def local_pc(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pc = Pinecone(path=tmp_path_factory.mktemp("inprocess"))
    yield pc
    pc.close()


@pytest.mark.parametrize("metric", ["cosine", "dotproduct", "euclidean"])
def test_three_targets_agree(metric: str, local_pc: Any, sdk: Any) -> None:
    seen.clear()
    run_machine(metric, local_pc, sdk, max_examples=25, steps=25)
    assert seen["matches"] > 60 and seen["error"] > 10 and seen["ok"] > 300, seen


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["cosine", "dotproduct", "euclidean"])
def test_three_targets_agree_long(metric: str, local_pc: Any, sdk: Any) -> None:
    run_machine(metric, local_pc, sdk, max_examples=150, steps=40)


def test_suite_sees_a_real_difference(tmp_path: Path, local_pc: Any, sdk: Any) -> None:
    """The comparison is not vacuous: a target that drops one record is caught."""
    machine = Congruence.__new__(Congruence)
    machine.oracle = Oracle(DIM, "dotproduct")
    machine.oracle.upsert("", [("a", [1.0, 0, 0, 0], None), ("b", [0.5, 0, 0, 0], None)])
    name = f"cg-diff-{next(_names)}"
    local_pc.create_index(name=name, dimension=DIM, metric="dotproduct")
    index = local_pc.Index(name)
    index.upsert(vectors=[("a", [1.0, 0, 0, 0])])
    machine.targets = {"local": index}
    with pytest.raises(AssertionError):
        machine.query("", [1.0, 0, 0, 0], 2, None, False, False)
    local_pc.delete_index(name)
