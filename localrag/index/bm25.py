"""Incremental BM25 keyword index with the scores of ``rank_bm25.BM25Okapi``.

Layout: documents live in dense *slots* (key, length, alive flag) and a forward store (the
(term id, tf) pairs of each slot, appended in slot order). Search reads an inverted view made of
*runs*: postings of a contiguous slot range grouped by term id (``starts[t]:starts[t + 1]``). New
slots become a new small run at the next search; runs merge like a binary counter (an LSM tree), so
each posting is re-sorted O(log n) times in all, and a query looks up only a few runs. Removal marks
slots dead and fixes the document frequencies at once; dead postings are dropped when runs merge or the index compacts.

Scoring follows BM25Okapi step for step (same formula, same order of floating-point operations,
per-query-token summation) so scores agree to the last bit or nearly.

At scale (a million chunks: ~10^8 postings) a saved index opens by memory-mapping its posting and
forward arrays (fileio.load_arrays): nothing is rebuilt on open, and only the postings a query
reads are paged in. The forward store is copied into memory only when the index next changes;
the key -> slot map is built on the first change, too. Term frequencies are saved as uint16
when they fit.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from localrag.errors import ConfigError, CorruptIndexError, InvalidInputError, LocalRagError
from localrag.fileio import load_arrays, save_arrays
from localrag.index.postings import (
    Buf,
    Run,
    as_keys,
    concat_ranges,
    int_array,
    narrow_tf,
    require,
    term_starts,
    top_k,
    utf8_bytes,
    within,
)
from localrag.index.tokenize import TextTokenizer

log = logging.getLogger(__name__)

_FORMAT = 1
_MIN_DEAD = 1024  # compact only when this many slots (or terms) are dead ...
_DEAD_FRACTION = 0.25  # ... and they are at least this share of all
_MMAP_FROM = 1 << 22  # saved arrays of 4 MiB and more are memory-mapped on load


class BM25Index:
    """BM25 (Okapi, rank_bm25 flavour) over int64 keys; implements ``KeywordIndex``."""

    def __init__(
        self, tokenizer: TextTokenizer | None = None, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25
    ) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ConfigError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.tokenizer = tokenizer if tokenizer is not None else TextTokenizer()
        self.k1, self.b, self.epsilon = float(k1), float(b), float(epsilon)
        self._lock = threading.RLock()
        self._vocab: dict[str, int] = {}
        self._terms: list[str] = []
        self._df = Buf(np.int64)  # live documents containing each term
        self._key, self._dlen = Buf(np.int64), Buf(np.int64)  # per slot
        self._fstart, self._flen, self._alive = Buf(np.int64), Buf(np.int64), Buf(np.bool_)
        self._fterm, self._ftf = Buf(np.int32), Buf(np.int32)  # forward store, slot order
        self._slot_of: dict[int, int] | None = {}  # None: build from the slots when next needed
        self._n_alive = 0
        self._total_len = 0
        self._runs: list[Run] = []
        self._gen = 0  # bumped on every change; the caches below remember the one they saw
        self._stats_gen = self._sorted_gen = -1
        self._avg_idf = 0.0
        self._norm: NDArray[np.float64] = np.zeros(0)
        self._sorted_keys: NDArray[np.int64] = np.zeros(0, np.int64)
        self._sorted_slots: NDArray[np.int64] = np.zeros(0, np.int64)
        self._table: NDArray[np.int64] | None = None  # key - min key -> slot (or -1), when keys are dense

    def __len__(self) -> int:
        return self._n_alive

    def doc_freqs(self, text: str) -> tuple[int, list[int]]:
        """(live documents, document frequency of each of ``text``'s tokens); for the query router
        (learn/router.py), which judges rarity with the index's own tokenizer."""
        tokens = self.tokenizer(text)
        with self._lock:
            vocab, df = self._vocab, self._df.data
            return self._n_alive, [int(df[i]) if (i := vocab.get(t)) is not None else 0 for t in tokens]

    def __repr__(self) -> str:
        return f"BM25Index({self._n_alive} docs, {len(self._terms)} terms, {self.tokenizer!r})"

    # ---------------------------------------------------------------- changes

    def add(self, keys: NDArray[np.int64], texts: Sequence[str]) -> None:
        """Index ``texts`` under ``keys``; a key already present is replaced (upsert)."""
        keys = as_keys(keys)
        texts = list(texts)
        if len(keys) != len(texts):
            raise InvalidInputError(f"{len(keys)} keys but {len(texts)} texts")
        if not all(isinstance(t, str) for t in texts):
            raise InvalidInputError("every text must be a str")
        if len(np.unique(keys)) < len(keys):  # the last text given for a key wins
            _, last = np.unique(keys[::-1], return_index=True)
            keep = np.sort(len(keys) - 1 - last)
            keys, texts = keys[keep], [texts[i] for i in keep]
        docs = [self.tokenizer(t) for t in texts]  # outside the lock: the slow part
        with self._lock:
            slot_of = self._slot_map()
            self._kill([slot_of[k] for k in keys.tolist() if k in slot_of])
            self._append(keys, docs)

    def remove(self, keys: NDArray[np.int64]) -> None:
        """Drop ``keys``; keys not in the index are ignored."""
        with self._lock:
            pop = self._slot_map().pop
            self._kill([s for s in (pop(k, None) for k in as_keys(keys).tolist()) if s is not None])

    def _append(self, keys: NDArray[np.int64], docs: list[list[str]]) -> None:
        m, vocab, first = len(docs), self._vocab, self._key.size
        flat = list(itertools.chain.from_iterable(docs))
        new = [t for t in dict.fromkeys(flat) if t not in vocab]
        vocab.update(zip(new, range(len(vocab), len(vocab) + len(new)), strict=True))
        self._terms.extend(new)
        self._df.extend(np.zeros(len(new), np.int64))
        lens = np.fromiter(map(len, docs), np.int64, m)
        n_terms = max(len(vocab), 1)
        ids = np.fromiter(map(vocab.__getitem__, flat), np.int64, len(flat))
        # One sort finds every (document, term) pair of the batch and its frequency.
        pairs, tf = np.unique(np.repeat(np.arange(m), lens) * n_terms + ids, return_counts=True)
        doc, term = np.divmod(pairs, n_terms)
        flen = np.bincount(doc, minlength=m)
        self._fstart.extend(self._fterm.size + np.cumsum(flen) - flen)
        self._flen.extend(flen)
        self._fterm.extend(term)
        self._ftf.extend(tf)
        self._key.extend(keys)
        self._dlen.extend(lens)
        self._alive.extend(np.ones(m, np.bool_))
        uterm, count = np.unique(term, return_counts=True)
        self._df.data[uterm] += count
        self._slot_map().update(zip(keys.tolist(), range(first, first + m), strict=True))
        self._n_alive += m
        self._total_len += int(lens.sum())
        self._gen += 1

    def _slot_map(self) -> dict[int, int]:
        if self._slot_of is None:
            live = np.flatnonzero(self._alive.view)
            self._slot_of = dict(zip(self._key.data[live].tolist(), live.tolist(), strict=True))
        return self._slot_of

    def _kill(self, slots: list[int]) -> None:
        if not slots:
            return
        s = np.asarray(slots, np.int64)
        self._alive.data[s] = False
        uterm, count = np.unique(self._fterm.data[concat_ranges(self._fstart.data[s], self._flen.data[s])],
                                 return_counts=True)
        self._df.data[uterm] -= count
        self._n_alive -= len(s)
        self._total_len -= int(self._dlen.data[s].sum())
        self._gen += 1

    # ---------------------------------------------------------------- search

    def search(self, query: str, k: int, allow: NDArray[np.int64] | None = None) -> list[tuple[int, float]]:
        """Up to ``k`` (key, score) of documents holding a query term, best first, ties by key.

        With ``allow`` only those keys can come back, and filtering happens before the top-k.
        """
        if k <= 0:
            return []
        tokens = self.tokenizer(query)
        with self._lock:
            ids = [i for i in map(self._vocab.get, tokens) if i is not None and self._df.data[i] > 0]
            if not ids:
                return []
            self._refresh()
            slots, weights = self._postings_scores(ids)
            n = self._key.size
            # bincount adds each slot's contributions in query-token order, as BM25Okapi does.
            all_scores = np.bincount(slots, weights=weights, minlength=n)
            if allow is None and len(weights) and float(weights.min()) > 0:
                # Every posting adds a positive score, so the documents hit are the nonzero scores:
                # one pass over the slots fewer (at a million chunks the passes are the cost).
                cand = np.flatnonzero(all_scores)
                if self._n_alive < n:
                    cand = cand[self._alive.data[cand]]
            else:
                hit = np.zeros(n, np.bool_)
                hit[slots] = True
                if allow is None:
                    cand = np.flatnonzero(hit & self._alive.view)
                else:
                    cand = self._allowed_slots(allow)
                    cand = cand[hit[cand]]
            if not len(cand):
                return []
            scores = all_scores[cand]
            keys = self._key.data[cand]
        scores, keys = top_k(scores, keys, k)
        return list(zip(keys.tolist(), scores.tolist(), strict=True))

    def _postings_scores(self, ids: list[int]) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Slots and BM25 contributions of every posting of every query token (repeats included)."""
        n_docs, avg_eps = self._n_alive, self.epsilon * self._avg_idf
        idf: dict[int, float] = {}
        for i in ids:
            if i not in idf:
                d = int(self._df.data[i])
                value = math.log(n_docs - d + 0.5) - math.log(d + 0.5)
                idf[i] = avg_eps if value < 0 else value
        slot_parts, tf_parts, lengths, idfs = [], [], [], []
        for i in ids:
            for run in self._runs:
                if i + 1 >= len(run.starts):
                    continue
                a, z = int(run.starts[i]), int(run.starts[i + 1])
                if z > a:
                    slot_parts.append(run.slots[a:z])
                    tf_parts.append(run.tf[a:z])
                    lengths.append(z - a)
                    idfs.append(idf[i])
        if not slot_parts:
            return np.zeros(0, np.intp), np.zeros(0)
        slots = np.concatenate(slot_parts).astype(np.intp)
        tf = np.concatenate(tf_parts).astype(np.float64)
        weight = np.repeat(np.asarray(idfs), lengths)
        return slots, weight * (tf * (self.k1 + 1) / (tf + self._norm[slots]))

    def _allowed_slots(self, allow: NDArray[np.int64]) -> NDArray[np.int64]:
        allow = as_keys(allow)
        if len(allow) > 1 and not bool(np.all(allow[1:] > allow[:-1])):
            allow = np.unique(allow)  # the protocol promises sorted and unique; be lenient
        sorted_keys, sorted_slots = self._sorted()
        if not len(sorted_keys):
            return np.zeros(0, np.int64)
        if self._table is not None:  # dense keys (rowids): a gather instead of a binary search
            off = allow - sorted_keys[0]
            slots = self._table[off[(off >= 0) & (off < len(self._table))]]
            return slots[slots >= 0]
        pos = np.minimum(np.searchsorted(sorted_keys, allow), len(sorted_keys) - 1)
        return sorted_slots[pos[sorted_keys[pos] == allow]]

    def keys(self) -> NDArray[np.int64]:
        """Every key in the index, sorted."""
        with self._lock:
            return self._sorted()[0].copy()

    def _sorted(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        if self._sorted_gen != self._gen:
            live = np.flatnonzero(self._alive.view)
            order = np.argsort(self._key.data[live], kind="stable")
            self._sorted_slots = live[order]
            self._sorted_keys = self._key.data[self._sorted_slots]
            self._table = None
            if len(live) and int(self._sorted_keys[-1]) - int(self._sorted_keys[0]) < 4 * len(live) + 1024:
                self._table = np.full(int(self._sorted_keys[-1] - self._sorted_keys[0]) + 1, -1, np.int64)
                self._table[self._sorted_keys - self._sorted_keys[0]] = self._sorted_slots
            self._sorted_gen = self._gen
        return self._sorted_keys, self._sorted_slots

    # ---------------------------------------------------------------- upkeep

    def _refresh(self) -> None:
        """Bring runs and statistics up to date with the slots (lazily, at search time)."""
        n = self._key.size
        if n - self._n_alive > max(_MIN_DEAD, _DEAD_FRACTION * n):
            self._compact()
            n = self._key.size
        covered = self._runs[-1].hi if self._runs else 0
        if covered < n:
            self._runs.append(self._build_run(covered, n))
            runs = self._runs
            while len(runs) > 1 and len(runs[-2].slots) <= 2 * len(runs[-1].slots):
                runs[-2:] = [self._build_run(runs[-2].lo, runs[-1].hi)]
        if self._stats_gen != self._gen:
            df = self._df.view
            live = df[df > 0].astype(np.float64)
            raw = np.log(self._n_alive - live + 0.5) - np.log(live + 0.5)
            self._avg_idf = float(raw.mean()) if len(raw) else 0.0
            avgdl = self._total_len / self._n_alive if self._n_alive else 0.0
            # The same operations in the same order as BM25Okapi.get_scores.
            dlen = self._dlen.view
            self._norm = self.k1 * (1 - self.b + self.b * dlen / avgdl) if avgdl else np.ones(len(dlen))
            self._stats_gen = self._gen

    def _build_run(self, lo: int, hi: int) -> Run:
        start = int(self._fstart.data[lo]) if lo < self._key.size else self._fterm.size
        end = int(self._fstart.data[hi]) if hi < self._key.size else self._fterm.size
        terms, tf = self._fterm.data[start:end], self._ftf.data[start:end]
        slots = np.repeat(np.arange(lo, hi, dtype=np.int32), self._flen.data[lo:hi])
        live = self._alive.data[slots]
        if not live.all():
            terms, tf, slots = terms[live], tf[live], slots[live]
        order = np.argsort(terms, kind="stable")
        return Run(lo, hi, term_starts(terms, len(self._terms)), slots[order], tf[order])

    def _compact(self) -> None:
        """Renumber live slots densely, drop dead terms if many, rebuild one run."""
        if self._n_alive == self._key.size and not self._df.size - np.count_nonzero(self._df.view):
            self._runs = [self._build_run(0, self._key.size)]  # nothing dead: no copies, one run
            self._gen += 1
            return
        alive, flen = self._alive.view, self._flen.view
        keep_post = np.repeat(alive, flen)
        self._fterm = Buf(np.int32, self._fterm.view[keep_post])
        self._ftf = Buf(np.int32, self._ftf.view[keep_post])
        flen = flen[alive]
        self._key, self._dlen = Buf(np.int64, self._key.view[alive]), Buf(np.int64, self._dlen.view[alive])
        self._flen, self._fstart = Buf(np.int64, flen), Buf(np.int64, np.cumsum(flen) - flen)
        self._alive = Buf(np.bool_, np.ones(len(flen), np.bool_))
        self._slot_of = None
        df = self._df.view
        if (len(df) - np.count_nonzero(df)) > max(_MIN_DEAD, _DEAD_FRACTION * len(df)):
            live_terms = np.flatnonzero(df)
            remap = np.full(len(df), -1, np.int32)
            remap[live_terms] = np.arange(len(live_terms), dtype=np.int32)
            self._fterm = Buf(np.int32, remap[self._fterm.view])
            self._terms = [self._terms[i] for i in live_terms.tolist()]
            self._vocab = {t: i for i, t in enumerate(self._terms)}
            self._df = Buf(np.int64, df[live_terms])
        self._runs = [self._build_run(0, len(flen))]
        self._gen += 1  # slot numbers changed: per-slot caches are stale

    # ---------------------------------------------------------------- persistence

    def save(self, path: Path, stamp: int) -> None:
        """Write the index atomically to one .npz, recording the store generation ``stamp``."""
        with self._lock:
            if self._n_alive < self._key.size or len(self._runs) != 1 or self._runs[0].hi != self._key.size:
                self._compact()
            run = self._runs[0]
            vocab = "\n".join(self._terms)
            if vocab.count("\n") != max(len(self._terms) - 1, 0):
                raise LocalRagError("a vocabulary term contains a newline")  # the tokenizer never makes one
            meta = {"format": _FORMAT, "k1": self.k1, "b": self.b, "epsilon": self.epsilon,
                    "n_terms": len(self._terms), "tokenizer": self.tokenizer.config()}
            counts = np.diff(run.starts)
            counts = np.concatenate([counts, np.zeros(len(self._terms) - len(counts), counts.dtype)])
            save_arrays(
                Path(path),
                meta=utf8_bytes(json.dumps(meta)), stamp=np.int64(stamp), vocab=utf8_bytes(vocab),
                keys=self._key.view, doc_len=self._dlen.view, fwd_len=self._flen.view,
                fwd_terms=self._fterm.view, fwd_tf=narrow_tf(self._ftf.view),
                inv_counts=counts, inv_slots=run.slots, inv_tf=narrow_tf(run.tf),
            )

    @classmethod
    def load(cls, path: Path) -> tuple[BM25Index, int]:
        """Read a file written by ``save``: (index, stamp). Damage raises CorruptIndexError."""
        arrays = load_arrays(Path(path), mmap_from=_MMAP_FROM)
        try:
            meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
            require(meta.get("format") == _FORMAT, f"unknown format {meta.get('format')!r}")
            index = cls(TextTokenizer.from_config(meta["tokenizer"]), meta["k1"], meta["b"], meta["epsilon"])
            n_terms = int(meta["n_terms"])
            terms = arrays["vocab"].tobytes().decode("utf-8").split("\n") if n_terms else []
            require(len(terms) == n_terms == len(set(terms)), "vocabulary does not match its count")
            index._restore(terms, arrays)
            return index, int(arrays["stamp"])
        except CorruptIndexError:
            raise
        except (KeyError, ValueError, TypeError, AttributeError, UnicodeDecodeError, ConfigError) as e:
            raise CorruptIndexError(f"cannot read BM25 index {path}: {e}") from e

    def _restore(self, terms: list[str], a: dict[str, np.ndarray]) -> None:
        keys, dlen, flen = int_array(a["keys"]).astype(np.int64), int_array(a["doc_len"]), int_array(a["fwd_len"])
        fterm, ftf, counts = int_array(a["fwd_terms"]), int_array(a["fwd_tf"]), int_array(a["inv_counts"])
        islots, itf = int_array(a["inv_slots"]), int_array(a["inv_tf"])
        n, v, p = len(keys), len(terms), len(fterm)
        # Cheap checks (the zip CRC already catches flipped bytes in arrays read, not mapped): sizes,
        # ranges, sums. Mapped posting arrays (10^8 entries at a million chunks) skip the full scans.
        require(len(dlen) == len(flen) == n and len(np.unique(keys)) == n, "per-document arrays disagree")
        require(len(ftf) == p == len(islots) == len(itf) == flen.sum() == counts.sum(), "bad sizes")
        require(len(counts) == v and within(flen, 0, p) and within(counts, 0, p), "bad counts")
        if not any(isinstance(x, np.memmap) for x in (fterm, ftf, islots, itf)):
            require(within(fterm, 0, v - 1) and within(islots, 0, n - 1), "bad ids")
            require(within(ftf, 1, None) and within(itf, 1, None) and ftf.sum() == itf.sum(), "bad tf")
            fslots = np.repeat(np.arange(n), flen)
            require(np.array_equal(np.bincount(fslots, weights=ftf, minlength=n), dlen), "doc lengths disagree")
            require(np.array_equal(np.bincount(fterm, minlength=v), counts), "document frequencies disagree")
        self._terms, self._vocab = terms, {t: i for i, t in enumerate(terms)}
        self._df = Buf(np.int64, counts)  # a saved index is compact: postings per term = live documents
        self._key, self._dlen, self._flen = Buf(np.int64, keys), Buf(np.int64, dlen), Buf(np.int64, flen)
        self._fstart = Buf(np.int64, np.cumsum(flen) - flen)
        self._alive = Buf(np.bool_, np.ones(n, np.bool_))
        self._fterm, self._ftf = Buf.wrap(np.int32, fterm), Buf.wrap(np.int32, ftf)
        self._slot_of = None
        self._n_alive, self._total_len = n, int(dlen.sum())
        starts = np.zeros(v + 1, np.int64)
        np.cumsum(counts, out=starts[1:])
        self._runs = [Run(0, n, starts, islots, itf)]
        self._gen += 1
