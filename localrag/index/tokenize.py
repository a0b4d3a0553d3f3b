"""Word tokenizer for keyword search: Unicode words, casefolded, English stopwords out, Snowball stems.

The same tokenizer must build an index and tokenize its queries, so ``config()`` describes it
fully and ``from_config`` rebuilds it when a persisted index is loaded.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import threading
import unicodedata
from typing import Any

from localrag.errors import ConfigError, DependencyMissingError

log = logging.getLogger(__name__)

# Bump when the word pattern or the stopword list changes: an index built by another version of
# the tokenizer then no longer loads (and is rebuilt) instead of silently missing terms.
TOKENIZER_VERSION = 1

# A standard English list of function words (pronouns, articles, auxiliaries, prepositions,
# conjunctions) plus the fragments left by splitting contractions at the apostrophe
# ("don't" -> "don", "t").
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    {
        "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
        "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
        "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "either",
        "every", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here",
        "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its",
        "itself", "just", "me", "more", "most", "my", "myself", "don", "ever", "may", "might", "must",
        "neither", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "ought",
        "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such",
        "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these",
        "they", "this", "those", "through", "to", "too", "under", "until", "up", "upon", "very", "yet",
        "was", "we", "were", "what", "when", "where", "whether", "which", "while", "who", "whom",
        "whose", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
        "ain", "aren", "couldn", "didn", "doesn", "hadn", "hasn", "haven", "isn", "ma", "mightn",
        "mustn", "needn", "shan", "shouldn", "wasn", "weren", "won", "wouldn", "d", "ll", "m", "o",
        "re", "s", "t", "ve", "y",
    }
)

_STEM_CACHE_LIMIT = 1_000_000  # words; the cache is dropped when it grows past this


_ASCII_WORD = re.compile(r"\w+", re.ASCII)


@functools.cache
def _word_pattern() -> re.Pattern[str]:
    """``\\w+`` widened by the combining marks, so words in Indic scripts and decomposed accents
    stay whole (Python's ``\\w`` leaves out categories Mn/Mc/Me)."""
    ranges: list[str] = []
    start = prev = -2
    # Marks live in planes 0-1 and among plane 14's variation selectors; skipping the rest makes
    # this ~10x faster.
    for cp in itertools.chain(range(0x20000), range(0xE0000, 0xE1000)):
        if unicodedata.category(chr(cp))[0] != "M":
            continue
        if cp != prev + 1:
            if start >= 0:
                ranges.append(_char_range(start, prev))
            start = cp
        prev = cp
    if start >= 0:
        ranges.append(_char_range(start, prev))
    return re.compile(r"[\w" + "".join(ranges) + "]+")


def _char_range(lo: int, hi: int) -> str:
    return re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"


class TextTokenizer:
    """Callable ``text -> list[str]`` used by :class:`~localrag.index.bm25.BM25Index`.

    Steps: NFC-normalise, casefold, split into Unicode words, drop stopwords, stem.
    Safe to share between threads.
    """

    def __init__(self, stem: bool = True, stopwords: bool = True, language: str = "english") -> None:
        if stopwords and language != "english":
            raise ConfigError(f"no stopword list for language {language!r}; pass stopwords=False")
        self.stem = stem
        self.stopwords = stopwords
        self.language = language
        self._stop: frozenset[str] = ENGLISH_STOPWORDS if stopwords else frozenset()
        self._stems: dict[str, str] = {}
        self._lock = threading.Lock()  # a PyStemmer object must not be used by two threads at once
        self._stemmer: Any = _make_stemmer(language) if stem else None

    def __call__(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFC", text).casefold()
        # The wide pattern is ~2.5x slower; ASCII text has no marks, so it needs only \w.
        # _word_pattern() takes ~0.3 s to build: only the first non-ASCII text pays it (not every open).
        words = (_ASCII_WORD if text.isascii() else _word_pattern()).findall(text)
        if self._stop:
            stop = self._stop
            words = [w for w in words if w not in stop]
        if self._stemmer is None or not words:
            return words
        stems = self._stems
        missing = [w for w in dict.fromkeys(words) if w not in stems]
        if missing:
            with self._lock:
                new = self._stemmer.stemWords(missing)
            if len(stems) + len(missing) > _STEM_CACHE_LIMIT:
                stems = self._stems = {}
            stems.update(zip(missing, new, strict=True))
        return [stems[w] for w in words]

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild an identical tokenizer (JSON-serialisable)."""
        return {
            "kind": "text",
            "version": TOKENIZER_VERSION,
            "stem": self.stem,
            "stopwords": self.stopwords,
            "language": self.language,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TextTokenizer:
        """Rebuild the tokenizer ``config()`` described; ConfigError if this version cannot."""
        if config.get("kind") != "text" or config.get("version") != TOKENIZER_VERSION:
            raise ConfigError(f"unsupported tokenizer config {config!r}")
        try:
            return cls(
                stem=bool(config["stem"]),
                stopwords=bool(config["stopwords"]),
                language=str(config["language"]),
            )
        except KeyError as e:
            raise ConfigError(f"tokenizer config lacks {e}") from e

    def __repr__(self) -> str:
        return f"TextTokenizer(stem={self.stem}, stopwords={self.stopwords}, language={self.language!r})"


def _make_stemmer(language: str) -> Any:
    try:
        import Stemmer
    except ImportError as e:
        raise DependencyMissingError("stemming needs PyStemmer: pip install PyStemmer") from e
    try:
        return Stemmer.Stemmer(language)
    except KeyError as e:
        raise ConfigError(f"no Snowball stemmer for language {language!r}") from e
