"""A brute-force model of a document index, written independently of localrag.pinecone.documents_*.

Everything is recomputed from the stored documents on each call: tokens by a plain regex,
BM25 (Lucene 8+: idf * tf / (tf + k1 * (1 - b + b * len / avg))) from scratch, phrase counts
by scanning, vector scores in float64. Query-string clauses come as trees the test generated
itself (and rendered to text), so the oracle never parses Lucene syntax.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from localrag.filters import matches as metadata_matches

K1, B = 1.2, 0.75
WORD = re.compile(r"\w+")

# A query tree: ("term", field | None, (words...), boost) for a word (one) or a phrase (several),
# or ("bool", ((occur, node), ...), boost) with occur in must / should / must_not.
Node = tuple[Any, ...]


def tokens(text: str) -> list[str]:
    return WORD.findall(text.casefold())


def phrase_freq(words: list[str], phrase: tuple[str, ...]) -> int:
    n = len(phrase)
    return sum(1 for i in range(len(words) - n + 1) if tuple(words[i:i + n]) == phrase)


class OracleError(Exception):
    def __init__(self, category: str) -> None:
        super().__init__(category)
        self.category = category


class DocOracle:
    def __init__(self, text_fields: list[str], dense: Mapping[str, tuple[int, str]], sparse: list[str]) -> None:
        self.text_fields = text_fields
        self.dense = dict(dense)
        self.sparse = sparse
        self.data: dict[str, dict[str, dict[str, Any]]] = {}

    # -- writes ------------------------------------------------------------------------
    def upsert(self, ns: str, docs: list[dict[str, Any]]) -> int:
        for doc in docs:
            for name, (dim, _) in self.dense.items():
                if not isinstance(doc.get(name), list) or len(doc[name]) != dim:
                    raise OracleError("invalid")
            if any(v is None for v in doc.values()):
                raise OracleError("invalid")
            if any(name in doc and not isinstance(doc[name], str) for name in self.text_fields):
                raise OracleError("invalid")
        space = self.data.setdefault(ns, {})
        for doc in docs:
            stored = {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                      for k, v in doc.items()}
            for name in self.dense:
                stored[name] = [float(np.float32(x)) for x in doc[name]]
            for name in self.sparse:  # stored sorted by index, as the legacy store keeps sparse values
                if name in doc:
                    pairs = sorted(zip(doc[name]["indices"], doc[name]["values"], strict=True))
                    stored[name] = {"indices": [i for i, _ in pairs], "values": [float(v) for _, v in pairs]}
            space[doc["_id"]] = stored
        return len(docs)

    def delete_ids(self, ns: str, ids: list[str]) -> None:
        for i in ids:
            self.data.get(ns, {}).pop(i, None)

    def delete_filter(self, ns: str, flt: dict[str, Any]) -> int:
        hit = [i for i, d in self.data.get(ns, {}).items() if self.passes(d, flt)]
        self.delete_ids(ns, hit)
        return len(hit)

    def delete_all(self, ns: str) -> None:
        self.data.pop(ns, None)

    def update(self, ns: str, doc_id: str, fields: dict[str, Any]) -> None:
        doc = self.data.get(ns, {}).get(doc_id)
        if doc is not None:
            doc.update({k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                        for k, v in fields.items()})

    # -- filters -----------------------------------------------------------------------
    def passes(self, doc: dict[str, Any], flt: Mapping[str, Any] | None) -> bool:
        if not flt:
            return True
        for key, cond in flt.items():
            if key == "$and":
                ok = all(self.passes(doc, c) for c in cond)
            elif key == "$or":
                ok = any(self.passes(doc, c) for c in cond)
            elif key in self.text_fields:
                (op, operand), = cond.items()
                words, query = tokens(doc.get(key, "")), tokens(operand)
                if op == "$match_phrase":
                    ok = bool(query) and phrase_freq(words, tuple(query)) > 0
                elif op == "$match_all":
                    ok = bool(query) and all(q in words for q in query)
                else:
                    ok = any(q in words for q in query)
            else:
                ok = metadata_matches({key: cond}, {k: v for k, v in doc.items() if k not in self.text_fields})
            if not ok:
                return False
        return True

    # -- BM25 --------------------------------------------------------------------------
    def unit_score(self, ns: str, field: str, phrase: tuple[str, ...], doc_id: str) -> float | None:
        docs = [d for d in self.data.get(ns, {}).values() if isinstance(d.get(field), str)]
        words = tokens(self.data[ns][doc_id].get(field, "")) if isinstance(
            self.data[ns][doc_id].get(field), str) else []
        tf = phrase_freq(words, phrase)
        if tf == 0:
            return None
        n_docs = len(docs)
        avg = sum(len(tokens(d[field])) for d in docs) / n_docs
        weight = 0.0
        for term in phrase:
            with_term = sum(1 for d in docs if term in tokens(d[field]))
            weight += math.log(1 + (n_docs - with_term + 0.5) / (with_term + 0.5))
        return weight * tf / (tf + K1 * (1 - B + B * len(words) / avg))

    def _units(self, ns: str, doc_id: str, field: str, phrase: tuple[str, ...], boost: float) -> dict | None:
        s = self.unit_score(ns, field, phrase, doc_id)
        return None if s is None else {(field, phrase): boost * s}

    def eval_node(self, ns: str, doc_id: str, node: Node, boost: float = 1.0) -> dict | None:
        """The units a document matched for ``node`` (None: no match)."""
        if node[0] == "term":
            _, field, words, b = node
            fields = [field] if field is not None else self.text_fields
            phrase = len(words) > 1
            out: dict = {}
            for f in fields:
                for unit in ([tuple(words)] if phrase else [(w,) for w in dict.fromkeys(words)]):
                    got = self._units(ns, doc_id, f, unit, boost * b)
                    if got:
                        _merge(out, got)
            return out or None
        _, clauses, b = node
        required = [c for o, c in clauses if o == "must"]
        optional = [c for o, c in clauses if o == "should"]
        excluded = [c for o, c in clauses if o == "must_not"]
        if any(self.eval_node(ns, doc_id, c) is not None for c in excluded):
            return None
        req = [self.eval_node(ns, doc_id, c, boost * b) for c in required]
        opt = [self.eval_node(ns, doc_id, c, boost * b) for c in optional]
        if required and any(r is None for r in req):
            return None
        if not required and all(o is None for o in opt):
            return None
        out = {}
        for units in req + opt:
            if units:
                _merge(out, units)
        return out

    def search_text(self, ns: str, clauses: list[tuple[str, Any]], top_k: int,
                    flt: Mapping[str, Any] | None) -> list[tuple[str, float]]:
        """clauses: ("text", (query, fields)) or ("query_string", tree)."""
        ranked = []
        for doc_id, doc in self.data.get(ns, {}).items():
            if not self.passes(doc, flt):
                continue
            units: dict = {}
            for kind, arg in clauses:
                if kind == "text":
                    query, fields = arg
                    node: Node = ("bool", tuple(("should", ("term", f, (w,), 1.0))
                                                for f in dict.fromkeys(fields) for w in tokens(query)), 1.0)
                else:
                    node = arg
                got = self.eval_node(ns, doc_id, node)
                if got:
                    _merge(units, got)
            if units:
                ranked.append((doc_id, sum(units.values())))
        ranked.sort(key=lambda item: (-item[1], item[0]))
        return ranked[:top_k]

    # -- vectors -----------------------------------------------------------------------
    def dense_score(self, field: str, values: list[float], query: list[float]) -> float:
        metric = self.dense[field][1]
        v, q = np.asarray(values, dtype=np.float64), np.asarray(np.float32(query), dtype=np.float64)
        if metric == "cosine":
            norms = np.linalg.norm(v) * np.linalg.norm(q)
            return float(v @ q / norms) if norms > 0 else 0.0
        if metric == "euclidean":
            return float(((v - q) ** 2).sum())
        return float(v @ q)

    def search_dense(self, ns: str, field: str, query: list[float], top_k: int,
                     flt: Mapping[str, Any] | None) -> list[tuple[str, float]]:
        ranked = [(i, self.dense_score(field, d[field], query)) for i, d in self.data.get(ns, {}).items()
                  if field in d and self.passes(d, flt)]
        sign = 1.0 if self.dense[field][1] == "euclidean" else -1.0
        ranked.sort(key=lambda item: (sign * item[1], item[0]))
        return ranked[:top_k]

    def search_sparse(self, ns: str, field: str, query: dict[int, float], top_k: int,
                      flt: Mapping[str, Any] | None) -> list[tuple[str, float]]:
        ranked = []
        for i, d in self.data.get(ns, {}).items():
            sv = d.get(field)
            if sv is None or not self.passes(d, flt):
                continue
            shared = [(j, float(np.float32(v))) for j, v in zip(sv["indices"], sv["values"], strict=True) if j in query]
            if shared:
                ranked.append((i, sum(v * float(np.float32(query[j])) for j, v in shared)))
        ranked.sort(key=lambda item: (-item[1], item[0]))
        return ranked[:top_k]

    # -- reads -------------------------------------------------------------------------
    def fetch(self, ns: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        return {i: self.data[ns][i] for i in ids if i in self.data.get(ns, {})}

    def ids(self, ns: str, prefix: str = "") -> list[str]:
        return sorted((i for i in self.data.get(ns, {}) if i.startswith(prefix)), key=str.encode)

    def filtered_ids(self, ns: str, flt: Mapping[str, Any]) -> list[str]:
        return sorted((i for i, d in self.data.get(ns, {}).items() if self.passes(d, flt)), key=str.encode)


def _merge(into: dict, units: dict) -> None:
    for unit, score in units.items():
        into[unit] = max(into.get(unit, float("-inf")), score)
