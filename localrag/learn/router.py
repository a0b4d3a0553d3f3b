"""A learned search router: per query, a search configuration chosen from cheap query features.

Features (``query_features``): content-word count, the share of rare terms (document frequency
in the namespace's BM25 index under 1% of its documents), quotes, identifiers (digits, camelCase,
snake_case, dotted or hyphenated codes) and the question type (yes/no: opens with an auxiliary verb;
wh-: a wh-word anywhere, as in "In what year ..."; else a statement). They map
to a hierarchy of bucket keys, most specific first (``bucket_keys``):
``qtype|length|rarity|marks`` -> ``qtype|length`` -> ``qtype`` -> ``*``.

A route is a named search configuration (``ROUTES``: mode, alpha, candidates, rerank). ``fit``
learns a ``RouteTable`` from per-query nDCG@10 of every route on a training split: a key gets
the route with the best mean over its queries when it has at least ``min_queries`` and beats what
its parent key would choose by ``min_gain``; lookup takes the most specific key with an entry,
else the fixed default. So a bucket only leaves the default on evidence, and small buckets back off.

Feedback (``RouteTable.vote``): a thumbs-up/down on a hit of a routed search adds +1/-1 to the
(key, route) that ran. A learned entry whose net votes fall to ``-demote_votes`` is set aside and the
key backs off to its parent's choice (ultimately the fixed default); net up-votes only confirm it.
Votes never promote an untried route: choosing among routes needs judged data, one route's votes
say nothing about another's. The table is a small JSON file (``<data>/router.json``).

This module never imports the engine: training (which searches) lives in benchmarks/bench_router.py.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from localrag.errors import ConfigError
from localrag.index.tokenize import TextTokenizer
from localrag.types import SearchMode, SearchRequest

log = logging.getLogger(__name__)

TABLE_FILE = "router.json"
DEFAULT_ROUTE = "hybrid"
RARE_DF = 0.01  # a term in under 1% of the documents counts as rare
_TOKENIZER = TextTokenizer()
_WH = re.compile(r"\b(what|which|who|whom|whose|when|where|why|how)\b", re.IGNORECASE)  # "In what year ..."
_YESNO = re.compile(r"^\s*(is|are|was|were|do|does|did|can|could|should|will|would|has|have|had)\b", re.IGNORECASE)
_IDENT = re.compile(r"\d|[a-z][A-Z]|\w_\w|\b[A-Za-z]+[-.][A-Za-z0-9]*\d")
_QUOTE = re.compile(r"\"[^\"]+\"|“[^”]+”")


@dataclass(frozen=True, slots=True)
class Route:
    """A search configuration; None keeps the configured default (search.* / rerank.*)."""

    mode: SearchMode = "hybrid"
    alpha: float | None = None
    candidates: int | None = None
    rerank: bool | None = None


ROUTES: dict[str, Route] = {
    "hybrid": Route(),
    "hybrid-a0.3": Route(alpha=0.3),
    "hybrid-a0.7": Route(alpha=0.7),
    "hybrid-c200": Route(candidates=200),
    "dense": Route("dense"),
    "keyword": Route("keyword"),
    "hybrid+rerank": Route(candidates=20, rerank=True),
}


@dataclass(frozen=True, slots=True)
class QueryFeatures:
    words: int  # content words (the BM25 tokenizer's tokens)
    rare_share: float  # share of those words in under RARE_DF of the documents (unseen words count as rare)
    quoted: bool
    identifier: bool
    qtype: str  # wh | yesno | statement


DocFreq = Callable[[str], tuple[int, list[int]]]


def query_features(query: str, doc_freq: DocFreq | None = None) -> QueryFeatures:
    """``doc_freq(text) -> (documents, frequency of each token)``, e.g. ``BM25Index.doc_freqs``; None: rarity 0."""
    tokens = _TOKENIZER(query)
    rare = 0.0
    if tokens and doc_freq is not None:
        n_docs, freqs = doc_freq(query)
        if n_docs > 0 and freqs:
            rare = sum(1 for f in freqs if f < RARE_DF * n_docs) / len(freqs)
    qtype = "yesno" if _YESNO.search(query) else "wh" if _WH.search(query) else "statement"
    return QueryFeatures(len(tokens), round(rare, 4), bool(_QUOTE.search(query)), bool(_IDENT.search(query)), qtype)


def bucket_keys(f: QueryFeatures) -> tuple[str, ...]:
    """Bucket keys of a query, most specific first, ending with ``*`` (every query)."""
    length = "short" if f.words <= 5 else "medium" if f.words <= 12 else "long"
    rarity = "rare" if f.rare_share >= 0.5 else "common"
    marks = "quoted" if f.quoted else "ident" if f.identifier else "plain"
    return (f"{f.qtype}|{length}|{rarity}|{marks}", f"{f.qtype}|{length}", f.qtype, "*")


@dataclass(frozen=True, slots=True)
class Choice:
    key: str  # the bucket key whose entry decided ("" for the default)
    route: str

    @property
    def label(self) -> str:
        """What the response reports: ``auto:<route>@<key>``, or ``auto:default`` (the request ran as given)."""
        return f"auto:{self.route}@{self.key}" if self.key else "auto:default"


@dataclass
class RouteTable:
    """Learned entries (bucket key -> route name) plus feedback votes per (key, route)."""

    entries: dict[str, str] = field(default_factory=dict)
    default: str = DEFAULT_ROUTE
    votes: dict[str, float] = field(default_factory=dict)  # "key\troute" -> net votes
    demote_votes: float = 5.0
    meta: dict[str, Any] = field(default_factory=dict)  # what it was trained on, figures

    def active(self, key: str) -> str | None:
        route = self.entries.get(key)
        if route is None or self.votes.get(f"{key}\t{route}", 0.0) <= -self.demote_votes:
            return None
        return route

    def choose(self, features: QueryFeatures) -> Choice:
        for key in bucket_keys(features):
            route = self.active(key)
            if route is not None:
                return Choice(key, route)
        return Choice("", self.default)

    def vote(self, choice: Choice, up: bool) -> None:
        """A thumbs-up/down on a hit the ``choice`` produced (see the module docstring)."""
        if choice.key:
            name = f"{choice.key}\t{choice.route}"
            self.votes[name] = self.votes.get(name, 0.0) + (1.0 if up else -1.0)

    def to_json(self) -> dict[str, Any]:
        return {"entries": dict(sorted(self.entries.items())), "default": self.default,
                "votes": dict(sorted(self.votes.items())), "demote_votes": self.demote_votes, "meta": self.meta}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RouteTable:
        table = cls(dict(data.get("entries", {})), str(data.get("default", DEFAULT_ROUTE)),
                    {str(k): float(v) for k, v in dict(data.get("votes", {})).items()},
                    float(data.get("demote_votes", 5.0)), dict(data.get("meta", {})))
        unknown = {r for r in [table.default, *table.entries.values()] if r not in ROUTES}
        if unknown:
            raise ConfigError(f"router table names unknown routes: {', '.join(sorted(unknown))}")
        return table

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".router-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self.to_json(), out, indent=2)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> RouteTable:
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read router table {path}: {exc}") from exc


def fit(
    features: Mapping[str, QueryFeatures],
    scores: Mapping[str, Mapping[str, float]],
    *,
    default: str = DEFAULT_ROUTE,
    min_queries: int = 20,
    min_gain: float = 0.01,
) -> RouteTable:
    """``scores[route][query_id]`` (nDCG@10 on a training split) -> a table (see the module docstring).

    Keys are fitted coarse to fine, so a specific key must beat what its parent chose, not just the default."""
    ids = [q for q in features if all(q in per_query for per_query in scores.values())]
    members: dict[str, list[str]] = {}
    parent: dict[str, str | None] = {}
    for q in ids:
        keys = bucket_keys(features[q])
        for i, key in enumerate(keys):
            members.setdefault(key, []).append(q)
            parent[key] = keys[i + 1] if i + 1 < len(keys) else None
    table = RouteTable(default=default)
    for key in sorted(members, key=lambda k: (k.count("|") + (k != "*"), k)):
        group = members[key]
        if len(group) < min_queries:
            continue
        up = parent[key]
        while up is not None and up not in table.entries:
            up = parent.get(up)
        inherited = table.entries.get(up, default) if up is not None else default
        means = {name: sum(per_query[q] for q in group) / len(group) for name, per_query in scores.items()}
        best = max(sorted(means), key=lambda name: means[name])
        if best != inherited and means[best] >= means.get(inherited, 0.0) + min_gain:
            table.entries[key] = best
    return table


def apply_route(request: SearchRequest, route: Route) -> SearchRequest:
    """The request with the route's settings; settings the request names itself are kept."""
    return replace(
        request, mode=route.mode,
        alpha=request.alpha if request.alpha is not None else route.alpha,
        candidates=request.candidates if request.candidates is not None else route.candidates,
        rerank=request.rerank if request.rerank is not None else route.rerank,
    )


class Router:
    """The runtime router of one data directory: its table (``<data>/router.json``), loaded once.

    Without a table every query keeps the configured search (``auto:default``)."""

    def __init__(self, path: Path, doc_freq: Callable[[str], DocFreq | None]) -> None:
        self.path = path
        self.table = RouteTable.load(path) if path.is_file() else RouteTable()
        self._doc_freq = doc_freq  # namespace -> its BM25 document frequencies

    def choose(self, request: SearchRequest) -> Choice:
        return self.table.choose(query_features(request.query, self._doc_freq(request.namespace)))

    def route(self, request: SearchRequest) -> tuple[SearchRequest, Choice]:
        choice = self.choose(request)
        return (apply_route(request, ROUTES[choice.route]) if choice.key else request), choice

    def vote(self, request: SearchRequest, up: bool, save: bool = True) -> Choice:
        """Feedback on a hit of ``request``'s routed search; saved to the table file when it has entries."""
        choice = self.choose(request)
        if choice.key:
            self.table.vote(choice, up)
            if save:
                self.table.save(self.path)
        return choice
