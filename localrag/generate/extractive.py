"""The extractive provider: no language model; answers with the passage sentences that best cover
the question.

Each sentence of the numbered passages is scored by the IDF-weighted share of the
question's (stemmed, stopword-free) terms it contains, IDF taken over the passages'
sentences. The best sentence answers, joined by the next best ones that score close to
it, each followed by its ``[n]``. When no sentence covers enough of the question the
answer is the abstention phrase. It is the fallback when no LLM is installed.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from localrag.answer.sentences import sentences, terms
from localrag.generate.base import approx_tokens, words_stream
from localrag.generate.prompts import DEFAULT_ABSTAIN
from localrag.types import Completion, Prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScoredSentence:
    number: int
    start: int
    end: int
    score: float
    order: int


class ExtractiveGenerator:
    """Answers from the passages themselves. ``min_coverage``: the least share of the question's
    term weight a sentence must contain to answer; ``max_sentences`` caps the answer."""

    name = "extractive"
    model = "extractive"

    def __init__(self, *, min_coverage: float = 0.34, max_sentences: int = 2, relative: float = 0.75) -> None:
        self.min_coverage = min_coverage
        self.max_sentences = max_sentences
        self.relative = relative

    @property
    def context_window(self) -> int:
        return 1 << 20

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def rank(self, question: str, passages: Sequence[tuple[int, str]]) -> list[ScoredSentence]:
        """Every sentence of the passages, best-covering first."""
        wanted = terms(question)
        found: list[tuple[int, int, int, set[str]]] = []
        for number, text in passages:
            for start, end in sentences(text):
                found.append((number, start, end, terms(text[start:end])))
        if not wanted or not found:
            return []
        frequency = Counter(term for *_, terms in found for term in terms & wanted)
        idf = {t: math.log(1 + (len(found) + 1) / (frequency[t] + 0.5)) for t in wanted}
        total = sum(idf.values())
        scored = [
            ScoredSentence(number, start, end, sum(idf[t] for t in terms & wanted) / total, order)
            for order, (number, start, end, terms) in enumerate(found)
        ]
        return sorted(scored, key=lambda s: (-s.score, s.order))

    def _answer(self, prompt: Prompt, max_tokens: int) -> str:
        if prompt.task != "answer":
            return ""  # no language model: the caller falls back to its own rewrite
        abstain = prompt.abstain_phrase or DEFAULT_ABSTAIN
        texts = {p.number: p.text for p in prompt.passages}
        ranked = self.rank(prompt.question, [(p.number, p.text) for p in prompt.passages])
        if not ranked or ranked[0].score < self.min_coverage:
            return abstain
        floor = ranked[0].score * self.relative
        picked = [s for s in ranked[: self.max_sentences] if s.score >= floor]
        picked.sort(key=lambda s: s.order)  # read in passage order
        parts: list[str] = []
        used = 0
        for s in picked:
            part = f"{' '.join(texts[s.number][s.start : s.end].split())} [{s.number}]"
            cost = self.count_tokens(part)
            if parts and used + cost > max_tokens:
                break
            parts.append(part)
            used += cost
        return " ".join(parts)

    def generate(
        self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0, stop: Sequence[str] = ()
    ) -> Completion:
        text = self._answer(prompt, max_tokens)
        prompt_tokens = sum(self.count_tokens(m.content) for m in prompt.messages)
        return Completion(text, prompt_tokens, self.count_tokens(text), self.model, "stop", self.name)

    def stream(
        self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0, stop: Sequence[str] = ()
    ) -> Iterator[str | Completion]:
        return words_stream(self.generate(prompt, max_tokens=max_tokens, temperature=temperature, stop=stop))
