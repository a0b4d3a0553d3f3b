"""Token-aware chunking: split a document into overlapping spans of at most N model tokens.

The text is tokenized once (in blocks of ~100k chars cut at paragraph breaks, so a 50 MB
document never holds more than one block of token offsets at a time); all later work is on
char offsets. Each chunk ends at the latest good boundary in the second half of its token
window, preferring a blank line, then a sentence end (or a newline), then a word break; it
is cut mid-word only when the window holds no word break at all. Chunk offsets are trimmed
of surrounding whitespace, so ``document.text[c.char_start:c.char_end] == c.text`` always.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
from collections.abc import Iterator

from localrag.errors import ConfigError
from localrag.protocols import Tokenizer
from localrag.types import Chunk, Document

log = logging.getLogger(__name__)

DEFAULT_BLOCK_CHARS = 100_000

# Boundary ranks: higher is a better place to end a chunk.
_NONE, _WORD, _SENTENCE, _PARAGRAPH = 0, 1, 2, 3
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_SENTENCE_END = frozenset(".!?…")
_CJK_SENTENCE_END = frozenset("。！？．｡")  # end sentences even without a following space
_CLOSERS = frozenset("\"')]}’”»」』")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _blocks(text: str, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) spans of at most ``size`` chars, cut after a blank line, newline or space."""
    pos, n = 0, len(text)
    while pos < n:
        if n - pos <= size:
            yield pos, n
            return
        lo, hi = pos + size // 2, pos + size
        cut = text.rfind("\n\n", lo, hi)
        if cut != -1:
            cut += 2
        else:
            cut = max(text.rfind("\n", lo, hi), text.rfind(" ", lo, hi)) + 1
            if cut <= lo:
                cut = hi  # no whitespace at all: a hard cut is unavoidable
        yield pos, cut
        pos = cut


class Chunker:
    """Splits documents into chunks of at most ``chunk_tokens`` tokens of ``tokenizer``.

    Consecutive chunks share about ``overlap_tokens`` tokens (never more than half of the
    previous chunk, so every step advances), starting at a word start when one is near.
    ``min_fill`` is the fraction of the window before which no boundary is taken (so chunks
    do not become tiny); ``block_chars`` bounds the text tokenized in one call.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        chunk_tokens: int = 200,
        overlap_tokens: int = 32,
        *,
        min_fill: float = 0.5,
        block_chars: int = DEFAULT_BLOCK_CHARS,
    ) -> None:
        if chunk_tokens < 1:
            raise ConfigError(f"chunk_tokens must be at least 1, got {chunk_tokens}")
        if not 0 <= overlap_tokens < chunk_tokens:
            raise ConfigError(
                f"overlap_tokens must be in [0, chunk_tokens), got {overlap_tokens} with {chunk_tokens}"
            )
        if not 0.0 < min_fill <= 1.0:
            raise ConfigError(f"min_fill must be in (0, 1], got {min_fill}")
        if block_chars < 64:
            raise ConfigError(f"block_chars must be at least 64, got {block_chars}")
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.min_fill = min_fill
        self.block_chars = block_chars
        self._min_tokens = max(1, math.ceil(chunk_tokens * min_fill))

    # ------------------------------------------------------------------ tokens

    def _token_blocks(self, text: str) -> Iterator[tuple[list[int], list[int]]]:
        """Token (starts, ends) per block, as offsets into the whole ``text``."""
        for start, end in _blocks(text, self.block_chars):
            block = text[start:end]
            offsets = self.tokenizer.token_offsets(block)
            if offsets:
                self._check_coverage(block, offsets[-1][1])
            yield [s + start for s, _ in offsets], [e + start for _, e in offsets]

    @staticmethod
    def _check_coverage(block: str, last_end: int) -> None:
        # A tokenizer left with truncation on silently drops the tail; the chunks would then
        # blow far past the budget. Fail loudly instead.
        # Dropped control or zero-width chars are not alphanumeric, so they never trip this.
        tail = block[last_end : last_end + 2000]
        if sum(c.isalnum() for c in tail) > 200:
            raise ConfigError(
                f"the tokenizer's offsets stop at char {last_end} of a {len(block)}-char text; "
                "disable truncation on the tokenizer used for chunking"
            )

    # ------------------------------------------------------------------ boundaries

    @staticmethod
    def _rank(text: str, starts: list[int], ends: list[int], j: int) -> int:
        """How good a place the boundary just before token ``j`` is to end a chunk."""
        left, right = ends[j - 1], starts[j]
        if right < left:
            return _NONE
        # Byte-level BPE tokens carry their leading space: widen over whitespace inside tokens.
        floor, ceil = starts[j - 1], ends[j]
        while left > floor and text[left - 1].isspace():
            left -= 1
        while right < ceil and text[right].isspace():
            right += 1
        gap = text[left:right]
        if not any(c.isspace() for c in gap):
            gap = ""  # at most chars the tokenizer dropped (control chars): no break
        if not gap:
            prev = text[left - 1] if left > 0 else ""
            if prev in _CJK_SENTENCE_END:
                return _SENTENCE
            if _CJK.match(prev) or (right < len(text) and _CJK.match(text[right])):
                return _WORD  # CJK ideographs are words of their own
            return _NONE
        if "\n" in gap:
            return _PARAGRAPH if _BLANK_LINE.search(gap) else _SENTENCE
        k = left - 1
        while k > 0 and text[k] in _CLOSERS and left - k <= 3:
            k -= 1
        if k >= 0 and (text[k] in _SENTENCE_END or text[k] in _CJK_SENTENCE_END):
            return _SENTENCE
        return _WORD

    def _end(self, text: str, starts: list[int], ends: list[int], i: int, n: int) -> int:
        """Exclusive end token of the chunk starting at token ``i``."""
        j_max = min(i + self.chunk_tokens, n)
        if j_max == n:
            return n
        best_j, best_rank = j_max, -1
        for j in range(j_max, i + self._min_tokens - 1, -1):
            rank = self._rank(text, starts, ends, j)
            if rank > best_rank:
                best_j, best_rank = j, rank
                if rank == _PARAGRAPH:
                    break
        return best_j

    def _next_start(self, text: str, starts: list[int], ends: list[int], i: int, j: int) -> int:
        """First token of the chunk after [i, j): about ``overlap_tokens`` back, at a word start."""
        if self.overlap_tokens == 0:
            return j
        target = max(j - self.overlap_tokens, i + (j - i + 1) // 2, i + 1)
        lo = i + 1
        for d in range(max(target - lo, j - target) + 1):
            for k in (target - d, target + d):
                if lo <= k <= j and self._rank(text, starts, ends, k) >= _WORD:
                    return k
        return target  # no word break anywhere in the chunk: start mid-word

    @staticmethod
    def _spaced(text: str, starts: list[int], ends: list[int], j: int) -> bool:
        """Whether whitespace separates token ``j`` from the one before it."""
        return any(c.isspace() for c in text[max(ends[j - 1] - 1, 0) : starts[j] + 1])

    def _fit(self, text: str, starts: list[int], i: int, j: int, n: int, span_start: int) -> int:
        """Shrink a chunk cut mid-word until its text, tokenized on its own, fits the budget.

        A word fragment can tokenize into more pieces than it had in context ("##plugh" vs
        "plugh"); this rare path (no word break in reach) pays one extra tokenizer call.
        """
        while j > i + 1:
            piece = text[span_start : len(text) if j == n else starts[j]].strip()
            excess = len(self.tokenizer.token_offsets(piece)) - self.chunk_tokens
            if excess <= 0:
                break
            j = max(i + 1, j - excess)
        return j

    # ------------------------------------------------------------------ public

    def split(self, document: Document) -> list[Chunk]:
        """Chunks of ``document`` in order; none for an empty or whitespace-only text."""
        text = document.text
        if not text.strip():
            return []
        chunks: list[Chunk] = []
        blocks = self._token_blocks(text)
        starts: list[int] = []
        ends: list[int] = []
        exhausted = False
        i = 0
        first = True
        while True:
            # Keep one window plus the token after it buffered: the boundary needs starts[j].
            while not exhausted and len(starts) < i + self.chunk_tokens + 1:
                nxt = next(blocks, None)
                if nxt is None:
                    exhausted = True
                    break
                if i > 1:  # keep token i-1: boundary checks at i look one token back
                    del starts[: i - 1], ends[: i - 1]
                    i = 1
                starts.extend(nxt[0])
                ends.extend(nxt[1])
            n = len(starts)
            if i >= n:
                break
            j = self._end(text, starts, ends, i, n)
            span_start = 0 if first else starts[i]
            if not (first or self._spaced(text, starts, ends, i)) or not (
                j == n or self._spaced(text, starts, ends, j)
            ):
                j = self._fit(text, starts, i, j, n, span_start)
            span_end = len(text) if j == n else starts[j]
            self._append(chunks, document, span_start, span_end)
            first = False
            if j == n:
                break
            i = self._next_start(text, starts, ends, i, j)
        if not chunks:
            # Text the tokenizer yields nothing for ("!!!", control characters) is still a document:
            # refusing it as "empty" would contradict the non-blank test every caller applies.
            self._append(chunks, document, 0, len(text))
        return chunks

    @staticmethod
    def _append(chunks: list[Chunk], document: Document, start: int, end: int) -> None:
        text = document.text
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start == end:
            return
        page = None
        if document.page_starts:  # same answer as Document.page_at, in O(log pages)
            page = max(1, bisect.bisect_right(document.page_starts, start))
        chunks.append(Chunk(text[start:end], start, end, len(chunks), page))
