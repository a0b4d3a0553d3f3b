"""Sentence spans and content terms, shared by citation checking and the extractive provider."""

from __future__ import annotations

import functools
import re

from localrag.index.tokenize import TextTokenizer

# A sentence ends at . ! ? (with closing quotes or brackets) before whitespace, at a blank line, or
# before a line opening a heading, quote or list item. A single line break does not end one:
# plain-text documents are often hard-wrapped mid-sentence.
_BOUNDARY = re.compile(
    r"(?P<stop>[.!?]+[\"'’”)\]]*(?=\s|$))"
    r"|(?P<heading>^[^\S\n]*\#{1,6}[^\S\n][^\n]*)"
    r"|\n[^\S\n]*\n"
    r"|\n(?=[^\S\n]*(?:[#>*•-]|\d+[.)])\s)",
    re.MULTILINE,
)


@functools.cache
def _tokenizer() -> TextTokenizer:
    return TextTokenizer()


def terms(text: str) -> set[str]:
    """Stemmed content words (stopwords out), as the keyword index sees them."""
    return set(_tokenizer()(text))


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, trimmed of surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if match.group("heading"):  # a heading is a sentence of its own
            _add(spans, text, start, match.start())
            _add(spans, text, match.start(), match.end())
        else:
            _add(spans, text, start, match.end() if match.group("stop") else match.start())
        start = match.end()
    _add(spans, text, start, len(text))
    return spans


def _add(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
