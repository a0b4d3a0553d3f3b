"""Chat: a conversation whose follow-up questions are rewritten into standalone ones before retrieval.

The rewrite asks the generator (a short, greedy completion). A provider without a language
model returns no rewrite, and a rewrite that is empty or implausibly long is discarded; the
follow-up is then searched together with the previous question, which carries the topic.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from localrag.answer.pipeline import AnswerPipeline
from localrag.errors import LocalRagError
from localrag.generate.prompts import rewrite_prompt
from localrag.types import Answer, Completion

log = logging.getLogger(__name__)

_LABEL = re.compile(r"^\s*(?:standalone question|rewritten question|question)\s*:\s*", re.IGNORECASE)
_REWRITE_TOKENS = 64


class ChatSession:
    def __init__(self, pipeline: AnswerPipeline, *, history_turns: int | None = None, **options: Any) -> None:
        self.pipeline = pipeline
        self.history_turns = pipeline.settings.history_turns if history_turns is None else history_turns
        self.options = options
        self.history: list[tuple[str, Answer]] = []

    def standalone(self, question: str) -> tuple[str, str | None]:
        """(question to answer, text to search with, if different) for ``question`` given the recent turns.

        The rewritten question serves both; without a rewrite the follow-up is answered as
        asked and searched together with the previous question.
        """
        turns = self.history[-self.history_turns :] if self.history_turns else []
        if not turns or not self.pipeline.settings.rewrite_followups:
            return question, None
        prompt = rewrite_prompt([(q, a.text) for q, a in turns], question)
        try:
            completion = self.pipeline.generator.generate(prompt, max_tokens=_REWRITE_TOKENS, temperature=0.0)
            text = completion.text if isinstance(completion, Completion) else ""
        except LocalRagError as e:
            log.warning("could not rewrite the follow-up question: %s", e)
            text = ""
        rewritten = _clean(text)
        if not rewritten or len(rewritten) > 3 * len(question) + 200:
            return question, f"{question} ({turns[-1][0]})"
        return rewritten, None

    def ask(self, question: str) -> Answer:
        answer: Answer | None = None
        for item in self.stream(question):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def stream(self, question: str) -> Iterator[str | Answer]:
        standalone, search_query = self.standalone(question)
        for item in self.pipeline.stream(standalone, search_query=search_query, **self.options):
            if isinstance(item, Answer):
                item = _with_question(item, question, search_query or standalone)
                self.history.append((question, item))
            yield item

    def reset(self) -> None:
        self.history.clear()


def _clean(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return _LABEL.sub("", lines[0]).strip().strip('"“”').strip()


def _with_question(answer: Answer, question: str, standalone: str) -> Answer:
    rewritten = "" if standalone == question else standalone
    return replace(answer, question=question, standalone_question=rewritten)
