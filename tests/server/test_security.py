"""Security of the real server on 127.0.0.1: keys, rate limits, size limits, uploads, CORS, start-up."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from rag_serving import BEES, KEY, OTHER_KEY, extractive_settings, running_server

from localrag.engine import LocalRAG
from localrag.errors import ConfigError
from localrag.server import serve
from localrag.server.security import safe_upload_path

pytestmark = pytest.mark.server

SEARCH = {"query": "honeybees flowers", "k": 2}


def test_requests_without_a_valid_key_get_401(secured: tuple[str, LocalRAG]) -> None:
    url, _ = secured
    with httpx.Client(base_url=url) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": KEY + "x"}, {"Authorization": KEY}):
            r = c.post("/v1/search", json=SEARCH, headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.json()["error"]["type"] == "unauthorized_error"
            assert "API key" in r.json()["error"]["message"]
        assert c.get("/metrics").status_code == 401
        # Every accepted header form, and every configured key, gets in.
        for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": OTHER_KEY}, {"Api-Key": KEY}):
            r = c.post("/v1/search", json=SEARCH, headers=headers)
            assert r.status_code == 200, r.text
            assert r.json()["hits"][0]["doc_id"] == "bees"
        # Probes need no key; the Pinecone routes keep Pinecone's 401 shape.
        assert c.get("/healthz").status_code == 200
        r = c.get("/indexes")
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"


def test_a_burst_gets_429_with_retry_after_per_key(tmp_path: Path, fake_embedder: object) -> None:
    settings = extractive_settings(api_keys=f"{KEY},{OTHER_KEY}", rate_limit_rps=0.5, rate_limit_burst=3)
    with LocalRAG(tmp_path / "d", settings=settings, embedder=fake_embedder) as rag, \
            running_server(rag.path, rag=rag) as url, \
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        rag.add([BEES])
        statuses = [c.post("/v1/search", json=SEARCH).status_code for _ in range(8)]
        assert statuses.count(200) >= 3 and statuses[-1] == 429, statuses
        r = c.post("/v1/search", json=SEARCH)
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert "rate limit" in r.json()["error"]["message"]
        # The other key has its own bucket.
        other = c.post("/v1/search", json=SEARCH, headers={"Authorization": f"Bearer {OTHER_KEY}"})
        assert other.status_code == 200
        assert "localrag_http_errors_total" in c.get("/metrics", headers={"Authorization": f"Bearer {OTHER_KEY}"}).text


def test_oversized_body_and_upload_get_413(secured: tuple[str, LocalRAG]) -> None:
    url, rag = secured
    with httpx.Client(base_url=url, headers={"X-API-Key": KEY}) as c:
        r = c.post("/v1/search", json={"query": "x" * 20_000, "k": 1})  # over 0.01 MB
        assert r.status_code == 413 and "larger than the limit" in r.json()["error"]["message"]

        def chunks():  # no Content-Length: the limit is enforced while reading
            for _ in range(10):
                yield b'{"query": "' + b"y" * 4000

        r = c.post("/v1/search", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        r = c.post("/v1/documents", headers={"X-API-Key": OTHER_KEY},
                   files={"file": ("big.txt", b"word " * 10_000)})  # 50 KB over a 0.02 MB upload limit
        assert r.status_code == 413
    assert len(rag.documents()) == 2  # nothing was stored


def test_path_traversal_in_an_upload_is_refused(secured: tuple[str, LocalRAG], tmp_path: Path) -> None:
    url, rag = secured
    before = {p for p in tmp_path.rglob("*")}
    with httpx.Client(base_url=url, headers={"X-API-Key": OTHER_KEY}) as c:
        for name in ("../evil.txt", "../../evil.txt", "..", "/etc/evil.txt", "a/../../evil.txt", "..\\evil.txt"):
            r = c.post("/v1/documents", files={"file": (name, b"bad text")})
            assert r.status_code == 400, (name, r.text)
            assert "path traversal" in r.json()["error"]["message"] or "file name" in r.json()["error"]["message"]
        r = c.post("/v1/documents", files={"file": ("good.txt", b"Lighthouses guide ships at night.")})
        assert r.status_code == 201, r.text
    created = {p for p in tmp_path.rglob("*")} - before
    uploads = (rag.path / "uploads").resolve()
    assert all(uploads in p.resolve().parents or p.resolve() == uploads for p in created if p.is_file()), created
    assert not list(tmp_path.rglob("evil.txt")) and not Path("/etc/evil.txt").exists()
    assert [d["doc_id"] for d in rag.documents()] == ["bees", "good.txt", "tides"]


def test_safe_upload_path_keeps_names_inside_the_upload_folder(tmp_path: Path) -> None:
    target = safe_upload_path(tmp_path, "report.pdf")
    assert tmp_path.resolve() in target.parents and target.name == "report.pdf"
    for bad in ("", "..", "../x", "x/y", "x\\y", "x\x00y", "C:evil"):
        with pytest.raises(Exception, match="file name"):
            safe_upload_path(tmp_path, bad)


def test_cors_allows_only_the_configured_origin(secured: tuple[str, LocalRAG]) -> None:
    url, _ = secured
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    with httpx.Client(base_url=url) as c:
        ok = c.options("/v1/search", headers={"Origin": "http://ui.example", **preflight})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://ui.example"
        bad = c.options("/v1/search", headers={"Origin": "http://evil.example", **preflight})
        assert "access-control-allow-origin" not in bad.headers


def test_binding_off_loopback_without_a_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="without an API key"):
        serve(tmp_path, host="0.0.0.0", port=1)


def test_the_pinecone_api_is_served_by_the_same_app(secured: tuple[str, LocalRAG]) -> None:
    pinecone = pytest.importorskip("pinecone")
    url, _ = secured
    pc = pinecone.Pinecone(api_key=KEY, host=url, retry_config=pinecone.RetryConfig(max_retries=0))
    pc.create_index(name="vecs", dimension=4, metric="cosine",
                    spec=pinecone.ServerlessSpec(cloud="aws", region="us-east-1"))
    index = pc.Index("vecs")
    index.upsert(vectors=[("a", [1.0, 0, 0, 0], {"g": "x"}), ("b", [0, 1.0, 0, 0], {"g": "y"})])
    found = index.query(vector=[0.9, 0.1, 0, 0], top_k=1, filter={"g": "x"})
    assert [m.id for m in found.matches] == ["a"]
    with pytest.raises(pinecone.ApiError) as info:
        pinecone.Pinecone(api_key="wrong", host=url, retry_config=pinecone.RetryConfig(max_retries=0)).list_indexes()
    assert info.value.status_code == 401


def test_one_json_log_line_per_request(secured: tuple[str, LocalRAG], caplog: pytest.LogCaptureFixture) -> None:
    url, _ = secured
    with caplog.at_level(logging.INFO, logger="localrag.server.access"), httpx.Client(base_url=url) as c:
        c.post("/v1/search", json=SEARCH, headers={"X-API-Key": KEY})
        c.post("/v1/search", json=SEARCH)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "localrag.server.access"]
    assert [(line["route"], line["status"]) for line in lines] == [("/v1/search", 200), ("/v1/search", 401)]
    assert all(line["method"] == "POST" and line["ms"] > 0 and line["client"] == "127.0.0.1" for line in lines)
