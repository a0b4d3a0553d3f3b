"""Document indexes, three targets: the in-process client, the official SDK 10.2 against ``localrag serve``
on 127.0.0.1, and a brute-force oracle (doc_oracle.py: BM25 recomputed from scratch). A hypothesis
state machine drives random upserts, deletes, updates, every score_by clause kind (text, query_string
trees rendered to Lucene syntax, both combined, dense_vector, sparse_vector), filters mixing metadata
and $match_* operators, fetches (by id and paged by filter), lists and refused requests, and compares
ids, scores (1e-6), fields and error classes after each step."""

from __future__ import annotations

import itertools
import math
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from doc_oracle import DocOracle, Node, OracleError
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from localrag.errors import LocalRagError
from localrag.pinecone import Pinecone

pytestmark = pytest.mark.server

TOL = 1e-6
DIM = 3
IDS = ["a", "b", "c", "d", "doc-1", "doc-10", "doc-2", "Z"]
NAMESPACES = ["ns1", "ns-2"]
WORDS = ["alpha", "beta", "gamma", "delta", "omega"]
TEXT_FIELDS = ["title", "body"]
_names = itertools.count()
seen: Counter[str] = Counter()

ids_ = st.sampled_from(IDS)
namespaces = st.sampled_from(NAMESPACES)
words = st.sampled_from(WORDS)
text = st.lists(words, min_size=1, max_size=7).map(" ".join)
vector = st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0]), min_size=DIM, max_size=DIM).filter(any)
sparse = st.dictionaries(st.integers(0, 6), st.sampled_from([0.5, 1.0, 2.0]), min_size=1, max_size=3)
document = st.fixed_dictionaries(
    {"_id": ids_, "emb": vector},
    optional={"title": text, "body": text, "kw": sparse.map(lambda d: {"indices": list(d), "values": list(d.values())}),
              "genre": st.sampled_from(["x", "y", "z"]), "year": st.integers(2000, 2003)})
documents = st.lists(document, min_size=1, max_size=5, unique_by=lambda d: d["_id"])

text_leaf = st.builds(lambda f, op, ws: {f: {op: " ".join(ws)}}, st.sampled_from(TEXT_FIELDS),
                      st.sampled_from(["$match_phrase", "$match_all", "$match_any"]),
                      st.lists(words, min_size=1, max_size=2))
meta_leaf = st.one_of(st.sampled_from(["x", "y"]).map(lambda g: {"genre": g}),
                      st.integers(2000, 2003).map(lambda y: {"year": {"$gte": y}}),
                      st.sampled_from(["x", "z"]).map(lambda g: {"genre": {"$ne": g}}))
leaf = st.one_of(text_leaf, meta_leaf)
filters = st.one_of(leaf, st.lists(leaf, min_size=2, max_size=3).map(lambda ls: {"$and": ls}),
                    st.lists(leaf, min_size=2, max_size=3).map(lambda ls: {"$or": ls}))
maybe_filter = st.integers(0, 2).flatmap(lambda i: filters if i == 0 else st.none())
metadata_filters = st.one_of(meta_leaf, st.lists(meta_leaf, min_size=2, max_size=2).map(lambda ls: {"$or": ls}))

# Query-string trees: the oracle evaluates the tree, the targets get its rendering.
boosts = st.sampled_from([1.0, 1.0, 2.0, 0.5])
term = st.builds(lambda f, ws, b: ("term", f, tuple(ws), b), st.sampled_from([None, "title", "body"]),
                 st.lists(words, min_size=1, max_size=2), boosts)


def _group(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    occur = st.sampled_from(["should", "should", "must", "must_not"])
    return st.builds(lambda cs, b: ("bool", tuple(cs), b), st.lists(st.tuples(occur, children), min_size=1,
                                                                     max_size=3), boosts)


trees = st.recursive(term, _group, max_leaves=5).map(lambda t: t if t[0] == "bool" else ("bool", (("should", t),), 1.0))


def render(node: Node, top: bool = True, style: int = 0) -> str:
    if node[0] == "term":
        _, field, ws, boost = node
        body = ws[0] if len(ws) == 1 else '"' + " ".join(ws) + '"'
        out = f"{field}:{body}" if field else body
        return out + (f"^{boost:g}" if boost != 1.0 else "")
    _, clauses, boost = node
    occurs = [o for o, _ in clauses]
    if occurs == ["must", "must"] and style % 2:
        inner = f"{render(clauses[0][1], False)} AND {render(clauses[1][1], False)}"
    elif occurs == ["must", "must_not"] and style % 2:
        inner = f"{render(clauses[0][1], False)} AND NOT {render(clauses[1][1], False)}"
    elif occurs == ["should", "should"] and style % 2:
        inner = f"{render(clauses[0][1], False)} OR {render(clauses[1][1], False)}"
    else:
        prefix = {"should": "", "must": "+", "must_not": "-"}
        inner = " ".join(prefix[o] + render(c, False, style + 1) for o, c in clauses)
    if top and boost == 1.0:
        return inner
    return f"({inner})" + (f"^{boost:g}" if boost != 1.0 else "")


def category(exc: BaseException) -> str:
    if isinstance(exc, OracleError):
        return exc.category
    status = getattr(exc, "status_code", None)
    if status is None and isinstance(exc, LocalRagError):
        status = exc.http_status
    if status is None and isinstance(exc, (ValueError, TypeError)):  # the SDK's client-side checks
        status = 400
    return {400: "invalid", 404: "not_found"}.get(status or 0, repr(exc))


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except Exception as e:
        return "error", category(e)


def schema(metric: str) -> dict[str, Any]:
    return {"fields": {"title": {"type": "string", "full_text_search": {}},
                       "body": {"type": "string", "full_text_search": {"language": "en"}},
                       "emb": {"type": "dense_vector", "dimension": DIM, "metric": metric},
                       "kw": {"type": "sparse_vector"}}}


class DocCongruence(RuleBasedStateMachine):
    local_pc: Any = None
    sdk_pc: Any = None
    metric = "cosine"

    @initialize(seed=st.lists(st.tuples(namespaces, documents), min_size=2, max_size=4))
    def create(self, seed: list[tuple[str, list[dict[str, Any]]]]) -> None:
        self.name = f"dc-{self.metric[:3]}-{next(_names)}"
        for pc in (self.local_pc, self.sdk_pc):
            pc.indexes.create(name=self.name, schema=schema(self.metric))
        self.targets = {"local": self.local_pc.index(name=self.name).documents,
                        "sdk": self.sdk_pc.index(name=self.name).documents}
        self.oracle = DocOracle(TEXT_FIELDS, {"emb": (DIM, self.metric)}, ["kw"])
        for ns, batch in seed:
            self.upsert(ns, batch)

    def teardown(self) -> None:
        if hasattr(self, "name"):
            self.local_pc.indexes.delete(self.name)
            self.sdk_pc.indexes.delete(self.name, timeout=-1)

    def run(self, oracle_fn: Callable[[], Any], target_fn: Callable[[Any], Any],
            compare: Callable[[Any, Any], None]) -> None:
        expected = outcome(oracle_fn)
        for label, docs in self.targets.items():
            got = outcome(lambda docs=docs: target_fn(docs))
            assert got[0] == expected[0], f"{label}: {got} but the oracle gave {expected}"
            seen[got[0]] += 1
            if got[0] == "error":
                assert got[1] == expected[1], f"{label}: error {got[1]}, oracle {expected[1]}"
            else:
                compare(got[1], expected[1])

    # -- writes ------------------------------------------------------------------------
    @rule(ns=namespaces, batch=documents)
    def upsert(self, ns: str, batch: list[dict[str, Any]]) -> None:
        self.run(lambda: self.oracle.upsert(ns, batch), lambda d: d.upsert(namespace=ns, documents=batch),
                 lambda got, want: _eq(got.upserted_count, want))

    @rule(ns=namespaces, rid=ids_, bad=st.sampled_from(["no_vector", "dimension", "null", "text_type"]))
    def upsert_invalid(self, ns: str, rid: str, bad: str) -> None:
        doc: dict[str, Any] = {"_id": rid, "emb": [1.0] * DIM, "title": "alpha"}
        if bad == "no_vector":
            del doc["emb"]
        elif bad == "dimension":
            doc["emb"] = [1.0] * (DIM + 1)
        elif bad == "null":
            doc["genre"] = None
        else:
            doc["title"] = 7
        self.run(lambda: self.oracle.upsert(ns, [doc]), lambda d: d.upsert(namespace=ns, documents=[doc]),
                 lambda got, want: pytest.fail("an invalid document was accepted"))
        self.check_fetch(ns, [rid])

    @rule(ns=namespaces, ids=st.lists(ids_, min_size=1, max_size=3), flt=metadata_filters,
          kind=st.sampled_from(["ids", "ids", "filter", "all"]))
    def delete(self, ns: str, ids: list[str], flt: dict[str, Any], kind: str) -> None:
        if kind == "ids":
            self.run(lambda: self.oracle.delete_ids(ns, ids), lambda d: d.delete(namespace=ns, ids=ids),
                     lambda got, want: None)
        elif kind == "filter":
            self.run(lambda: self.oracle.delete_filter(ns, flt), lambda d: d.delete(namespace=ns, filter=flt),
                     lambda got, want: _eq(got.matched_records, want))
        else:
            self.run(lambda: self.oracle.delete_all(ns), lambda d: d.delete(namespace=ns, delete_all=True),
                     lambda got, want: None)

    @rule(ns=namespaces, rid=ids_, genre=st.sampled_from(["x", "y"]), year=st.integers(2000, 2003))
    def update(self, ns: str, rid: str, genre: str, year: int) -> None:
        patch = {"genre": genre, "year": year}
        self.run(lambda: self.oracle.update(ns, rid, patch),
                 lambda d: d.update(namespace=ns, documents=[{"_id": rid, **patch}]), lambda got, want: None)
        self.check_fetch(ns, [rid])

    # -- searches ----------------------------------------------------------------------
    @rule(ns=namespaces, query=text, fields=st.lists(st.sampled_from(TEXT_FIELDS), min_size=1, max_size=3),
          top_k=st.integers(1, 8), flt=maybe_filter, include=st.sampled_from([None, [], ["*"], ["title", "genre"]]))
    def search_text(self, ns: str, query: str, fields: list[str], top_k: int, flt: Any, include: Any) -> None:
        clause = {"type": "text", "query": query, "fields": fields}
        self.search(ns, [clause], top_k, flt, include,
                    lambda: self.oracle.search_text(ns, [("text", (query, fields))], top_k, flt))

    @rule(ns=namespaces, tree=trees, top_k=st.integers(1, 8), flt=maybe_filter, style=st.integers(0, 1),
          extra=st.none() | text)
    def search_query_string(self, ns: str, tree: Node, top_k: int, flt: Any, style: int, extra: str | None) -> None:
        clauses = [{"type": "query_string", "query": render(tree, style=style)}]
        oracle_clauses: list[tuple[str, Any]] = [("query_string", tree)]
        if extra is not None:  # a text clause beside it: OR'd, each (field, term) unit scored once
            clauses.append({"type": "text", "query": extra, "fields": ["title"]})
            oracle_clauses.append(("text", (extra, ["title"])))
        seen["query_string"] += 1
        self.search(ns, clauses, top_k, flt, None, lambda: self.oracle.search_text(ns, oracle_clauses, top_k, flt))

    @rule(ns=namespaces, query=vector, top_k=st.integers(1, 8), flt=maybe_filter)
    def search_dense(self, ns: str, query: list[float], top_k: int, flt: Any) -> None:
        clause = {"type": "dense_vector", "field": "emb", "values": query}
        self.search(ns, [clause], top_k, flt, ["emb"],
                    lambda: self.oracle.search_dense(ns, "emb", query, top_k, flt))

    @rule(ns=namespaces, query=sparse, top_k=st.integers(1, 8), flt=maybe_filter)
    def search_sparse(self, ns: str, query: dict[int, float], top_k: int, flt: Any) -> None:
        clause = {"type": "sparse_vector", "field": "kw",
                  "sparse_values": {"indices": list(query), "values": list(query.values())}}
        self.search(ns, [clause], top_k, flt, None, lambda: self.oracle.search_sparse(ns, "kw", query, top_k, flt))

    @rule(ns=namespaces, bad=st.sampled_from(["field", "eq_on_text", "match_on_meta", "mixed", "qs_field",
                                              "qs_syntax", "top_k", "include_hidden_ok"]))
    def search_invalid(self, ns: str, bad: str) -> None:
        text_clause = {"type": "text", "query": "alpha", "fields": ["title"]}
        args: dict[str, Any] = {"namespace": ns, "top_k": 3, "score_by": [text_clause]}
        if bad == "field":
            args["score_by"] = [{"type": "text", "query": "alpha", "fields": ["genre"]}]
        elif bad == "eq_on_text":
            args["filter"] = {"title": {"$eq": "alpha"}}
        elif bad == "match_on_meta":
            args["filter"] = {"genre": {"$match_any": "x"}}
        elif bad == "mixed":
            args["score_by"] = [text_clause, {"type": "dense_vector", "field": "emb", "values": [1.0] * DIM}]
        elif bad == "qs_field":
            args["score_by"] = [{"type": "query_string", "query": "emb:alpha"}]
        elif bad == "qs_syntax":
            args["score_by"] = [{"type": "query_string", "query": "title:(alpha OR"}]
        elif bad == "top_k":
            args["top_k"] = 0
        else:
            args["score_by"] = [{"type": "dense_vector", "field": "emb", "values": [1.0] * (DIM + 1)}]

        def oracle() -> Any:
            raise OracleError("invalid")
        self.run(oracle, lambda d: d.search(**args), lambda got, want: pytest.fail(f"{bad} was accepted"))

    def search(self, ns: str, score_by: list[dict[str, Any]], top_k: int, flt: Any, include: Any,
               oracle_fn: Callable[[], list[tuple[str, float]]]) -> None:
        def compare(got: Any, want: list[tuple[str, float]]) -> None:
            matches = got.matches
            seen["matches"] += len(matches)
            assert len(matches) == len(want), f"{[(m.id, m.score) for m in matches]} vs {want}"
            assert [m.score for m in matches] == pytest.approx([s for _, s in want], abs=TOL, rel=TOL)
            space = self.oracle.data.get(ns, {})
            wanted = dict(want)
            for match in matches:
                doc = space[match.id]
                assert self.oracle.passes(doc, flt)
                if match.id in wanted:  # equal scores may swap places; each id carries its own true score
                    assert math.isclose(match.score, wanted[match.id], abs_tol=TOL, rel_tol=TOL)
                fields = {k: v for k, v in match.to_dict().items() if k not in ("_id", "_score")}
                expect = doc if include and "*" in include else {k: doc[k] for k in include or [] if k in doc}
                expect = {k: v for k, v in expect.items() if k != "_id"}
                _same(fields, expect)
        self.run(oracle_fn, lambda d: d.search(namespace=ns, score_by=score_by, top_k=top_k, filter=flt,
                                                include_fields=include), compare)

    # -- reads -------------------------------------------------------------------------
    @rule(ns=namespaces, ids=st.lists(ids_, min_size=1, max_size=5))
    def fetch(self, ns: str, ids: list[str]) -> None:
        self.check_fetch(ns, ids)

    def check_fetch(self, ns: str, ids: list[str]) -> None:
        def compare(got: Any, want: dict[str, Any]) -> None:
            assert set(got.documents) == set(want)
            for doc_id, doc in want.items():
                _same(got.documents[doc_id].to_dict(), doc)
        self.run(lambda: self.oracle.fetch(ns, ids), lambda d: d.fetch(namespace=ns, ids=ids), compare)

    @rule(ns=namespaces, flt=filters, limit=st.integers(1, 3))
    def fetch_by_filter(self, ns: str, flt: dict[str, Any], limit: int) -> None:
        def walk(docs: Any) -> list[str]:
            out, token = [], None
            while True:
                page = docs.fetch(namespace=ns, filter=flt, limit=limit, pagination_token=token)
                assert len(page.documents) <= limit
                out += sorted(page.documents, key=str.encode)
                token = page.pagination.next if page.pagination else None
                if token is None:
                    return out
        self.run(lambda: self.oracle.filtered_ids(ns, flt), walk, _eq)

    @rule(ns=namespaces, prefix=st.sampled_from([None, "doc-", "doc-1", "q"]), limit=st.integers(1, 3))
    def list_ids(self, ns: str, prefix: str | None, limit: int) -> None:
        self.run(lambda: self.oracle.ids(ns, prefix or ""),
                 lambda d: [r.id for r in d.list(namespace=ns, prefix=prefix, limit=limit)], _eq)


def _eq(got: Any, want: Any) -> None:
    assert got == want


def _same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert set(got) == set(want), (got, want)
    for key, value in want.items():
        if key == "emb":
            assert got[key] == pytest.approx(value, abs=1e-6)
        else:
            assert got[key] == value, key


# Shrinking a failing run of this machine can take many minutes: LOCALRAG_SHRINK=0 skips it while debugging.
PHASES = tuple(Phase) if os.environ.get("LOCALRAG_SHRINK", "1") != "0" else (Phase.explicit, Phase.generate)


def run_machine(metric: str, local_pc: Any, sdk_pc: Any, max_examples: int, steps: int) -> None:
    machine = type(f"DocCongruence_{metric}", (DocCongruence,),
                   {"metric": metric, "local_pc": local_pc, "sdk_pc": sdk_pc})
    run_state_machine_as_test(machine, settings=settings(max_examples=max_examples, stateful_step_count=steps,
                                                         deadline=None, derandomize=True, phases=PHASES,
                                                         suppress_health_check=list(HealthCheck)))


@pytest.fixture(scope="module")
def local_pc(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pc = Pinecone(path=tmp_path_factory.mktemp("inprocess-docs"))
    yield pc
    pc.close()


@pytest.mark.parametrize("metric", ["cosine", "dotproduct", "euclidean"])
def test_three_targets_agree(metric: str, local_pc: Any, sdk: Any) -> None:
    seen.clear()
    run_machine(metric, local_pc, sdk, max_examples=12, steps=20)
    # No floor on query_string searches here: how often the random machine picks that rule varied between
    # runs (2 in one full CI run, 14-32 alone); test_query_strings_scripted covers them every run.
    assert seen["matches"] > 60 and seen["error"] > 10 and seen["ok"] > 150, seen


SCRIPT_DOCS = [
    {"_id": "a", "emb": [1.0, 0.0, 0.5], "title": "alpha beta", "body": "gamma delta", "genre": "x", "year": 2001},
    {"_id": "b", "emb": [0.0, 1.0, 0.5], "title": "beta beta omega", "body": "alpha", "genre": "y", "year": 2002},
    {"_id": "c", "emb": [0.5, 0.5, 0.0], "title": "gamma", "body": "alpha beta gamma", "genre": "z"},
    {"_id": "doc-1", "emb": [1.0, 1.0, 1.0], "body": "omega omega delta", "year": 2003},
]
SCRIPT_TREES: list[Node] = [
    ("bool", (("should", ("term", None, ("alpha",), 1.0)),), 1.0),
    ("bool", (("must", ("term", "title", ("beta",), 2.0)), ("must_not", ("term", "body", ("alpha",), 1.0))), 1.0),
    ("bool", (("should", ("term", "body", ("alpha", "beta"), 1.0)), ("should", ("term", "title", ("gamma",), 0.5))),
     1.0),
    ("bool", (("must", ("term", None, ("omega",), 1.0)), ("must", ("term", None, ("delta",), 1.0))), 1.0),
    ("bool", (("should", ("bool", (("must", ("term", "title", ("beta",), 1.0)),
                                   ("should", ("term", "body", ("gamma",), 1.0))), 2.0)),
              ("must_not", ("term", None, ("omega",), 1.0))), 1.0),
]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_query_strings_scripted(metric: str, local_pc: Any, sdk: Any) -> None:
    """Every query-string shape the machine can render, in a fixed script through the same machine, so
    their congruence is checked on every run whatever the random machine happens to pick."""
    seen.clear()
    machine = type(f"DocScript_{metric}", (DocCongruence,),
                   {"metric": metric, "local_pc": local_pc, "sdk_pc": sdk})()
    try:
        machine.create(seed=[("ns1", SCRIPT_DOCS), ("ns-2", SCRIPT_DOCS[:2])])
        for tree in SCRIPT_TREES:
            for style in (0, 1):
                machine.search_query_string("ns1", tree, 3, None, style, None)
            machine.search_query_string("ns1", tree, 8, {"genre": {"$ne": "z"}}, 0, "omega")
            machine.search_query_string("ns-2", tree, 2, None, 1, None)
    finally:
        machine.teardown()
    assert seen["query_string"] == 4 * len(SCRIPT_TREES), seen
    assert seen["ok"] >= 2 * seen["query_string"] and seen["matches"] > 0, seen


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["cosine", "dotproduct", "euclidean"])
def test_three_targets_agree_long(metric: str, local_pc: Any, sdk: Any) -> None:
    run_machine(metric, local_pc, sdk, max_examples=100, steps=40)
