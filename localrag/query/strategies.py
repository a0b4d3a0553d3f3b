"""Query strategies: plain, multi-query expansion (LLM variants, fused), HyDE, and a per-query router.

A strategy turns one query into the texts to search; ``search_with`` runs them through the
engine (``LocalRAG.retrieve``, so every search setting and reranking still applies) and fuses
the result lists with reciprocal rank fusion. LLM text comes through a ``Completer`` (cached
on disk), and a provider without a language model yields no expansion, so every strategy
degrades to the plain query rather than failing.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from localrag.errors import InvalidInputError
from localrag.index import fusion
from localrag.index.tokenize import TextTokenizer
from localrag.query.cache import Completer
from localrag.types import ChatMessage, Hit, Prompt, SearchRequest, SearchResult

if TYPE_CHECKING:
    from localrag.engine import LocalRAG

log = logging.getLogger(__name__)

STRATEGIES = ("plain", "multi-query", "hyde", "router")
FUSE_K = 60  # RRF constant for fusing the lists of one strategy's searches

MULTI_SYSTEM = "You rewrite search queries. Reply with the queries only, one per line, nothing else."
MULTI_USER = (
    "Write {n} different search queries that would find documents about the following query. "
    "Use other words and synonyms. One query per line, no numbering.\n\nQuery: {query}"
)
HYDE_SYSTEM = "You write short factual passages, as found in encyclopedias and scientific abstracts."
HYDE_USER = (
    "Write a short passage (two or three sentences) that answers or discusses the following query, "
    "as a relevant document would.\n\nQuery: {query}\n\nPassage:"
)
DECOMPOSE_SYSTEM = "You split questions into simpler questions. Reply with the questions only, one per line."
DECOMPOSE_USER = (
    "Split the following question into at most {n} simpler questions that together answer it. "
    "One question per line, no numbering.\n\nQuestion: {query}"
)
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)]|query\s*\d*:)\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Expansion:
    """The texts to search for one query (the original first) and what producing them cost."""

    queries: tuple[str, ...]
    ms: float = 0.0
    strategy: str = "plain"


class QueryStrategy(Protocol):
    name: str

    def expand(self, query: str) -> Expansion: ...


class Plain:
    name = "plain"

    def expand(self, query: str) -> Expansion:
        return Expansion((query,), 0.0, self.name)


class MultiQuery:
    """The query plus ``n`` LLM-written variants; each is searched and the lists are fused."""

    name = "multi-query"

    def __init__(self, completer: Completer, n: int = 3) -> None:
        self.completer = completer
        self.n = n

    def prompt(self, query: str) -> Prompt:
        user = MULTI_USER.format(n=self.n, query=" ".join(query.split()))
        return Prompt((ChatMessage("system", MULTI_SYSTEM), ChatMessage("user", user)), question=query,
                      task="rewrite")

    def expand(self, query: str) -> Expansion:
        out = self.completer.complete(self.prompt(query))
        variants = parse_variants(out.text, query, self.n)
        return Expansion((query, *variants), out.ms, self.name)


class Decompose(MultiQuery):
    """The question plus up to ``n`` LLM-written sub-questions (multi-hop and compound questions)."""

    name = "decompose"

    def prompt(self, query: str) -> Prompt:
        user = DECOMPOSE_USER.format(n=self.n, query=" ".join(query.split()))
        return Prompt((ChatMessage("system", DECOMPOSE_SYSTEM), ChatMessage("user", user)), question=query,
                      task="rewrite")


class HyDE:
    """Hypothetical document embeddings: search for the query joined with an LLM-written passage."""

    name = "hyde"

    def __init__(self, completer: Completer) -> None:
        self.completer = completer

    def prompt(self, query: str) -> Prompt:
        user = HYDE_USER.format(query=" ".join(query.split()))
        return Prompt((ChatMessage("system", HYDE_SYSTEM), ChatMessage("user", user)), question=query,
                      task="rewrite")

    def expand(self, query: str) -> Expansion:
        out = self.completer.complete(self.prompt(query))
        passage = " ".join(out.text.split())
        if not passage:
            return Expansion((query,), out.ms, self.name)
        # The original query is kept as its own list so a poor passage cannot bury its exact matches.
        return Expansion((query, f"{query} {passage}"), out.ms, self.name)


def parse_variants(text: str, query: str, n: int) -> tuple[str, ...]:
    """Up to ``n`` distinct non-empty lines of an LLM reply, list markers removed, the query itself dropped."""
    seen = {query.strip().lower()}
    variants: list[str] = []
    for line in text.splitlines():
        line = _LIST_MARKER.sub("", line).strip().strip('"').strip()
        if len(line) < 3 or line.lower() in seen:
            continue
        seen.add(line.lower())
        variants.append(line)
        if len(variants) == n:
            break
    return tuple(variants)


# -- router ------------------------------------------------------------------------------
_TOKENIZER = TextTokenizer()


def query_bucket(query: str) -> str:
    """A cheap feature bucket: content-word count (short/medium/long) and whether digits appear."""
    words = len(_TOKENIZER(query))
    length = "short" if words <= 5 else "medium" if words <= 10 else "long"
    return f"{length}+digits" if any(c.isdigit() for c in query) else length


class Router:
    """Picks a strategy per query from its feature bucket; unknown buckets use ``default``.

    The table is learned on a training split by ``fit``: a bucket gets the strategy with the
    best mean score there, and only when it beats ``default`` by ``min_gain`` over at least
    ``min_queries`` queries (otherwise the router would chase noise).
    """

    name = "router"

    def __init__(
        self, strategies: Mapping[str, QueryStrategy], table: Mapping[str, str] | None = None, default: str = "plain"
    ) -> None:
        unknown = {s for s in [default, *(table or {}).values()] if s not in strategies}
        if unknown:
            raise InvalidInputError(f"router table names unknown strategies: {', '.join(sorted(unknown))}")
        self.strategies = dict(strategies)
        self.table = dict(table or {})
        self.default = default

    def choose(self, query: str) -> str:
        return self.table.get(query_bucket(query), self.default)

    def expand(self, query: str) -> Expansion:
        chosen = self.strategies[self.choose(query)].expand(query)
        return replace(chosen, strategy=f"router:{chosen.strategy}")

    @staticmethod
    def fit(
        queries: Mapping[str, str],
        scores: Mapping[str, Mapping[str, float]],
        *,
        default: str = "plain",
        min_queries: int = 5,
        min_gain: float = 0.01,
    ) -> dict[str, str]:
        """``scores[strategy][query_id]`` (e.g. nDCG@10) on a training split -> bucket table."""
        buckets: dict[str, list[str]] = {}
        for query_id, text in queries.items():
            if all(query_id in per_query for per_query in scores.values()):
                buckets.setdefault(query_bucket(text), []).append(query_id)
        table: dict[str, str] = {}
        for bucket, ids in sorted(buckets.items()):
            if len(ids) < min_queries:
                continue
            means = {name: sum(per_query[q] for q in ids) / len(ids) for name, per_query in scores.items()}
            best = max(sorted(means), key=lambda name: means[name])
            if best != default and means[best] >= means.get(default, 0.0) + min_gain:
                table[bucket] = best
        return table


def build_strategies(completer: Completer | None, n_variants: int = 3) -> dict[str, QueryStrategy]:
    """The non-router strategies; without a completer only ``plain`` exists."""
    strategies: dict[str, QueryStrategy] = {"plain": Plain()}
    if completer is not None:
        strategies["multi-query"] = MultiQuery(completer, n_variants)
        strategies["hyde"] = HyDE(completer)
    return strategies


# -- running a strategy through the engine ---------------------------------------------------
def search_with(rag: LocalRAG, request: SearchRequest, strategy: QueryStrategy) -> SearchResult:
    """Run ``request`` with ``strategy``: every expanded text is searched alike, lists fused by RRF."""
    return search_expansion(rag, request, strategy.expand(request.query))


def search_expansion(rag: LocalRAG, request: SearchRequest, expansion: Expansion) -> SearchResult:
    """Search each of the expansion's texts alike and fuse the lists by RRF."""
    # strategy "none": the engine runs these as plain searches rather than expanding them again
    requests = [replace(request, query=text, strategy="none") for text in expansion.queries]
    results = rag.retrieve(requests)
    started = time.perf_counter()
    timings: dict[str, float] = {"expand": expansion.ms}
    for result in results:
        for stage, ms in result.timings.items():
            timings[stage] = timings.get(stage, 0.0) + ms
    if len(results) == 1:
        return SearchResult(results[0].hits, timings)
    by_key: dict[int, Hit] = {}
    for result in results:
        for hit in result.hits:
            by_key.setdefault(hit.chunk_id, hit)
    fused = fusion.rrf([[(h.chunk_id, h.score) for h in r.hits] for r in results], FUSE_K)[: request.k]
    hits = tuple(
        replace(by_key[key], score=score, scores={**by_key[key].scores, "strategy": score}) for key, score in fused
    )
    timings["fuse"] = timings.get("fuse", 0.0) + (time.perf_counter() - started) * 1000
    return SearchResult(hits, timings)


def check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        raise InvalidInputError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")
    return name


def strategy_names(strategies: Sequence[str]) -> list[str]:
    return [check_strategy(s) for s in strategies]
