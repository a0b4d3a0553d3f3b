"""The source panel in chromium: a PDF citation shows its page, a sheet its rows as a table with the cited
row marked, a transcript the timed line; each with the quote in <mark class="quote">. The documents are
real uploads read back from GET /v1/documents/{doc_id}; no model is asked."""

from __future__ import annotations

from typing import Any

import httpx
from pdfgen import make_pdf
from webharness import Served, wait_ready

PAGE_ONE = "Glaciers form where snow piles up faster than it melts."
PAGE_TWO = "The glacier moved ten metres in a single year."
SHEET = "metric,value\nARR,1.5M\nChurn,2%\nNPS,41\n"
TRANSCRIPT = ("[00:01.0] Welcome to the show about the sea.\n[00:04.5] Today we talk about the tides.\n"
              "[00:09.2] The moon pulls on the oceans twice a day.\n")


def upload(served: Served, name: str, data: bytes, kind: str) -> str:
    r = httpx.post(served.url + "/v1/documents", files={"file": (name, data, kind)}, timeout=120)
    assert r.status_code == 201, r.text
    [doc_id] = r.json()["added"]
    return str(doc_id)


def citation(served: Served, doc_id: str, quote: str) -> dict[str, Any]:
    """A citation of ``quote`` as the answer JSON carries it, offsets from the stored text."""
    doc = httpx.get(f"{served.url}/v1/documents/{doc_id}", timeout=60).json()
    start = doc["text"].index(quote)
    return {"number": 1, "doc_id": doc_id, "namespace": "", "title": doc.get("title") or doc_id,
            "source": doc.get("source", ""), "page": None, "chunk_id": 0, "char_start": 0,
            "char_end": len(doc["text"]), "quote": quote, "quote_start": start, "quote_end": start + len(quote)}


def open_source(page: Any, item: dict[str, Any]) -> None:
    """What ctx.openSource does, through the app's own modules (the same instances the page uses)."""
    page.evaluate("""async (item) => {
        const {showSource} = await import('/app/js/source.js');
        const {api} = await import('/app/js/api.js');
        const panel = document.getElementById('source-panel');
        panel.hidden = false;
        document.body.classList.add('with-source');
        await showSource(panel, item, {api, namespace: () => '', close: () => { panel.hidden = true; }});
    }""", item)
    page.locator("#source-panel mark.quote").first.wait_for()


def test_pdf_page_sheet_rows_and_transcript_line(server: Served, page: Any, shot: Any,
                                                 requests_seen: list[str]) -> None:
    pdf = upload(server, "report.pdf", make_pdf([[PAGE_ONE], [PAGE_TWO]]), "application/pdf")
    sheet = upload(server, "q3.csv", SHEET.encode(), "text/csv")
    talk = upload(server, "episode.txt", TRANSCRIPT.encode(), "text/plain")
    page.goto(server.url + "/#/chat")
    wait_ready(page)
    panel = page.locator("#source-panel")
    marks = panel.locator("mark.quote")

    open_source(page, citation(server, pdf, PAGE_TWO))
    assert marks.all_text_contents() == [PAGE_TWO]
    assert panel.locator("[data-page]").inner_text() == "Page 2 of 2"
    assert PAGE_ONE not in panel.inner_text()  # the cited page only
    shot(page, "source-pdf-page")

    open_source(page, citation(server, sheet, "Churn | 2%"))
    assert panel.locator("table.sheet th").all_inner_texts() == ["metric", "value"]
    assert panel.locator("table.sheet tbody tr").count() == 3
    cited = panel.locator("tr.cited")
    assert cited.count() == 1 and cited.locator("td").all_inner_texts() == ["Churn", "2%"]
    assert marks.all_text_contents() == ["Churn", "2%"]  # the quote, cell by cell
    shot(page, "source-sheet-rows")

    line = "Today we talk about the tides."
    open_source(page, citation(server, talk, line))
    assert marks.all_text_contents() == [line]
    assert panel.locator("[data-timestamp]").inner_text() == "At 00:04.5"
    current = panel.locator(".line.current")
    assert current.count() == 1 and current.locator(".timestamp").inner_text() == "[00:04.5]"
    assert marks.first.is_visible()
    shot(page, "source-transcript-line")

    # a document deleted since the answer: the quote alone, and why
    assert httpx.delete(f"{server.url}/v1/documents/{talk}", timeout=60).status_code == 200
    open_source(page, citation_from_memory(talk, line))
    assert marks.all_text_contents() == [line]
    assert "no longer in the library" in panel.locator(".notice").inner_text()
    paths = {u.removeprefix(server.url) for u in requests_seen}
    assert {f"/v1/documents/{pdf}", f"/v1/documents/{talk}", "/app/js/source.js"} <= paths


def citation_from_memory(doc_id: str, quote: str) -> dict[str, Any]:
    return {"number": 2, "doc_id": doc_id, "namespace": "", "title": doc_id, "source": doc_id, "page": None,
            "quote": quote, "quote_start": 10, "quote_end": 10 + len(quote), "char_start": 0, "char_end": 100}
