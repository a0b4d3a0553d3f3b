"""Every endpoint of the real server on 127.0.0.1, with the real embedder and SmolLM2-135M (one thread).

The OpenAI-compatible endpoint is driven through the official ``openai`` client. Answers are
checked against what the engine itself produces for the same question (greedy decoding), and
citations against the stored documents, not against fixed text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rag_serving import KEY, running_server

from localrag import cli
from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.metrics import load_snapshot, summary
from localrag.samples import SAMPLE_DIR

pytestmark = [pytest.mark.server, pytest.mark.model]

QUESTION = "Who built the first running machine?"


def settings() -> Settings:
    return Settings().with_overrides({
        "embed": {"threads": 1},
        "generate": {"model": "smollm2-135m", "threads": 1, "providers": "llamacpp", "max_tokens": 64},
        "answer": {"k": 3},
        "server": {"api_keys": KEY, "metrics_flush_s": 0},
    })


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Iterator[tuple[str, LocalRAG]]:
    data = tmp_path_factory.mktemp("api") / "data"
    rag = LocalRAG(data, settings=settings(), embedder=real_embedder)
    rag.add(SAMPLE_DIR, exclude=["LICENSE.txt"])
    with running_server(data, rag=rag) as url:
        yield url, rag
    rag.close()


@pytest.fixture
def client(served: tuple[str, LocalRAG]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[0], headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as c:
        yield c


def check_citations(citations: list[dict[str, Any]], rag: LocalRAG) -> None:
    assert citations
    for c in citations:
        text = rag.get_document(c["doc_id"], c["namespace"]).text
        assert text[c["quote_start"] : c["quote_end"]] == c["quote"]


def test_search_modes_filters_and_timings(client: httpx.Client, served: tuple[str, LocalRAG]) -> None:
    _, rag = served
    for mode in ("hybrid", "dense", "keyword"):
        r = client.post("/v1/search", json={"query": "waggle dance of honeybees", "k": 3, "mode": mode})
        assert r.status_code == 200, r.text
        body = r.json()
        expected = rag.search("waggle dance of honeybees", k=3, mode=mode)
        assert [h["chunk_id"] for h in body["hits"]] == [h.chunk_id for h in expected]
        assert "honeybees" in body["hits"][0]["source"]
    r = client.post("/v1/search", json={"query": "history", "k": 5, "filter": {"file_type": "html"}})
    assert r.status_code == 200 and r.json()["hits"]
    assert all(h["metadata"]["file_type"] == "html" for h in r.json()["hits"])
    r = client.post("/v1/search", json={"query": "x", "filter": {"year": {"$bad": 1}}})
    assert r.status_code == 400 and "$bad" in r.json()["error"]["message"]
    r = client.post("/v1/search", json={"query": "tides", "k": 0})
    assert r.status_code == 400 and "k" in r.json()["error"]["message"]


def test_ask_and_the_sse_stream_agree_with_the_engine(client: httpx.Client, served: tuple[str, LocalRAG]) -> None:
    _, rag = served
    expected = rag.ask(QUESTION)
    r = client.post("/v1/ask", json={"question": QUESTION})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["answer"] == expected.text and answer["model"] == "smollm2-135m"
    check_citations(answer["citations"], rag)

    events: list[tuple[str, Any]] = []
    with client.stream("POST", "/v1/ask/stream", json={"question": QUESTION}) as s:
        assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in s.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    tokens = [data["text"] for name, data in events if name == "token"]
    finals = [data for name, data in events if name == "answer"]
    assert len(tokens) > 1 and len(finals) == 1 and events[-1][0] == "answer"
    assert "".join(tokens) == expected.generated_text
    assert finals[0]["answer"] == expected.text
    check_citations(finals[0]["citations"], rag)


def test_openai_client_chat_plain_and_streaming(served: tuple[str, LocalRAG]) -> None:
    openai = pytest.importorskip("openai")
    url, rag = served
    expected = rag.ask(QUESTION)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=120)
    completion = client.chat.completions.create(model="localrag", messages=[
        {"role": "system", "content": "You are helpful."}, {"role": "user", "content": QUESTION}])
    assert completion.choices[0].message.content == expected.text
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    check_citations(completion.model_extra["sources"], rag)

    pieces, last = [], None
    for chunk in client.chat.completions.create(model="localrag", stream=True,
                                                messages=[{"role": "user", "content": QUESTION}]):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        last = chunk
    assert "".join(pieces) == expected.generated_text
    assert last is not None and last.choices[0].finish_reason == "stop"
    check_citations(last.model_extra["sources"], rag)
    assert last.model_extra["answer"] == expected.text
    whole = last.model_extra["localrag"]  # the answer as /v1/ask gives it, for the web app's chat
    assert whole["answer"] == expected.text and whole["citations"] == last.model_extra["sources"]
    assert whole["provider"] == "llamacpp" and whole["timings_ms"]["total"] > 0

    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).chat.completions.create(
            model="localrag", messages=[{"role": "user", "content": QUESTION}])


def test_documents_writes_are_visible_to_the_next_search(client: httpx.Client, served: tuple[str, LocalRAG]) -> None:
    query = {"query": "zeppelin airship hangar in Friedrichshafen", "k": 3, "mode": "keyword"}
    assert client.post("/v1/search", json=query).json()["hits"] == []
    r = client.post("/v1/documents", json={"doc_id": "zeppelin", "title": "Airships", "metadata": {"topic": "air"},
                                           "text": "The zeppelin airship was built in a hangar in Friedrichshafen."})
    assert r.status_code == 201 and r.json()["added"] == ["zeppelin"]
    hits = client.post("/v1/search", json=query).json()["hits"]  # same query: the result cache must not answer
    assert hits and hits[0]["doc_id"] == "zeppelin"
    r = client.post("/v1/documents", files={"file": ("gliders.md", b"# Gliders\n\nA glider flies without an engine.")},
                    data={"metadata": json.dumps({"topic": "air"})})
    assert r.status_code == 201 and r.json()["added"] == ["gliders.md"], r.text
    docs = {d["doc_id"]: d for d in client.get("/v1/documents", params={"limit": 100}).json()["documents"]}
    assert {"zeppelin", "gliders.md"} <= set(docs) and docs["gliders.md"]["metadata"]["topic"] == "air"
    r = client.post("/v1/search", json={"query": "glider engine", "k": 1, "filter": {"topic": "air"}})
    assert r.json()["hits"][0]["doc_id"] == "gliders.md"
    assert client.delete("/v1/documents/zeppelin").json() == {"deleted": 1}
    assert client.post("/v1/search", json=query).json()["hits"] == []
    assert client.delete("/v1/documents/zeppelin").status_code == 404


def test_feedback_is_recorded(client: httpx.Client, served: tuple[str, LocalRAG]) -> None:
    _, rag = served
    hit = client.post("/v1/search", json={"query": "tides and the moon", "k": 1}).json()["hits"][0]
    r = client.post("/v1/feedback", json={"query": "tides and the moon", "chunk_id": hit["chunk_id"], "relevant": True})
    assert r.status_code == 201, r.text
    items = rag.feedback_items()
    assert any(i["chunk_id"] == hit["chunk_id"] and i["relevant"] for i in items)
    r = client.post("/v1/feedback", json={"query": "q", "chunk_id": "x", "relevant": True})
    assert r.status_code == 400 and "chunk_id" in r.json()["error"]["message"]


def test_stats_health_and_metrics(client: httpx.Client, served: tuple[str, LocalRAG]) -> None:
    _, rag = served
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["generation"] == rag.store.generation()
    for _ in range(2):  # the second is a result-cache hit
        client.post("/v1/search", json={"query": "lighthouse keepers", "k": 2})
    stats = client.get("/v1/stats").json()
    assert stats["documents"] == len(rag.documents()) and stats["server"]["documents"] == stats["documents"]
    assert stats["server"]["caches"]["result"]["hits"] >= 1
    text = client.get("/metrics").text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert float(lines['localrag_documents_total']) == stats["documents"]
    assert float(lines['localrag_chunks_total']) == stats["chunks"]
    assert float(lines['localrag_cache_hits{cache="result"}']) >= 1
    assert float(lines['localrag_tokens_total{direction="out"}']) > 0
    assert float(lines['localrag_search_stage_ms_count{stage="embed"}']) > 0
    assert 'localrag_answer_stage_ms_bucket{stage="first_token",le="+Inf"}' in lines
    assert float(lines['localrag_http_requests_total{method="POST",route="/v1/search",status="200"}']) >= 2


def test_localrag_stats_shows_the_served_figures(tmp_path: Path, real_embedder: Any,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    with LocalRAG(data, settings=settings(), embedder=real_embedder) as rag:
        rag.add(SAMPLE_DIR, exclude=["LICENSE.txt"])
        with running_server(data, rag=rag) as url, httpx.Client(base_url=url, headers={"X-API-Key": KEY}) as c:
            for q in ("tides", "tides", "bicycles"):
                assert c.post("/v1/search", json={"query": q, "k": 2, "mode": "keyword"}).status_code == 200
            served = c.get("/v1/stats").json()["server"]
        # Stopping the server wrote its last figures beside the data.
        snapshot = load_snapshot(data)
        assert snapshot is not None
    final = summary(snapshot)
    assert final["requests"] == served["requests"] + 1  # + the /v1/stats request itself
    assert final["caches"] == served["caches"] and final["caches"]["result"]["hits"] == 1
    assert cli.main(["--data", str(data), "stats", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["server"] == final and shown["documents"] == final["documents"] == 5
    assert cli.main(["--data", str(data), "stats", "--prometheus"]) == 0
    assert 'localrag_cache_hits{cache="result"} 1' in capsys.readouterr().out
