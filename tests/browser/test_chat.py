"""The chat page in chromium against a real server (real embedder, SmolLM2-135M): a streamed answer, its
citations opened beside it with the quote highlighted, follow-ups sent with their history, Stop (after
which the model answers again), an abstention once the document is gone, and the key prompt when the
server has keys."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from webharness import KEY, Served, wait_ready

from localrag.samples import SAMPLE_DIR

QUESTION = "Who built the first running machine?"
DOC = "bicycles.txt"
CHAT = "/v1/chat/completions"


def upload(served: Served, path: Path) -> None:
    with path.open("rb") as f:
        r = httpx.post(served.url + "/v1/documents", files={"file": (path.name, f, "text/plain")},
                       headers=served.headers, timeout=120)
    assert r.status_code == 201, r.text
    assert r.json()["added"] == [path.name]


def final_answer(body: bytes) -> dict[str, Any]:
    """The whole answer from the chat stream's last chunk, as the page received it."""
    for line in reversed(body.decode().splitlines()):
        if line.startswith("data: {"):
            chunk = json.loads(line.removeprefix("data: "))
            if "localrag" in chunk:
                return dict(chunk["localrag"])
    raise AssertionError(f"no answer in the stream: {body[-500:]!r}")


def ask(page: Any, question: str) -> dict[str, Any]:
    """Type the question, press Enter, and return the answer JSON the page received."""
    page.fill("#chat-question", question)
    with page.expect_response(lambda r: r.url.endswith(CHAT)) as response:
        page.press("#chat-question", "Enter")
    return final_answer(response.value.body())


@contextmanager
def held_after_first_token(served: Served) -> Iterator[threading.Event]:
    """Hold the server's next answer stream after its first piece of text until the event is set.

    Without it a short answer (the small model's follow-up is a few tokens) can finish before the page
    is seen streaming, and Stop would race the end of the stream. The hold wraps the answer pipeline's
    stream, not the generator's: a follow-up's rewrite also runs through the generator. It holds on the
    generation thread, so the client's disconnect is noticed (and the model's lock freed) once released."""
    pipeline = served.rag.answers
    original = pipeline.stream
    release = threading.Event()

    def held(*args: Any, **kwargs: Any) -> Iterator[Any]:
        holding = True
        for item in original(*args, **kwargs):
            yield item
            if holding and isinstance(item, str) and item.strip():
                holding = False
                release.wait(timeout=300)

    pipeline.stream = held  # type: ignore[method-assign]
    try:
        yield release
    finally:
        release.set()
        pipeline.stream = original  # type: ignore[method-assign]


def shown_text(page: Any) -> str:
    return str(page.locator(".answer").last.locator(".answer-text").inner_text())


def test_streamed_answer_citation_followup_stop_and_abstention(server: Served, page: Any, shot: Any,
                                                               requests_seen: list[str]) -> None:
    upload(server, SAMPLE_DIR / DOC)
    page.goto(server.url + "/#/chat")
    wait_ready(page)
    shot(page, "chat-empty")

    page.fill("#chat-question", QUESTION)
    with held_after_first_token(server) as release, \
            page.expect_response(lambda r: r.url.endswith(CHAT)) as response:
        page.press("#chat-question", "Enter")
        # tokens are on the page while the answer is still streaming
        page.wait_for_selector('.answer.streaming:not([data-tokens="0"])')
        shot(page, "chat-streaming")
        release.set()
    answer = final_answer(response.value.body())
    card = page.locator(".answer.done")
    card.wait_for()
    assert int(card.get_attribute("data-tokens")) > 1
    assert not answer["abstained"] and answer["citations"], answer
    assert shown_text(page) == re.sub(r"\[(\d+)\]", r"\1", answer["answer"])  # markers became buttons
    assert page.locator(".turn-q").inner_text() == QUESTION

    cite = page.locator(".answer-text .cite").first
    citation = answer["citations"][int(cite.get_attribute("data-citation"))]
    assert cite.inner_text() == str(citation["number"])
    cite.focus()
    page.keyboard.press("Enter")  # the citations are keyboard buttons
    quote = page.locator("#source-panel mark.quote")
    quote.first.wait_for()
    assert "".join(quote.all_text_contents()) == citation["quote"]
    assert cite.get_attribute("aria-pressed") == "true"
    assert page.locator("#source-panel h2").inner_text().endswith(citation["title"] or citation["doc_id"])
    assert quote.first.is_visible()  # scrolled into view in the panel
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.click(".answer-tools >> text=Copy")
    page.locator(".toast.ok").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(answer["answer"] + "\n\nSources:\n[") and citation["quote"] in copied
    page.click("text=Details")
    details = page.locator(".details dl").inner_text()
    assert answer["model"] in details and "llamacpp" in details
    shot(page, "chat-answer-source")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "chat-phone-source")
    page.keyboard.press("Escape")
    assert page.locator("#source-panel").is_hidden()
    shot(page, "chat-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    # a follow-up carries the conversation; Stop ends it and frees the server's generation slot
    page.fill("#chat-question", "When was that?")
    with held_after_first_token(server) as release:
        with page.expect_request(lambda r: r.url.endswith(CHAT)) as sent:
            page.press("#chat-question", "Enter")
        messages = sent.value.post_data_json["messages"]
        assert messages == [{"role": "user", "content": QUESTION},
                            {"role": "assistant", "content": answer["answer"]},
                            {"role": "user", "content": "When was that?"}]
        page.wait_for_selector('.answer.streaming:not([data-tokens="0"])')
        page.click("button:has-text('Stop')")
        page.wait_for_selector(".answer.stopped")
        assert page.locator(".answer.stopped").inner_text().rstrip().endswith("Stopped.")
        assert page.locator("button:has-text('Stop')").is_hidden()
        release.set()

    # a new chat asks without history; the model is free again after Stop (greedy: the same answer)
    page.click("text=New chat")
    assert page.locator(".answer").count() == 0
    again = ask(page, QUESTION)  # would wait for ever had Stop left the model locked
    assert again["answer"] == answer["answer"]
    page.locator(".answer.done").wait_for()

    # without the document the same question is an abstention, shown as one
    r = httpx.delete(f"{server.url}/v1/documents/{DOC}", timeout=60)
    assert r.status_code == 200 and r.json()["deleted"] == 1
    abstention = ask(page, QUESTION)
    assert abstention["abstained"] and not abstention["citations"], abstention["answer"]
    page.locator(".answer.done.abstained").wait_for()
    assert page.locator(".answer").count() == 2
    assert shown_text(page) == abstention["answer"]
    assert "abstains rather than guess" in page.locator(".abstain-note").inner_text()
    assert page.locator(".answer").last.locator(".cite").count() == 0
    shot(page, "chat-abstention")

    paths = [u.removeprefix(server.url) for u in requests_seen]
    assert paths.count(CHAT) == 4
    assert f"/v1/documents/{DOC}" in paths  # the source panel read the document
    assert all(u.startswith(server.url + "/") for u in requests_seen)


def test_key_prompt_guards_data_until_the_key_is_given(keyed_server: Served, page: Any, shot: Any,
                                                      requests_seen: list[str]) -> None:
    statuses: list[tuple[str, int]] = []
    page.on("response", lambda r: statuses.append((r.url.removeprefix(keyed_server.url), r.status)))
    page.goto(keyed_server.url + "/#/chat")
    dialog = page.locator("dialog.modal")
    dialog.wait_for()
    assert page.locator("label[for=api-key]").inner_text() == "API key"
    assert page.evaluate("document.activeElement.id") == "api-key"
    shot(page, "key-prompt")
    assert any(path.startswith("/v1/") and status == 401 for path, status in statuses), statuses
    # the page itself cannot read data without the key, and the shell stored none
    assert page.evaluate("fetch('/v1/stats').then(r => r.status)") == 401
    assert page.evaluate("sessionStorage.getItem('localrag.key')") is None

    page.fill("#api-key", "not-the-key-but-long-enough")
    page.press("#api-key", "Enter")
    page.locator("#api-key-help", has_text="refused").wait_for()  # a wrong key asks again
    page.fill("#api-key", KEY)
    page.press("#api-key", "Enter")
    dialog.wait_for(state="detached")
    assert page.evaluate("sessionStorage.getItem('localrag.key')") == KEY
    assert page.locator("#forget-key").is_visible()

    answer = ask(page, QUESTION)  # an empty library: an abstention, through the key-protected route
    assert answer["abstained"]
    page.locator(".answer.done.abstained").wait_for()
    assert (CHAT, 200) in statuses

    page.click("#forget-key")
    dialog.wait_for()  # the page reloads its data and asks again
    assert page.evaluate("sessionStorage.getItem('localrag.key')") is None
    assert all(u.startswith(keyed_server.url + "/") for u in requests_seen)
