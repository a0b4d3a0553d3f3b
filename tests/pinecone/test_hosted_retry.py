"""Hosted calls of vector.backend = "pinecone_documents" retry on 429/5xx and timeouts, with backoff.

The stand-in is localrag's own Pinecone server behind a scripted ASGI layer that answers the next
Documents API requests with 429, 503, 500 or not at all, then lets them through. The backoff's sleep
and random source are injected, so the waits are recorded instead of slept.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from serving import sdk_client
from threaded_server import app_in_thread

from localrag.config import VectorSettings
from localrag.errors import InvalidInputError, OverloadedError, RateLimitedError
from localrag.pinecone.hosted_docs import HostedCorpus, connect, schema
from localrag.pinecone.hosted_retry import HostedTimeoutError, RetryPolicy
from localrag.pinecone.remote import RemoteIndexError
from localrag.pinecone.server import create_app

pytestmark = pytest.mark.server
DIM = 8


@dataclass
class Script:
    """What the next Documents API requests get: an HTTP status, "hang" (no answer until released), or
    nothing scripted (the real server answers). ``seen`` counts the requests that reached the layer."""

    steps: list[int | str] = field(default_factory=list)
    seen: int = 0
    release: threading.Event = field(default_factory=threading.Event)


def scripted(app: Any, script: Script) -> Any:
    async def layer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or "/documents/" not in scope["path"]:
            return await app(scope, receive, send)
        script.seen += 1
        step = script.steps.pop(0) if script.steps else None
        if step == "hang":
            while not script.release.is_set():  # the client gives up first: its timeout is the test's subject
                await asyncio.sleep(0.01)
            step = 503
        if step is None:
            return await app(scope, receive, send)
        body = json.dumps({"error": {"code": "UNAVAILABLE", "message": f"scripted {step}"}, "status": step}).encode()
        await send({"type": "http.response.start", "status": step,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"0")]})
        await send({"type": "http.response.body", "body": body})
    return layer


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Script]]:
    script = Script()
    with app_in_thread(scripted(create_app(tmp_path_factory.mktemp("flaky")), script)) as url:
        sdk_client(url).indexes.create(name="corpus", schema=schema(DIM))
        yield sdk_client(url).indexes.describe("corpus").host, script
        script.release.set()


@pytest.fixture
def corpus(stand_in: tuple[str, Script], monkeypatch: pytest.MonkeyPatch) -> tuple[HostedCorpus, Script, list[float]]:
    host, script = stand_in
    script.steps.clear()
    script.seen = 0
    monkeypatch.setenv("PINECONE_API_KEY", "test-key")
    waits: list[float] = []
    settings = VectorSettings(backend="pinecone_documents", host=host, namespace_prefix="r-", timeout_s=0.5)
    # uniform(a, b) -> b: the recorded waits are the jitter's upper bounds, so the schedule is checkable
    policy = RetryPolicy(attempts=4, base_s=0.25, cap_s=1.0, sleep=waits.append, uniform=lambda a, b: b)
    return HostedCorpus(connect(settings), settings, policy), script, waits


@pytest.mark.parametrize("status, step", [(429, 429), (503, 503), (500, 500)])
def test_a_refusal_then_success_is_retried(corpus: tuple[HostedCorpus, Script, list[float]], status: int,
                                           step: int) -> None:
    hosted, script, waits = corpus
    script.steps[:] = [step]
    assert hosted.search_text("missing-namespace", "anything", 3, None) == []  # answered on the second try
    assert script.seen == 2 and waits == [0.25]


def test_backoff_grows_to_its_cap_and_the_last_refusal_maps_to_the_hierarchy(
        corpus: tuple[HostedCorpus, Script, list[float]]) -> None:
    hosted, script, waits = corpus
    script.steps[:] = [429] * 4
    with pytest.raises(RateLimitedError):
        hosted.content_hashes("x", ["a"])
    assert script.seen == 4 and waits == [0.25, 0.5, 1.0]  # exponential, capped at cap_s; 3 waits for 4 tries
    script.steps[:] = [503] * 4
    with pytest.raises(OverloadedError):
        hosted.count("x")
    script.steps[:] = [502] * 4
    with pytest.raises(RemoteIndexError):
        hosted.count("x")


def test_a_bad_request_is_not_retried(corpus: tuple[HostedCorpus, Script, list[float]]) -> None:
    hosted, script, waits = corpus
    with pytest.raises(InvalidInputError):  # the real server refuses a vector of the wrong dimension: 400
        hosted.search_dense("x", __import__("numpy").ones(DIM + 1), 3, None)
    assert script.seen == 1 and waits == []


def test_a_timeout_is_retried_then_succeeds_or_maps_to_hosted_timeout(
        corpus: tuple[HostedCorpus, Script, list[float]]) -> None:
    hosted, script, waits = corpus
    script.steps[:] = ["hang"]
    assert hosted.search_text("x", "anything", 3, None) == []
    assert script.seen == 2 and waits == [0.25]
    script.steps[:] = ["hang"] * 4
    with pytest.raises(HostedTimeoutError) as raised:
        hosted.search_text("x", "anything", 3, None)
    assert raised.value.http_status == 504 and script.seen == 6


def test_backoff_schedule_with_jitter() -> None:
    """Full jitter: each wait drawn from [0, min(cap, base * 2**retry)]; the draws come from ``uniform``."""
    bounds: list[tuple[float, float]] = []
    policy = RetryPolicy(attempts=6, base_s=0.1, cap_s=0.5, uniform=lambda a, b: bounds.append((a, b)) or b / 2)
    assert [policy.delay(n) for n in range(5)] == [0.05, 0.1, 0.2, 0.25, 0.25]
    assert bounds == [(0.0, 0.1), (0.0, 0.2), (0.0, 0.4), (0.0, 0.5), (0.0, 0.5)]


def test_settings_build_the_policy(tmp_path: Path) -> None:
    settings = VectorSettings(backend="pinecone_documents", host="http://127.0.0.1:9", retries=2, retry_base_s=0.1,
                              retry_max_s=0.3)
    policy = HostedCorpus(object(), settings).policy
    assert (policy.attempts, policy.base_s, policy.cap_s) == (3, 0.1, 0.3)
