"""How the chat draws a finished answer (js/answer.js), from answer JSON written here: which citation
each [n] opens, failed claims and weak support underlined, invalid citations, conflicts and hostile text.
The app's own module is imported in the page; no model is asked, so every case is exact."""

from __future__ import annotations

from typing import Any

from webharness import Served, wait_ready

TEXT = "Drais built the running machine in 1817 [1]. It had pedals [1]. Starley made the safety bicycle [2]."


def cite(number: int, quote: str, support: float) -> dict[str, Any]:
    return {"number": number, "doc_id": f"doc{number}", "source": f"doc{number}.txt", "title": f"Doc {number}",
            "namespace": "", "chunk_id": number, "char_start": 0, "char_end": 200, "page": None, "quote": quote,
            "quote_start": 0, "quote_end": len(quote), "support": support, "attributed": False}


def answer(**extra: Any) -> dict[str, Any]:
    base = {"question": "Who built the running machine?", "standalone_question": None, "answer": TEXT,
            "abstained": False, "invalid_citations": [], "model": "m", "provider": "p", "usage": {},
            "timings_ms": {}, "hits": [], "support": 1.0, "confidence": None, "claims": [], "conflicts": [],
            "citations": [cite(1, "The running machine was built by Karl Drais in 1817.", 1.0),
                          cite(1, "It had no pedals at all.", 0.3),
                          cite(2, "Starley made the safety bicycle in 1885.", 0.9)]}
    return {**base, **extra}


def draw(page: Any, data: dict[str, Any]) -> Any:
    """Render ``data`` with the app's renderAnswer into a fresh box; clicks on citations are recorded."""
    page.evaluate("""async (data) => {
        const {renderAnswer} = await import('/app/js/answer.js');
        document.getElementById('view')?.remove();
        window.cited = [];
        const text = document.createElement('div');
        const box = document.createElement('article');
        box.id = 'view';
        box.append(text);
        box.append(...renderAnswer(text, data, (c) => window.cited.push(c.quote)));
        document.querySelector('main').prepend(box);
    }""", data)
    return page.locator("#view")


def test_citations_flags_and_notes(server: Served, page: Any, shot: Any) -> None:
    page.goto(server.url + "/#/chat")
    wait_ready(page)
    start = TEXT.index("It had")
    claims = [{"text": "Drais built the running machine in 1817", "start": 0, "end": start - 1, "status": "supported",
               "citations": [1], "score": 0.9},
              {"text": "It had pedals", "start": start, "end": TEXT.index(" Starley"), "status": "contradicted",
               "citations": [1], "score": 0.1}]
    conflicts = [{"topic": "the year", "kind": "date", "sides": [
        {"citation": 1, "value": "1817", "doc_id": "doc1", "preferred": True},
        {"citation": 2, "value": "1818", "doc_id": "doc2", "preferred": False}]}]
    view = draw(page, answer(claims=claims, conflicts=conflicts, invalid_citations=[4]))
    buttons = view.locator("div > .cite")
    assert buttons.all_inner_texts() == ["1", "1", "2"]
    # the second [1] closes "It had pedals": of the two [1] citations, the one quoting pedals
    assert [buttons.nth(i).get_attribute("data-citation") for i in range(3)] == ["0", "1", "2"]
    buttons.nth(1).click()
    assert page.evaluate("window.cited") == ["It had no pedals at all."]
    flagged = view.locator(".flag.contradicted")
    assert "".join(flagged.all_text_contents()).strip() == "It had pedals ."
    assert view.locator(".flag").count() == flagged.count()  # supported claims are left alone
    notes = view.inner_text()
    assert "The model cited [4], which named no source" in notes
    assert "The sources disagree on the year: [1] 1817 (preferred); [2] 1818." in notes
    assert "Check the underlined claims: 1 contradicted." in notes
    assert view.locator(".sources-list li").count() == 3
    shot(page, "answer-flags")

    # without claim checks, a sentence whose citation has weak support is marked instead
    view = draw(page, answer())
    weak = view.locator(".flag.weak")
    assert "".join(weak.all_text_contents()).startswith("It had pedals")
    assert view.locator("div > .cite.weak").count() == 1


def test_answer_text_is_never_markup(server: Served, page: Any) -> None:
    page.goto(server.url + "/#/chat")
    wait_ready(page)
    hostile = 'Fine <img src=x onerror="window.pwned=1"> <b>bold</b> [1].'
    quote = "<script>window.pwned=2</script>"
    view = draw(page, answer(answer=hostile, citations=[cite(1, quote, 1.0)]))
    assert view.locator("img, b, script").count() == 0
    assert view.locator("div").first.inner_text().startswith('Fine <img src=x onerror="window.pwned=1"> <b>bold</b>')
    assert quote in view.locator(".sources-list").inner_text()
    assert page.evaluate("window.pwned === undefined")
