"""The event bus, GET /v1/events (server-sent events) with a watched folder, and ``localrag sync``."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from polling import TIMEOUT_S, wait_for
from threaded_server import app_in_thread

from localrag.cli import main
from localrag.engine import LocalRAG
from localrag.errors import InvalidInputError
from localrag.events import Event, EventBus
from localrag.server.app import create_app


def test_bus_subscribe_filter_unsubscribe_and_a_failing_listener() -> None:
    bus = EventBus()
    assert not bus.active
    got: list[Event] = []
    deletes: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    bus.subscribe(broken)
    stop_all = bus.subscribe(got.append)
    bus.subscribe(deletes.append, kinds={"delete"})
    bus.publish("ingest", doc_id="a", path="/x/a.txt")
    bus.publish("delete", doc_id="a")
    stop_all()
    bus.unsubscribe(deletes.append)
    bus.unsubscribe(broken)
    bus.publish("delete", doc_id="b")
    assert [(e.kind, e.doc_id) for e in got] == [("ingest", "a"), ("delete", "a")]
    assert [e.doc_id for e in deletes] == ["a"] and got[1].seq > got[0].seq
    assert not bus.active
    with pytest.raises(InvalidInputError, match="unknown event kinds"):
        bus.subscribe(got.append, kinds={"ingest", "explode"})


def test_sse_stream_reports_a_watched_folder(fake_rag: LocalRAG, tmp_path: Path) -> None:
    folder = tmp_path / "watched"
    folder.mkdir()
    app = create_app(tmp_path / "data", rag=fake_rag, watch=[folder])
    with app_in_thread(app, timeout_graceful_shutdown=5) as url, \
            httpx.Client(base_url=url, timeout=TIMEOUT_S) as client:
        assert client.get("/v1/events", params={"kinds": "ingest,nonsense"}).status_code == 400
        assert "/v1/events" not in client.get("/openapi.json").json()["paths"]  # never-ending: kept out of the schema
        lines: list[str] = []
        opened = threading.Event()
        response_box: list[httpx.Response] = []

        def read() -> None:
            with client.stream("GET", "/v1/events", params={"kinds": "ingest,delete"}) as response:
                response_box.append(response)
                assert response.headers["content-type"].startswith("text/event-stream")
                for line in response.iter_lines():
                    opened.set()  # the first line is the subscription comment
                    lines.append(line)
                    if line.startswith("data: ") and json.loads(line[6:])["kind"] == "delete":
                        return  # leaving the block closes the stream from this thread

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert opened.wait(TIMEOUT_S), "the event stream did not open"
        (folder / "note.txt").write_text("zqssefile " + "orbit lantern meadow " * 30)

        def events() -> list[dict[str, Any]]:
            return [json.loads(line[len("data: "):]) for line in list(lines) if line.startswith("data: ")]

        wait_for(lambda: any(e["kind"] == "ingest" and e["path"].endswith("note.txt") for e in events()),
                 "the ingest event of a file saved in the watched folder")
        hit = client.post("/v1/search", json={"query": "zqssefile", "k": 1, "mode": "keyword"}).json()
        assert hit["hits"][0]["doc_id"] == next(e["doc_id"] for e in events() if e["kind"] == "ingest")
        (folder / "note.txt").unlink()
        wait_for(lambda: any(e["kind"] == "delete" for e in events()), "the delete event")
        assert {e["kind"] for e in events()} == {"ingest", "delete"}  # the kinds filter held
        assert any(line.startswith("event: delete") for line in lines)
        reader.join(TIMEOUT_S)
        assert not reader.is_alive() and response_box[0].is_closed


def test_cli_sync_reports_and_resyncs(fake_rag: LocalRAG, tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    import localrag.cli.library as library

    class Borrowed:  # the CLI closes what it opens; the fixture owns this engine
        def __enter__(self) -> LocalRAG:
            return fake_rag

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(library, "open_rag", lambda args: Borrowed())
    folder = tmp_path / "docs"
    (folder / "node_modules").mkdir(parents=True)
    (folder / "a.txt").write_text("zqclifile " + "harbor winter " * 40)
    (folder / "node_modules" / "lib.txt").write_text("vendored " * 40)
    assert main(["sync", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 1 and report["unchanged"] == 0 and report["skipped"] == []
    os.remove(folder / "a.txt")
    assert main(["sync", str(folder), "--no-default-excludes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("added 1, updated 0, unchanged 0, deleted 1,")
    assert main(["sync", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_cli_watch_prints_events_and_stops_on_sigint(fake_rag: LocalRAG, tmp_path: Path, monkeypatch: Any,
                                                     capsys: Any) -> None:
    import signal

    import localrag.cli.library as library

    class Borrowed:
        def __enter__(self) -> LocalRAG:
            return fake_rag

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(library, "open_rag", lambda args: Borrowed())
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "first.txt").write_text("zqfirstcli " + "harbor winter " * 40)
    failures: list[BaseException] = []

    def drive() -> None:  # on a helper thread: the watch runs on the main thread, where signals land
        try:
            wait_for(lambda: bool(fake_rag.search("zqfirstcli", k=1, mode="keyword")), "the first sync")
            (folder / "second.txt").write_text("zqsecondcli " + "orbit meadow " * 40)
            wait_for(lambda: bool(fake_rag.search("zqsecondcli", k=1, mode="keyword")), "the watched change")
        except BaseException as e:  # reported by the main thread after the watch stops
            failures.append(e)
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    helper = threading.Thread(target=drive, daemon=True)
    helper.start()
    assert main(["watch", str(folder), "--json"]) == 0
    helper.join(TIMEOUT_S)
    assert not failures, failures
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[0])["kind"] == "ready"
    ingested = [json.loads(line) for line in lines[1:-1] if line.startswith("{")]
    assert any(e["kind"] == "ingest" and e["path"].endswith("second.txt") for e in ingested)
    assert lines[-1] == "localrag watch stopped (SIGINT)"
