"""Query strategies as a search option: ``strategy = none | multi_query | hyde | decompose | auto``.

``LocalRAG.retrieve`` hands a request whose strategy is not ``none`` to ``StrategyRunner``, which
expands the query with the answer model (``generate.*``; completions cached in
``<data>/query-cache.sqlite3``), searches every text as a plain request and fuses the lists by RRF.
The result says which strategy ran: ``auto`` resolves to the one its rule picks, and a strategy
whose model wrote nothing usable (e.g. the extractive provider, which has no model) reports ``none``.

``auto`` is a rule on cheap query features, not a learned router: a compound question (two
questions, or a long one joining clauses with and/or/versus/compare/difference between) is
decomposed; anything else runs plain, because on SciFact test neither multi-query (0.678) nor HyDE
(0.705) beat plain hybrid search (0.708 nDCG@10, benchmarks/results/quality.json).
``auto`` also sends the search through the learned router (learn/router.py, engine.retrieve), which
picks mode, alpha, candidates and reranking per query from ``<data>/router.json``; ``result.route`` says which.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from typing import TYPE_CHECKING

from localrag.errors import InvalidInputError
from localrag.index.tokenize import TextTokenizer
from localrag.query.cache import Completer, CompletionCache
from localrag.query.strategies import Decompose, Expansion, HyDE, MultiQuery, QueryStrategy, search_expansion
from localrag.types import SearchRequest, SearchResult

if TYPE_CHECKING:
    from localrag.engine import LocalRAG

log = logging.getLogger(__name__)

STRATEGY_NAMES = ("none", "multi_query", "hyde", "decompose", "auto")
CACHE_FILE = "query-cache.sqlite3"
_COMPOUND = re.compile(r"\b(and|or|versus|vs\.?|compare[sd]?|comparison|difference between|both)\b", re.IGNORECASE)
_COMPOUND_MIN_WORDS = 6  # content words; "salt and pepper" is not two questions
_TOKENIZER = TextTokenizer()


def check_strategy(name: str | None) -> str | None:
    if name is not None and name not in STRATEGY_NAMES:
        raise InvalidInputError(f"strategy must be one of {', '.join(STRATEGY_NAMES)}; got {name!r}")
    return name


def auto_strategy(query: str) -> str:
    """The strategy ``auto`` picks for ``query`` (see the module docstring)."""
    if query.count("?") >= 2:
        return "decompose"
    if len(_TOKENIZER(query)) >= _COMPOUND_MIN_WORDS and _COMPOUND.search(query):
        return "decompose"
    return "none"


def resolve(request: SearchRequest, default: str) -> str:
    """The strategy a request runs: its own, else the configured default; ``auto`` resolved."""
    name = check_strategy(request.strategy) or default
    return auto_strategy(request.query) if name == "auto" else name


class StrategyRunner:
    """Builds the LLM strategies on first use (the answer model loads only then)."""

    def __init__(self, rag: LocalRAG) -> None:
        self.rag = rag
        self._strategies: dict[str, QueryStrategy] | None = None
        self._lock = threading.Lock()

    def strategies(self) -> dict[str, QueryStrategy]:
        if self._strategies is None:
            with self._lock:
                if self._strategies is None:
                    cache = None if self.rag.read_only else CompletionCache(self.rag.path / CACHE_FILE)
                    completer = Completer(self.rag.answers.generator, cache)
                    self._strategies = {
                        "multi_query": MultiQuery(completer),
                        "hyde": HyDE(completer),
                        "decompose": Decompose(completer),
                    }
        return self._strategies

    def run(self, request: SearchRequest, name: str) -> SearchResult:
        """``request`` searched with strategy ``name`` (already resolved, not ``none``)."""
        expansion: Expansion = self.strategies()[name].expand(request.query)
        ran = name if len(expansion.queries) > 1 else "none"
        if ran == "none":
            log.info("strategy %s produced no expansion of %r (no language model?); searched plainly", name,
                     request.query)
        result = search_expansion(self.rag, request, expansion)
        return dataclasses.replace(result, strategy=ran)

    def close(self) -> None:
        if self._strategies is not None:
            for strategy in self._strategies.values():
                cache = getattr(getattr(strategy, "completer", None), "cache", None)
                if cache is not None:
                    cache.close()
                    break
