"""Hardening of the real server on 127.0.0.1: concurrent uploads, non-finite numbers, deep JSON,
error shapes and Allow headers, short API keys, and no server paths in error messages."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from rag_serving import BEES, KEY, TIDES, extractive_settings, running_server

from localrag.engine import LocalRAG
from localrag.errors import ConfigError, FilterError, InvalidInputError
from localrag.filters import validate_filter
from localrag.server import create_app, serve
from localrag.types import Document

pytestmark = pytest.mark.server
PINECONE = {"Api-Key": KEY, "X-Pinecone-Api-Version": "2025-01"}


@pytest.fixture
def served(tmp_path: Path, fake_embedder: object) -> Iterator[tuple[httpx.Client, LocalRAG]]:
    settings = extractive_settings(api_keys=KEY)
    with LocalRAG(tmp_path / "data", settings=settings, embedder=fake_embedder) as rag:  # type: ignore[arg-type]
        rag.add([BEES, TIDES])
        with running_server(rag.path, rag=rag) as url, \
                httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=120) as client:
            yield client, rag


def rag_error(response: httpx.Response, status: int, *parts: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == status, body
    message = str(body["error"]["message"])
    for part in parts:
        assert part in message, message
    return message


def uploads_left(rag: LocalRAG) -> list[Path]:
    folder = rag.path / "uploads"
    return sorted(folder.rglob("*")) if folder.exists() else []


# -- 1. uploads -----------------------------------------------------------------------------


def test_concurrent_uploads_with_the_same_file_name_keep_their_own_text(
        served: tuple[httpx.Client, LocalRAG]) -> None:
    client, rag = served

    def upload(i: int) -> int:
        text = f"Document number {i} is about the codeword zq{i}x and nothing else."
        r = client.post("/v1/documents", files={"file": ("same.txt", text.encode())}, data={"doc_id": f"up{i}"})
        return r.status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(upload, range(20)))
    assert statuses == [201] * 20
    for i in range(20):
        doc = rag.get_document(f"up{i}")
        assert f"zq{i}x" in doc.text, (i, doc.text)
        assert doc.source == "same.txt" and doc.metadata["source"] == "same.txt"
    assert uploads_left(rag) == []  # each upload's private folder is gone


def test_refused_uploads_leave_nothing_on_disk_and_name_only_the_file(served: tuple[httpx.Client, LocalRAG]) -> None:
    client, rag = served
    cases = [("blob.bin", bytes(range(256)) * 8, "binary"), ("empty.txt", b"   \n", "empty")]
    for name, data, reason in cases:
        message = rag_error(client.post("/v1/documents", files={"file": (name, data)}), 400, name, reason)
        assert os.sep not in message and str(rag.path) not in message, message
    assert uploads_left(rag) == []
    assert {d["doc_id"] for d in rag.documents()} == {"bees", "tides"}


# -- 2. non-finite numbers --------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_metadata_is_refused_over_http(served: tuple[httpx.Client, LocalRAG], literal: str) -> None:
    client, _ = served
    raw = '{"doc_id": "dnan", "text": "some words", "metadata": {"ok": 1, "x": ' + literal + "}}"
    rag_error(client.post("/v1/documents", content=raw, headers={"Content-Type": "application/json"}),
              400, "metadata.x", "finite")
    files = {"file": ("n.txt", b"some words")}
    rag_error(client.post("/v1/documents", files=files, data={"metadata": '{"deep": [1, ' + literal + "]}"}),
              400, "metadata.deep[1]", "finite")
    # Nothing was stored, so listing and searching still answer.
    assert [d["doc_id"] for d in client.get("/v1/documents").json()["documents"]] == ["bees", "tides"]
    assert client.post("/v1/search", json={"query": "words"}).status_code == 200


def test_non_finite_metadata_is_refused_in_python(tmp_path: Path, fake_embedder: object) -> None:
    with LocalRAG(tmp_path / "d", embedder=fake_embedder) as rag:  # type: ignore[arg-type]
        ok = Document("ok", "fine words")
        with pytest.raises(InvalidInputError, match=r"metadata\.score.*finite"):
            rag.add([ok, Document("bad", "some words", metadata={"score": math.nan})])
        with pytest.raises(InvalidInputError, match=r"metadata\.x.*finite"):
            rag.add(ok, metadata={"x": math.inf})
        with pytest.raises(InvalidInputError, match="nested more than"):
            rag.add(ok, metadata={"x": nested_list(200)})
        assert rag.documents() == []  # refused before anything was written


def test_non_finite_numbers_are_refused_by_the_pinecone_api(served: tuple[httpx.Client, LocalRAG]) -> None:
    client, _ = served
    r = client.post("/indexes", json={"name": "nan", "dimension": 2, "metric": "cosine"}, headers=PINECONE)
    assert r.status_code == 201, r.text
    host = "/data/nan"

    def refused(path: str, raw: str, part: str) -> None:
        r = client.post(host + path, content=raw, headers={**PINECONE, "Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["code"] == 3 and part in r.json()["message"], r.text

    refused("/vectors/upsert", '{"vectors": [{"id": "a", "values": [1, 0], "metadata": {"x": NaN}}]}', "'x'")
    refused("/vectors/upsert", '{"vectors": [{"id": "a", "values": [Infinity, 0]}]}', "values")
    refused("/vectors/upsert", '{"vectors": [{"id": "a", "values": [1, 0], '
            '"sparseValues": {"indices": [1], "values": [NaN]}}]}', "sparseValues.values")
    refused("/vectors/update", '{"id": "a", "setMetadata": {"y": -Infinity}}', "'y'")
    refused("/vectors/update", '{"id": "a", "values": [1e999, 0]}', "values")
    refused("/query", '{"topK": 1, "vector": [NaN, 1]}', "vector")
    refused("/query", '{"topK": 1, "vector": [1, 1], "filter": {"x": {"$gt": NaN}}}', "finite")
    refused("/query", '{"topK": "5", "vector": [1, 1]}', "topK")
    refused("/query", '{"topK": Infinity, "vector": [1, 1]}', "topK")
    stats = client.get(host + "/describe_index_stats", headers=PINECONE)
    assert stats.status_code == 200 and stats.json()["totalVectorCount"] == 0


# -- 3. deeply nested JSON --------------------------------------------------------------------


def nested_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def nested_and(depth: int) -> dict[str, Any]:
    clause: dict[str, Any] = {"genre": "a"}
    for _ in range(depth):
        clause = {"$and": [clause]}
    return clause


def test_deeply_nested_json_gets_400_not_500(served: tuple[httpx.Client, LocalRAG]) -> None:
    client, _ = served
    client.post("/indexes", json={"name": "deep", "dimension": 2, "metric": "cosine"}, headers=PINECONE)
    json_headers = {**PINECONE, "Content-Type": "application/json"}
    for body in ('{"topK": 1, "vector": [1, 0], "filter": ' + '{"$and": [' * 1000 + '{"g": "a"}' + "]}" * 1000 + "}",
                 "[" * 1000 + "]" * 1000, json.dumps({"topK": 1, "vector": [1, 0], "filter": nested_and(40)})):
        r = client.post("/data/deep/query", content=body, headers=json_headers)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == 3 and ("nested" in r.json()["message"]), r.text
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post("/indexes", content=deep, headers=json_headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_ARGUMENT", r.text
    search = '{"query": "bees", "filter": {"a": ' + deep + "}}"
    rag_error(client.post("/v1/search", content=search, headers={"Content-Type": "application/json"}), 400, "nested")
    rag_error(client.post("/v1/search", content=deep), 400, "nested")
    rag_error(client.post("/v1/chat/completions", content=deep, headers={"Content-Type": "application/json"}),
              400, "nested")
    rag_error(client.post("/v1/documents", files={"file": ("m.txt", b"words")}, data={"metadata": deep}),
              400, "metadata", "nested")
    assert client.get("/healthz").status_code == 200


def test_filters_refuse_deep_nesting_without_recursing() -> None:
    for depth in (17, 1000, 50_000):
        with pytest.raises(FilterError, match="nested more than 16"):
            validate_filter(nested_and(depth))
    validate_filter(nested_and(15))


# -- 6. error shapes, Allow, strict types -----------------------------------------------------


def test_errors_keep_each_api_s_shape_and_405_lists_every_method(served: tuple[httpx.Client, LocalRAG]) -> None:
    client, _ = served
    r = client.put("/v1/documents", json={})
    rag_error(r, 405, "PUT")
    assert r.headers["Allow"] == "GET, POST"
    r = client.post("/v1/documents/some-id")
    rag_error(r, 405)
    assert r.headers["Allow"] == "DELETE, GET"
    rag_error(client.get("/v1/nothing-here"), 404)
    r = client.post("/indexes/abc", headers=PINECONE)
    assert r.status_code == 405 and r.headers["Allow"] == "DELETE, GET, PATCH", r.text
    assert r.json()["status"] == 405
    r = client.put("/data/abc/query", headers=PINECONE)
    assert r.status_code == 405 and r.headers["Allow"] == "POST" and set(r.json()) == {"code", "message", "details"}
    # Unreadable bodies get the documented shape, never FastAPI's {"detail": ...}.
    rag_error(client.post("/v1/search", content=b"{not json", headers={"Content-Type": "application/json"}), 400)
    rag_error(client.post("/v1/search", content=b"\xff\xfe", headers={"Content-Type": "application/json"}), 400)
    rag_error(client.post("/v1/documents", content=b"--x\r\nbroken",
                          headers={"Content-Type": "multipart/form-data; boundary=x"}), 400)
    for body in ({"query": "bees", "k": True}, {"query": "bees", "k": "5"}, {"query": "bees", "include_text": 1},
                 {"query": "   "}):
        rag_error(client.post("/v1/search", json=body), 400)
    assert client.post("/v1/search", json={"query": "bees", "k": 2.0}).status_code == 200  # JSON Schema's integer
    # Schema-valid means accepted: non-blank text the tokenizer finds no word in is still a document.
    r = client.post("/v1/documents", json={"doc_id": "bang", "text": "!!!"})
    assert r.status_code == 201 and r.json()["added"] == ["bang"], r.text


def test_openapi_refs_resolve_and_every_status_is_documented(served: tuple[httpx.Client, LocalRAG]) -> None:
    client, _ = served
    schema = client.get("/openapi.json").json()
    text = json.dumps(schema)
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert "DocumentBody" in refs and refs <= set(schema["components"]["schemas"]), refs
    assert "422" not in text.replace("4220", "")
    upload = schema["paths"]["/v1/documents"]["post"]
    assert set(upload["responses"]) >= {"201", "400", "401", "408", "413", "429"}
    assert upload["security"] and schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert set(schema["paths"]["/indexes/{name}"]["delete"]["responses"]) >= {"202", "403", "404"}


# -- 7. API keys ------------------------------------------------------------------------------


def test_short_api_keys_are_refused_at_start(tmp_path: Path) -> None:
    for keys in ([" , "], ["short-key"], ["  fifteen-chars  "]):
        with pytest.raises(ConfigError, match="at least 16 characters"):
            serve(tmp_path / "d", host="0.0.0.0", port=1, api_keys=keys)
        with pytest.raises(ConfigError, match="at least 16 characters"):
            create_app(tmp_path / "d", keys)
    with pytest.raises(ConfigError, match="without an API key"):
        serve(tmp_path / "d", host="0.0.0.0", port=1, api_keys=[" ", ""])


@pytest.mark.model
def test_the_server_loads_its_embedder_before_it_is_ready(tmp_path: Path) -> None:
    # Loading holds the GIL for most of a second; done at start, it never stalls /healthz mid-ingest.
    from starlette.testclient import TestClient

    app = create_app(tmp_path / "data")
    engine = app.state.rag.rag
    assert engine._embedder is None
    with TestClient(app) as client:
        assert engine._embedder is not None
        assert client.get("/healthz").status_code == 200
