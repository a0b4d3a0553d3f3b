"""TextTokenizer: Unicode words, casefolding, stopwords and stemming, each switchable."""

from __future__ import annotations

import json
import unicodedata
from concurrent.futures import ThreadPoolExecutor

import pytest

from localrag.errors import ConfigError
from localrag.index.tokenize import ENGLISH_STOPWORDS, TextTokenizer


def plain() -> TextTokenizer:
    return TextTokenizer(stem=False, stopwords=False)


def test_unicode_words_are_tokens() -> None:
    assert plain()("Café naïve Straße 東京 हिन्दी Ελληνικά") == [
        "café", "naïve", "strasse", "東京", "हिन्दी", "ελληνικά",
    ]


def test_decomposed_accents_give_the_same_tokens_as_composed() -> None:
    text = "Café naïve résumé"
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    assert plain()(decomposed) == plain()(text) == ["café", "naïve", "résumé"]


def test_splits_on_punctuation_and_keeps_digits_and_underscores() -> None:
    assert plain()("e-mail, foo.bar x_y 3.14 C++!") == ["e", "mail", "foo", "bar", "x_y", "3", "14", "c"]


def test_casefolding() -> None:
    assert plain()("HELLO Hello hello") == ["hello"] * 3
    assert plain()("STRASSE") == plain()("straße")


def test_empty_and_punctuation_only_text() -> None:
    tok = TextTokenizer()
    assert tok("") == []
    assert tok("  ,.;!? -- ") == []
    assert tok("the and of") == []  # stopwords only


def test_stopwords_on_and_off() -> None:
    text = "The cat and the hat"
    assert TextTokenizer(stem=False, stopwords=True)(text) == ["cat", "hat"]
    assert TextTokenizer(stem=False, stopwords=False)(text) == ["the", "cat", "and", "the", "hat"]


def test_stopwords_are_matched_after_casefolding_and_contractions_split() -> None:
    assert TextTokenizer(stem=False)("THE Cat DOESN'T sit") == ["cat", "sit"]


def test_stemming_on_and_off() -> None:
    text = "running runs connected connections"
    assert TextTokenizer(stem=True, stopwords=False)(text) == ["run", "run", "connect", "connect"]
    assert TextTokenizer(stem=False, stopwords=False)(text) == text.split()


def test_stemming_is_stable_across_calls_with_the_cache() -> None:
    tok = TextTokenizer()
    first = tok("jumping foxes jumped over fences")
    again = tok("fences jumped jumping foxes")
    assert first == ["jump", "fox", "jump", "fenc"]
    assert again == ["fenc", "jump", "jump", "fox"]


def test_other_language_stemmer() -> None:
    tok = TextTokenizer(stopwords=False, language="german")
    assert tok("Die Häuser HÄUSER") == ["die", "haus", "haus"]


def test_unknown_language_and_missing_stopword_list_raise_config_error() -> None:
    with pytest.raises(ConfigError):
        TextTokenizer(stopwords=False, language="klingon")
    with pytest.raises(ConfigError):
        TextTokenizer(language="german")  # no German stopword list ships


def test_stopword_list_is_a_standard_english_one() -> None:
    assert 150 <= len(ENGLISH_STOPWORDS) <= 200
    assert {"the", "a", "and", "of", "is", "don", "t"} <= ENGLISH_STOPWORDS
    assert all(w == w.casefold() and w.isalpha() for w in ENGLISH_STOPWORDS)


@pytest.mark.parametrize(
    ("stem", "stopwords", "language"), [(True, True, "english"), (False, False, "french")]
)
def test_config_round_trip(stem: bool, stopwords: bool, language: str) -> None:
    tok = TextTokenizer(stem=stem, stopwords=stopwords, language=language)
    config = json.loads(json.dumps(tok.config()))
    again = TextTokenizer.from_config(config)
    assert again.config() == tok.config()
    text = "Les maisons et the Running dogs"
    assert again(text) == tok(text)


@pytest.mark.parametrize(
    "config",
    [
        {"kind": "text", "version": 999, "stem": True, "stopwords": True, "language": "english"},
        {"kind": "other", "version": 1},
        {"kind": "text", "version": 1, "stem": True},
    ],
)
def test_bad_config_raises_config_error(config: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        TextTokenizer.from_config(config)


def test_shared_between_threads() -> None:
    tok = TextTokenizer()
    texts = [f"document {i} about running horses number{i % 50} and jumping{i % 13}" for i in range(400)]
    expected = [TextTokenizer()(t) for t in texts]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(tok, texts)) == expected
