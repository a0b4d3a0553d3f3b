"""``score_by`` clauses of a document search: parsed from the wire, then scored.

``text`` and ``query_string`` clauses combine (OR'd; a document scores the sum of the BM25
units it matched, each unit once); ``dense_vector``, ``sparse_vector``, ``embed`` and
``sparse_embed`` stand alone and score with the legacy store's exact ``Space`` (cosine,
dot product, or squared Euclidean distance, lower first). Ties break by id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from localrag.errors import DimensionMismatchError, InvalidInputError
from localrag.pinecone import wire
from localrag.pinecone.documents_query import Group, Hits, Term, TextScorer, parse_query_string
from localrag.pinecone.documents_schema import DocumentSchema
from localrag.pinecone.documents_space import DocSpace
from localrag.pinecone.wire import Sparse

MAX_CLAUSES = 100
TEXT_KINDS = ("text", "query_string")
ALONE_KINDS = ("dense_vector", "sparse_vector", "embed", "sparse_embed")
_KEYS = {"text": {"query", "fields", "field"}, "query_string": {"query"},
         "dense_vector": {"field", "fields", "values"}, "sparse_vector": {"field", "fields", "sparse_values"},
         "embed": {"field", "fields", "query"}, "sparse_embed": {"field", "fields", "query"}}


@dataclass(frozen=True, slots=True)
class Clause:
    kind: str
    field: str | None = None
    fields: tuple[str, ...] = ()
    query: str | None = None
    tree: Group | None = None
    values: np.ndarray | None = None
    sparse: Sparse | None = None


def _query(clause: Mapping[str, Any], where: str) -> str:
    query = clause.get("query")
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError(f"{where}.query must be a non-empty string")
    return query


def _single_field(clause: Mapping[str, Any], where: str) -> str:
    field, fields = clause.get("field"), clause.get("fields")
    if fields is not None:
        if field is not None or not isinstance(fields, list) or len(fields) != 1:
            raise InvalidInputError(f"{where}: give the one field as 'field' (or a one-element 'fields')")
        field = fields[0]
    if not isinstance(field, str) or not field:
        raise InvalidInputError(f"{where}.field must name one field")
    return field


def parse_clauses(body: Any, schema: DocumentSchema) -> list[Clause]:
    if not isinstance(body, list) or not body:
        raise InvalidInputError("score_by must be a non-empty list of scoring clauses")
    if len(body) > MAX_CLAUSES:
        raise InvalidInputError(f"score_by has {len(body)} clauses; the maximum is {MAX_CLAUSES}")
    out: list[Clause] = []
    for i, clause in enumerate(body):
        where = f"score_by[{i}]"
        if not isinstance(clause, Mapping):
            raise InvalidInputError(f"{where} must be an object with a 'type'")
        kind = clause.get("type")
        if not isinstance(kind, str) or kind not in _KEYS:
            raise InvalidInputError(f"{where}.type must be one of {', '.join(_KEYS)}, got {kind!r}")
        unknown = set(clause) - _KEYS[kind] - {"type"}
        if unknown:
            raise InvalidInputError(f"{where}: unknown keys {sorted(unknown)} for a {kind} clause")
        out.append(_clause(kind, clause, schema, where))
    if len(out) > 1 and any(c.kind in ALONE_KINDS for c in out):
        raise InvalidInputError("'score_by' clauses of type 'text' and 'query_string' may be combined, but "
                                "'dense_vector', 'sparse_vector', 'embed', and 'sparse_embed' clauses must appear "
                                "alone in 'score_by'")
    return out


def _clause(kind: str, clause: Mapping[str, Any], schema: DocumentSchema, where: str) -> Clause:
    if kind == "text":
        fields = clause.get("fields")
        if fields is None and clause.get("field") is not None:
            fields = [clause["field"]]
        if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
            raise InvalidInputError(f"{where}.fields must be a non-empty list of field names")
        for name in fields:
            check_text_field(schema, name, where)
        return Clause(kind, fields=tuple(fields), query=_query(clause, where))
    if kind == "query_string":
        tree = parse_query_string(_query(clause, where))
        _check_tree(tree, schema, where)
        return Clause(kind, query=_query(clause, where), tree=tree)
    field = _single_field(clause, where)
    spec = schema.field(field)
    if kind == "dense_vector":
        if spec is None or spec.type != "dense_vector":
            raise InvalidInputError(f"{where}: {field!r} is not a dense_vector field of the schema")
        values = wire.dense_values(clause.get("values"), f"{where}.values")
        if values is None:
            raise InvalidInputError(f"{where}.values must be a non-empty list of numbers")
        if len(values) != spec.dimension:
            raise DimensionMismatchError(f"Query vector dimension {len(values)} does not match the dimension "
                                         f"{spec.dimension} of field {field!r}")
        return Clause(kind, field=field, values=values)
    if kind == "sparse_vector":
        if spec is None or spec.type != "sparse_vector":
            raise InvalidInputError(f"{where}: {field!r} is not a sparse_vector field of the schema")
        sparse = wire.sparse_values(clause.get("sparse_values"), f"{where}.sparse_values")
        return Clause(kind, field=field, sparse=sparse)
    config = None if spec is None else (spec.embed if kind == "embed" else spec.sparse_embed)
    if config is None:
        raise InvalidInputError(f"{where}: {field!r} is not a string field declared with {kind}")
    return Clause(kind, field=field, query=_query(clause, where))


def _check_tree(node: Group | Term, schema: DocumentSchema, where: str) -> None:
    if isinstance(node, Term):
        if node.field is not None:
            check_text_field(schema, node.field, where)
        elif not schema.text_fields:
            raise InvalidInputError(f"{where}: the schema has no full-text field for an unqualified term")
        return
    for _, child in node.clauses:
        _check_tree(child, schema, where)


def check_text_field(schema: DocumentSchema, name: str, where: str = "score_by") -> None:
    spec = schema.field(name)
    if spec is None or not spec.text_searchable or not spec.store_text:
        raise InvalidInputError(f"{where}: {name!r} is not a full-text searchable string field of the schema")


Ranked = list[tuple[int, float]]  # (document slot, score), best first


def score(space: DocSpace, clauses: Sequence[Clause], top_k: int, allowed: list[int] | None,
          embed_query: Callable[[str], np.ndarray], sparse_query: Callable[[str], Sparse | None]) -> Ranked:
    first = clauses[0]
    if first.kind in TEXT_KINDS:
        return _text(space, clauses, top_k, allowed)
    assert first.field is not None
    if first.kind in ("dense_vector", "embed"):
        vector = first.values if first.kind == "dense_vector" else embed_query(first.query or "")
        target, sparse = space.dense[first.field], None
    else:
        vector = None
        sparse = first.sparse if first.kind == "sparse_vector" else sparse_query(first.query or "")
        target = space.sparse[first.field]
        if sparse is None:  # a query that encodes to nothing shares no dimension with any document
            return []
    ranked = target.search(top_k, space.space_mask(target, allowed), vector, sparse)
    return [(space.slot_of[target.ids[vs] or ""], float(s)) for vs, s in ranked]


def _text(space: DocSpace, clauses: Sequence[Clause], top_k: int, allowed: list[int] | None) -> Ranked:
    scorer = TextScorer(space.text, lambda name: check_text_field(space.schema, name))
    hits = Hits()
    for clause in clauses:
        if clause.kind == "text":
            hits.merge(scorer.text(clause.query or "", clause.fields))
        else:
            assert clause.tree is not None
            hits.merge(scorer.evaluate(clause.tree) or Hits())
    slots, scores = hits.totals()
    if allowed is not None:
        inside = np.isin(slots, np.asarray(allowed, dtype=np.int64))
        slots, scores = slots[inside], scores[inside]
    if len(slots) > top_k:  # keep every document tied with the k-th, then order ties by id
        kth = -np.partition(-scores, top_k - 1)[top_k - 1]
        best = scores >= kth
        slots, scores = slots[best], scores[best]
    ranked = [(int(slot), float(value)) for slot, value in zip(slots.tolist(), scores.tolist(), strict=True)]
    ranked.sort(key=lambda item: (-item[1], space.doc(item[0])["_id"]))
    return ranked[:top_k]
