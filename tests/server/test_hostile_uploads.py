"""A real ``localrag serve`` fed hostile files: each upload is refused or bounded, ``/healthz`` answers within
a second all the while (parsing runs in the worker process, so the event loop stays free), and SIGTERM stops
the server within seconds even while a file is being parsed (the worker is killed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from hostile import (
    alive,
    archive_bomb,
    binary_blob,
    busy,
    children,
    docx_bomb,
    flat_html,
    nested_bomb,
    nested_html,
    pdf_pages,
)
from threaded_server import free_port

pytestmark = [pytest.mark.server, pytest.mark.model]

REPO = Path(__file__).resolve().parents[2]
BASE_ENV = {"LOCALRAG_GENERATE__PROVIDERS": "extractive", "LOCALRAG_EMBED__THREADS": "1"}


@contextmanager
def cli_server(data: Path, **settings: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, **BASE_ENV, **settings, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "localrag.cli", "serve", "--data", str(data), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "the server exited"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


class HealthWatch:
    """Polls /healthz with a 1 s client timeout from a thread; any miss is recorded."""

    def __init__(self, url: str) -> None:
        self.url, self.ok, self.misses = url, 0, []  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=1.0) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(f"{self.url}/healthz").status_code
                    if status == 200:
                        self.ok += 1
                    else:
                        self.misses.append(f"status {status}")
                except httpx.HTTPError as e:
                    self.misses.append(repr(e))
                self._stop.wait(0.1)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def upload(url: str, name: str, data: bytes) -> httpx.Response:
    return httpx.post(f"{url}/v1/documents", files={"file": (name, data)}, timeout=300)


def test_hostile_uploads_are_refused_while_healthz_stays_responsive(tmp_path: Path) -> None:
    cases = [
        ("bomb.docx", archive_bomb(".docx", 30), 413, "MB uncompressed from"),
        ("bomb.xlsx", archive_bomb(".xlsx", 30), 413, "zip bomb: 30 MB uncompressed"),
        ("bomb.epub", archive_bomb(".epub", 30), 413, "zip bomb: 30 MB uncompressed"),
        ("nested.docx", nested_bomb(20), 413, "zip bomb: 20 MB uncompressed"),
        ("many.pdf", pdf_pages(6000), 413, "PDF declares 6000 pages, over the limit of 5000"),
        ("photo.txt", binary_blob(), 400, "binary content (not UTF-8, NUL bytes) in a .txt file"),
        # two million paragraphs: a minute and gigabytes in BeautifulSoup, stopped at the time limit
        ("flat.html", flat_html(2_000_000), 413, "parsing took longer than 5 s (ingest.parse_timeout_s)"),
    ]
    with cli_server(tmp_path / "data", LOCALRAG_INGEST__PARSE_TIMEOUT_S="5") as (url, _):
        # Loading the embedder holds the GIL for most of a second in onnxruntime: done before the watch,
        # which is about parsing.
        warm = httpx.post(f"{url}/v1/documents", json={"doc_id": "warm", "text": "A first document."}, timeout=300)
        assert warm.status_code == 201, warm.text
        with HealthWatch(url) as health:
            _upload_all(url, cases)
    assert health.misses == [], f"/healthz missed its 1 s deadline: {health.misses[:5]}"
    assert health.ok >= 10


def _upload_all(url: str, cases: list[tuple[str, bytes, int, str]]) -> None:
    for name, data, status, reason in cases:
        response = upload(url, name, data)
        assert response.status_code == status, (name, response.text)
        assert reason in response.json()["error"]["message"], (name, response.text)
    deep = upload(url, "deep.html", nested_html(100_000))
    assert deep.status_code == 201 and deep.json()["added"] == ["deep.html"], deep.text
    hits = httpx.post(f"{url}/v1/search", json={"query": "deep text", "k": 1}, timeout=120).json()
    assert hits["hits"][0]["doc_id"] == "deep.html"


def test_sigterm_stops_the_server_mid_parse(tmp_path: Path) -> None:
    # The zip checks off, so python-docx chews on 30 MB of XML for half a minute in the worker.
    settings = {"LOCALRAG_INGEST__MAX_ZIP_RATIO": "1e9", "LOCALRAG_INGEST__MAX_UNZIPPED_MB": "1e6",
                "LOCALRAG_INGEST__PARSE_TIMEOUT_S": "600"}
    with cli_server(tmp_path / "data", **settings) as (url, proc):
        replies: list[object] = []
        sender = threading.Thread(target=lambda: replies.append(_try_upload(url, "slow.docx", docx_bomb(30))),
                                  daemon=True)
        sender.start()
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while not workers and time.monotonic() < deadline:
            workers = [pid for pid in children(proc.pid) if busy(pid)]
            time.sleep(0.1)
        assert workers, "no parser worker of the server started parsing"
        with HealthWatch(url) as health:
            time.sleep(2)
        assert health.misses == [] and health.ok >= 3, health.misses
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)  # the CLI allows open requests 5 s, then the lifespan kills the worker
        except subprocess.TimeoutExpired:
            pytest.fail("SIGTERM did not stop the server mid-parse within 30 s")
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in workers), "the parser worker outlived the server"
        sender.join(timeout=30)


def _try_upload(url: str, name: str, data: bytes) -> object:
    try:
        return upload(url, name, data)
    except httpx.HTTPError as e:  # the server went away mid-request: expected here
        return e
