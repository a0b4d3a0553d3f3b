"""The web app's read endpoints on a real server (uvicorn on 127.0.0.1, a real SQLite store, FAISS and
BM25): one document with its chunks and kind, the list's ``q`` and ``total``, namespaces, feedback,
the settings with secrets hidden, ``rerank`` on search, and the watched folders' status.

The embedder is the fake one (the server layer is under test, not the model); files go through the
real loaders. Waits poll a condition for up to a minute, never a fixed sleep.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pdfgen import make_pdf
from polling import TIMEOUT_S, wait_for
from rag_serving import BEES, KEY, TIDES, extractive_settings, running_server

from localrag.docview import MAX_VIEW_CHARS, document_view, kind_of
from localrag.engine import LocalRAG
from localrag.ingest.sync import SyncReport
from localrag.ingest.watch import WatchStatus
from localrag.types import Document, SkippedFile

pytestmark = pytest.mark.server

OPENAI_SECRET = "sk-not-a-real-openai-key-0123456789"
TRANSCRIPT = "[00:01.5] Please send the quarterly report.\n[00:04.0] The finance team needs it by Friday.\n" \
             "[1:02:03.4] That is all for today."
MEDIA = Document("call.mp3", TRANSCRIPT, source="/rec/call.mp3", title="call.mp3",
                 metadata={"file_type": "audio", "duration": 3730.0})
MAIL = Document("/mail/a.eml", "From: ana@example.org\nSubject: Budget\n\nThe budget is approved.",
                source="/mail/a.eml", title="Budget", metadata={"file_type": "eml", "subject": "Budget"})
UNICODE = Document("ärger", "Ärger im Büro: die Drucker streiken wieder.", title="ÄRGER IM BÜRO")




@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LocalRAG, Path]]:
    from fakes import HashingEmbedder

    root = tmp_path_factory.mktemp("webapi")
    files = root / "files"
    files.mkdir()
    (files / "report.pdf").write_bytes(make_pdf([["Quarterly figures rose."], ["Page two has the zqsecond fact."]]))
    (files / "table.csv").write_text("Metric,Value\nARR,1.5M\nChurn,2%\n")
    settings = extractive_settings(api_keys=KEY, metrics_flush_s=0).with_overrides(
        {"generate": {"api_key": OPENAI_SECRET, "base_url": "http://user:hunter2@127.0.0.1:9/v1"},
         "rerank": {"model": "none"}})
    rag = LocalRAG(root / "data", settings=settings, embedder=HashingEmbedder())
    rag.add([BEES, TIDES, MEDIA, MAIL, UNICODE])
    rag.add([files / "report.pdf", files / "table.csv"])
    rag.add([Document("moon", "The moon is a satellite.", title="Moon")], namespace="space")
    with running_server(root / "data", rag=rag) as url:
        yield url, rag, files
    rag.close()


@pytest.fixture
def client(served: tuple[str, LocalRAG, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[0], headers={"Authorization": f"Bearer {KEY}"}, timeout=TIMEOUT_S) as c:
        yield c


def doc_path(doc_id: str) -> str:
    return "/v1/documents/" + quote(doc_id, safe="")  # as the web app sends it (encodeURIComponent)


def test_every_new_route_needs_the_key(served: tuple[str, LocalRAG, Path]) -> None:
    with httpx.Client(base_url=served[0], timeout=TIMEOUT_S) as anonymous:
        for path in ("/v1/documents/bees", "/v1/namespaces", "/v1/feedback", "/v1/settings", "/v1/watch",
                     "/v1/documents?q=bee"):
            response = anonymous.get(path)
            assert response.status_code == 401, path
            assert "key" in response.json()["error"]["message"].lower()
        assert anonymous.get("/v1/namespaces", headers={"Authorization": "Bearer wrong-key-0123456789"}
                             ).status_code == 401


def test_document_view_of_plain_text(client: httpx.Client, served: tuple[str, LocalRAG, Path]) -> None:
    body = client.get("/v1/documents/bees").json()
    assert (body["doc_id"], body["namespace"], body["title"], body["kind"]) == ("bees", "", "Honeybees", "text")
    assert body["text"] == BEES.text and body["text_chars"] == len(BEES.text) and body["truncated"] is False
    assert body["metadata"] == {"topic": "bees"} and body["page_starts"] == [] and "segments" not in body
    chunks = body["chunks"]
    assert [c["ordinal"] for c in chunks] == list(range(len(chunks))) and chunks
    ids = {h.chunk_id for h in served[1].search("waggle dance", k=10, mode="keyword") if h.doc_id == "bees"}
    assert ids and ids <= {c["chunk_id"] for c in chunks}
    for c in chunks:
        assert 0 <= c["char_start"] < c["char_end"] <= len(body["text"]) and c["page"] is None


def test_document_view_of_a_pdf_gives_pages(client: httpx.Client, served: tuple[str, LocalRAG, Path]) -> None:
    pdf = (served[2] / "report.pdf").as_posix()
    body = client.get(doc_path(pdf)).json()
    assert body["kind"] == "pdf" and body["source"] == pdf and len(body["page_starts"]) == 2
    second = body["text"].index("zqsecond")
    assert body["page_starts"][1] <= second
    starts = body["page_starts"]
    for c in body["chunks"]:  # a chunk's page is the page its first character is on
        assert c["page"] == max(i + 1 for i, at in enumerate(starts) if at <= c["char_start"])


def test_document_view_of_a_sheet_and_of_mail(client: httpx.Client, served: tuple[str, LocalRAG, Path]) -> None:
    listed = client.get("/v1/documents", params={"q": "table.csv"}).json()
    assert listed["total"] == 1
    sheet = client.get(doc_path(listed["documents"][0]["doc_id"])).json()
    assert sheet["kind"] == "sheet" and (sheet["metadata"]["row_start"], sheet["metadata"]["row_end"]) == (2, 3)
    assert "ARR" in sheet["text"]
    mail = client.get(doc_path(MAIL.doc_id)).json()  # an id with slashes, as file paths are
    assert mail["kind"] == "mail" and mail["doc_id"] == "/mail/a.eml" and mail["text"] == MAIL.text


def test_document_view_of_a_recording_gives_segments(client: httpx.Client) -> None:
    body = client.get("/v1/documents/call.mp3").json()
    assert body["kind"] == "media"
    text = body["text"]
    assert [s["start_s"] for s in body["segments"]] == [1.5, 4.0, 3723.4]
    assert [text[s["char_start"]:].split("]")[0] for s in body["segments"]] == ["[00:01.5", "[00:04.0", "[1:02:03.4"]


def test_document_view_errors(client: httpx.Client) -> None:
    missing = client.get("/v1/documents/no-such-doc")
    assert missing.status_code == 404 and "no-such-doc" in missing.json()["error"]["message"]
    assert client.get("/v1/documents/moon").status_code == 404  # it lives in another namespace
    assert client.get("/v1/documents/moon", params={"namespace": "space"}).json()["text"] == "The moon is a satellite."
    assert client.get("/v1/documents/bees", params={"namespace": "x" * 513}).status_code == 400


def test_long_text_is_cut_at_the_limit(tmp_path: Path, fake_embedder: Any) -> None:
    with LocalRAG(tmp_path / "data", embedder=fake_embedder) as rag:
        rag.add(Document("long", "word " * 2000, title="Long"))
        view = document_view(rag.store, "long", "", max_chars=1000)
        assert view.truncated and len(view.text) == 1000 and view.text_chars == 10_000
        assert view.chunks[-1].char_end > 1000  # chunk offsets still index the full text
        assert not rag.document_view("long").truncated and MAX_VIEW_CHARS >= 5_000_000


def test_kinds_follow_what_the_loaders_store() -> None:
    assert kind_of(Document("a", "x", page_starts=(0,))) == "pdf"
    assert kind_of(Document("a", "x", source="/d/scan.PDF")) == "pdf"
    assert kind_of(Document("a", "x", metadata={"row_start": 2, "row_end": 9, "file_type": "xlsx"})) == "sheet"
    assert kind_of(Document("a", "[00:00.0] hi")) == "media"
    assert kind_of(Document("a", "hi", metadata={"file_type": "video"})) == "media"
    assert kind_of(Document("a", "hi", metadata={"file_type": "mbox"})) == "mail"
    # a PDF attached to a mail is shown as a PDF (its own file_type), the message itself as mail
    assert kind_of(Document("m#attachment=1:a.pdf", "x", source="/m.eml", metadata={"file_type": "pdf"})) == "pdf"
    assert kind_of(Document("a", "[not a time] hi", metadata={"file_type": "md"})) == "text"


def test_document_list_filters_by_q_and_counts(client: httpx.Client) -> None:
    everything = client.get("/v1/documents").json()
    assert everything["total"] == len(everything["documents"]) == 7
    bees = client.get("/v1/documents", params={"q": "HONEY"}).json()  # matches the title, any case
    assert bees["total"] == 1 and [d["doc_id"] for d in bees["documents"]] == ["bees"]
    assert client.get("/v1/documents", params={"q": "/mail/"}).json()["total"] == 1  # the source
    assert client.get("/v1/documents", params={"q": "ärger im"}).json()["total"] == 1  # not only ASCII folds
    assert client.get("/v1/documents", params={"q": "%"}).json()["total"] == 0  # a wildcard is a character
    page = client.get("/v1/documents", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 7 and len(page["documents"]) == 2
    assert [d["doc_id"] for d in page["documents"]] == [d["doc_id"] for d in everything["documents"][2:4]]
    assert client.get("/v1/documents", params={"q": "x" * 1025}).status_code == 400


def test_namespaces_with_counts(client: httpx.Client, served: tuple[str, LocalRAG, Path]) -> None:
    listed = client.get("/v1/namespaces").json()["namespaces"]
    assert [n["name"] for n in listed] == ["", "space"]
    stats = served[1].store.stats()["namespaces"]
    assert listed[1] == {"name": "space", "documents": 1, "chunks": stats["space"]["chunks"]}
    assert listed[0]["documents"] == 7 and listed[0]["chunks"] == stats[""]["chunks"]


def test_feedback_is_listed_newest_first(client: httpx.Client, served: tuple[str, LocalRAG, Path]) -> None:
    rag = served[1]
    bee_chunk = rag.search("waggle", k=1, mode="keyword")[0].chunk_id
    moon_chunk = rag.search("moon satellite", k=1, mode="keyword", namespace="space")[0].chunk_id
    for body in ({"query": "zqfirst", "chunk_id": bee_chunk, "relevant": True},
                 {"query": "zqsecond", "chunk_id": moon_chunk, "relevant": False, "namespace": "space"},
                 {"query": "zqthird", "chunk_id": bee_chunk, "relevant": False}):
        assert client.post("/v1/feedback", json=body).status_code == 201
    everything = client.get("/v1/feedback").json()["feedback"]
    ours = [f for f in everything if f["query"].startswith("zq")]
    assert [f["query"] for f in ours] == ["zqthird", "zqsecond", "zqfirst"]
    assert ours[0] == {**ours[0], "namespace": "", "chunk_id": bee_chunk, "doc_id": "bees", "relevant": False}
    assert isinstance(ours[0]["created_at"], float)
    default_ns = client.get("/v1/feedback", params={"namespace": "", "limit": 1}).json()["feedback"]
    assert [f["query"] for f in default_ns] == ["zqthird"]
    assert [f["query"] for f in client.get("/v1/feedback", params={"namespace": "space"}).json()["feedback"]] == [
        "zqsecond"]
    assert client.get("/v1/feedback", params={"limit": 0}).status_code == 400


def test_settings_hide_secrets(client: httpx.Client, served: tuple[str, LocalRAG, Path]) -> None:
    response = client.get("/v1/settings")
    body = response.json()
    assert KEY not in response.text and OPENAI_SECRET not in response.text and "hunter2" not in response.text
    settings = body["settings"]
    assert settings["server"]["api_keys"] == "***" and settings["generate"]["api_key"] == "***"
    assert settings["generate"]["base_url"] == "http://user:***@127.0.0.1:9/v1"
    assert settings["generate"]["providers"] == "extractive" and settings["rerank"]["model"] == "none"
    assert settings["vector"]["api_key_env"] == "PINECONE_API_KEY"  # a variable's name, not a secret
    assert settings["chunk"]["chunk_tokens"] == served[1].settings.chunk.chunk_tokens
    assert body["data_dir"] == str(served[1].path.resolve())


def test_settings_without_keys_say_so(tmp_path: Path, fake_embedder: Any) -> None:
    with LocalRAG(tmp_path / "data", settings=extractive_settings(), embedder=fake_embedder) as rag, \
            running_server(tmp_path / "data", rag=rag) as url:
        settings = httpx.get(url + "/v1/settings", timeout=TIMEOUT_S).json()["settings"]
        assert settings["server"]["api_keys"] == "" and settings["generate"]["api_key"] == ""
        assert httpx.get(url + "/v1/watch", timeout=TIMEOUT_S).json() == {"folders": []}  # no --watch


def test_search_takes_rerank(client: httpx.Client) -> None:
    plain = client.post("/v1/search", json={"query": "waggle dance", "k": 2, "rerank": False})
    assert plain.status_code == 200 and "rerank" not in plain.json()["timings_ms"]
    refused = client.post("/v1/search", json={"query": "waggle dance", "k": 2, "rerank": True})
    assert refused.status_code == 400 and "reranker" in refused.json()["error"]["message"]  # rerank.model "none"
    assert client.post("/v1/search", json={"query": "waggle", "rerank": "yes"}).status_code == 400


@pytest.mark.model
def test_search_reranks_with_the_shipped_model(tmp_path: Path, fake_embedder: Any) -> None:
    settings = extractive_settings().with_overrides({"rerank": {"threads": 1}})
    with LocalRAG(tmp_path / "data", settings=settings, embedder=fake_embedder) as rag, \
            running_server(tmp_path / "data", rag=rag) as url:
        rag.add([BEES, TIDES])
        body = httpx.post(url + "/v1/search", json={"query": "how do bees show where flowers are", "k": 1,
                                                    "rerank": True}, timeout=TIMEOUT_S).json()
        assert "rerank" in body["timings_ms"] and body["hits"][0]["doc_id"] == "bees"


def test_watch_status_reports_syncs_skips_and_errors(fake_rag: LocalRAG, tmp_path: Path) -> None:
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "first.txt").write_text("zqwatchfirst " + "orbit lantern meadow " * 30)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf at all")
    app = create_watching_app(fake_rag, tmp_path, folder)
    with running_app(app) as url, httpx.Client(base_url=url, timeout=TIMEOUT_S) as client:
        def folders() -> list[dict[str, Any]]:
            listed: list[dict[str, Any]] = client.get("/v1/watch").json()["folders"]
            return listed

        def lasting_skip() -> list[dict[str, Any]]:  # a file just written is first skipped for a retry
            return [s for s in folders()[0]["skips"] if s["path"].endswith("broken.pdf") and not s["retry"]]

        # sync 1 is the restart reconcile, sync 2 the one once the watcher runs; later ones follow changes
        wait_for(lambda: bool(lasting_skip()) and folders()[0]["syncs"] >= 2, "the broken PDF's skip, once it settled")
        first = folders()[0]
        assert first["path"] == folder.resolve().as_posix() and first["errors"] == [] and first["syncs"] >= 2
        assert first["state"] in ("syncing", "watching") and first["last_sync"] is not None
        assert "pdf" in lasting_skip()[0]["reason"].lower() and lasting_skip()[0]["time"] > 0
        wait_for(lambda: bool(fake_rag.search("zqwatchfirst", k=1, mode="keyword")), "the first file")

        before = folders()[0]["syncs"]
        (folder / "second.txt").write_text("zqwatchsecond " + "copper harbor " * 30)

        def added_second() -> bool:  # the reconcile that added it (after a retry or not) is reported
            now = folders()[0]
            return now["syncs"] > before and now["state"] == "watching" and now["last_sync"]["added"] == 1

        wait_for(added_second, "the new file's sync report")
        assert fake_rag.search("zqwatchsecond", k=1, mode="keyword")
        assert folders()[0]["last_sync"]["full"] is False  # only the changed path was reconciled

        shutil.rmtree(folder)  # the folder itself goes: the reconcile fails and says so
        wait_for(lambda: folders()[0]["state"] == "error" and bool(folders()[0]["errors"]), "the error")
        reason = folders()[0]["errors"][0]["reason"]
        assert "not a folder" in reason or "watch stopped" in reason  # as the reconcile or the watcher finds it
    assert app.state.rag.watch.state in ("stopped", "error")


def create_watching_app(rag: LocalRAG, tmp_path: Path, folder: Path) -> Any:
    from localrag.server import create_app

    return create_app(tmp_path / "data", rag=rag, watch=[folder])


def running_app(app: Any) -> Any:
    from threaded_server import app_in_thread

    return app_in_thread(app, timeout_graceful_shutdown=5)


def test_watch_status_keeps_the_newest_notices_per_folder(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    status = WatchStatus([a, b], keep=3)
    assert [f["state"] for f in status.snapshot()] == ["starting", "starting"]
    skips = tuple(SkippedFile(f"{a.as_posix()}/f{i}.bin", f"reason {i}") for i in range(5))
    status.synced(SyncReport(added=("x",), skipped=(*skips, SkippedFile(f"{b.as_posix()}/g.bin", "busy")),
                             retry=(f"{b.as_posix()}/g.bin",)), full=True)
    first, second = status.snapshot()
    assert [s["reason"] for s in first["skips"]] == ["reason 4", "reason 3", "reason 2"]  # newest first, 3 kept
    assert [(s["reason"], s["retry"]) for s in second["skips"]] == [("busy", True)]
    assert first["last_sync"]["added"] == 1 and first["last_sync"]["skipped"] == 6 and first["syncs"] == 1
    status.error("reconcile failed: disk gone")  # about no file in particular: every folder shows it
    assert all(f["state"] == "error" and f["errors"][0]["reason"] == "reconcile failed: disk gone"
               for f in status.snapshot())
    status.error("cannot read", path=f"{b.as_posix()}/g.bin")
    assert [len(f["errors"]) for f in status.snapshot()] == [1, 2]
