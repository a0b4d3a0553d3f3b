"""Self-query end to end: a real server on 127.0.0.1, the real embedder, SmolLM2-135M asked for grammar-constrained
JSON. /v1/search and /v1/ask show the filter read from the question and whether it was applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from rag_serving import KEY, running_server

from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.learn.selfquery_llm import filter_model_of
from localrag.types import Document

pytestmark = [pytest.mark.server, pytest.mark.model]

TEXT = "The escrow agreement holds the deposit until the source code is delivered."
PEOPLE = [("Maria Chen", 2024, "email"), ("John Okafor", 2023, "report"), ("Priya Nair", 2025, "minutes"),
          ("Maria Chen", 2026, "memo"), ("Ana Lopez", 2022, "report")]


def settings(mode: str) -> Settings:
    return Settings().with_overrides({
        "embed": {"threads": 1},
        "generate": {"model": "smollm2-135m", "threads": 1, "providers": "llamacpp", "max_tokens": 16},
        "answer": {"k": 2},
        "learn": {"self_query": mode, "self_query_llm": True},
        "server": {"api_keys": KEY, "metrics_flush_s": 0},
    })


def docs() -> list[Document]:
    return [Document(f"d{i}", TEXT, metadata={"sender": who, "year": year, "type": kind})
            for i, (who, year, kind) in enumerate(PEOPLE)]


def test_the_model_answers_only_with_catalogue_fields_and_values(tmp_path: Path, real_embedder: Any) -> None:
    with LocalRAG(tmp_path / "data", settings=settings("filter"), embedder=real_embedder) as rag:
        rag.add(docs())
        model = filter_model_of(rag.answers.generator)
        assert model is not None
        catalogue = rag.self_query.catalogue("")
        for question in ("What did Maria Chen say about the escrow?", "What does the escrow hold?"):
            pairs, probability = model.propose(question, catalogue)
            assert 0.0 < probability <= 1.0
            for name, value in pairs:  # whatever a 135M model thinks, the grammar kept it to the catalogue
                assert name in ("sender", "type") and value in catalogue.fields[name].values


def test_search_and_ask_show_the_filter_and_apply_it(tmp_path: Path, real_embedder: Any) -> None:
    data = tmp_path / "data"
    with LocalRAG(data, settings=settings("filter"), embedder=real_embedder) as rag:
        rag.add(docs())
        with running_server(data, rag=rag) as url, \
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=300) as c:
            r = c.post("/v1/search", json={"query": "What did Maria Chen say about the escrow in 2024?", "k": 5})
            assert r.status_code == 200, r.text
            shown = r.json()["self_query"]
            assert shown["filter"] == {"year": 2024, "sender": "Maria Chen"} and shown["applied"] == "filter"
            assert [h["doc_id"] for h in r.json()["hits"]] == ["d0"]
            r = c.post("/v1/search", json={"query": "What did Maria Chen say about the escrow?", "k": 5,
                                           "self_query": "boost"})
            assert r.json()["self_query"]["applied"] == "boost" and len(r.json()["hits"]) == 5
            assert {h["doc_id"] for h in r.json()["hits"][:2]} == {"d0", "d3"}
            r = c.post("/v1/search", json={"query": "What does the escrow agreement hold?", "k": 5})
            assert r.json()["self_query"]["filter"] is None and len(r.json()["hits"]) == 5
            r = c.post("/v1/search", json={"query": "escrow", "self_query": "always"})
            assert r.status_code == 400
            r = c.post("/v1/ask", json={"question": "What did John Okafor report about the escrow?"})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["self_query"]["filter"] == {"sender": "John Okafor"}
            assert {h["doc_id"] for h in body["hits"]} == {"d1"}
