"""Claims of an answer, and the cheap deterministic checks of one claim against one passage.

A claim is a sentence of the answer, or a clause of it where the sentence joins two statements
(``"; "``, ``", and "``, ``", but "``, ``", while "`` with a few words on each side). A marker
written right after a clause cites that clause; a clause without markers of its own takes those
closing its sentence.

The rule signals catch what a small judge model lets through:

- **negation**: the claim is negated and the passage sentence it matches best is not, or the other
  way round ("did not open in 1937" against "opened in 1937");
- **numbers**: a number or year of the claim that the passage does not contain ("1936" against
  "1937"); a contradiction when the matching sentence holds another number, else unsupported;
- **names**: a capitalised name of the claim that the passage does not contain (unsupported), or
  that it contains only away from the sentence the rest of the claim matches, while that sentence
  names someone else (a wrong name for the role: "the winner was Nakamura" where Asuka won).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from localrag.answer.citations import best_sentence, strip_markers
from localrag.answer.sentences import sentences, terms

_MARKERS = re.compile(r"(?:\s*\[\d+\])+")
_MARKER_NUMBER = re.compile(r"\[(\d+)\]")
# Markers opening a span: "Claim. [1] Next claim." splits after the full stop, so "[1]" opens the
# next span although it closes the claim before it.
_LEADING_MARKERS = re.compile(r"(?:\[\d+\]\s*)+")
# Where a sentence joining two statements may be cut: the joint and the clause after it.
_JOINT = re.compile(r"(?:;|,\s+(?:and|but|while|whereas|although))\s+", re.IGNORECASE)
_MIN_CLAUSE_WORDS = 4
_NEGATION = re.compile(
    r"\b(?<!whether or )(?:not|no|never|none|nor|neither|nobody|nothing|without|cannot|failed to|unable to)\b"
    r"|n't\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th|s)?(?![\w])")
_WORD_NUMBERS = {w: str(i) for i, w in enumerate(
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"))}
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
# A capitalised run of words ("Shinsuke Nakamura", "Super Bowl 50"), joiners allowed inside.
_NAME = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:(?:of|de|the|van|von|da|al|del|and)\s+)?[A-Z0-9][\w'’.-]*)*")
# Capitalised words that name nobody: sentence openers, pronouns, months are kept (they are dates).
_NOT_NAMES = frozenset(re.findall(r"\S+", """
    a an the this that these those it its it's he she they we i you his her their our my your there here
    in on at by for from to of and or but if when while after before since during as with without
    according yes no not also however both each every some many most all one first"""))


@dataclass(frozen=True, slots=True)
class ClaimSpan:
    """A claim of an answer: ``answer[start:end]`` (with its own markers), its text without markers,
    and the source numbers cited for it."""

    text: str
    start: int
    end: int
    citations: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Signals:
    """What the rules found wrong with a claim against one passage (empty tuples: nothing)."""

    negation: bool = False  # negated on one side only
    numbers_absent: tuple[str, ...] = ()
    numbers_changed: bool = False  # the matching sentence holds other numbers
    names_absent: tuple[str, ...] = ()
    names_misplaced: tuple[str, ...] = ()

    @property
    def contradicted(self) -> bool:
        return self.negation or self.numbers_changed or bool(self.names_misplaced)

    @property
    def unsupported(self) -> bool:
        return bool(self.numbers_absent or self.names_absent)

    def reasons(self) -> list[str]:
        out = ["negation differs"] if self.negation else []
        out += [f"number {n} not in the source" for n in self.numbers_absent]
        out += [f"name {n!r} not in the source" for n in self.names_absent]
        out += [f"name {n!r} in another role in the source" for n in self.names_misplaced]
        return out


def split_claims(text: str) -> list[ClaimSpan]:
    """The claims of ``text`` (an answer with ``[n]`` markers), in order; claims without words are left out."""
    claims: list[ClaimSpan] = []
    for start, end in sentence_spans(text):
        closing = _closing_markers(text, start, end)
        for cstart, cend in _clauses(text, start, end):
            own = tuple(int(n) for n in _MARKER_NUMBER.findall(text[cstart:cend]))
            claim = strip_markers(text[cstart:cend]).strip()
            if _WORD.search(claim):
                claims.append(ClaimSpan(claim, cstart, cend, tuple(dict.fromkeys(own or closing))))
    return claims


def sentence_spans(text: str) -> list[tuple[int, int]]:
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


def _closing_markers(text: str, start: int, end: int) -> tuple[int, ...]:
    tail = re.search(r"((?:\[\d+\][\s.!?]*)+)$", text[start:end])
    return tuple(int(n) for n in _MARKER_NUMBER.findall(tail.group(1))) if tail else ()


def _clauses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    cuts = [start]
    for joint in _JOINT.finditer(text, start, end):
        before = strip_markers(text[cuts[-1] : joint.start()])
        after = strip_markers(text[joint.end() : end])
        if len(before.split()) >= _MIN_CLAUSE_WORDS and len(after.split()) >= _MIN_CLAUSE_WORDS:
            cuts.append(joint.end())
    spans = []
    for i, cut in enumerate(cuts):
        stop = cuts[i + 1] if i + 1 < len(cuts) else end
        piece = text[cut:stop].rstrip()
        piece = re.sub(r"(?:;|,\s+(?:and|but|while|whereas|although))$", "", piece, flags=re.IGNORECASE)
        spans.append((cut, cut + len(piece.rstrip(" ,;"))))
    return spans


# -- rule signals ------------------------------------------------------------------------
def numbers(text: str) -> set[str]:
    """Numbers in ``text``, normalised: "1,000" → "1000", "4th" → "4", "1990s" → "1990", "two" → "2"."""
    found = {re.sub(r"(?:st|nd|rd|th|s)$", "", n).replace(",", "") for n in _NUMBER.findall(text)}
    found |= {_WORD_NUMBERS[w.lower()] for w in _WORD.findall(text) if w.lower() in _WORD_NUMBERS}
    return {n.rstrip(".") for n in found if n}


def negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


def names(text: str) -> list[str]:
    """Capitalised names in ``text``, with leading words that name nobody ("The", "In") left out."""
    out = []
    for match in _NAME.finditer(text):
        words = match.group().split()
        while words and words[0].lower().strip(".") in _NOT_NAMES:
            words = words[1:]
        name = " ".join(words).rstrip(".'’")
        if name and not name.isdigit():
            out.append(name)
    return out


def _contains(haystack: str, name: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(name.lower()) + r"(?!\w)", haystack) is not None


def signals(claim: str, passage: str, question: str = "", *, role_share: float = 0.5) -> Signals:
    """The rule signals of ``claim`` (no markers) against ``passage``. Numbers and names the ``question``
    brought are not the answer's to prove (the question's words, restated, claim nothing)."""
    lowered = passage.lower()
    asked = question.lower()
    start, end, share = best_sentence(passage, claim)
    aligned = passage[start:end] if share > 0 else ""
    negation = bool(aligned) and _negation_differs(claim, aligned)
    claim_numbers = numbers(claim) - numbers(question)
    absent_numbers = tuple(sorted(claim_numbers - numbers(passage)))
    # a number the sentence matching the claim closely does not hold, while it holds another: changed,
    # even when the passage has the claim's number elsewhere ("1350" against "... Russia in 1351")
    aligned_numbers = numbers(aligned)
    close = share >= _CLOSE_MATCH
    changed = (bool(absent_numbers) or (close and bool(claim_numbers - aligned_numbers))) and bool(
        aligned_numbers - claim_numbers)
    absent_names: list[str] = []
    misplaced: list[str] = []
    claim_names = [n for n in (_POSSESSIVE.sub("", n) for n in names(claim)) if n and not _contains(asked, n.lower())]
    # the sentence matching the claim's other words, to see who the passage gives that role to
    rest = claim
    for name in claim_names:
        rest = rest.replace(name, " ")
    rs, re_, rshare = best_sentence(passage, rest) if terms(rest) else (0, 0, 0.0)
    role_sentence = passage[rs:re_].lower() if rshare >= role_share else ""
    for name in claim_names:
        words = name.lower().split()
        if _contains(lowered, name.lower()) or all(_contains(lowered, w) for w in words):
            if role_sentence and not all(_contains(role_sentence, w) for w in words):
                others = [n for n in names(passage[rs:re_]) if n.lower() not in claim.lower()]
                if others:
                    misplaced.append(name)
        elif not _contains(lowered, words[-1]):
            absent_names.append(name)
    return Signals(negation, () if changed else absent_numbers, changed, tuple(absent_names), tuple(misplaced))


_POSSESSIVE = re.compile(r"['’]s?$")
_NEGATION_REACH = 3  # content words after a negation cue that it negates
_CLOSE_MATCH = 0.6  # share of the claim's words from which a passage sentence is the one it restates


def _negated_terms(text: str) -> set[str]:
    """Content terms within reach of a negation cue: the first few content words after it."""
    out: set[str] = set()
    for cue in _NEGATION.finditer(text):
        reach: list[str] = []
        for word in text[cue.end() :].split():
            reach.extend(sorted(terms(word)))
            if len(reach) >= _NEGATION_REACH:
                break
        out.update(reach[:_NEGATION_REACH])
    return out


def _negation_differs(claim: str, sentence: str) -> bool:
    """Whether one side negates what the other asserts: a word negated on one side is present, not
    negated, on the other ("did not open" against "opened")."""
    if negated(claim) and not negated(sentence):
        return True
    claim_negated, sentence_negated = _negated_terms(claim), _negated_terms(sentence)
    return bool((claim_negated & terms(sentence)) - sentence_negated) or bool(
        (sentence_negated & terms(claim)) - claim_negated)


def strip_claim_markers(text: str) -> str:
    return _MARKERS.sub("", text).strip()
