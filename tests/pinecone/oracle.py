"""A brute-force Pinecone: plain dicts and float64 loops, written from the documented semantics only.

It shares nothing with localrag.pinecone but the filter language (localrag.filters, which
has its own oracle tests against the Pinecone docs' examples).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from localrag.filters import matches


class OracleError(Exception):
    def __init__(self, category: str) -> None:
        super().__init__(category)
        self.category = category


def f32(values: Sequence[float]) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float32)]


def _meta(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if metadata is None:
        return None
    out = {}
    for key, value in metadata.items():
        if value is None or isinstance(value, dict):
            raise OracleError("invalid")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise OracleError("invalid")
        out[key] = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    return out


class Oracle:
    def __init__(self, dimension: int, metric: str) -> None:
        self.dimension = dimension
        self.metric = metric
        self.data: dict[str, dict[str, tuple[list[float], dict[str, Any] | None]]] = {}

    def _check(self, values: Sequence[float]) -> list[float]:
        if len(values) != self.dimension:
            raise OracleError("invalid")
        return f32(values)

    def upsert(self, namespace: str, records: Sequence[tuple[str, Sequence[float], dict[str, Any] | None]]) -> int:
        checked = [(rid, self._check(values), _meta(md)) for rid, values, md in records]
        space = self.data.setdefault(namespace, {})
        for rid, values, md in checked:
            space[rid] = (values, md)
        return len(records)

    def update(self, namespace: str, rid: str, values: Sequence[float] | None,
               set_metadata: dict[str, Any] | None) -> None:
        new_values = None if values is None else self._check(values)
        patch = _meta(set_metadata)
        space = self.data.get(namespace, {})
        if rid not in space:
            return
        old_values, old_md = space[rid]
        md = old_md if patch is None else {**(old_md or {}), **patch}
        space[rid] = (new_values if new_values is not None else old_values, md)

    def update_by_filter(self, namespace: str, flt: dict[str, Any], set_metadata: dict[str, Any]) -> int:
        patch = _meta(set_metadata) or {}
        space = self.data.get(namespace, {})
        hits = [rid for rid, (_, md) in space.items() if matches(flt, md or {})]
        for rid in hits:
            values, md = space[rid]
            space[rid] = (values, {**(md or {}), **patch})
        return len(hits)

    def delete_ids(self, namespace: str, ids: Sequence[str]) -> None:
        for rid in ids:
            self.data.get(namespace, {}).pop(rid, None)

    def delete_filter(self, namespace: str, flt: dict[str, Any]) -> None:
        space = self.data.get(namespace, {})
        for rid in [rid for rid, (_, md) in space.items() if matches(flt, md or {})]:
            del space[rid]

    def delete_all(self, namespace: str) -> None:
        if namespace in self.data:
            self.data[namespace].clear()

    def score(self, values: Sequence[float], query: Sequence[float]) -> float:
        x, q = np.asarray(values, dtype=np.float64), np.asarray(query, dtype=np.float64)
        if self.metric == "cosine":
            return float(x @ q / (math.sqrt(x @ x) * math.sqrt(q @ q)))
        if self.metric == "euclidean":
            return float(((x - q) ** 2).sum())
        return float(x @ q)

    def query(self, namespace: str, vector: Sequence[float] | None, rid: str | None, top_k: int,
              flt: dict[str, Any] | None) -> list[tuple[str, float]]:
        space = self.data.get(namespace, {})
        if rid is not None:
            if rid not in space:
                return []
            vector = space[rid][0]
        else:
            assert vector is not None
            vector = self._check(vector)
        scored = [(r, self.score(values, vector)) for r, (values, md) in space.items()
                  if flt is None or matches(flt, md or {})]
        sign = 1.0 if self.metric == "euclidean" else -1.0
        scored.sort(key=lambda item: (sign * item[1], item[0]))
        return scored[:top_k]

    def fetch(self, namespace: str, ids: Sequence[str]) -> dict[str, tuple[list[float], dict[str, Any] | None]]:
        space = self.data.get(namespace, {})
        return {rid: space[rid] for rid in ids if rid in space}

    def ids(self, namespace: str, prefix: str = "") -> list[str]:
        return sorted((rid for rid in self.data.get(namespace, {}) if rid.startswith(prefix)), key=str.encode)

    def stats(self, flt: dict[str, Any] | None = None) -> dict[str, int]:
        counts = {}
        for ns, space in self.data.items():
            n = sum(1 for _, md in space.values() if flt is None or matches(flt, md or {}))
            if n:
                counts[ns or "__default__"] = n
        return counts

    def fetch_by_metadata(self, namespace: str, flt: dict[str, Any]) -> list[str]:
        space = self.data.get(namespace, {})
        return sorted((rid for rid, (_, md) in space.items() if matches(flt, md or {})), key=str.encode)
