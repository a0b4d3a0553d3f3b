"""Frozen dataclasses for the data that flows between components."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SearchMode = Literal["dense", "keyword", "hybrid"]
FusionMethod = Literal["rrf", "weighted"]
Metadata = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Document:
    """A whole source document, as a loader produced it.

    ``page_starts`` holds the char offset at which each page begins (page 1 first),
    empty for formats without pages.
    """

    doc_id: str
    text: str
    source: str = ""
    title: str = ""
    metadata: Metadata = field(default_factory=dict)
    page_starts: tuple[int, ...] = ()

    def page_at(self, offset: int) -> int | None:
        """1-based page holding char ``offset``, or None for page-less documents."""
        if not self.page_starts:
            return None
        page = 1
        for i, start in enumerate(self.page_starts):
            if start <= offset:
                page = i + 1
            else:
                break
        return page


@dataclass(frozen=True, slots=True)
class Chunk:
    """A span of a document: ``document.text[char_start:char_end] == text``."""

    text: str
    char_start: int
    char_end: int
    ordinal: int
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a chunk with where it came from and how it scored.

    ``scores`` keeps each stage's score ("dense", "keyword", "fused", "rerank").
    """

    chunk_id: int
    doc_id: str
    text: str
    score: float
    source: str = ""
    title: str = ""
    char_start: int = 0
    char_end: int = 0
    page: int | None = None
    namespace: str = ""
    metadata: Metadata = field(default_factory=dict)
    scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What an ``add`` did: counts, and every input skipped with its reason."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    chunks_added: int = 0
    seconds: float = 0.0

    @property
    def documents_written(self) -> int:
        return len(self.added) + len(self.updated)


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    k: int = 10
    mode: SearchMode = "hybrid"
    namespace: str = ""
    filter: Mapping[str, Any] | None = None
    fusion: FusionMethod | None = None
    alpha: float | None = None
    rrf_k: int | None = None
    candidates: int | None = None  # first-stage depth; with reranking, k1 (hits reranked down to k)
    rerank: bool | None = None  # None: the configured default (rerank.enabled)
    # none | multi_query | hyde | decompose | auto (query/run.py); None: the configured default (learn.strategy)
    strategy: str | None = None
    user: str = ""  # who searches (an API key digest): with learn.scope = "source", only their votes apply
    # off | boost | filter (learn/selfquery_run.py): a metadata filter read from the query; None: learn.self_query
    self_query: str | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Hits plus per-stage timings in milliseconds (``embed`` is reported apart from the rest)."""

    hits: tuple[Hit, ...]
    timings: Mapping[str, float] = field(default_factory=dict)
    strategy: str = "none"  # the query strategy that ran
    self_query: Mapping[str, Any] | None = None  # the filter read from the query and how it was applied
    route: str = ""  # the learned route that ran (learn/router.py), e.g. "auto:keyword@wh"; "" when not routed


# -- answers (generation) ------------------------------------------------------------
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Passage:
    """One numbered source as a generator sees it (``[number]`` in the prompt)."""

    number: int
    text: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Prompt:
    """What a generator receives: chat messages, plus the question and numbered passages
    for providers that work without a language model (the extractive one)."""

    messages: tuple[ChatMessage, ...]
    question: str = ""
    passages: tuple[Passage, ...] = ()
    abstain_phrase: str = ""
    task: Literal["answer", "rewrite", "condense"] = "answer"


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    finish_reason: str = ""
    provider: str = ""
    cached_prompt_tokens: int = 0  # prompt tokens reused from the previous call's KV cache
    # mean log-probability of the generated tokens, where the provider exposes it (llama.cpp)
    mean_logprob: float | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    """A ``[number]`` of the answer, resolved to the document span it points at.

    ``char_start``/``char_end`` cover the whole passage given to the model (merged
    chunks of one document); ``quote`` is the passage sentence that best supports the
    cited claim, at ``document.text[quote_start:quote_end]``. ``support`` is the share of
    the claim's content words (those not already in the question) found in the passage;
    ``attributed`` marks a citation the engine added to a claim the model left uncited.
    """

    number: int
    doc_id: str
    source: str
    chunk_id: int
    char_start: int
    char_end: int
    page: int | None
    quote: str
    quote_start: int
    quote_end: int
    title: str = ""
    namespace: str = ""
    chunk_ids: tuple[int, ...] = ()
    support: float = 0.0
    attributed: bool = False


ClaimStatus = Literal["supported", "contradicted", "unsupported"]


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim of an answer, checked against the passages it cites.

    ``text`` is the claim without markers; ``start``/``end`` its span in ``Answer.text`` (its own
    markers included). ``score`` is the judge's probability that the cited passage states the
    claim (the share of its words found there when no judge model ran).
    """

    text: str
    start: int
    end: int
    status: ClaimStatus
    citations: tuple[int, ...] = ()
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class ConflictSide:
    """One value the sources give for a disputed fact: the source's ``[citation]`` and document."""

    citation: int
    value: str
    doc_id: str
    preferred: bool = False  # the side that wins by answer.conflict_precedence


@dataclass(frozen=True, slots=True)
class Conflict:
    """Passages that disagree on the fact a question asks about (a number, a date, a name, yes/no)."""

    topic: str
    kind: Literal["number", "date", "name", "yes/no"]
    sides: tuple[ConflictSide, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """A generated answer with its verified citations, the context hits, timings (ms) and usage.

    ``invalid_citations`` lists the ``[n]`` the model wrote that named no source in its
    context; they were removed from ``text``. ``generated_text`` is what the model wrote (and
    what ``stream`` yielded); ``text`` is it after verification: citations added to supported
    claims, or the abstention phrase when no claim was supported by the sources.
    ``support`` is the share of the answer's sentences that the sources support; ``confidence``
    the model's own (geometric-mean token probability), where the provider exposes it.
    """

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    usage: Mapping[str, int] = field(default_factory=dict)
    model: str = ""
    provider: str = ""
    abstained: bool = False
    invalid_citations: tuple[int, ...] = ()
    standalone_question: str = ""
    generated_text: str = ""
    support: float = 0.0
    confidence: float | None = None  # geometric mean of the generated tokens' probabilities, if known
    claims: tuple[Claim, ...] = ()  # claim-level grounding (answer.grounding)
    conflicts: tuple[Conflict, ...] = ()  # sources that disagree on the asked fact
    strategy: str = "none"  # the query strategy that ran for retrieval
    self_query: Mapping[str, Any] | None = None  # the filter read from the question (learn/selfquery_run.py)
    # adaptive answers (answer/adaptive.py): the question's type (factoid, yesno, multi; "" for the general
    # path), the answer in a few words that leads ``text`` ("Yes"/"No" for yes/no), the parts answered
    short: str = ""
    kind: str = ""
    parts: tuple[str, ...] = ()
    # question words corrected against the corpus vocabulary before searching (answer/spelling.py): (as asked, as
    # searched)
    corrected: tuple[tuple[str, str], ...] = ()
