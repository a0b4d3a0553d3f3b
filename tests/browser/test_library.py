"""The library page in chromium: drag-and-drop upload, filter, document view with chunks, delete, the
server's error for a bad file, namespaces, and a watched folder reported live from GET /v1/events.

One real server (real embedder, 127.0.0.1) watches a temporary folder for the whole module; each test's
page may talk only to it (the ``page`` fixture checks every request).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pdfgen import make_pdf
from threaded_server import app_in_thread
from webharness import SERVED_ORIGINS, Served, origin, wait_ready, web_settings

from localrag.engine import LocalRAG
from localrag.server import create_app
from localrag.server.app import render_error
from localrag.server.connections import uvicorn_options

SEED = "seed-notes.md"


def long_text(topic: str, words: int = 420) -> str:
    """A text of several 200-token chunks, the same on every machine."""
    vocabulary = ["river", "harbour", "lantern", "orchard", "meadow", "granite", "compass", "willow", "falcon"]
    body = " ".join(vocabulary[(i * 7) % len(vocabulary)] + ("." if i % 12 == 11 else "") for i in range(words))
    return f"# {topic.title()}\n\nThis page is about {topic}. {body}\n"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Iterator[tuple[Served, Path]]:
    """A server as ``localrag serve --watch FOLDER`` runs it; the folder starts with one file."""
    base = tmp_path_factory.mktemp("web-library")
    folder = base / "watched"
    folder.mkdir()
    (folder / SEED).write_text("# Seed notes\n\nThe lighthouse keeper logs the tides every morning.\n")
    data = base / "data"
    settings = web_settings()
    rag = LocalRAG(data, settings=settings, embedder=real_embedder)
    app = create_app(data, rag=rag, watch=[folder])
    try:
        with app_in_thread(app, **uvicorn_options(settings.server, render_error)) as url:
            SERVED_ORIGINS.add(origin(url))
            try:
                yield Served(url, rag, data), folder
            finally:
                SERVED_ORIGINS.discard(origin(url))
    finally:
        rag.close()


@pytest.fixture
def client(library: tuple[Served, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=library[0].url, timeout=120) as c:
        yield c


def open_library(page: Any, served: Served) -> None:
    page.goto(f"{served.url}/#/library")
    wait_ready(page)
    page.wait_for_selector("section.page-library h1")


def listed_ids(client: httpx.Client, namespace: str = "", q: str = "") -> list[str]:
    answer = client.get("/v1/documents", params={"namespace": namespace, "q": q, "limit": 1000}).json()
    return [d["doc_id"] for d in answer["documents"]]


def row(page: Any, doc_id: str) -> Any:
    return page.locator(f'.lib-list tbody tr[data-doc="{doc_id}"]')


def drop_files(page: Any, files: list[tuple[str, str]]) -> None:
    """A real drag and drop onto the drop zone: dragenter, dragover, drop with a DataTransfer of Files."""
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const [name, text] of files) dt.items.add(new File([text], name, {type: 'text/markdown'}));
            return dt;
        }""",
        files,
    )
    for kind in ("dragenter", "dragover"):
        page.dispatch_event("#lib-drop", kind, {"dataTransfer": transfer})
    assert "over" in (page.get_attribute("#lib-drop", "class") or "")  # the zone shows it will take them
    page.dispatch_event("#lib-drop", "drop", {"dataTransfer": transfer})


def test_drop_filter_view_and_delete(library: tuple[Served, Path], client: httpx.Client, page: Any,
                                     shot: Any) -> None:
    served, _ = library
    open_library(page, served)
    drop_files(page, [("harbour-guide.md", long_text("harbours")), ("orchard-diary.md", long_text("orchards"))])
    for name in ("harbour-guide.md", "orchard-diary.md"):  # each file's own result, as the server gave it
        page.wait_for_selector(f'.upload-results li.added[data-file="{name}"]')
        assert "added" in page.inner_text(f'.upload-results li[data-file="{name}"] .result')
        row(page, name).wait_for()
    assert page.get_attribute(".upload-results", "aria-live") == "polite"
    assert {"harbour-guide.md", "orchard-diary.md"} <= set(listed_ids(client))
    shot(page, "library-list")
    drop_files(page, [("harbour-guide.md", long_text("harbours"))])  # the same bytes again
    again = page.wait_for_selector('.upload-results li.unchanged[data-file="harbour-guide.md"]')
    assert again.inner_text().endswith("unchanged")

    page.fill("#lib-filter", "ORCHARD")  # the server's q: case-insensitive, over id, title and source
    page.wait_for_selector(".lib-count:has-text('matching “ORCHARD”')")  # drawn with the rows it counts
    assert page.eval_on_selector_all(".lib-list tbody tr", "rows => rows.map(r => r.dataset.doc)") == \
        ["orchard-diary.md"]
    assert "of 1 documents" in page.inner_text(".lib-count")

    page.click('.lib-list button.doc-open[data-doc="orchard-diary.md"]')
    page.wait_for_selector(".lib-doc .lib-chunks tbody tr")
    stored = client.get("/v1/documents/orchard-diary.md").json()
    assert len(stored["chunks"]) >= 2  # long enough to show boundaries
    assert page.locator(".lib-doc .lib-chunks tbody tr").count() == len(stored["chunks"])
    assert page.locator(".lib-doc .lib-text .chunk-mark").count() == len(stored["chunks"])
    assert page.inner_text("#lib-doc-title") == stored["title"]
    assert page.evaluate("document.activeElement.id") == "lib-doc-title"  # focus moves to the opened view
    second = stored["chunks"][1]
    page.click(f'.lib-chunks tr[data-ordinal="{second["ordinal"]}"] button')
    highlighted = "".join(page.eval_on_selector_all(".lib-text .seg.sel", "s => s.map(e => e.textContent)"))
    assert highlighted == stored["text"][second["char_start"]:second["char_end"]]  # exactly the chunk's span
    overlap = page.locator(".lib-text .seg.overlap").count()
    assert overlap >= 1  # consecutive chunks share tokens, and the view shows where
    unlabelled = page.eval_on_selector_all(
        "section.page-library :is(input, select, button, textarea):not([aria-hidden=true])",
        """controls => controls.filter(c => !((c.labels && c.labels.length) || c.getAttribute('aria-label')
            || c.getAttribute('aria-labelledby') || (c.tagName === 'BUTTON' && c.textContent.trim())))
            .map(c => c.outerHTML)""")
    assert not unlabelled  # every control has a name a screen reader can say
    assert page.locator("section.page-library :is(input, select, button)").count() > 10  # and there are many
    page.evaluate("window.scrollTo(0, 0)")  # the click scrolled; the sticky bar would land mid-shot
    shot(page, "library-document")

    # delete by keyboard: the confirm step takes focus, Escape backs out, then confirm for real
    delete = row(page, "orchard-diary.md").locator("button.danger")
    delete.focus()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.textContent") == "Cancel"
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Delete orchard-diary.md"
    page.keyboard.press("Enter")
    shot(page, "library-delete-confirm")
    page.keyboard.press("Shift+Tab")  # from Cancel back to the confirming Delete
    page.keyboard.press("Enter")
    row(page, "orchard-diary.md").wait_for(state="detached")
    assert page.is_hidden(".lib-doc")  # the deleted document's view closed with it
    assert "orchard-diary.md" not in listed_ids(client)
    assert "harbour-guide.md" in listed_ids(client)


def test_paging(library: tuple[Served, Path], client: httpx.Client, page: Any) -> None:
    served, _ = library
    for i in range(23):
        body = {"doc_id": f"memo-{i:02d}", "text": f"Memo {i} about the quarterly rota.", "namespace": "memos"}
        assert client.post("/v1/documents", json=body).status_code == 201
    page.goto(f"{served.url}/#/library")
    wait_ready(page)
    page.select_option("#namespace", "memos")  # the nav's namespace drives the page
    page.wait_for_selector('.lib-list tbody tr[data-doc="memo-00"]')
    assert page.locator(".lib-list tbody tr").count() == 20
    assert page.inner_text(".lib-count") == "1–20 of 23 documents"
    assert page.is_disabled("text=← Previous")
    page.click("text=Next →")
    page.wait_for_selector('.lib-list tbody tr[data-doc="memo-22"]')
    assert page.eval_on_selector_all(".lib-list tbody tr", "rows => rows.map(r => r.dataset.doc)") == \
        ["memo-20", "memo-21", "memo-22"]
    assert page.inner_text(".lib-count") == "21–23 of 23 documents" and page.is_disabled("text=Next →")
    page.click("text=← Previous")
    page.wait_for_selector('.lib-list tbody tr[data-doc="memo-00"]')


def test_a_recordings_chunks_show_their_time(library: tuple[Served, Path], client: httpx.Client,
                                            page: Any) -> None:
    served, _ = library
    lines = [f"[{i // 6:02d}:{i % 6 * 10:02d}.0] Speaker {i % 3} talks about lighthouse number {i} and the tide."
             for i in range(60)]
    body = {"doc_id": "harbour-talk.mp3", "text": "\n".join(lines), "namespace": "talks",
            "metadata": {"file_type": "audio"}}
    assert client.post("/v1/documents", json=body).status_code == 201
    stored = client.get("/v1/documents/harbour-talk.mp3", params={"namespace": "talks"}).json()
    assert stored["kind"] == "media" and len(stored["chunks"]) >= 2
    expected = []
    for chunk in stored["chunks"]:  # the last transcript line starting at or before the chunk
        start = max(s["start_s"] for s in stored["segments"] if s["char_start"] <= chunk["char_start"])
        expected.append(f"{int(start // 60)}:{start % 60:04.1f}")
    page.goto(f"{served.url}/#/library")
    wait_ready(page)
    page.select_option("#namespace", "talks")
    page.click('.lib-list button.doc-open[data-doc="harbour-talk.mp3"]')
    page.wait_for_selector(".lib-chunks tbody tr")
    assert page.eval_on_selector_all(".lib-chunks th", "th => th.map(e => e.textContent)")[2] == "Time"
    times = page.eval_on_selector_all(".lib-chunks tbody td[data-label=Time]", "c => c.map(e => e.textContent)")
    assert times == expected and expected[-1] != "0:00.0"


def test_a_bad_file_shows_the_servers_error(library: tuple[Served, Path], client: httpx.Client, page: Any) -> None:
    served, _ = library
    hostile = b"%PDF-1.7\n" + bytes(range(256)) * 8  # a PDF header over garbage
    expected = client.post("/v1/documents", files={"file": ("broken.pdf", hostile, "application/pdf")})
    assert expected.status_code == 400
    message = expected.json()["error"]["message"]
    open_library(page, served)
    # the chooser path: the button is keyboard-reachable and opens this input
    assert page.get_attribute("#lib-files", "multiple") is not None
    with page.expect_file_chooser() as chooser:
        page.focus(".dropzone button.primary")
        page.keyboard.press("Enter")
    two_pages = make_pdf([["The ferry leaves at dawn."], ["The ferry returns at dusk."]])
    chooser.value.set_files([{"name": "broken.pdf", "mimeType": "application/pdf", "buffer": hostile},
                             {"name": "ferry.pdf", "mimeType": "application/pdf", "buffer": two_pages}])
    failed = page.wait_for_selector('.upload-results li.error[data-file="broken.pdf"]')
    assert failed.inner_text().endswith(f"error: {message}")
    page.wait_for_selector('.upload-results li.added[data-file="ferry.pdf"]')  # one bad file stops nothing
    assert "broken.pdf" not in listed_ids(client)

    page.click('.lib-list button.doc-open[data-doc="ferry.pdf"]')  # a PDF's view marks where pages begin
    page.wait_for_selector(".lib-doc .lib-chunks tbody tr")
    stored = client.get("/v1/documents/ferry.pdf").json()
    assert stored["kind"] == "pdf" and len(stored["page_starts"]) == 2
    marks = page.eval_on_selector_all(".lib-text .page-mark", "m => m.map(e => e.textContent)")
    assert marks == ["page 1", "page 2"]
    after_page_2 = page.eval_on_selector_all(".lib-text .page-mark", """marks => {
        let next = marks[1].nextElementSibling;  // past any chunk marker, the text that follows
        while (next && !next.classList.contains('seg')) next = next.nextElementSibling;
        return next.textContent;
    }""")
    assert after_page_2.strip()
    assert after_page_2.startswith(stored["text"][stored["page_starts"][1]:][:len(after_page_2)])
    pages = page.eval_on_selector_all(".lib-chunks tbody td[data-label=Page]", "c => c.map(e => e.textContent)")
    assert pages == [str(c["page"]) for c in stored["chunks"]]


def test_a_new_namespace_by_name(library: tuple[Served, Path], client: httpx.Client, page: Any) -> None:
    served, _ = library
    open_library(page, served)
    page.click("text=New namespace…")
    page.fill("#lib-ns-new", "travel")
    page.press("#lib-ns-new", "Enter")
    page.wait_for_selector('#namespace option[value="travel"]', state="attached")
    assert page.input_value("#namespace") == "travel"  # the nav's namespace: every page now uses it
    page.wait_for_selector("section.page-library .lib-count:has-text('No documents in travel')")
    drop_files(page, [("packing-list.md", "# Packing\n\nPassport, charger and a rain jacket.")])
    row(page, "packing-list.md").wait_for()
    assert listed_ids(client, "travel") == ["packing-list.md"]
    assert "packing-list.md" not in listed_ids(client)
    page.wait_for_selector("#lib-ns option:has-text('travel — 1 document')", state="attached")  # its count
    page.select_option("#lib-ns", "")
    page.wait_for_selector(f'.lib-list tbody tr:has-text("{SEED}")')  # the default namespace's list
    assert row(page, "packing-list.md").count() == 0


def test_watched_folder_live(library: tuple[Served, Path], client: httpx.Client, page: Any, shot: Any) -> None:
    served, folder = library
    open_library(page, served)
    item = page.locator(f'.watch-folder[data-path="{folder.as_posix()}"]')  # a locator: re-rendered live
    item.locator(".state-watching").wait_for()
    item.locator(".watch-sync:not(:has-text('not synced yet'))").wait_for()  # the first sync's counts
    assert "1 unchanged" in item.inner_text() or "1 added" in item.inner_text()  # the seed file, counted
    page.evaluate("window.libraryMarker = 'same page'")  # gone if anything reloads the page
    # an upload from elsewhere shows in the log: the page's event stream is subscribed from here on
    probe = {"doc_id": "stream-probe", "text": "A probe of the event stream.", "namespace": "probes"}
    assert client.post("/v1/documents", json=probe).status_code == 201
    page.wait_for_selector('.activity-log li[data-kind="ingest"]:has-text("stream-probe")')
    assert "[probes]" in page.inner_text('.activity-log li[data-kind="ingest"]')  # another namespace, named
    page.wait_for_selector(".stream-state.live")

    (folder / "kite-notes.md").write_text("# Kites\n\nA box kite flies steadily in a strong, even wind.\n")
    event = page.wait_for_selector('.activity-log li[data-kind="ingest"]:has-text("kite-notes.md")')
    assert "added" in event.inner_text()
    page.wait_for_selector('.lib-list tbody tr:has-text("kite-notes.md")')
    page.click('.lib-list tbody tr:has-text("kite-notes.md") button.doc-open')
    page.wait_for_selector('.lib-text:has-text("strong, even wind")')
    page.focus("#lib-filter")
    (folder / "kite-notes.md").write_text("# Kites\n\nA box kite tugs hard in a gusty wind.\n")  # edited
    page.wait_for_selector('.activity-log li[data-kind="update"]:has-text("kite-notes.md")')
    page.wait_for_selector('.lib-text:has-text("gusty wind")')  # the open view follows the change
    assert page.evaluate("document.activeElement.id") == "lib-filter"  # and leaves the focus alone
    kites = page.locator('.lib-list tbody tr:has-text("kite-notes.md")')
    kites.locator("button.danger").click()
    assert "returns if the file changes" in kites.locator(".confirm").inner_text()  # a watched file's document
    kites.locator(".confirm button.danger").click()
    kites.wait_for(state="detached")
    assert page.is_hidden(".lib-doc")
    (folder / "kite-notes.md").write_text("# Kites\n\nA delta kite glides in a light wind.\n")  # and it does
    kites.wait_for()
    (folder / "noise.bin").write_bytes(bytes(range(256)) * 4)  # binary: skipped, with the reason shown
    page.wait_for_selector('.activity-log li[data-kind="skip"]:has-text("noise.bin")')
    page.wait_for_selector('.watch-skips li:has-text("noise.bin"):has-text("binary or unsupported file type")')
    assert page.evaluate("window.libraryMarker") == "same page"
    assert any("kite-notes.md" in d for d in listed_ids(client))
    assert page.get_attribute(".activity-log", "role") == "log"
    shot(page, "library-watched")
    page.emulate_media(color_scheme="dark")  # the system's dark theme, for the eye
    shot(page, "library-watched-dark")
    os.remove(folder / "noise.bin")


def test_no_watched_folder_says_how_to_start(server: Served, page: Any) -> None:
    open_library(page, server)
    page.wait_for_selector(".lib-watch pre.cli")
    assert page.inner_text(".lib-watch pre.cli") == "localrag serve --watch FOLDER"
    assert "watches no folders" in page.inner_text(".lib-watch")


def test_phone_width(library: tuple[Served, Path], page: Any, shot: Any) -> None:
    served, _ = library
    page.set_viewport_size({"width": 390, "height": 844})
    open_library(page, served)
    page.wait_for_selector(f'.lib-list tbody tr[data-doc="{SEED}"], .lib-list tbody tr:has-text("{SEED}")')
    page.click(f'.lib-list tbody tr:has-text("{SEED}") button.doc-open')
    page.wait_for_selector(".lib-doc .lib-chunks tbody tr")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    for selector in ("#lib-filter", ".dropzone button.primary", "#lib-ns"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, selector
    shot(page, "library-phone")


def test_with_a_key(keyed_server: Served, page: Any) -> None:
    page.goto(f"{keyed_server.url}/#/library")
    page.wait_for_selector("#api-key")  # the first /v1 call was refused: one prompt for all of them
    assert page.locator("dialog[open]").count() == 1
    page.fill("#api-key", keyed_server.key)
    page.press("#api-key", "Enter")
    wait_ready(page)
    page.wait_for_selector(".lib-watch pre.cli")  # GET /v1/watch answered with the key
    drop_files(page, [("keyed-note.md", "# Keyed\n\nUploaded with the session's key.")])
    page.wait_for_selector('.upload-results li.added[data-file="keyed-note.md"]')
    page.wait_for_selector('.activity-log li[data-kind="ingest"]:has-text("keyed-note.md")')  # the stream too
    row(page, "keyed-note.md").wait_for()
    with httpx.Client(base_url=keyed_server.url, headers=keyed_server.headers) as c:
        assert "keyed-note.md" in listed_ids(c)
