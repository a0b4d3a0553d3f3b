"""The ask pipeline: retrieve → (rerank) → build context → generate → check citations → Answer.

``ask`` is the stream consumed to its end, so the streamed pieces joined, the streamed
final Answer and ``ask`` always agree. Timings are milliseconds per stage: ``retrieve``,
``rerank``, ``build``, ``first_token`` (from the generation's start), ``generate`` and
``total``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from localrag.answer import questions
from localrag.answer.adaptive import AdaptiveAnswerer, llama_of
from localrag.answer.citations import MarkerFilter, strip_markers
from localrag.answer.compress import EmbeddingScorer, compress
from localrag.answer.conflicts import conflict_note, find_conflicts
from localrag.answer.context import Context, ContextBuilder
from localrag.answer.grounding import ClaimJudge, Verified, apply_policy, ground, llm_judge_of, verify
from localrag.answer.questions import QuestionPlan
from localrag.answer.relevance import relevance_of
from localrag.config import AnswerSettings, GenerateSettings
from localrag.errors import InvalidInputError, NotFoundError
from localrag.generate.base import GenerationError
from localrag.generate.prompts import PromptTemplates, condense_prompt
from localrag.protocols import Generator
from localrag.types import (
    Answer,
    Claim,
    Completion,
    Conflict,
    ConflictSide,
    Hit,
    SearchMode,
    SearchRequest,
    SearchResult,
)

if TYPE_CHECKING:
    from localrag.engine import LocalRAG

log = logging.getLogger(__name__)

_MIN_BUDGET = 64


@dataclass(frozen=True, slots=True)
class AskOptions:
    k: int | None = None
    mode: SearchMode | None = None
    filter: Mapping[str, Any] | None = None
    namespace: str = ""
    max_tokens: int | None = None
    temperature: float | None = None
    search_query: str | None = None  # retrieve with this text instead of the question (chat follow-ups)
    strategy: str | None = None  # none | multi_query | hyde | decompose | auto (query/run.py)
    user: str = ""  # who asks (learn.scope = "source")
    self_query: str | None = None  # off | boost | filter (learn/selfquery_run.py); None: learn.self_query


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def is_abstention(text: str, phrase: str) -> bool:
    """Whether ``text`` is (or opens with) the abstention phrase, ignoring case and punctuation."""
    said, wanted = _normalised(text), _normalised(phrase)
    return not said or said.startswith(wanted) or (wanted in said and "[" not in text)


class AnswerPipeline:
    def __init__(
        self,
        rag: LocalRAG,
        generator: Generator,
        generate: GenerateSettings,
        answer: AnswerSettings,
    ) -> None:
        self.rag = rag
        self.generator = generator
        self.generate_settings = generate
        self.settings = answer
        self.templates = PromptTemplates.from_settings(answer.system_template, answer.user_template,
                                                       answer.abstain_phrase)
        self._judge: ClaimJudge | None = None
        self._adaptive: AdaptiveAnswerer | bool | None = None  # False: no llama.cpp model to run it

    # -- public API --------------------------------------------------------------------
    def ask(self, question: str, **options: Any) -> Answer:
        final: Answer | None = None
        for item in self.stream(question, **options):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final

    def stream(self, question: str, **options: Any) -> Iterator[str | Answer]:
        """Yield the answer's text pieces as they are generated, then the final Answer."""
        opts = AskOptions(**options)
        started = time.perf_counter()
        adaptive = self._adaptive_plan(question, opts)
        if adaptive is not None:
            streamed: list[str] = []
            pieces = adaptive[0].stream(question, adaptive[1], opts, started)
            while True:
                try:
                    piece = next(pieces)
                except StopIteration as done:
                    answer = done.value
                    break
                streamed.append(piece)
                yield piece
            if answer is not None:
                if streamed:  # generated_text is what the stream carried, on every path
                    answer = dataclasses.replace(answer, generated_text="".join(streamed))
                else:  # yes/no and compound answers are written whole, not token by token
                    answer = dataclasses.replace(answer, generated_text=answer.text)
                    yield answer.text
                yield answer
                return
        hits, timings, result = self._retrieve([opts.search_query or question], opts)[0]
        for item in self._answer(question, hits, timings, opts, started):
            yield (dataclasses.replace(item, strategy=result.strategy, self_query=result.self_query)
                   if isinstance(item, Answer) else item)

    async def aask(self, question: str, **options: Any) -> Answer:
        return await asyncio.to_thread(self.ask, question, **options)

    def ask_many(self, questions: Sequence[str], *, concurrency: int = 1, **options: Any) -> list[Answer]:
        """Answer several questions: one batched retrieval, then generation (``concurrency`` at a time;
        a local model still runs one generation at a time)."""
        opts = AskOptions(**options)
        started = time.perf_counter()
        retrieved = self._retrieve(list(questions), opts)

        def one(i: int) -> Answer:
            final: Answer | None = None
            for item in self._answer(questions[i], retrieved[i][0], retrieved[i][1], opts, started):
                if isinstance(item, Answer):
                    result = retrieved[i][2]
                    final = dataclasses.replace(item, strategy=result.strategy, self_query=result.self_query)
            assert final is not None
            return final

        if concurrency <= 1 or len(questions) <= 1:
            return [one(i) for i in range(len(questions))]
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(one, range(len(questions))))

    def _adaptive_plan(self, question: str, opts: AskOptions) -> tuple[AdaptiveAnswerer, QuestionPlan] | None:
        """The adaptive answerer and the question's plan, when answer.adaptive applies to it: the built-in
        prompts, no query strategy or k asked for, a llama.cpp model, and a factoid, yes/no or compound
        question. None: the general path answers."""
        s = self.settings
        if not s.adaptive or s.system_template or s.user_template or opts.k or opts.search_query \
                or (opts.strategy or "none") != "none" or not isinstance(question, str) or not question.strip():
            return None
        plan = questions.plan(question, s.max_parts)
        if plan.kind == "open" or (plan.kind == "reason" and not s.short_reasons):
            return None
        answerer = self._adaptive_answerer()
        return (answerer, plan) if answerer is not None else None

    def _adaptive_answerer(self) -> AdaptiveAnswerer | None:
        """The adaptive answerer under answer.adaptive, on the generator's llama.cpp model; None without one."""
        if not self.settings.adaptive:
            return None
        if self._adaptive is None:
            llama = llama_of(self.generator)
            if llama is None:
                log.info("answer.adaptive needs a llama.cpp model; the general path answers")
            self._adaptive = AdaptiveAnswerer(self, llama) if llama is not None else False
        return self._adaptive if isinstance(self._adaptive, AdaptiveAnswerer) else None

    # -- stages ------------------------------------------------------------------------
    def _retrieve(
        self, questions: Sequence[str], opts: AskOptions
    ) -> list[tuple[list[Hit], dict[str, float], SearchResult]]:
        for question in questions:
            if not isinstance(question, str) or not question.strip():
                raise InvalidInputError("question must be a non-empty string")
        k = opts.k or self.settings.k
        mode = opts.mode or self.rag.settings.search.mode
        # Reranking (rerank.enabled) is the engine's second stage: k1 candidates reranked to k.
        requests = [SearchRequest(q, k, mode, opts.namespace, opts.filter, strategy=opts.strategy, user=opts.user,
                                  self_query=opts.self_query) for q in questions]
        t0 = time.perf_counter()
        results = self.rag.retrieve(requests)
        retrieve_ms = (time.perf_counter() - t0) * 1000 / max(1, len(questions))
        out = []
        for result in results:
            rerank_ms = result.timings.get("rerank", 0.0)
            timings = {"retrieve": max(0.0, retrieve_ms - rerank_ms), "rerank": rerank_ms}
            out.append((list(result.hits), timings, result))
        return out

    def build_context(self, question: str, hits: Sequence[Hit], max_tokens: int) -> Context:
        count = self.generator.count_tokens
        room = self.generator.context_window - max_tokens - self.templates.overhead_tokens(count, question)
        budget = max(_MIN_BUDGET, min(self.settings.context_tokens, room))
        if self.settings.compression == "sentences":
            # every passage in full, then its most relevant sentences kept to the budget
            whole = ContextBuilder(count, sys.maxsize, document_text=self._document_text).build(hits)
            compressed = compress(whole, question, budget, count, EmbeddingScorer(self.rag.embedder))
            if compressed is not None:
                return compressed
            log.info("no sentence of the passages fits %d tokens; truncating instead", budget)
        builder = ContextBuilder(count, budget, document_text=self._document_text)
        return builder.build(hits)

    def _condense(self, question: str, generated: str, context: Context, usage: dict[str, int]) -> Verified | None:
        """The shortest phrase of a long answer that still answers the question, cited; None to keep it whole.

        The phrase must be copied from the answer (a small model asked to shorten may otherwise
        invent), and must itself be supported by a source."""
        long_answer = strip_markers(generated)
        try:
            completion = self.generator.generate(condense_prompt(question, long_answer), max_tokens=32,
                                                 temperature=0.0)
        except GenerationError as e:
            log.warning("could not condense the answer: %s", e)
            return None
        usage["prompt_tokens"] += completion.prompt_tokens
        usage["completion_tokens"] += completion.completion_tokens
        phrase = completion.text.strip().strip("\"'`").rstrip(".").strip()
        if not phrase or len(phrase) >= len(long_answer) or _normalised(phrase) not in _normalised(long_answer):
            return None
        checked = verify(phrase, context, question, min_support=self.settings.min_support, attribute=True)
        return checked if checked.supported else None

    def _document_text(self, namespace: str, doc_id: str) -> str | None:
        try:
            return self.rag.get_document(doc_id, namespace).text
        except NotFoundError:
            return None

    def _answer(
        self, question: str, hits: list[Hit], timings: dict[str, float], opts: AskOptions, started: float
    ) -> Iterator[str | Answer]:
        max_tokens = opts.max_tokens or self.generate_settings.max_tokens
        temperature = self.generate_settings.temperature if opts.temperature is None else opts.temperature
        t_build = time.perf_counter()
        context = self.build_context(question, hits, max_tokens) if hits else Context(())
        timings = {**timings, "build": (time.perf_counter() - t_build) * 1000}
        phrase = self.templates.abstain_phrase
        # the relevance bar belongs to answer.adaptive (calibrated with the default embedder and model)
        if context.sources and self.settings.min_relevance > 0 and self._adaptive_answerer() is not None and \
                relevance_of(self.rag, opts.search_query or question, hits[0]) < self.settings.min_relevance:
            log.info("no passage matches the question well enough (answer.min_relevance); abstaining")
            context = Context(())
        if not context.sources:  # nothing (relevant) retrieved: abstain without asking a model
            yield phrase
            timings.update(first_token=0.0, generate=0.0, total=(time.perf_counter() - started) * 1000)
            yield Answer(question, phrase, (), tuple(hits), timings, {}, "", "", True, generated_text=phrase)
            return
        prompt = self.templates.build(question, context.passages())
        cleaner = MarkerFilter({s.number for s in context.sources})
        pieces: list[str] = []
        completion: Completion | None = None
        t_gen = time.perf_counter()
        first_token = 0.0
        stream = self.generator.stream(prompt, max_tokens=max_tokens, temperature=temperature, stop=())
        try:
            for item in stream:
                if isinstance(item, Completion):
                    completion = item
                    continue
                if not first_token:
                    first_token = (time.perf_counter() - t_gen) * 1000
                cleaned = cleaner.feed(item)
                if cleaned:
                    pieces.append(cleaned)
                    yield cleaned
        finally:
            close: Callable[[], None] | None = getattr(stream, "close", None)
            if close is not None:
                close()
        tail = cleaner.flush()
        if tail:
            pieces.append(tail)
            yield tail
        if completion is None:
            raise GenerationError("the generator's stream ended without a completion")
        timings.update(first_token=first_token, generate=(time.perf_counter() - t_gen) * 1000)
        generated = "".join(pieces)
        mode = self.settings.verify
        verified = verify(generated, context, question, min_support=self.settings.min_support,
                          attribute=mode != "off")
        text = verified.text
        abstained = is_abstention(generated, phrase)
        if not abstained and mode == "strict" and verified.supported == 0:
            log.info("no sentence of the answer is supported by the sources; abstaining: %r", generated)
            text, abstained = phrase, True
        confidence = None if completion.mean_logprob is None else math.exp(completion.mean_logprob)
        if not abstained and confidence is not None and confidence < self.settings.min_confidence:
            log.info("the model's confidence %.2f is under answer.min_confidence; abstaining: %r", confidence,
                     generated)
            text, abstained = phrase, True
        usage = {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
                 "cached_prompt_tokens": completion.cached_prompt_tokens}
        if not abstained and 0 < self.settings.max_words < len(strip_markers(generated).split()):
            t_condense = time.perf_counter()
            condensed = self._condense(question, generated, context, usage)
            timings["condense"] = (time.perf_counter() - t_condense) * 1000
            if condensed is not None:
                text, verified = condensed.text, condensed
        claims: tuple[Claim, ...] = ()
        conflicts: tuple[Conflict, ...] = ()
        if not abstained:
            t_ground = time.perf_counter()
            verified, claims, conflicts, abstained = self._check(question, verified, context, hits,
                                                                 completion.provider)
            timings["grounding"] = (time.perf_counter() - t_ground) * 1000
            if abstained:
                log.info("the answer's core claim is not supported by its sources; abstaining: %r", generated)
                text = phrase
            else:
                text = verified.text
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        timings["total"] = (time.perf_counter() - started) * 1000
        used = {chunk_id for source in context.sources for chunk_id in source.chunk_ids}
        yield Answer(
            question=question, text=text, citations=() if abstained else verified.citations,
            hits=tuple(h for h in hits if h.chunk_id in used),
            timings=timings, usage=usage, model=completion.model, provider=completion.provider,
            abstained=abstained, invalid_citations=tuple(cleaner.invalid), generated_text=generated,
            support=0.0 if abstained else verified.support, confidence=confidence,
            claims=claims, conflicts=() if abstained else conflicts,
        )

    def _claim_judge(self, provider: str) -> ClaimJudge | None:
        """The generator's llama.cpp model as claim judge, when it wrote the answer; else None (rules and
        word overlap decide)."""
        if provider != "llamacpp":
            return None
        if self._judge is None:
            self._judge = llm_judge_of(self.generator)
        return self._judge

    def _check(
        self, question: str, verified: Verified, context: Context, hits: Sequence[Hit], provider: str
    ) -> tuple[Verified, tuple[Claim, ...], tuple[Conflict, ...], bool]:
        """Claim grounding under ``answer.grounding_policy``, then conflicting sources; returns the answer
        (re-verified when its text changed), its claims, the conflicts and whether to abstain."""
        s = self.settings
        text, abstain = verified.text, False
        claims: tuple[Claim, ...] = ()
        numbering: dict[int, int] = {}
        if s.grounding:
            claims = ground(text, context, self._claim_judge(provider), min_score=s.grounding_min_score,
                            max_claims=s.grounding_max_claims, question=question, min_overlap=s.min_support)
            text, claims, numbering, abstain = apply_policy(text, claims, s.grounding_policy)
        if abstain:
            return verified, claims, (), True
        conflicts: tuple[Conflict, ...] = ()
        if s.conflicts:
            metadata = {h.doc_id: h.metadata for h in hits}
            conflicts = find_conflicts(question, context, metadata, precedence=s.conflict_precedence,
                                       date_field=s.conflict_date_field)
        if conflicts and numbering:  # sides whose claims were dropped take the next numbers
            for side in (side for conflict in conflicts for side in conflict.sides):
                numbering.setdefault(side.citation, len(numbering) + 1)
            conflicts = tuple(replace(c, sides=tuple(ConflictSide(numbering[x.citation], x.value, x.doc_id,
                                                                  x.preferred) for x in c.sides))
                              for c in conflicts)
        if conflicts:
            text = f"{text} {conflict_note(conflicts)}"
        if text == verified.text:
            return verified, claims, conflicts, False
        if numbering:  # the markers were renumbered: so are the passages they resolve against
            order = sorted(numbering, key=numbering.__getitem__)
            context = Context(tuple(replace(context.sources[old - 1], number=numbering[old]) for old in order),
                              context.tokens, context.dropped_hits, context.hits)
        checked = verify(text, context, question, min_support=s.min_support, attribute=False)
        return checked, claims, conflicts, False
