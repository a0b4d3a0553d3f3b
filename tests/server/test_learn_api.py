"""Feedback and query strategies over HTTP: a real server on 127.0.0.1, the real embedder, SmolLM2-135M.

Votes sent with two API keys re-order the next POST /v1/search at once, and still do after the
server and its engine are restarted on the same directory; /v1/search, /v1/ask and /v1/ask/stream
take ``strategy`` and say which ran.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from rag_serving import KEY, OTHER_KEY, running_server

from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.samples import SAMPLE_DIR

pytestmark = [pytest.mark.server, pytest.mark.model]

QUERY = "How do honeybees tell each other where flowers are?"


def settings() -> Settings:
    return Settings().with_overrides({
        "embed": {"threads": 1},
        "generate": {"model": "smollm2-135m", "threads": 1, "providers": "llamacpp", "max_tokens": 24},
        "answer": {"k": 2},
        "server": {"api_keys": f"{KEY},{OTHER_KEY}", "metrics_flush_s": 0},
    })


def client(url: str, key: str = KEY) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300)


def ranking(c: httpx.Client) -> list[dict[str, Any]]:
    r = c.post("/v1/search", json={"query": QUERY, "k": 8})
    assert r.status_code == 200, r.text
    assert r.json()["strategy"] == "none"
    hits: list[dict[str, Any]] = r.json()["hits"]
    return hits


def test_votes_over_http_change_the_next_search_and_survive_a_restart(tmp_path: Path, real_embedder: Any) -> None:
    data = tmp_path / "data"
    with LocalRAG(data, settings=settings(), embedder=real_embedder) as rag:
        rag.add(SAMPLE_DIR, exclude=["LICENSE.txt"])
        with running_server(data, rag=rag) as url, client(url) as one, client(url, OTHER_KEY) as other:
            before = ranking(one)
            target = before[-1]["chunk_id"]
            for c in (one, other):
                body = {"query": QUERY, "chunk_id": target, "relevant": True}
                assert c.post("/v1/feedback", json=body).status_code == 201
            r = one.post("/v1/feedback", json={"query": QUERY, "chunk_id": target, "relevant": False, "grade": 1.0})
            assert r.status_code == 201, r.text  # a grade decides over relevant
            assert one.post("/v1/feedback", json={"query": QUERY, "chunk_id": target, "relevant": True,
                                                  "grade": 3}).status_code == 400
            after = ranking(one)
            voters = {vote[3] for vote in rag.store.feedback_votes("")}
        assert len(voters) == 2 and all(v.startswith("key:") for v in voters)  # each key its own voter
    moved = [h["chunk_id"] for h in after]
    assert moved.index(target) < [h["chunk_id"] for h in before].index(target)
    assert next(h for h in after if h["chunk_id"] == target)["scores"]["feedback"] > 0
    with LocalRAG(data, settings=settings(), embedder=real_embedder) as rag, \
            running_server(data, rag=rag) as url, client(url) as c:
        assert [h["chunk_id"] for h in ranking(c)] == moved


def test_search_ask_and_stream_take_a_strategy_and_report_it(tmp_path: Path, real_embedder: Any) -> None:
    data = tmp_path / "data"
    with LocalRAG(data, settings=settings(), embedder=real_embedder) as rag:
        rag.add(SAMPLE_DIR, exclude=["LICENSE.txt"])
        with running_server(data, rag=rag) as url, client(url) as c:
            r = c.post("/v1/search", json={"query": QUERY, "k": 3, "strategy": "multi_query"})
            assert r.status_code == 200, r.text
            assert r.json()["strategy"] == "multi_query" and r.json()["timings_ms"]["expand"] > 0
            r = c.post("/v1/search", json={"query": QUERY, "strategy": "auto"})
            assert r.status_code == 200 and r.json()["strategy"] == "none"
            assert r.json()["route"] == "auto:default"  # auto routes; no router.json here: the configured search
            r = c.post("/v1/search", json={"query": QUERY, "strategy": "telepathy"})
            assert r.status_code == 400 and "strategy" in r.json()["error"]["message"]
            r = c.post("/v1/ask", json={"question": QUERY, "strategy": "hyde"})
            assert r.status_code == 200, r.text
            assert r.json()["strategy"] == "hyde" and r.json()["hits"]
            assert c.post("/v1/ask", json={"question": QUERY}).json()["strategy"] == "none"
            finals = []
            with c.stream("POST", "/v1/ask/stream", json={"question": QUERY, "strategy": "decompose"}) as s:
                assert s.status_code == 200
                event = ""
                for line in s.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "answer":
                        finals.append(json.loads(line[6:]))
            assert len(finals) == 1 and finals[0]["strategy"] == "decompose"
            r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUERY}],
                                                     "strategy": "multi_query"})
            assert r.status_code == 200, r.text
            assert r.json()["strategy"] == "multi_query"
            with c.stream("POST", "/v1/chat/completions", json={
                    "messages": [{"role": "user", "content": QUERY}], "strategy": "hyde", "stream": True}) as s:
                chunks = [json.loads(line[6:]) for line in s.iter_lines()
                          if line.startswith("data: {")]
            assert [(ch["strategy"], ch["localrag"]["strategy"]) for ch in chunks if "localrag" in ch] == [
                ("hyde", "hyde")]


def test_a_vote_makes_cached_answers_unreachable(tmp_path: Path, real_embedder: Any) -> None:
    from localrag.server.context import ServerContext

    with LocalRAG(tmp_path / "data", settings=settings(), embedder=real_embedder) as rag:
        rag.add(SAMPLE_DIR, exclude=["LICENSE.txt"])
        ctx = ServerContext(rag, rag.settings.server, ())
        key = ctx.answer_key(QUERY, {"k": 2})
        assert ctx.answer_key(QUERY, {"k": 2}) == key
        rag.feedback(QUERY, rag.search(QUERY, k=1)[0].chunk_id, False)
        assert ctx.answer_key(QUERY, {"k": 2}) != key
