"""``PineconeVectorIndex``: the pipeline's ``VectorIndex`` on a Pinecone index, through the official SDK.

The SQLite store stays the truth; the Pinecone namespace (``prefix + namespace id``)
holds one record per chunk (id = the chunk key, metadata ``{"key": key}``) and is a
cache like the FAISS files: ``save()`` writes the key set it holds with the store
generation, and the index manager replays or rebuilds from the store when they
disagree. Upserts and deletes are idempotent, so a replay is harmless.

An ``allow`` list of up to 10,000 keys becomes a ``$in`` filter, so filtered searches
stay single-stage; a longer one is applied to the top 10,000 unfiltered matches.
The index must use the cosine or dotproduct metric (embeddings are unit vectors).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from localrag.config import VectorSettings
from localrag.errors import (
    ConfigError,
    CorruptIndexError,
    DependencyMissingError,
    DimensionMismatchError,
    LocalRagError,
)
from localrag.fileio import load_arrays, save_arrays
from localrag.pinecone.wire import MAX_IDS, MAX_REQUEST_BYTES, MAX_TOP_K, MAX_UPSERT_VECTORS
from localrag.protocols import Allow, Keys, ScoredKeys, Vectors

log = logging.getLogger(__name__)

_FORMAT = 1
_MAX_IN_VALUES = 10_000


class RemoteIndexError(LocalRagError):
    """Pinecone refused a request or could not be reached."""

    http_status = 502
    grpc_code = 14  # UNAVAILABLE


def sdk_and_key(settings: VectorSettings, backend: str) -> tuple[Any, str]:
    """The official SDK module and the API key for ``vector.backend = backend``, or a clear error."""
    try:
        import pinecone
    except ImportError as e:
        raise DependencyMissingError(f"vector.backend = '{backend}' needs the official client: "
                                     "pip install 'localrag[pinecone]'") from e
    api_key = os.environ.get(settings.api_key_env, "")
    if not api_key:
        raise ConfigError(f"vector.backend = '{backend}' needs an API key in ${settings.api_key_env}")
    if not settings.host and not settings.index:
        raise ConfigError(f"vector.backend = '{backend}' needs vector.host or vector.index")
    return pinecone, api_key


def connect(settings: VectorSettings) -> Any:
    """An official-SDK ``Index`` for the configured host (or index name)."""
    pinecone, api_key = sdk_and_key(settings, "pinecone")
    try:
        if settings.host:
            return pinecone.Index(host=settings.host, api_key=api_key)
        pc = pinecone.Pinecone(api_key=api_key, host=settings.control_host or None)
        return pc.Index(name=settings.index)
    except Exception as e:  # the SDK's own errors: a bad host, an unknown index
        raise RemoteIndexError(f"cannot open Pinecone index {settings.host or settings.index!r}: {e}") from e


class PineconeVectorIndex:
    kind = "pinecone"

    def __init__(self, client: Any, dim: int, namespace: str, keys: Keys | None = None) -> None:
        self.dim = int(dim)
        self.namespace = namespace
        self._client = client
        self._keys: set[int] = set() if keys is None else {int(k) for k in keys}
        self._checked = False

    @classmethod
    def create(cls, settings: VectorSettings, dim: int, ns_id: int, client: Any = None) -> PineconeVectorIndex:
        """A fresh index: the remote namespace is emptied, as the caller is about to fill it from the store."""
        index = cls(client if client is not None else connect(settings), dim, f"{settings.namespace_prefix}{ns_id}")
        index._call(index._client.delete, delete_all=True, namespace=index.namespace, missing_ok=True)
        return index

    @classmethod
    def load(cls, path: Path, settings: VectorSettings, ns_id: int, client: Any = None
             ) -> tuple[PineconeVectorIndex, int]:
        arrays = load_arrays(path)
        try:
            if int(arrays["format"]) != _FORMAT or str(arrays["kind"]) != cls.kind:
                raise CorruptIndexError(f"{path} is not a Pinecone index stamp")
            index = cls(client if client is not None else connect(settings), int(arrays["dim"]),
                        f"{settings.namespace_prefix}{ns_id}", arrays["keys"])
            return index, int(arrays["stamp"])
        except KeyError as e:
            raise CorruptIndexError(f"cannot read {path}: {e}") from e

    # -- VectorIndex ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._keys)

    def keys(self) -> Keys:
        return np.asarray(sorted(self._keys), dtype=np.int64)

    def add(self, keys: Keys, vectors: Vectors) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(keys), -1) if len(keys) else vectors
        if len(keys) and vectors.shape[1] != self.dim:
            raise DimensionMismatchError(f"vector dimension {vectors.shape[1]} does not match {self.dim}")
        self._check_remote()
        # Stay under both of Pinecone's per-request caps: 1,000 records and 2 MB of JSON.
        per_request = max(1, min(MAX_UPSERT_VECTORS, MAX_REQUEST_BYTES // (self.dim * 24 + 96)))
        for start in range(0, len(keys), per_request):
            batch = [{"id": str(int(k)), "values": v.tolist(), "metadata": {"key": int(k)}}
                     for k, v in zip(keys[start:start + per_request], vectors[start:start + per_request],
                                     strict=True)]
            self._call(self._client.upsert, vectors=batch, namespace=self.namespace)
            self._keys.update(int(k) for k in keys[start:start + per_request])

    def remove(self, keys: Keys) -> None:
        present = [int(k) for k in np.asarray(keys, dtype=np.int64) if int(k) in self._keys]
        for start in range(0, len(present), MAX_IDS):
            batch = present[start:start + MAX_IDS]
            self._call(self._client.delete, ids=[str(k) for k in batch], namespace=self.namespace, missing_ok=True)
            self._keys.difference_update(batch)

    def search(self, queries: Vectors, k: int, allow: Allow | None = None) -> list[ScoredKeys]:
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if k <= 0 or not self._keys or (allow is not None and len(allow) == 0):
            return [[] for _ in range(len(queries))]
        self._check_remote()
        top_k = min(k, MAX_TOP_K)
        flt = None
        if allow is not None and len(allow) <= _MAX_IN_VALUES:
            flt = {"key": {"$in": [int(a) for a in allow]}}
        elif allow is not None:
            top_k = min(MAX_TOP_K, len(self._keys))  # over-fetch, then apply the allow list here
        results = []
        for query in queries:
            response = self._call(self._client.query, vector=query.tolist(), top_k=top_k, namespace=self.namespace,
                                  filter=flt)
            hits = [(int(match.id), float(match.score)) for match in response.matches]
            if allow is not None and flt is None:
                allowed = set(allow.tolist())
                hits = [h for h in hits if h[0] in allowed]
            results.append(hits[:k])
        return results

    def save(self, path: Path, stamp: int) -> None:
        save_arrays(path, format=np.int64(_FORMAT), kind=np.str_(self.kind), stamp=np.int64(stamp),
                    dim=np.int64(self.dim), keys=self.keys())

    # -- internals ----------------------------------------------------------------------
    def _check_remote(self) -> None:
        if self._checked:
            return
        stats = self._call(self._client.describe_index_stats)
        metric = getattr(stats, "metric", None)
        if stats.dimension is not None and int(stats.dimension) != self.dim:
            raise ConfigError(f"the Pinecone index has dimension {stats.dimension}; the embedder {self.dim}")
        if metric not in (None, "cosine", "dotproduct"):
            raise ConfigError(f"the Pinecone index uses the {metric} metric; localrag needs cosine or dotproduct")
        self._checked = True

    def _call(self, fn: Any, *args: Any, missing_ok: bool = False, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LocalRagError:
            raise
        except Exception as e:  # the SDK's ApiError family, transport errors
            if missing_ok and getattr(e, "status_code", None) == 404:
                return None  # hosted Pinecone answers 404 for a namespace that does not exist yet
            raise RemoteIndexError(f"Pinecone request failed: {e}") from e
