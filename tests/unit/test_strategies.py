"""Query strategies with a scripted generator (the real-model check is in tests/integration)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from localrag.engine import LocalRAG
from localrag.errors import InvalidInputError
from localrag.generate.extractive import ExtractiveGenerator
from localrag.query.cache import Completer, CompletionCache
from localrag.query.strategies import (
    HyDE,
    MultiQuery,
    Plain,
    Router,
    build_strategies,
    parse_variants,
    query_bucket,
    search_with,
)
from localrag.types import Completion, Document, Prompt, SearchRequest


class ScriptedGenerator:
    """Replies with a fixed text per strategy prompt and counts calls."""

    name = "scripted"
    model = "scripted-1"
    context_window = 4096

    def __init__(self, multi: str, hyde: str) -> None:
        self.multi, self.hyde, self.calls = multi, hyde, 0

    def generate(self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0,
                 stop: Sequence[str] = ()) -> Completion:
        self.calls += 1
        text = self.multi if "search queries" in prompt.messages[-1].content else self.hyde
        return Completion(text, model=self.model, provider=self.name)

    def stream(self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0,
               stop: Sequence[str] = ()) -> Iterator[str | Completion]:
        yield self.generate(prompt, max_tokens=max_tokens)

    def count_tokens(self, text: str) -> int:
        return len(text.split())


DOCS = [
    Document("bees", "Honeybees communicate the direction of flowers with a waggle dance."),
    Document("tides", "The gravitational pull of the moon causes ocean tides twice a day."),
    Document("bread", "Sourdough bread rises because wild yeast ferments the dough slowly."),
]


@pytest.fixture
def rag(fake_rag: LocalRAG) -> LocalRAG:
    fake_rag.add(DOCS)
    return fake_rag


def test_multi_query_searches_every_variant_and_fuses(rag: LocalRAG, tmp_path: Path) -> None:
    generator = ScriptedGenerator("1. moon gravity ocean\n2) yeast fermentation dough\n- how insects dance", "")
    strategy = MultiQuery(Completer(generator, CompletionCache(tmp_path / "c.sqlite3")))
    expansion = strategy.expand("waggle")
    assert expansion.queries == ("waggle", "moon gravity ocean", "yeast fermentation dough", "how insects dance")
    result = search_with(rag, SearchRequest("waggle", 3, "keyword"), strategy)
    assert {hit.doc_id for hit in result.hits} == {"bees", "tides", "bread"}  # each variant found its own
    assert result.hits[0].doc_id == "bees"  # matched by the original and the third variant
    assert "expand" in result.timings and all("strategy" in hit.scores for hit in result.hits)


def test_hyde_searches_with_the_hypothetical_passage(rag: LocalRAG, tmp_path: Path) -> None:
    generator = ScriptedGenerator("", "Wild yeast ferments sourdough.")
    result = search_with(rag, SearchRequest("what makes it rise", 1, "keyword"), HyDE(Completer(generator)))
    assert result.hits[0].doc_id == "bread"  # the plain query matches nothing specific


def test_completions_are_cached_on_disk(tmp_path: Path) -> None:
    generator = ScriptedGenerator("a variant", "")
    first = Completer(generator, CompletionCache(tmp_path / "c.sqlite3")).complete(MultiQuery(Completer(generator))
                                                                                   .prompt("q"))
    again = Completer(generator, CompletionCache(tmp_path / "c.sqlite3")).complete(MultiQuery(Completer(generator))
                                                                                   .prompt("q"))
    assert generator.calls == 1 and (first.hit, again.hit) == (False, True) and again.text == "a variant"


def test_without_a_language_model_strategies_fall_back_to_the_plain_query(tmp_path: Path) -> None:
    completer = Completer(ExtractiveGenerator(), CompletionCache(tmp_path / "c.sqlite3"))
    for strategy in build_strategies(completer).values():
        assert strategy.expand("tides and the moon").queries == ("tides and the moon",)
    assert CompletionCache(tmp_path / "c.sqlite3").get("anything") is None


def test_parse_variants_drops_markers_duplicates_and_the_query() -> None:
    text = "Query 1: alpha beta\n\n2. Alpha Beta\n* the query\n3) gamma\n4) delta"
    assert parse_variants(text, "the query", 2) == ("alpha beta", "gamma")


def test_router_learns_a_strategy_per_bucket_only_with_enough_evidence() -> None:
    short = {f"s{i}": f"short {chr(97 + i)}word" for i in range(6)}
    long = {f"l{i}": " ".join(f"w{chr(97 + j)}x{chr(97 + i)}" for j in range(12)) for i in range(6)}
    queries = short | long | {"n1": "protein 42"}
    scores = {
        "plain": {q: 0.5 for q in queries},
        "hyde": {q: (0.9 if q.startswith("s") else 0.2) for q in queries},
        "multi-query": {q: 0.5 for q in queries},
    }
    table = Router.fit(queries, scores, min_queries=5)
    assert table == {"short": "hyde"}  # long: plain is best; short+digits: one query is too few
    router = Router({"plain": Plain(), "hyde": Plain()}, table)
    assert router.choose("short one") == "hyde" and router.choose(queries["l0"]) == "plain"
    assert query_bucket("protein 42") == "short+digits"
    with pytest.raises(InvalidInputError, match="unknown strategies"):
        Router({"plain": Plain()}, {"short": "hyde"})
