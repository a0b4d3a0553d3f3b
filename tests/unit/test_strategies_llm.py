"""Query strategies with a real model: SmolLM2-135M through llama.cpp, one thread."""

from __future__ import annotations

from pathlib import Path

import pytest

from localrag.config import Settings
from localrag.generate.factory import build_provider
from localrag.query.cache import Completer, CompletionCache
from localrag.query.strategies import HyDE, MultiQuery, search_with
from localrag.types import Document, SearchRequest

pytestmark = pytest.mark.model


def test_strategies_expand_with_a_real_model_and_cache_the_text(fake_rag, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings().with_overrides({"generate": {"model": "smollm2-135m", "threads": 1}})
    generator = build_provider("llamacpp", settings.generate, settings.answer)
    completer = Completer(generator, CompletionCache(tmp_path / "cache.sqlite3"), max_tokens=48)
    fake_rag.add([Document("bees", "Honeybees tell each other where flowers are with a waggle dance."),
                  Document("tides", "Tides follow the moon.")])
    query = "How do bees find flowers?"
    for strategy in (MultiQuery(completer), HyDE(completer)):
        expansion = strategy.expand(query)
        assert expansion.queries[0] == query
        assert len(expansion.queries) >= 2, f"{strategy.name} produced no expansion"
        assert all(text.strip() for text in expansion.queries)
        again = strategy.expand(query)
        assert again.queries == expansion.queries  # from the cache, identical
        result = search_with(fake_rag, SearchRequest(query, 2, "hybrid"), strategy)
        assert result.hits and result.timings["expand"] > 0
    assert completer.complete(HyDE(completer).prompt(query)).hit
