"""``vector.backend = "pinecone_documents"``: the corpus as one hosted Pinecone document index.

Every chunk is one document of the index, in the Pinecone namespace ``vector.namespace_prefix +
<localrag namespace>``:

* ``text`` (``string``, ``full_text_search``): what the engine's own BM25 would index (title + chunk);
* ``embedding`` (``dense_vector``, cosine): the chunk's embedding;
* metadata fields: ``doc_id``, ``source``, ``title``, ``chunk`` (the chunk's text), ``char_start``,
  ``char_end``, ``page``, ``ordinal``, ``chunks`` (the document's chunk count), ``content_hash``,
  ``updated_at``, ``meta_json`` (the document's metadata, exact), ``m_<key>`` (each filterable metadata
  value again, so localrag's Pinecone-language filters run on Pinecone), and ``part``: the slice of the
  document text from this chunk's start to the next chunk's, so the parts in ordinal order concatenate
  to the whole document (``get_document`` needs no other copy). Chunk 0 also holds ``page_starts_json``.

Ids are ``<blake2b(doc_id)>-<ordinal>``, the same on every replica, so a write is an idempotent
overwrite wherever it comes from; a document that shrank loses its surplus chunks by a filtered delete
after the upsert (never before: a reader never sees the document missing). Search hits carry every
field the engine needs for answers and citations, so a replica answers from the hosted index alone.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from localrag.config import Settings, VectorSettings
from localrag.errors import ConfigError, NotFoundError
from localrag.pinecone.hosted_retry import RetryPolicy, call
from localrag.pinecone.remote import sdk_and_key
from localrag.store.sqlite import PreparedDocument, WriteResult, index_text
from localrag.types import Document

log = logging.getLogger(__name__)

TEXT_FIELD = "text"
VECTOR_FIELD = "embedding"
HIT_FIELDS = ["key", "doc_id", "source", "title", "chunk", "char_start", "char_end", "page", "meta_json"]
_UPSERT_DOCS = 200  # per request: well under the 1,000-document and 2 MB caps at 384-1024 dimensions
_FETCH_LIMIT = 1000
_IN_BATCH = 500
_EMPTY = np.empty(0, dtype=np.int64)


def schema(dim: int, stem: bool = True, stop_words: bool = True) -> dict[str, Any]:
    """The document-index schema this mode needs (``pc.indexes.create(name=..., schema=schema(dim))``)."""
    return {"fields": {
        TEXT_FIELD: {"type": "string", "full_text_search": {"language": "en", "stemming": stem,
                                                           "stop_words": stop_words}},
        VECTOR_FIELD: {"type": "dense_vector", "dimension": int(dim), "metric": "cosine"},
    }}


def connect(settings: VectorSettings) -> Any:
    """An official-SDK ``Index`` on the hosted document index, with the SDK's own retries off (ours apply)."""
    pinecone, api_key = sdk_and_key(settings, "pinecone_documents")
    pc = pinecone.Pinecone(api_key=api_key, host=settings.control_host or None, timeout=settings.timeout_s,
                           retry_config=pinecone.RetryConfig(max_retries=0))
    index = call(RetryPolicy(settings.retries + 1, settings.retry_base_s, settings.retry_max_s), "describe_index",
                 lambda: pc.index(host=settings.host) if settings.host else pc.index(name=settings.index))
    _without_sdk_retries(index)
    return index


def _without_sdk_retries(index: Any) -> None:
    """Turn the SDK's own data-plane retries off, so ours are the only ones (one policy, injectable sleeps).

    SDK 10.2 takes ``retry_config`` for the control plane only; an ``Index`` builds its HTTP client from a
    config with the default (3 retries, real sleeps). There is no public knob, so the client is rebuilt
    from the same config with ``max_retries=0``; should the SDK's internals move, both layers retry
    (a warning says so) and nothing else changes."""
    try:
        from dataclasses import replace

        from pinecone import RetryConfig
        from pinecone._internal.constants import DATA_PLANE_API_VERSION
        from pinecone._internal.http_client import HTTPClient

        config = replace(index._config, retry_config=RetryConfig(max_retries=0))
        index._config, index._http = config, HTTPClient(config, DATA_PLANE_API_VERSION)
    except (ImportError, AttributeError, TypeError) as e:
        log.warning("could not turn off the Pinecone SDK's own retries (%s); hosted calls retry in both layers", e)


def new_keys(count: int) -> list[int]:
    """Chunk keys for a write, ordered as local chunk ids are (later writes sort later, so fusion's ties
    break by ingest order as on the local path): milliseconds << 22 + a random start + the position;
    stored as a string (a JSON number would lose the low bits)."""
    base = (int(time.time() * 1000) << 22) + random.randrange(1 << 21)
    return [base + i for i in range(count)]


def chunk_key(namespace: str, record_id: str, stored: Any = None) -> int:
    """The engine's int64 chunk key of a hosted record: its stored ``key``, else a hash of its id."""
    if isinstance(stored, str) and stored.isdigit():
        return int(stored)
    digest = hashlib.blake2b(f"{namespace}\0{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


def _doc_prefix(doc_id: str) -> str:
    return hashlib.blake2b(doc_id.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def _filterable(value: Any) -> bool:
    if isinstance(value, (str, bool, int, float)):
        return True
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def hosted_filter(flt: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A localrag metadata filter (Pinecone's language) on the hosted fields: ``key`` -> ``m_key``."""
    if not flt:
        return None

    def rename(node: Any) -> Any:
        if isinstance(node, Mapping):
            return {(k if k.startswith("$") else "doc_id" if k == "doc_id" else f"m_{k}"):
                    ([rename(v) for v in value] if k in ("$and", "$or") else value)
                    for k, value in ((k, node[k]) for k in node)}
        return node

    return dict(rename(flt))


@dataclass(frozen=True, slots=True)
class HostedHit:
    key: int
    score: float
    fields: dict[str, Any]


class HostedCorpus:
    """Reads and writes the corpus on the hosted document index; every call retried under ``policy``."""

    def __init__(self, index: Any, settings: VectorSettings, policy: RetryPolicy | None = None) -> None:
        self._index = index
        self.settings = settings
        self.policy = policy or RetryPolicy(settings.retries + 1, settings.retry_base_s, settings.retry_max_s)
        self._space_ok: set[tuple[str, str]] = set()

    @classmethod
    def open(cls, settings: Settings) -> HostedCorpus:
        return cls(connect(settings.vector), settings.vector)

    def namespace(self, name: str) -> str:
        return f"{self.settings.namespace_prefix}{name}" or "__default__"

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        return call(self.policy, what, getattr(self._index.documents, method), **kwargs)

    def check_space(self, namespace: str, space: str) -> None:
        """Refuse an embedder whose vectors are not the namespace's (same dimension, another model: a
        fine-tuned embedder, say); read from one record, once per namespace and process."""
        if not space or (namespace, space) in self._space_ok:
            return
        try:
            response = self._call("fetch", "fetch", namespace=self.namespace(namespace), filter={"ordinal": 0},
                                  include_fields=["vector_space"], limit=1)
            stored = next((_fields(d).get("vector_space") for d in response.documents.values()), None)
        except NotFoundError:
            stored = None
        if stored is not None and stored != space:
            raise ConfigError(f"hosted namespace {namespace!r} was indexed with embedding model {stored!r}, but "
                              f"the configured model produces {space!r} vectors; use the original model or "
                              "another vector.namespace_prefix")
        if stored is not None:  # an empty namespace is checked again at its first write
            self._space_ok.add((namespace, space))

    # -- search ----------------------------------------------------------------------------
    def search_dense(self, namespace: str, vector: np.ndarray, k: int, flt: Mapping[str, Any] | None
                     ) -> list[HostedHit]:
        clause = {"type": "dense_vector", "field": VECTOR_FIELD, "values": np.asarray(vector, np.float32).tolist()}
        return self._search(namespace, clause, k, flt)

    def search_text(self, namespace: str, query: str, k: int, flt: Mapping[str, Any] | None) -> list[HostedHit]:
        return self._search(namespace, {"type": "text", "fields": [TEXT_FIELD], "query": query}, k, flt)

    def _search(self, namespace: str, clause: dict[str, Any], k: int, flt: Mapping[str, Any] | None
                ) -> list[HostedHit]:
        ns = self.namespace(namespace)
        try:
            response = self._call("search", "search", namespace=ns, score_by=[clause], top_k=int(k),
                                  include_fields=HIT_FIELDS, filter=hosted_filter(flt))
        except NotFoundError:  # a namespace nobody has written to yet
            return []
        return [HostedHit(chunk_key(ns, match.id, match.get("key")), float(match.score or 0.0), _fields(match))
                for match in response.matches]

    # -- documents ---------------------------------------------------------------------------
    def _fetch(self, namespace: str, flt: dict[str, Any], fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every document matching ``flt`` (paged), as plain dicts."""
        token = None
        while True:
            try:
                response = self._call("fetch", "fetch", namespace=self.namespace(namespace), filter=flt,
                                      include_fields=fields, limit=_FETCH_LIMIT, pagination_token=token)
            except NotFoundError:
                return
            for found in response.documents.values():
                yield _fields(found)
            token = response.pagination.next if response.pagination is not None else None
            if not token:
                return

    def heads(self, namespace: str, flt: Mapping[str, Any] | None, fields: Sequence[str]) -> list[dict[str, Any]]:
        """Chunk 0 of every document matching the localrag filter ``flt``: one record per document."""
        where: dict[str, Any] = {"ordinal": 0}
        renamed = hosted_filter(flt)
        if renamed:
            where = {"$and": [where, renamed]}
        return list(self._fetch(namespace, where, ["doc_id", *fields]))

    def content_hashes(self, namespace: str, doc_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(doc_ids), _IN_BATCH):
            batch = list(doc_ids[start:start + _IN_BATCH])
            for head in self.heads(namespace, {"doc_id": {"$in": batch}}, ["content_hash"]):
                found[str(head["doc_id"])] = str(head.get("content_hash", ""))
        return found

    def stored_vectors(self, namespace: str, doc_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The embedding of every chunk of ``doc_ids``, keyed by its embedded text (a rewrite re-embeds
        only the chunks whose text changed, as on the local path)."""
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(doc_ids), _IN_BATCH):
            flt = {"doc_id": {"$in": list(doc_ids[start:start + _IN_BATCH])}}
            for record in self._fetch(namespace, flt, [TEXT_FIELD, VECTOR_FIELD]):
                if isinstance(record.get(TEXT_FIELD), str) and record.get(VECTOR_FIELD) is not None:
                    found[record[TEXT_FIELD]] = np.asarray(record[VECTOR_FIELD], dtype=np.float32)
        return found

    def get_document(self, namespace: str, doc_id: str) -> Document:
        parts = sorted(self._fetch(namespace, {"doc_id": doc_id},
                                   ["ordinal", "part", "source", "title", "meta_json", "page_starts_json"]),
                       key=lambda p: int(p.get("ordinal", 0)))
        if not parts:
            raise NotFoundError(f"no document {doc_id!r} in namespace {namespace!r}")
        head = parts[0]
        return Document(doc_id, "".join(str(p.get("part", "")) for p in parts), str(head.get("source", "")),
                        str(head.get("title", "")), json.loads(head.get("meta_json") or "{}"),
                        tuple(int(x) for x in json.loads(head.get("page_starts_json") or "[]")))

    def list_documents(self, namespace: str, limit: int = 100, offset: int = 0, q: str = ""
                       ) -> tuple[list[dict[str, Any]], int]:
        """A page of documents by doc_id (as the store's listing), and how many match ``q``."""
        heads = self.heads(namespace, None, ["source", "title", "meta_json", "updated_at", "chunks"])
        needle = q.casefold()
        rows = sorted(({"doc_id": str(h["doc_id"]), "source": str(h.get("source", "")),
                        "title": str(h.get("title", "")), "metadata": json.loads(h.get("meta_json") or "{}"),
                        "updated_at": h.get("updated_at"), "chunks": int(h.get("chunks", 0))} for h in heads
                       if not needle or any(needle in str(h.get(f, "")).casefold()
                                            for f in ("doc_id", "title", "source"))),
                      key=lambda r: r["doc_id"])
        return rows[offset:offset + limit], len(rows)

    def count(self, namespace: str) -> tuple[int, int]:
        """(documents, chunks) of a namespace."""
        heads = self.heads(namespace, None, ["chunks"])
        return len(heads), sum(int(h.get("chunks", 0)) for h in heads)

    def namespaces(self) -> list[str]:
        """localrag namespaces that hold records (the Pinecone namespaces under the prefix)."""
        stats = call(self.policy, "describe_index_stats", self._index.describe_index_stats)
        prefix = self.settings.namespace_prefix
        names = []
        for name, summary in (stats.namespaces or {}).items():
            count = getattr(summary, "vector_count", None) or getattr(summary, "record_count", 0)
            if name.startswith(prefix) and count:
                names.append(name[len(prefix):])
            elif name == "__default__" and not prefix and count:
                names.append("")
        return sorted(names)

    def stats(self) -> dict[str, Any]:
        """The engine's ``stats()`` shape, counted on the hosted index."""
        per_ns = {}
        for name in self.namespaces():
            docs, chunks = self.count(name)
            per_ns[name] = {"documents": docs, "chunks": chunks, "vector_index": "pinecone_documents",
                            "vectors": chunks, "keyword_docs": chunks}
        return {"documents": sum(n["documents"] for n in per_ns.values()),
                "chunks": sum(n["chunks"] for n in per_ns.values()), "generation": 0,
                "namespaces": per_ns, "store_bytes": 0, "vector_space": None}

    # -- writes ------------------------------------------------------------------------------
    def delete(self, namespace: str, doc_ids: Sequence[str] | None = None,
               flt: Mapping[str, Any] | None = None) -> list[str]:
        """Delete documents by id or by localrag filter; returns the doc_ids that were there."""
        if doc_ids is not None:
            present = set(self.content_hashes(namespace, list(doc_ids)))
        else:
            present = {str(h["doc_id"]) for h in self.heads(namespace, flt, [])}
        targets = sorted(present)
        for start in range(0, len(targets), _IN_BATCH):
            self._call("delete", "delete", namespace=self.namespace(namespace),
                       filter={"doc_id": {"$in": targets[start:start + _IN_BATCH]}})
        return targets

    def write(self, namespace: str, prepared: Sequence[PreparedDocument], space: str = "") -> None:
        ns = self.namespace(namespace)
        self.check_space(namespace, space)
        keys = iter(new_keys(sum(len(p.chunks) for p in prepared)))
        records = [r | ({"vector_space": space} if space else {}) for p in prepared for r in _records(p, keys)]
        for start in range(0, len(records), _UPSERT_DOCS):
            self._call("upsert", "upsert", namespace=ns, documents=records[start:start + _UPSERT_DOCS])
        # Surplus chunks of a document that shrank; after the upsert, so the document never vanishes.
        stale = [{"doc_id": p.document.doc_id, "ordinal": {"$gte": len(p.chunks)}} for p in prepared]
        for start in range(0, len(stale), 100):
            self._call("delete", "delete", namespace=ns, filter={"$or": stale[start:start + 100]})


def _fields(doc: Any) -> dict[str, Any]:
    data = doc.to_dict() if hasattr(doc, "to_dict") else dict(doc)
    return {k: v for k, v in data.items() if not k.startswith("_")} | {"_id": data.get("_id")}


def _records(prepared: PreparedDocument, keys: Iterator[int]) -> list[dict[str, Any]]:
    doc, chunks = prepared.document, prepared.chunks
    prefix, now = _doc_prefix(doc.doc_id), time.time()
    meta_json = json.dumps(dict(doc.metadata), sort_keys=True, ensure_ascii=False, default=str)
    filterable = {f"m_{k}": (float(v) if isinstance(v, int) and not isinstance(v, bool) else v)
                  for k, v in doc.metadata.items() if _filterable(v)}
    starts = [c.char_start for c in chunks]
    monotone = all(a <= b for a, b in itertools.pairwise(starts))
    bounds = [0, *starts[1:], len(doc.text)] if monotone else \
        [round(i * len(doc.text) / len(chunks)) for i in range(len(chunks) + 1)]
    records = []
    for i, (chunk, vector) in enumerate(zip(chunks, prepared.vectors, strict=True)):
        record: dict[str, Any] = {
            "_id": f"{prefix}-{i}", "key": str(next(keys)), TEXT_FIELD: index_text(doc.title, chunk.text),
            VECTOR_FIELD: np.asarray(vector, dtype=np.float32).tolist(),
            "doc_id": doc.doc_id, "source": doc.source, "title": doc.title, "chunk": chunk.text,
            "char_start": chunk.char_start, "char_end": chunk.char_end, "ordinal": i, "chunks": len(chunks),
            "content_hash": prepared.content_hash, "updated_at": now, "meta_json": meta_json,
            "part": doc.text[bounds[i]:bounds[i + 1]], **filterable,
        }
        if chunk.page is not None:
            record["page"] = chunk.page
        if i == 0:
            record["page_starts_json"] = json.dumps(list(doc.page_starts))
        records.append({k: v for k, v in record.items() if v != ""})  # Pinecone stores no empty strings
    return records


class HostedWrites:
    """What the ingest pipeline needs of a store, on the hosted index (``IngestPipeline(store=...)``)."""

    def __init__(self, corpus: HostedCorpus, space: str = "") -> None:
        self.corpus = corpus
        self.space = space  # the embedder's vector space, stored on every record and checked before writing

    def content_hashes(self, namespace: str, doc_ids: Sequence[str]) -> dict[str, str]:
        return self.corpus.content_hashes(namespace, doc_ids)

    def stored_vectors(self, namespace: str, doc_ids: Sequence[str]) -> dict[str, np.ndarray]:
        return self.corpus.stored_vectors(namespace, doc_ids)

    def write_documents(self, namespace: str, prepared: Sequence[PreparedDocument], dim: int) -> WriteResult:
        self.corpus.write(namespace, prepared, self.space)
        return WriteResult(0, 0, _EMPTY, _EMPTY)  # no local generation: nothing local changed
