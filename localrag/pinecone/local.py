"""Pinecone index semantics on local storage: the engine behind the in-process client and the server.

Every write is validated in full, committed to SQLite in one transaction, and only then
applied to memory, so a refused request changes nothing and an acknowledged one
survives a crash. Semantics follow Pinecone: the default namespace is ``""``; fetch
omits missing ids; deleting a missing id is not an error; ``set_metadata`` merges;
filters apply before top-k; ids list in bytewise order.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from localrag.errors import ConflictError, DimensionMismatchError, InvalidInputError, NotFoundError
from localrag.filters import compile_filter
from localrag.pinecone import models as m
from localrag.pinecone import wire
from localrag.pinecone.ann import AnnSettings, DenseAnn
from localrag.pinecone.space import Space
from localrag.pinecone.store import IndexConfig, RecordStore
from localrag.rwlock import ReadWriteLock

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

METRICS = ("cosine", "dotproduct", "euclidean")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?$")
_FILTER_CACHE = 32
ANN_DIR = "ann"
T = TypeVar("T")


class FilterCache(Generic[T]):
    """The last few filters' results per (namespace, version): a write bumps the version, so an
    entry is never stale, and repeated filtered queries skip evaluating the filter per record."""

    def __init__(self, size: int = _FILTER_CACHE) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, int, str], T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, Any], compute: Callable[[], T]) -> T:
        namespace, version, flt = key
        full = (namespace, version, json.dumps(flt, sort_keys=True))
        with self._lock:
            cached = self._entries.get(full)
        if cached is None:
            cached = compute()
            with self._lock:
                self._entries[full] = cached
                while len(self._entries) > self._size:
                    self._entries.popitem(last=False)
        return cached


def encode_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode()


def decode_token(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as e:
        raise InvalidInputError("Invalid pagination token") from e
    if not isinstance(after, str):
        raise InvalidInputError("Invalid pagination token")
    return after


class LocalIndex:
    """One index: readers run concurrently, a write excludes them only while memory is updated."""

    def __init__(self, config: IndexConfig, store: RecordStore, ann: AnnSettings | None = None) -> None:
        self.config = config
        self.ann = ann if ann is not None else AnnSettings()
        self.store = store
        self._rw = ReadWriteLock()
        self._write = threading.Lock()
        self._spaces: dict[str, Space] = {}
        self._schemas: dict[str, dict[str, Any] | None] = store.namespaces()
        self._filters: FilterCache[np.ndarray] = FilterCache()
        for name in self._schemas:
            self._spaces[name] = self._new_space()
        for row in store.rows(config.dimension):
            self._spaces.setdefault(row.namespace, self._new_space()).put(row.id, row.values, row.sparse, row.metadata)
        self._open_anns()

    def _ann_path(self, namespace: str) -> Path:
        # hashed: namespace names may hold any character; the file names its namespace inside
        return self.store.path.parent / ANN_DIR / f"{hashlib.sha256(namespace.encode()).hexdigest()[:32]}.npz"

    def _open_anns(self) -> None:
        """Load each namespace's saved ANN when it matches the store, else build it (and save it then)."""
        built = False
        for name, space in self._spaces.items():
            if self.ann.persist and space.ann_settings is not None and self.config.dimension:
                ann = DenseAnn.load(self._ann_path(name), self.store.generation(name), name, self.config.dimension,
                                    self.config.metric, space.slot_of, space.has_dense)
                if ann is not None:
                    space.adopt_ann(ann)
                    continue
            space.sync_ann()
            built = built or space.ann_active
        if built:
            self.save_ann()  # a crash before close then does not cost another rebuild

    def save_ann(self) -> None:
        """Write every namespace's ANN beside the store and remove the files of the others.

        Called on close; a file is a cache (the store stays the truth), so a failure is logged, not raised.
        """
        if not self.ann.persist:
            return
        folder = self.store.path.parent / ANN_DIR
        with self._write, self._rw.read():
            kept = set()
            for name, space in self._spaces.items():
                path = self._ann_path(name)
                try:
                    if space.save_ann(path, self.store.generation(name), name):
                        kept.add(path.name)
                except Exception:  # a derived file: never fail a close for it
                    log.exception("cannot save the pinecone ANN of namespace %r", name)
            for old in folder.glob("*.npz") if folder.is_dir() else ():
                if old.name not in kept:
                    old.unlink(missing_ok=True)

    def _new_space(self) -> Space:
        return Space(self.config.dimension, self.config.metric, None if self.sparse_only else self.ann)

    def uses_ann(self, namespace: str) -> bool:
        """Whether dense queries in ``namespace`` take ANN candidates (past ``AnnSettings.threshold``)."""
        with self._rw.read():
            space = self._spaces.get(namespace)
            return space is not None and space.ann_active

    @property
    def sparse_only(self) -> bool:
        return self.config.vector_type == "sparse"

    # -- validation against the index ------------------------------------------------
    def _check_record(self, record: wire.Record) -> None:
        if self.sparse_only:
            if record.values is not None:
                raise InvalidInputError(f"Vector {record.id!r}: a sparse index takes sparse values only, "
                                        "not dense values")
            if record.sparse is None:
                raise InvalidInputError(f"Vector {record.id!r}: sparse values are required in a sparse index")
            return
        if record.values is None:
            raise InvalidInputError(f"Vector {record.id!r}: dense values are required in a dense index")
        self._check_dimension(record.values)

    def _check_dimension(self, values: np.ndarray) -> None:
        if len(values) != self.config.dimension:
            raise DimensionMismatchError(f"Vector dimension {len(values)} does not match the dimension of the "
                                         f"index {self.config.dimension}")

    def _allow(self, namespace: str, space: Space, flt: dict[str, Any] | None) -> np.ndarray:
        if not flt:
            return space.mask(None)
        return self._filters.get((namespace, space.version, flt), lambda: space.mask(compile_filter(flt)))

    # -- writes --------------------------------------------------------------------------
    def upsert(self, request: wire.UpsertRequest) -> m.UpsertResponse:
        latest = {r.id: r for r in request.vectors}  # a repeated id: the last one wins
        for record in latest.values():
            self._check_record(record)
        with self._write:
            self.store.upsert(request.namespace, list(latest.values()))
            with self._rw.write():
                space = self._spaces.setdefault(request.namespace, self._new_space())
                self._schemas.setdefault(request.namespace, None)
                for r in latest.values():
                    space.put(r.id, r.values, r.sparse, r.metadata)
                space.sync_ann()
        return m.UpsertResponse(len(request.vectors))

    def delete(self, request: wire.DeleteRequest) -> None:
        with self._write:
            space = self._spaces.get(request.namespace)
            if space is None:
                return
            if request.delete_all:
                self.store.delete_all(request.namespace)
                with self._rw.write():
                    space.clear()
                return
            if request.filter is not None:
                with self._rw.read():
                    allowed = self._allow(request.namespace, space, request.filter)
                    ids = [space.ids[int(s)] for s in np.flatnonzero(allowed)]
            else:
                ids = [i for i in request.ids or [] if i in space.slot_of]
            if ids:
                self.store.delete(request.namespace, [i for i in ids if i is not None])
                with self._rw.write():
                    for record_id in ids:
                        if record_id is not None:
                            space.remove(record_id)
                    space.sync_ann()

    def update(self, request: wire.UpdateRequest) -> m.UpdateResponse:
        if request.values is not None:
            if self.sparse_only:
                raise InvalidInputError("a sparse index takes sparse values only, not dense values")
            self._check_dimension(request.values)
        with self._write:
            space = self._spaces.get(request.namespace)
            if request.filter is not None:
                if space is None:
                    return m.UpdateResponse(0)
                with self._rw.read():
                    slots = np.flatnonzero(self._allow(request.namespace, space, request.filter)).tolist()
                if request.dry_run or request.set_metadata is None:
                    return m.UpdateResponse(len(slots))
                patch = request.set_metadata
                changes: list[tuple[str | None, Any, Any, dict[str, Any] | None]] = [
                    (space.ids[s], space.values_of(s), space.sparse[s], {**(space.metadata[s] or {}), **patch})
                    for s in slots]
            else:
                slot = None if space is None else space.slot_of.get(request.id or "")
                if space is None or slot is None:
                    return m.UpdateResponse()  # Pinecone does not report a missing id here
                metadata = space.metadata[slot]
                if request.set_metadata is not None:
                    metadata = {**(metadata or {}), **request.set_metadata}
                wire.metadata_of(metadata)  # the merged record must still be within the limits
                changes = [(request.id, request.values if request.values is not None else space.values_of(slot),
                            request.sparse if request.sparse is not None else space.sparse[slot], metadata)]
            for _, _, _, metadata in changes:
                wire.metadata_of(metadata)
            records = [wire.Record(rid or "", values, sparse, md) for rid, values, sparse, md in changes]
            self.store.upsert(request.namespace, records)
            with self._rw.write():
                for r in records:
                    space.put(r.id, r.values, r.sparse, r.metadata)
                space.sync_ann()
        return m.UpdateResponse(len(records) if request.filter is not None else None)

    # -- reads ---------------------------------------------------------------------------
    def query(self, request: wire.QueryRequest) -> m.QueryResponse:
        vector, sparse = request.vector, request.sparse
        if self.sparse_only and vector is not None:
            raise InvalidInputError("a sparse index is queried with a sparse vector only")
        if not self.sparse_only and request.id is None and vector is None:
            raise InvalidInputError("a dense index is queried with a dense vector or an id")
        if vector is not None:
            self._check_dimension(vector)
        if sparse is not None and not self.sparse_only and self.config.metric != "dotproduct":
            raise InvalidInputError("Sparse vector queries need an index with the dotproduct metric")
        with self._rw.read():
            space = self._spaces.get(request.namespace)
            if space is None:
                return m.QueryResponse([], request.namespace, m.Usage(1))
            if request.id is not None:
                slot = space.slot_of.get(request.id)
                if slot is None:
                    return m.QueryResponse([], request.namespace, m.Usage(1))
                vector = space.values_of(slot)
                sparse = space.sparse[slot] if self.sparse_only else None
                if vector is None and sparse is None:
                    return m.QueryResponse([], request.namespace, m.Usage(1))
            allowed = self._allow(request.namespace, space, request.filter) if request.filter else None
            ranked = space.search(request.top_k, allowed, vector, sparse)
            matches = [self._scored(space, slot, score, request) for slot, score in ranked]
        return m.QueryResponse(matches, request.namespace, m.Usage(max(1, len(matches) // 10)))

    @staticmethod
    def _scored(space: Space, slot: int, score: float, request: wire.QueryRequest) -> m.ScoredVector:
        values = space.values_of(slot) if request.include_values else None
        sparse = space.sparse[slot] if request.include_values else None
        return m.ScoredVector(space.ids[slot] or "", float(score), [] if values is None else values.tolist(),
                              _sparse(sparse), space.metadata[slot] if request.include_metadata else None)

    def _vector(self, space: Space, slot: int) -> m.Vector:
        values = space.values_of(slot)
        return m.Vector(space.ids[slot] or "", [] if values is None else values.tolist(),
                        _sparse(space.sparse[slot]), space.metadata[slot])

    def fetch(self, ids: list[str], namespace: str) -> m.FetchResponse:
        with self._rw.read():
            space = self._spaces.get(namespace)
            found = {} if space is None else {
                i: self._vector(space, space.slot_of[i]) for i in ids if i in space.slot_of}
        return m.FetchResponse(found, namespace, m.Usage(1))

    def fetch_by_metadata(self, flt: dict[str, Any], namespace: str, limit: int,
                          token: str | None) -> m.FetchByMetadataResponse:
        after = decode_token(token)
        with self._rw.read():
            space = self._spaces.get(namespace)
            if space is None:
                return m.FetchByMetadataResponse({}, namespace, m.Usage(1))
            slots = np.flatnonzero(self._allow(namespace, space, flt)).tolist()
            ids = sorted((space.ids[s] or "" for s in slots), key=str.encode)
            if after is not None:
                ids = [i for i in ids if i.encode() > after.encode()]
            page = ids[:limit]
            vectors = {i: self._vector(space, space.slot_of[i]) for i in page}
        more = len(ids) > limit
        return m.FetchByMetadataResponse(vectors, namespace, m.Usage(1),
                                         m.Pagination(encode_token(page[-1])) if more else None)

    def list_ids(self, request: wire.PageRequest) -> m.ListResponse:
        after = decode_token(request.token)
        ids = self.store.list_ids(request.namespace, request.prefix, after, request.limit + 1)
        page = ids[: request.limit]
        more = len(ids) > request.limit
        return m.ListResponse([m.ListItem(i) for i in page],
                              m.Pagination(encode_token(page[-1])) if more else None, request.namespace, m.Usage(1))

    def stats(self, flt: dict[str, Any] | None, default_name: str = m.DEFAULT_NAMESPACE_ALIAS
              ) -> m.DescribeIndexStatsResponse:
        with self._rw.read():
            counts = {}
            for name, space in self._spaces.items():
                count = len(space) if not flt else int(self._allow(name, space, flt).sum())
                if count:
                    counts[name or default_name] = m.NamespaceSummary(count)
        return m.DescribeIndexStatsResponse(counts, self.config.dimension, sum(c.vector_count for c in counts.values()),
                                            self.config.metric, self.config.vector_type)

    # -- namespaces ----------------------------------------------------------------------
    def _exists(self, name: str) -> bool:
        return name in self._schemas or (name == "" and not self.sparse_only)

    def create_namespace(self, name: str, schema: dict[str, Any] | None) -> m.NamespaceDescription:
        if not name:
            raise InvalidInputError("The default namespace always exists and cannot be created")
        with self._write:
            if self._exists(name):
                raise ConflictError(f"Namespace {name!r} already exists")
            self.store.create_namespace(name, schema)
            with self._rw.write():
                self._schemas[name] = schema
                self._spaces[name] = self._new_space()
        return m.NamespaceDescription(name, 0, schema)

    def describe_namespace(self, name: str) -> m.NamespaceDescription:
        with self._rw.read():
            if not self._exists(name):
                raise NotFoundError(f"Namespace {name or m.DEFAULT_NAMESPACE_ALIAS!r} not found")
            space = self._spaces.get(name)
            return m.NamespaceDescription(name or m.DEFAULT_NAMESPACE_ALIAS, len(space) if space else 0,
                                          self._schemas.get(name))

    def delete_namespace(self, name: str) -> None:
        with self._write:
            if not self._exists(name):
                raise NotFoundError(f"Namespace {name or m.DEFAULT_NAMESPACE_ALIAS!r} not found")
            self.store.delete_all(name, drop_namespace=True)
            with self._rw.write():
                self._spaces.pop(name, None)
                self._schemas.pop(name, None)

    def list_namespaces(self, request: wire.PageRequest) -> m.ListNamespacesResponse:
        with self._rw.read():
            counts = {n: len(s) for n, s in self._spaces.items() if n or len(s)}
            return namespace_page(counts, self._schemas, request)


def namespace_page(counts: Mapping[str, int], schemas: Mapping[str, dict[str, Any] | None],
                   request: wire.PageRequest) -> m.ListNamespacesResponse:
    """One page of namespace descriptions (``counts``: record count by name, ``""`` the default)."""
    after = decode_token(request.token)
    names = sorted((n or m.DEFAULT_NAMESPACE_ALIAS for n in counts), key=str.encode)
    names = [n for n in names if n.startswith(request.prefix)]
    total = len(names)
    if after is not None:
        names = [n for n in names if n.encode() > after.encode()]
    page = names[: request.limit]
    described = [m.NamespaceDescription(n, counts[n if n != m.DEFAULT_NAMESPACE_ALIAS else ""], schemas.get(n))
                 for n in page]
    more = len(names) > request.limit
    return m.ListNamespacesResponse(described, m.Pagination(encode_token(page[-1])) if more else None, total)


def _sparse(sparse: wire.Sparse | None) -> m.SparseValues | None:
    return None if sparse is None else m.SparseValues(sparse[0].astype(np.int64).tolist(), sparse[1].tolist())
