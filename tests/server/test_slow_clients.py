"""Slow clients against the real server (``serve``'s connection limits) over raw sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rag_serving import BEES, extractive_settings, running_server

from localrag.engine import LocalRAG

pytestmark = pytest.mark.server
WAIT_S = 60  # generous: the server's own timeouts are 1-2 s, a loaded machine may be slow


@pytest.fixture
def guarded(tmp_path: Path, fake_embedder: object, request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    header_timeout_s = getattr(request, "param", 1.0)
    settings = extractive_settings(header_timeout_s=header_timeout_s, body_timeout_s=2.0, max_connections_per_ip=40)
    with LocalRAG(tmp_path / "d", settings=settings, embedder=fake_embedder) as rag:  # type: ignore[arg-type]
        rag.add([BEES])
        with running_server(rag.path, rag=rag, guarded=True) as url:
            yield url, int(url.rsplit(":", 1)[1])


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (recv blocks, up to WAIT_S)."""
    data = b""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    else:
        raise AssertionError(f"the server kept the connection open; got {data[:200]!r}")
    return data


def stalled_body(port: int, path: str = "/v1/search") -> socket.socket:
    sock = connect(port)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n")
    sock.sendall(head.encode() + b'{"query": "' + b"x" * 1000)
    return sock


def test_stalled_bodies_get_408_and_are_closed_while_the_server_answers(guarded: tuple[str, int]) -> None:
    url, port = guarded
    socks = [stalled_body(port) for _ in range(20)] + [stalled_body(port, "/data/idx/query")]
    try:
        assert httpx.get(f"{url}/healthz", timeout=WAIT_S).status_code == 200  # not blocked by them
        replies = [read_until_closed(s) for s in socks]
    finally:
        for s in socks:
            s.close()
    for reply in replies[:-1]:
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b'"code": 408' in reply and b"not received within" in reply
    assert replies[-1].startswith(b"HTTP/1.1 408") and b'"details": []' in replies[-1]  # Pinecone's shape
    r = httpx.post(f"{url}/v1/search", json={"query": "honeybees"}, timeout=WAIT_S)
    assert r.status_code == 200 and r.json()["hits"][0]["doc_id"] == "bees"


def test_stalled_headers_are_closed(guarded: tuple[str, int]) -> None:
    _, port = guarded
    partial, idle = connect(port), connect(port)
    try:
        partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert read_until_closed(partial).startswith(b"HTTP/1.1 408")
        assert read_until_closed(idle) == b""  # nothing sent: closed without a reply
    finally:
        partial.close()
        idle.close()


@pytest.mark.parametrize("guarded", [120.0], indirect=True)  # the held connections must not time out
def test_connections_per_address_are_capped(guarded: tuple[str, int]) -> None:
    url, port = guarded
    held = [connect(port) for _ in range(40)]
    try:
        extra = connect(port)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_until_closed(extra) == b""  # over the cap: closed at once, nothing served
        extra.close()
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + WAIT_S  # the server notices the closed sockets asynchronously
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=WAIT_S).status_code == 200:
                break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the cap never freed up"
            time.sleep(0.05)
