"""The Lucene query-string subset of ``query_string`` clauses, and BM25 evaluation of text queries.

Supported: terms, ``"phrases"``, ``field:term``, ``field:"phrase"``, ``field:(group)``, grouping
with parentheses, ``AND``/``&&``, ``OR``/``||``, ``NOT``/``!``, ``+term`` (required), ``-term``
(excluded), and ``^N`` boosts on terms, phrases and groups. Clauses combine as Lucene's classic
QueryParser does with OR as the default operator: a clause is required after ``AND`` (and
``AND`` makes the clause before it required too), excluded after ``NOT`` or ``-``, optional
otherwise. A group matches when all its required clauses match (or, without any, one of its
optional ones) and none of its excluded ones; it scores the sum of its matching clauses. An
unqualified term searches every full-text field. Wildcards, fuzzy and proximity ``~``, ranges
and regular expressions are refused with a 400 naming them.

Scores are BM25 sums over *units* (a term or phrase in one field): a unit that several clauses
match scores once (at its highest boost), so repeating a clause does not up-weight it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from localrag.errors import InvalidInputError
from localrag.pinecone.documents_text import EMPTY, FieldIndex, Scored

MAX_QUERY_LENGTH = 4096
MAX_CLAUSES = 1024

Unit = tuple[str, tuple[str, ...]]

SHOULD, MUST, MUST_NOT = "should", "must", "must_not"


@dataclass(frozen=True, slots=True)
class Term:
    field: str | None
    text: str
    boost: float = 1.0
    phrase: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    clauses: tuple[tuple[str, Term | Group], ...]
    boost: float = 1.0


# --------------------------------------------------------------------------- parsing

_START = r"""(?:[^\s"()+\-!^:\\&|]|\\.|&(?!&)|\|(?!\|))"""
_REST = r"""(?:[^\s"()!^:\\&|]|\\.|&(?!&)|\|(?!\|))"""
_TOKEN = re.compile(r"""\s*(?:(?P<phrase>"(?:[^"\\]|\\.)*")|(?P<op>&&|\|\||[()+\-!^:])|(?P<word>""" + _START + _REST
                    + "*))")
_PHRASES = re.compile(r'"(?:[^"\\]|\\.)*"')
_UNSUPPORTED = re.compile(r"(?<!\\)[*?~\[\]{}/]")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(query):
            if query[pos:].strip() == "":
                break
            match = _TOKEN.match(query, pos)
            if match is None or match.end() == pos:
                raise InvalidInputError(f"query_string: cannot parse {query[pos:pos + 20]!r} at character {pos}")
            kind = match.lastgroup or "word"
            value = match.group(kind)
            if kind == "word" and value in ("AND", "OR", "NOT"):
                kind, value = "op", {"AND": "&&", "OR": "||", "NOT": "!"}[value]
            self.tokens.append((kind, value))
            pos = match.end()
        self.pos = 0
        self.clauses = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise InvalidInputError("query_string: unexpected end of query")
        self.pos += 1
        return token

    def group(self, field: str | None, closing: bool) -> Group:
        clauses: list[tuple[str, Term | Group]] = []
        while True:
            token = self.peek()
            if token is None or token == ("op", ")"):
                if closing and token is None:
                    raise InvalidInputError("query_string: a '(' is not closed")
                if not closing and token is not None:
                    raise InvalidInputError("query_string: a ')' has no matching '('")
                break
            conj = ""
            if token[0] == "op" and token[1] in ("&&", "||"):
                if not clauses:
                    raise InvalidInputError(f"query_string: {'AND' if token[1] == '&&' else 'OR'} needs a clause "
                                            "before it")
                conj = self.take()[1]
            modifier = ""
            token = self.peek()
            if token is not None and token[0] == "op" and token[1] in ("+", "-", "!"):
                modifier = self.take()[1]
            node = self.clause(field)
            if conj == "&&" and clauses and clauses[-1][0] == SHOULD:
                clauses[-1] = (MUST, clauses[-1][1])
            occur = MUST_NOT if modifier in ("-", "!") else MUST if modifier == "+" or conj == "&&" else SHOULD
            clauses.append((occur, node))
            self.clauses += 1
            if self.clauses > MAX_CLAUSES:
                raise InvalidInputError(f"query_string has more than {MAX_CLAUSES} clauses")
        if not clauses:
            raise InvalidInputError("query_string: empty query or group")
        return Group(tuple(clauses))

    def clause(self, field: str | None) -> Term | Group:
        kind, value = self.take()
        if kind == "word" and self.peek() == ("op", ":"):
            self.take()
            field = _unescape(value)
            kind, value = self.take()
        node: Term | Group
        if kind == "phrase":
            node = Term(field, _unescape(value[1:-1]), phrase=True)
        elif kind == "word":
            node = Term(field, _unescape(value))
        elif (kind, value) == ("op", "("):
            node = self.group(field, closing=True)
            self.take()
        else:
            raise InvalidInputError(f"query_string: unexpected {value!r}")
        if self.peek() == ("op", "^"):
            self.take()
            kind, value = self.take()
            if kind != "word" or not _NUMBER.match(value):
                raise InvalidInputError(f"query_string: a boost must be a non-negative number, got {value!r}")
            boost = float(value)
            node = Term(node.field, node.text, boost, node.phrase) if isinstance(node, Term) else \
                Group(node.clauses, boost)
        return node


def parse_query_string(query: str) -> Group:
    """The query's clause tree; InvalidInputError naming the problem for anything unsupported."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError("query_string: query must be a non-empty string")
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidInputError(f"query_string is longer than {MAX_QUERY_LENGTH} characters")
    bad = _UNSUPPORTED.search(_PHRASES.sub("", query))
    if bad:
        raise InvalidInputError(f"query_string: {bad.group()!r} (wildcards, fuzzy or proximity '~', ranges and "
                                "regular expressions) is not supported")
    return _Parser(query).group(None, closing=False)


# --------------------------------------------------------------------------- evaluation


class Hits:
    """The documents a clause matched, and per unit the (boosted) score of each document that has it.

    ``matched`` can hold documents with no unit of their own only through a parent's filtering, so
    every matched document carries at least one unit. Arrays keep large postings cheap.
    """

    __slots__ = ("matched", "units")

    def __init__(self, units: dict[Unit, Scored] | None = None) -> None:
        self.units: dict[Unit, Scored] = units or {}
        slots = [s for s, _ in self.units.values()]
        self.matched: NDArray[np.int64] = np.unique(np.concatenate(slots)) if slots else EMPTY[0]

    def merge(self, other: Hits) -> None:
        """Union; a unit matched twice keeps each document's highest score (a unit scores once)."""
        for unit, (slots, scores) in other.units.items():
            mine = self.units.get(unit)
            self.units[unit] = (slots, scores) if mine is None else _max_merge(mine, (slots, scores))
        self.matched = np.union1d(self.matched, other.matched)

    def restricted(self, keep: NDArray[np.int64]) -> Hits:
        out = Hits()
        for unit, (slots, scores) in self.units.items():
            inside = np.isin(slots, keep, assume_unique=True)
            if inside.any():
                out.units[unit] = (slots[inside], scores[inside])
        out.matched = np.intersect1d(self.matched, keep, assume_unique=True)
        return out

    def totals(self) -> Scored:
        """(slots, summed scores) over every unit."""
        if not self.units:
            return EMPTY
        slots = np.concatenate([s for s, _ in self.units.values()])
        scores = np.concatenate([v for _, v in self.units.values()])
        unique, inverse = np.unique(slots, return_inverse=True)
        return unique.astype(np.int64), np.bincount(inverse, weights=scores, minlength=len(unique)).astype(np.float64)


def _max_merge(a: Scored, b: Scored) -> Scored:
    slots = np.concatenate([a[0], b[0]])
    scores = np.concatenate([a[1], b[1]])
    order = np.lexsort((-scores, slots))  # by slot, the highest score first
    slots, scores = slots[order], scores[order]
    first = np.ones(len(slots), dtype=bool)
    first[1:] = slots[1:] != slots[:-1]
    return slots[first], scores[first]


class TextScorer:
    """Evaluates clause trees against one namespace's full-text fields."""

    def __init__(self, fields: Mapping[str, FieldIndex], check_field: Callable[[str], None]) -> None:
        self.fields = fields
        self.check_field = check_field

    def term(self, field: str, words: Sequence[str], boost: float, phrase: bool) -> Hits:
        index = self.fields.get(field)
        if index is None or not words:
            return Hits()
        units = [tuple(words)] if phrase else [(w,) for w in dict.fromkeys(words)]
        found: dict[Unit, Scored] = {}
        for unit in units:
            slots, scores = index.phrase_scores(unit)
            if len(slots):
                found[(field, unit)] = (slots, boost * scores)
        return Hits(found)

    def text(self, query: str, fields: Sequence[str]) -> Hits:
        """A ``text`` clause: every query word in every named field, OR'd and summed."""
        out = Hits()
        for field in dict.fromkeys(fields):
            self.check_field(field)
            index = self.fields[field]
            out.merge(self.term(field, index.tokenize(query), 1.0, False))
        return out

    def evaluate(self, node: Term | Group, boost: float = 1.0) -> Hits | None:
        """Hits of a clause; None for a clause that analyses to nothing (it is dropped, as in Lucene)."""
        if isinstance(node, Term):
            fields = [node.field] if node.field is not None else list(self.fields)
            out = Hits()
            analysed = False
            for field in fields:
                self.check_field(field)
                words = self.fields[field].tokenize(node.text)
                analysed = analysed or bool(words)
                out.merge(self.term(field, words, boost * node.boost, node.phrase))
            return out if analysed else None
        required: list[Hits] = []
        optional: list[Hits] = []
        excluded: list[NDArray[np.int64]] = []
        for occur, child in node.clauses:
            hits = self.evaluate(child, boost * node.boost)
            if hits is None:
                continue
            if occur == MUST_NOT:
                excluded.append(hits.matched)
            else:
                (required if occur == MUST else optional).append(hits)
        if not required and not optional:
            return Hits() if excluded else None  # exclusions alone match nothing, as in Lucene
        keep = (required or optional)[0].matched
        for hits in (required or optional)[1:]:
            keep = np.intersect1d(keep, hits.matched, assume_unique=True) if required else \
                np.union1d(keep, hits.matched)
        for out_slots in excluded:
            keep = np.setdiff1d(keep, out_slots, assume_unique=True)
        out = Hits()
        for hits in required + optional:
            out.merge(hits.restricted(keep))
        return out
