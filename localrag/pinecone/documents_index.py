"""A document index (Pinecone API 2026-07) on local storage: the engine behind ``index.documents``.

Requests arrive as the wire bodies the SDK sends (the in-process client builds the same
bodies), are validated in full, committed to the index's SQLite ``RecordStore`` in one
transaction (a document is a record whose metadata column holds the document, and whose
vector columns hold what ``embed``/``sparse_embed`` made, so a restart re-embeds nothing),
and only then applied to memory. A refused request changes nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from localrag.errors import ConflictError, InvalidInputError, NotFoundError
from localrag.pinecone import documents_models as dm
from localrag.pinecone import models as m
from localrag.pinecone import wire
from localrag.pinecone.documents_embed import EmbedderSource, SparseEncoder
from localrag.pinecone.documents_schema import (
    MAX_DOCUMENTS,
    MAX_EMBED_DOCUMENTS,
    DocumentSchema,
    FullText,
    load_schema,
    validate_document,
)
from localrag.pinecone.documents_search import parse_clauses, score
from localrag.pinecone.documents_space import DocSpace, compile_document_filter
from localrag.pinecone.documents_text import analyzer
from localrag.pinecone.local import FilterCache, decode_token, encode_token, namespace_page
from localrag.pinecone.models import DEFAULT_NAMESPACE_ALIAS
from localrag.pinecone.store import IndexConfig, RecordStore
from localrag.rwlock import ReadWriteLock

log = logging.getLogger(__name__)

DEFAULT_FETCH_LIMIT = 100
MAX_FETCH_LIMIT = 10_000


def namespace_of(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("namespace must be a non-empty string")
    return wire.namespace_of(value)


def _int(value: Any, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(f"'{name}' must be an integer between {low} and {high} (got {value!r})")
    return value


def _names(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(f"{what} must be a list of strings")
    return value


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidInputError("request body must be a JSON object")
    return dict(body)


class DocumentIndex:
    def __init__(self, config: IndexConfig, store: RecordStore, embedder: EmbedderSource) -> None:
        assert config.schema is not None
        self.config = config
        self.store = store
        self.schema: DocumentSchema = load_schema(config.schema)
        self._embedder = embedder
        self._sparse = SparseEncoder(analyzer(FullText(stemming=True, stop_words=True)))
        self._rw = ReadWriteLock()
        self._write = threading.Lock()
        self._spaces: dict[str, DocSpace] = {}
        self._filters: FilterCache[list[int]] = FilterCache()
        for name in store.namespaces():
            self._space(name)
        for row in store.rows(None):
            assert row.metadata is not None
            self._space(row.namespace).put(row.metadata, row.values, row.sparse)

    def _space(self, namespace: str) -> DocSpace:
        space = self._spaces.get(namespace)
        if space is None:
            space = self._spaces[namespace] = DocSpace(self.schema)
        return space

    def _hidden(self) -> set[str]:
        return {f.name for f in self.schema.fields if f.type == "string" and not f.store_text}

    # -- writes --------------------------------------------------------------------------
    def upsert(self, namespace: str, body: Any) -> dm.UpsertDocumentsResponse:
        namespace = namespace_of(namespace)
        documents = _body(body).get("documents")
        if not isinstance(documents, list) or not documents:
            raise InvalidInputError("'documents' must be a non-empty list")
        embeds = self.schema.embed_field is not None or self.schema.sparse_embed_field is not None
        cap = MAX_EMBED_DOCUMENTS if embeds else MAX_DOCUMENTS
        if len(documents) > cap:
            raise InvalidInputError(f"Number of documents ({len(documents)}) exceeds the maximum limit of {cap} "
                                    "documents per request")
        docs = [validate_document(d, self.schema, i) for i, d in enumerate(documents)]
        seen: set[str] = set()
        for i, doc in enumerate(docs):
            if doc["_id"] in seen:
                raise InvalidInputError(f"Document at position {i} has duplicate '_id' {doc['_id']!r}")
            seen.add(doc["_id"])
        records, tokens = self._embedded(docs)
        with self._write:
            self.store.upsert(namespace, records)
            with self._rw.write():
                space = self._space(namespace)
                for r in records:
                    assert r.metadata is not None
                    space.put(r.metadata, r.values, r.sparse)
        return dm.UpsertDocumentsResponse(len(docs), dm.Usage(embed_total_tokens=tokens) if embeds else None)

    def _embedded(self, docs: Sequence[dict[str, Any]]) -> tuple[list[wire.Record], int]:
        """Records to store: the embedded vectors made, the text of store_text=false fields dropped."""
        embed, sparse_embed = self.schema.embed_field, self.schema.sparse_embed_field
        dense: list[Any] = [None] * len(docs)
        tokens = 0
        if embed is not None:
            texts = [d[embed.name] for d in docs]
            dense = list(np.asarray(self._embedder.get().embed_documents(texts), dtype=np.float32))
            tokens += sum(len(t.split()) for t in texts)
        sparse: list[Any] = [None] * len(docs)
        if sparse_embed is not None:
            texts = [d.get(sparse_embed.name) for d in docs]
            sparse = [None if t is None else self._sparse.document(t) for t in texts]
            tokens += sum(len(t.split()) for t in texts if t is not None)
        leave_out = self._hidden() | {f.name for f in self.schema.dense_fields}
        vectors = [f.name for f in self.schema.dense_fields]
        records = []
        for i, d in enumerate(docs):
            parts = [np.asarray(d[name], dtype=np.float32) for name in vectors]
            if dense[i] is not None:
                parts.append(dense[i])
            packed = np.concatenate(parts) if parts else None
            records.append(wire.Record(d["_id"], packed, sparse[i], {k: v for k, v in d.items() if k not in leave_out}))
        return records, tokens

    def delete(self, namespace: str, body: Any) -> dm.MatchedResponse:
        namespace = namespace_of(namespace)
        args = _body(body)
        ids, flt, delete_all = args.get("ids"), args.get("filter"), args.get("delete_all")
        if delete_all is not None and not isinstance(delete_all, bool):
            raise InvalidInputError("'delete_all' must be a boolean")
        delete_all = bool(delete_all)
        if sum((ids is not None and ids != [], flt is not None, delete_all)) != 1:
            raise InvalidInputError("Provide exactly one of 'ids', 'filter', or 'delete_all'")
        predicate = compile_document_filter(flt, self.schema, text_match=False) if flt is not None else None
        if flt is not None and predicate is None:
            raise InvalidInputError("The 'filter' field must be a non-empty object of filter predicates")
        with self._write:
            space = self._spaces.get(namespace)
            if delete_all:
                self.store.delete_all(namespace)
                with self._rw.write():
                    if namespace in self._spaces:
                        self._spaces[namespace] = DocSpace(self.schema)
                return dm.MatchedResponse()
            if predicate is not None:
                slots = [] if space is None else space.slots(predicate)
                targets = [] if space is None else [space.doc(s)["_id"] for s in slots]
            else:
                targets = [i for i in wire.id_list(ids) if space is not None and i in space.slot_of]
            if targets:
                self.store.delete(namespace, targets)
                with self._rw.write():
                    assert space is not None
                    for doc_id in targets:
                        space.remove(doc_id)
        return dm.MatchedResponse(len(targets) if predicate is not None else None)

    def update(self, namespace: str, body: Any) -> dm.MatchedResponse:
        namespace = namespace_of(namespace)
        args = _body(body)
        patches, flt = args.get("documents"), args.get("filter")
        set_fields, remove = args.get("set_fields"), _names(args.get("remove_fields"), "remove_fields")
        if (patches is None) == (flt is None):
            raise InvalidInputError("Provide either 'documents' (per-id patches) or 'filter'")
        if patches is not None and (set_fields is not None or remove is not None):
            raise InvalidInputError("'set_fields' and 'remove_fields' go with 'filter', not 'documents'")
        if set_fields is not None and not isinstance(set_fields, Mapping):
            raise InvalidInputError("'set_fields' must be an object")
        if self._hidden() or self.schema.embed_field is not None:
            raise InvalidInputError("update is not supported on indexes with embed or store_text=false fields; "
                                    "upsert the whole document instead")
        with self._write:
            space = self._spaces.get(namespace) or DocSpace(self.schema)
            merged: list[dict[str, Any]] = []
            if flt is not None:
                predicate = compile_document_filter(flt, self.schema, text_match=False)
                if predicate is None or (not set_fields and not remove):
                    raise InvalidInputError("A filtered update needs a non-empty 'filter' and a patch")
                merged = [_patched(space.document(s), dict(set_fields or {}), remove or [])
                          for s in space.slots(predicate)]
            else:
                if not isinstance(patches, list) or not patches:
                    raise InvalidInputError("'documents' must be a non-empty list of patches")
                for i, patch in enumerate(patches):
                    if not isinstance(patch, Mapping) or not isinstance(patch.get("_id"), str):
                        raise InvalidInputError(f"Document patch at position {i} needs an '_id'")
                    found = space.slot_of.get(patch["_id"])
                    if found is not None:
                        fields = {k: v for k, v in patch.items() if k not in ("_id", "_remove_fields")}
                        merged.append(_patched(space.document(found), fields,
                                               _names(patch.get("_remove_fields"), "_remove_fields") or []))
            docs = [validate_document(d, self.schema, i) for i, d in enumerate(merged)]
            records, _ = self._embedded(docs)
            if records:
                self.store.upsert(namespace, records)
                with self._rw.write():
                    target = self._space(namespace)
                    for r in records:
                        assert r.metadata is not None
                        target.put(r.metadata, r.values, r.sparse)
        return dm.MatchedResponse(len(docs) if flt is not None else None)

    # -- reads ---------------------------------------------------------------------------
    @staticmethod
    def _project(space: DocSpace, slot: int, include: list[str] | None, everything: bool) -> dict[str, Any]:
        return space.document(slot, None if everything else include or [])

    def _include(self, include: Any, default_all: bool) -> tuple[list[str] | None, bool]:
        names = _names(include, "include_fields")
        hidden = self._hidden() & set(names or [])
        if hidden:
            raise InvalidInputError(f"include_fields names {sorted(hidden)}, whose text is not stored "
                                    "(store_text: false)")
        everything = "*" in (names or []) or (default_all and not names)
        return names, everything

    def fetch(self, namespace: str, body: Any) -> dm.FetchDocumentsResponse:
        namespace = namespace_of(namespace)
        args = _body(body)
        ids, flt, token = args.get("ids"), args.get("filter"), args.get("pagination_token")
        names, everything = self._include(args.get("include_fields"), default_all=True)
        if (ids is not None and ids != []) == (flt is not None):
            raise InvalidInputError("Provide exactly one of 'ids' or 'filter' in a document fetch")
        if token is not None and flt is None:
            raise InvalidInputError("'pagination_token' is only valid together with 'filter'")
        if token is not None and not isinstance(token, str):
            raise InvalidInputError("'pagination_token' must be a string")
        limit = _int(args.get("limit"), "limit", DEFAULT_FETCH_LIMIT, 1, MAX_FETCH_LIMIT)
        if flt is None:
            wanted = wire.fetch_ids(ids)
            with self._rw.read():
                space = self._spaces.get(namespace)
                found = {} if space is None else {
                    i: dm.Document(self._project(space, space.slot_of[i], names, everything))
                    for i in wanted if i in space.slot_of}
            return dm.FetchDocumentsResponse(found, namespace or DEFAULT_NAMESPACE_ALIAS, dm.Usage(1))
        predicate = compile_document_filter(flt, self.schema)
        if predicate is None:
            raise InvalidInputError("The 'filter' field must be a non-empty object of filter predicates")
        after = decode_token(token)
        with self._rw.read():
            space = self._spaces.get(namespace)
            slots = [] if space is None else space.slots(predicate)
            if after is not None:
                slots = [s for s in slots if space is not None and space.doc(s)["_id"].encode() > after.encode()]
            more = len(slots) > limit
            page = [] if space is None else [self._project(space, s, names, everything) for s in slots[:limit]]
        return dm.FetchDocumentsResponse({d["_id"]: dm.Document(d) for d in page},
                                         namespace or DEFAULT_NAMESPACE_ALIAS, dm.Usage(1),
                                         dm.Pagination(encode_token(page[-1]["_id"])) if more else None)

    def list_ids(self, namespace: str, body: Any) -> dm.ListDocumentsResponse:
        namespace = namespace_of(namespace)
        args = _body(body)
        limit = _int(args.get("limit"), "limit", wire.DEFAULT_LIST_LIMIT, 1, wire.MAX_LIST_LIMIT)
        page = wire.page_request(namespace, args.get("prefix"), limit, args.get("pagination_token"))
        after = decode_token(page.token)
        ids = self.store.list_ids(namespace, page.prefix, after, page.limit + 1)
        shown = ids[: page.limit]
        more = len(ids) > page.limit
        return dm.ListDocumentsResponse([dm.ListedDocumentRecord(i) for i in shown],
                                        namespace or DEFAULT_NAMESPACE_ALIAS, dm.Usage(1),
                                        dm.Pagination(encode_token(shown[-1])) if more else None)

    def search(self, namespace: str, body: Any) -> dm.SearchDocumentsResponse:
        namespace = namespace_of(namespace)
        args = _body(body)
        clauses = parse_clauses(args.get("score_by"), self.schema)
        raw_k = args.get("top_k")
        if isinstance(raw_k, bool) or not isinstance(raw_k, int):
            raise InvalidInputError(f"'top_k' must be an integer, got {raw_k!r}")
        top_k = _int(raw_k, "top_k", 10, 1, wire.MAX_TOP_K)
        names, everything = self._include(args.get("include_fields"), default_all=False)
        predicate = compile_document_filter(args.get("filter"), self.schema)
        tokens = None
        if clauses[0].kind in ("embed", "sparse_embed"):
            tokens = len((clauses[0].query or "").split())
        embed_query = self._embed_query if clauses[0].kind == "embed" else _no_embed
        with self._rw.read():
            space = self._spaces.get(namespace)
            if space is None:
                return dm.SearchDocumentsResponse([], namespace or DEFAULT_NAMESPACE_ALIAS, dm.Usage(1, tokens))
            allowed = None if predicate is None else self._filters.get(
                (namespace, space.version, args.get("filter")), lambda: space.matching(predicate))
            ranked = score(space, clauses, top_k, allowed, embed_query, self._sparse.query)
            matches = [dm.Document({**self._project(space, slot, names, everything), "_score": value})
                       for slot, value in ranked]
        return dm.SearchDocumentsResponse(matches, namespace or DEFAULT_NAMESPACE_ALIAS,
                                          dm.Usage(max(1, len(matches) // 10), tokens))

    def _embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self._embedder.get().embed_query(text), dtype=np.float32)

    # -- namespaces and stats (the vector API's routes, on a document index) ---------------
    def stats(self, flt: dict[str, Any] | None = None, default_name: str = DEFAULT_NAMESPACE_ALIAS
              ) -> m.DescribeIndexStatsResponse:
        predicate = compile_document_filter(flt, self.schema)
        with self._rw.read():
            counts = {ns or default_name: len(s) if predicate is None else len(s.matching(predicate))
                      for ns, s in self._spaces.items()}
        counts = {k: v for k, v in counts.items() if v}
        return m.DescribeIndexStatsResponse({k: m.NamespaceSummary(v) for k, v in counts.items()}, None,
                                            sum(counts.values()), "cosine", "document")

    def create_namespace(self, name: str, schema: dict[str, Any] | None) -> m.NamespaceDescription:
        with self._write:
            if name in self._spaces:
                raise ConflictError(f"Namespace {name!r} already exists")
            self.store.create_namespace(name, schema)
            with self._rw.write():
                self._space(name)
        return m.NamespaceDescription(name, 0, schema)

    def describe_namespace(self, name: str) -> m.NamespaceDescription:
        with self._rw.read():
            space = self._spaces.get(name)
            if space is None:
                raise NotFoundError(f"Namespace {name or DEFAULT_NAMESPACE_ALIAS!r} not found")
            return m.NamespaceDescription(name or DEFAULT_NAMESPACE_ALIAS, len(space))

    def delete_namespace(self, name: str) -> None:
        with self._write:
            if name not in self._spaces:
                raise NotFoundError(f"Namespace {name or DEFAULT_NAMESPACE_ALIAS!r} not found")
            self.store.delete_all(name, drop_namespace=True)
            with self._rw.write():
                del self._spaces[name]

    def list_namespaces(self, request: wire.PageRequest) -> m.ListNamespacesResponse:
        with self._rw.read():
            return namespace_page({n: len(s) for n, s in self._spaces.items()}, {}, request)


def _no_embed(text: str) -> np.ndarray:
    raise AssertionError("no embed clause")


def _patched(doc: Mapping[str, Any], fields: dict[str, Any], remove: list[str]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in remove}
    out.update(fields)
    return out


def request_size(body: Any) -> int:
    """The compact-JSON size of an in-process request (the server measures bytes), exact only near 2 MB.

    Serialising every float costs ~1 us each, so an upper bound is taken first: 25 bytes per number
    (the longest float repr) and 6 per character (a ``\\uXXXX`` escape).
    """
    bound = _bound(body)
    if bound <= wire.MAX_REQUEST_BYTES:
        return bound
    return len(json.dumps(body, separators=(",", ":"), default=str).encode())


def _bound(value: Any) -> int:
    if isinstance(value, str):
        return 6 * len(value) + 2
    if isinstance(value, Mapping):
        return 2 + sum(_bound(k) + _bound(v) + 2 for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if all(type(v) in (int, float) for v in value):
            return 2 + 26 * len(value)
        return 2 + sum(_bound(v) + 1 for v in value)
    return 25


__all__ = ["DocumentIndex", "request_size"]
