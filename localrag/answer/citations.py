"""Citation checking: parse ``[n]`` markers, drop those naming no source, resolve the rest to spans.

Accepted marker forms: ``[1]``, ``[1, 2]``, ``[1][2]``, ``[1-3]`` and ``[Source 1]``; the
cleaned text writes each as ``[n]``. A number outside the context is removed from the
text and reported in ``invalid``. Each kept citation quotes the sentence of its passage
that best supports the claim it follows (most shared content words), with its offsets
in the document.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from localrag.answer.context import Context, ContextSource
from localrag.answer.sentences import sentences, terms
from localrag.types import Citation

_MARKER = re.compile(
    r"\[\s*(?:sources?\s*)?(\d+(?:\s*(?:[,;]|and|-|–)\s*(?:sources?\s*)?\d+)*)\s*\]", re.IGNORECASE
)
_NUMBER = re.compile(r"\d+")
_SOURCE_WORD = re.compile(r"sources?", re.IGNORECASE)
_RANGE = re.compile(r"(\d+)\s*[-–]\s*(\d+)")
_CLAIM_START = re.compile(r"(?:[.!?]\s|\n)(?!.*(?:[.!?]\s|\n))", re.DOTALL)
_MAX_RANGE = 20

@dataclass(frozen=True, slots=True)
class CheckedText:
    text: str
    citations: tuple[Citation, ...]
    invalid: tuple[int, ...]


def _numbers(inner: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*(?:[,;]|\band\b)\s*", _SOURCE_WORD.sub("", inner)):
        span = _RANGE.fullmatch(part.strip())
        if span and 0 < int(span.group(2)) - int(span.group(1)) <= _MAX_RANGE:
            numbers.extend(range(int(span.group(1)), int(span.group(2)) + 1))
        else:
            numbers.extend(int(n) for n in _NUMBER.findall(part))
    return numbers


def strip_markers(text: str) -> str:
    """The text with every citation marker removed (for scoring answers against gold text)."""
    return _tidy(_MARKER.sub("", text))


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


def check(text: str, context: Context) -> CheckedText:
    """Normalise markers, remove invalid ones, and resolve valid ones to citations.

    Each marker occurrence resolves against the claim it closes; the same number quoting
    the same sentence twice is one citation.
    """
    invalid: list[int] = []
    pairs: list[tuple[int, str]] = []
    pieces: list[str] = []
    last = 0
    for match in _MARKER.finditer(text):
        pieces.append(text[last : match.start()])
        last = match.end()
        claim = _claim_before("".join(pieces))
        kept = []
        for number in _numbers(match.group(1)):
            if context.get(number) is None:
                if number not in invalid:
                    invalid.append(number)
            elif number not in kept:
                kept.append(number)
                pairs.append((number, claim))
        pieces.append("".join(f"[{n}]" for n in kept))
    pieces.append(text[last:])
    cleaned = _tidy("".join(pieces)) if invalid else "".join(pieces).strip()
    citations: list[Citation] = []
    seen: set[tuple[int, int]] = set()
    for number, claim in pairs:
        source = context.get(number)
        assert source is not None
        citation = resolve(number, source, claim)
        if (number, citation.quote_start) not in seen:
            seen.add((number, citation.quote_start))
            citations.append(citation)
    return CheckedText(cleaned, tuple(citations), tuple(invalid))


def _claim_before(text: str) -> str:
    """The sentence a marker closes: the text since the previous sentence end, without the markers
    that close the sentence before it ("Claim. [1] Next claim. [2]")."""
    stripped = re.sub(r"(\[\d+\])+\s*$", "", text.rstrip())
    match = _CLAIM_START.search(stripped)
    claim = stripped[match.end() :] if match else stripped
    return re.sub(r"^(?:\[\d+\]\s*)+", "", claim)


def best_sentence(passage: str, claim: str) -> tuple[int, int, float]:
    """The passage sentence holding the most of the claim's content words (the shorter on ties);
    the score is that share of the claim's words.

    With no word in common, the whole passage: the support could not be narrowed down.
    """
    wanted = terms(claim)
    best = (0, len(passage), 0.0)
    if not wanted:
        return best
    best_key = (0.0, 0.0)
    for start, end in sentences(passage):
        words = terms(passage[start:end])
        if words:
            shared = len(wanted & words)
            key = (shared / len(wanted), shared / len(words))
            if shared and key > best_key:
                best, best_key = (start, end, key[0]), key
    return best


def resolve(number: int, source: ContextSource, claim: str) -> Citation:
    start, end, _ = best_sentence(source.text, claim)
    start, end, quote_start, quote_end = source.document_span(start, end)
    chunk_id, page = source.chunk_at(quote_start)
    return Citation(
        number=number, doc_id=source.doc_id, source=source.source, chunk_id=chunk_id,
        char_start=source.char_start, char_end=source.char_end, page=page, quote=source.text[start:end],
        quote_start=quote_start, quote_end=quote_end, title=source.title, namespace=source.namespace,
        chunk_ids=source.chunk_ids,
    )


def cite_sentences(context: Context, picks: Sequence[tuple[int, int, int]]) -> str:
    """Text made of passage sentences ``(number, start, end)``, each followed by its ``[n]``."""
    parts = []
    for number, start, end in picks:
        source = context.get(number)
        if source is not None:
            parts.append(f"{' '.join(source.text[start:end].split())} [{number}]")
    return " ".join(parts)


# An opening "[" that may still become a marker when more text arrives.
_PARTIAL_MARKER = re.compile(
    r"\[\s*(?:s(?:o(?:u(?:r(?:c(?:e(?:s)?)?)?)?)?)?\s*)?[\d\s,;and\-–]*\Z", re.IGNORECASE
)
_MAX_PENDING = 48


class MarkerFilter:
    """Cleans streamed text as it arrives, the same way for every piece boundary.

    Markers are written as ``[n]``; markers naming no source are dropped together with the
    whitespace before them; leading and trailing whitespace is dropped. Text is held back
    only while it could still be the start of a marker (or is trailing whitespace), so the
    pieces joined equal the final answer text exactly.
    """

    def __init__(self, valid: set[int]) -> None:
        self.valid = valid
        self.invalid: list[int] = []
        self._pending = ""
        self._started = False

    def feed(self, piece: str) -> str:
        buffer = self._pending + piece
        self._pending = ""
        if not self._started:
            buffer = buffer.lstrip()
            if not buffer:
                return ""
            self._started = True
        out: list[str] = []
        while buffer:
            index = buffer.find("[")
            if index == -1:
                body = buffer.rstrip()
                out.append(body)
                self._pending = buffer[len(body) :]
                break
            before, rest = buffer[:index], buffer[index:]
            match = _MARKER.match(rest)
            if match:
                kept = []
                for number in _numbers(match.group(1)):
                    if number not in self.valid:
                        if number not in self.invalid:
                            self.invalid.append(number)
                    elif number not in kept:
                        kept.append(number)
                out.append(before + "".join(f"[{n}]" for n in kept) if kept else before.rstrip())
                buffer = rest[match.end() :]
                continue
            if _PARTIAL_MARKER.match(rest) and len(rest) < _MAX_PENDING:
                body = before.rstrip()
                out.append(body)
                self._pending = before[len(body) :] + rest
                break
            out.append(before + "[")
            buffer = rest[1:]
        return "".join(out)

    def flush(self) -> str:
        rest, self._pending = self._pending.rstrip(), ""
        return rest
