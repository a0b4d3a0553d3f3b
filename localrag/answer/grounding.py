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

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from localrag.answer.citations import best_sentence, check, resolve, strip_markers
from localrag.answer.claims import sentence_spans, signals, split_claims
from localrag.answer.context import Context
from localrag.answer.sentences import sentences, terms
from localrag.types import Citation, Claim, ClaimStatus

if TYPE_CHECKING:
    from localrag.generate.llamacpp import LlamaCppGenerator

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
    for start, end in sentence_spans(text):
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


def _marker_position(text: str, start: int, end: int) -> int:
    """Where a citation goes in the sentence ``text[start:end]``: before its closing punctuation."""
    sentence = text[start:end]
    match = _TRAILING_PUNCTUATION.search(sentence)
    return start + (match.start() if match else len(sentence))


# -- claim-level grounding ----------------------------------------------------------------
JUDGE_SYSTEM = (
    "You check facts against a passage. Answer with one word: yes if the passage states the claim, "
    "no if the passage does not state it or says something different."
)
_JUDGE_QUESTION = "Does the passage state the claim? Answer yes or no."
# Word overlap from which a claim the judge rejects counts as contradicted rather than unsupported:
# the passage speaks of the same thing, and says otherwise.
_CONTRADICTION_OVERLAP = 0.75


class ClaimJudge(Protocol):
    """Scores (passage, claim) pairs: a log-odds margin that the passage states the claim."""

    def margins(self, pairs: Sequence[tuple[str, str]]) -> list[float]: ...


class LlmClaimJudge:
    """The generator's own model as judge: logit("yes") - logit("no") (``generate.judge.LabelJudge``).

    The judge reads the passage sentence that shares most of the claim's words with its neighbours on
    either side, not the whole passage: a 0.5B model separates true from false claims better on the
    short window (measured in benchmarks/bench_grounding.py), and it costs fewer tokens. Pairs are
    ordered by window, so claims resting on the same sentences evaluate them once."""

    def __init__(self, generator: LlamaCppGenerator, *, max_tokens: int = 256) -> None:
        from localrag.generate.judge import NO, YES, LabelJudge

        self._judge = LabelJudge(generator, JUDGE_SYSTEM, (YES, NO), max_tokens=max_tokens)

    def margins(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        windows = [window(passage, claim) for passage, claim in pairs]
        order = sorted(range(len(pairs)), key=lambda i: (windows[i], i))
        items = [(f"Passage: {self._judge.truncate(windows[i])}\n\n", f"Claim: {pairs[i][1]}\n\n{_JUDGE_QUESTION}")
                 for i in order]
        out = [0.0] * len(pairs)
        if items:
            logits = self._judge.logits(items)
            for row, i in enumerate(order):
                out[i] = float(logits[row, 0] - logits[row, 1])
        return out


def window(passage: str, claim: str, reach: int = 1) -> str:
    """The sentence of ``passage`` sharing most of ``claim``'s words, with ``reach`` sentences either side."""
    spans = sentences(passage)
    if not spans:
        return passage
    start, _, _ = best_sentence(passage, claim)
    at = next((i for i, (s, e) in enumerate(spans) if s <= start < e), 0)
    return passage[spans[max(0, at - reach)][0] : spans[min(len(spans) - 1, at + reach)][1]]


def llm_judge_of(generator: object) -> ClaimJudge | None:
    """A judge on the generator's llama.cpp model (the chain's llama.cpp provider), or None without one."""
    from localrag.generate.factory import LazyLlamaCpp
    from localrag.generate.llamacpp import LlamaCppGenerator

    for provider in getattr(generator, "providers", [generator]):
        if isinstance(provider, LazyLlamaCpp):
            provider = provider.llama()
        if isinstance(provider, LlamaCppGenerator):
            return LlmClaimJudge(provider)
    return None


def assess(
    claim: str, passage: str, margin: float | None, *, min_score: float, min_overlap: float = 0.5,
    question: str = "",
) -> tuple[ClaimStatus, float]:
    """Status and score of ``claim`` against one passage: the rules first, then word overlap (the share of
    the claim's words the passage holds must reach ``min_overlap``), then the judge's ``margin`` (None: no
    judge), whose probability of "yes" against "no" must reach ``min_score``.

    The score is that probability, or the word overlap without a judge."""
    found = signals(claim, passage, question)
    overlap = support(terms(claim), terms(passage))
    score = 1.0 / (1.0 + math.exp(-margin)) if margin is not None else overlap
    if found.contradicted:
        return "contradicted", score
    if found.unsupported or overlap < min_overlap:
        return "unsupported", score
    if margin is not None and score < min_score:
        return ("contradicted" if overlap >= _CONTRADICTION_OVERLAP else "unsupported"), score
    return "supported", score


_RANK: dict[ClaimStatus, int] = {"supported": 2, "contradicted": 1, "unsupported": 0}


def ground(
    text: str, context: Context, judge: ClaimJudge | None, *, min_score: float, max_claims: int = 8,
    question: str = "", min_overlap: float = 0.5,
) -> tuple[Claim, ...]:
    """Each claim of ``text`` (verified, with markers) checked against the passages it cites; an uncited
    claim against the passage sharing most of its words. The first ``max_claims`` claims go to the judge;
    later ones get the rules and word overlap only (``min_overlap`` as the bar), keeping the cost bounded."""
    spans = split_claims(text)
    targets: list[list[int]] = []
    for span in spans:
        cited = [n for n in span.citations if context.get(n) is not None]
        if not cited and context.sources:
            words = terms(span.text)
            cited = [max(context.sources, key=lambda s: (support(words, terms(s.text)), -s.number)).number]
        targets.append(cited)
    pairs = [(i, n) for i, cited in enumerate(targets) if i < max_claims for n in cited]
    margins: dict[tuple[int, int], float] = {}
    if judge is not None and pairs and min_score > 0:
        passages = {n: context.get(n) for _, n in pairs}
        scored = judge.margins([(passages[n].text, spans[i].text) for i, n in pairs])  # type: ignore[union-attr]
        margins = dict(zip(pairs, scored, strict=True))
    claims = []
    for i, (span, cited) in enumerate(zip(spans, targets, strict=True)):
        best: tuple[ClaimStatus, float] = ("unsupported", 0.0)
        for n in cited:
            source = context.get(n)
            assert source is not None
            verdict = assess(span.text, source.text, margins.get((i, n)), min_score=min_score,
                             min_overlap=min_overlap, question=question)
            if (_RANK[verdict[0]], verdict[1]) > (_RANK[best[0]], best[1]):
                best = verdict
        claims.append(Claim(span.text, span.start, span.end, best[0], tuple(span.citations), round(best[1], 4)))
    return tuple(claims)



def apply_policy(
    text: str, claims: Sequence[Claim], policy: str
) -> tuple[str, tuple[Claim, ...], dict[int, int], bool]:
    """``text`` and its claims under ``answer.grounding_policy``; returns (text, claims, renumbering, abstain).

    ``flag`` keeps everything. ``drop`` removes failed claims from the text and renumbers the remaining
    markers 1..m in order of appearance (the mapping old → new is returned, so citations follow).
    ``abstain`` asks to withhold the answer when its first (core) claim failed."""
    failed = [c for c in claims if c.status != "supported"]
    if policy == "abstain":
        return text, tuple(claims), {}, bool(claims) and claims[0].status != "supported"
    if policy != "drop" or not failed:
        return text, tuple(claims), {}, False
    if len(failed) == len(claims):
        return text, tuple(claims), {}, True  # nothing would be left to say
    kept = [c for c in claims if c.status == "supported"]
    pieces = []
    for i, claim in enumerate(kept):
        piece = text[claim.start : claim.end]
        if not _CLOSED.search(piece):  # a clause cut from its sentence ends as one
            piece += "."
        pieces.append(piece[:1].upper() + piece[1:] if i else piece)
    mapping: dict[int, int] = {}
    for number in _CITED.findall(" ".join(pieces)):
        mapping.setdefault(int(number), len(mapping) + 1)
    out: list[str] = []
    renumbered: list[Claim] = []
    position = 0
    for piece, claim in zip(pieces, kept, strict=True):
        new = _CITED.sub(lambda m: f"[{mapping[int(m.group(1))]}]", piece)
        renumbered.append(replace(claim, start=position, end=position + len(new),
                                  citations=tuple(mapping[n] for n in claim.citations if n in mapping)))
        out.append(new)
        position += len(new) + 1
    return " ".join(out), tuple(renumbered), mapping, False


_CLOSED = re.compile(r"[.!?][\"'’”)\]]*(?:\s*\[\d+\])*\s*$")
