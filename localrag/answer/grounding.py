"""Verification: is each sentence of an answer supported by the sources, and by which one?

A sentence's support by a passage is the share of its content words (stemmed, stopwords out)
that the passage contains, counting only the words the question did not already bring: an
answer restating the question proves nothing, the new words are the claim. A sentence the
model cited is checked against the passages it cites; a sentence it left uncited gets a
citation to the passage supporting it best, when that support reaches ``min_support``
(small models often answer correctly without writing ``[n]``). Under ``strict``, an answer
none of whose sentences is supported is replaced by the abstention phrase: an invention is
not passed on as an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from localrag.answer.citations import check, resolve, strip_markers
from localrag.answer.context import Context
from localrag.answer.sentences import sentences, terms
from localrag.types import Citation

# Markers opening a span: "Claim. [1] Next claim." splits after the full stop, so "[1]" opens the
# next span although it closes the claim before it.
_LEADING_MARKERS = re.compile(r"(?:\[\d+\]\s*)+")
_CITED = re.compile(r"\[(\d+)\]")
_TRAILING_PUNCTUATION = re.compile(r"[\s.!?:;,]*$")
# Words of answer boilerplate ("the answer, according to the sources, is ...") that claim nothing.
_META = terms("answer answers question questions source sources provided based according text passage "
              "context information document documents mentioned states say says")


@dataclass(frozen=True, slots=True)
class Verified:
    text: str
    citations: tuple[Citation, ...]
    invalid: tuple[int, ...]
    sentences: int  # sentences with content words
    supported: int  # of those, supported by a passage

    @property
    def support(self) -> float:
        return self.supported / self.sentences if self.sentences else 0.0


def support(claim_terms: set[str], passage_terms: set[str]) -> float:
    return len(claim_terms & passage_terms) / len(claim_terms) if claim_terms else 0.0


def verify(
    text: str, context: Context, question: str, *, min_support: float = 0.5, attribute: bool = True
) -> Verified:
    """Check ``text`` (markers in any accepted form) against ``context``; add citations where supported."""
    checked = check(text, context)
    text = checked.text
    asked = terms(question)
    passage_terms = {s.number: terms(s.text) for s in context.sources}
    citations: list[Citation] = []
    seen: set[tuple[int, int]] = set()
    insertions: list[tuple[int, str]] = []
    counted = supported = 0
    for start, end in _answer_sentences(text):
        sentence = text[start:end]
        claim = strip_markers(sentence)
        words = terms(claim) - _META
        novel = (words - asked) or words
        if not novel:
            continue  # no content words: nothing to support
        counted += 1
        cited = [int(n) for n in _CITED.findall(sentence) if context.get(int(n)) is not None]
        attributed = False
        if not cited and attribute and passage_terms:
            best = max(passage_terms, key=lambda n: (support(novel, passage_terms[n]), -n))
            if support(novel, passage_terms[best]) >= min_support:
                cited, attributed = [best], True
                insertions.append((_marker_position(text, start, end), f" [{best}]"))
        scores = {n: support(novel, passage_terms[n]) for n in dict.fromkeys(cited)}
        if scores and max(scores.values()) >= min_support:
            supported += 1
        for number, score in scores.items():
            source = context.get(number)
            assert source is not None
            citation = replace(resolve(number, source, claim), support=round(score, 4), attributed=attributed)
            if (number, citation.quote_start) not in seen:
                seen.add((number, citation.quote_start))
                citations.append(citation)
    for position, marker in sorted(insertions, reverse=True):
        text = text[:position] + marker + text[position:]
    return Verified(text, tuple(citations), checked.invalid, counted, supported)


def _answer_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans, each extended over the markers that follow its end ("Claim. [1]")."""
    merged: list[tuple[int, int]] = []
    for start, end in sentences(text):
        lead = _LEADING_MARKERS.match(text, start, end)
        if lead and merged:
            merged[-1] = (merged[-1][0], start + len(lead.group().rstrip()))
            start = lead.end()
        if start < end:
            merged.append((start, end))
    return merged


def _marker_position(text: str, start: int, end: int) -> int:
    """Where a citation goes in the sentence ``text[start:end]``: before its closing punctuation."""
    sentence = text[start:end]
    match = _TRAILING_PUNCTUATION.search(sentence)
    return start + (match.start() if match else len(sentence))
