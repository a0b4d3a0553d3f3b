"""Evaluate answers on a BEIR-layout folder with an ``answers.jsonl``: one run per named configuration
of settings, side by side (``localrag eval --answers``; format in docs/answer-eval.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.errors import ConfigError, InvalidInputError, NotFoundError
from localrag.eval.answer_metrics import GoldAnswer, score_answer, summarise, with_similarity
from localrag.eval.beir import BeirDataset, read_jsonl, read_qrels, read_queries
from localrag.eval.runner import eval_namespace, ingest_dataset
from localrag.ingest.pipeline import Progress
from localrag.protocols import Embedder

log = logging.getLogger(__name__)

ANSWERS_FILE = "answers.jsonl"
# Sections a configuration may change: those read at question time. The others (embed, chunk, index,
# ingest, ...) shape the index every configuration shares, so changing them would compare nothing.
QUERY_TIME_SECTIONS = frozenset({"search", "rerank", "generate", "answer", "learn"})


@dataclass(frozen=True, slots=True)
class AnswerDataset:
    root: Path
    items: tuple[GoldAnswer, ...]

    @property
    def unanswerable(self) -> int:
        return sum(not g.answerable for g in self.items)

    def beir(self) -> BeirDataset:
        """The folder as the retrieval evaluation sees it (its corpus and namespace are shared)."""
        return BeirDataset(self.root, {g.query_id: g.question for g in self.items}, {})


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(f"{what} must be a string or a list of strings")
    return tuple(value)


def load_answers(root: Path, split: str = "test") -> AnswerDataset:
    """The questions of ``answers.jsonl`` with their text from ``queries.jsonl``.

    A row: ``{"query_id": ID, "answers": [...]}`` (``_id`` is read as ``query_id``); an empty list,
    or ``"unanswerable": true``, marks a question the corpus cannot answer. The evidence documents
    come from the row's ``evidence`` (or ``corpus_id``), else from the positive qrels of ``split``."""
    root = Path(root)
    for required in ("corpus.jsonl", "queries.jsonl", ANSWERS_FILE):
        if not (root / required).is_file():
            raise NotFoundError(f"{root} is not an answers dataset: {required} is missing")
    queries = read_queries(root)
    qrels = read_qrels(root, split) if (root / "qrels" / f"{split}.tsv").is_file() else {}
    items: list[GoldAnswer] = []
    for line_no, row in read_jsonl(root / ANSWERS_FILE):
        where = f"{root / ANSWERS_FILE} line {line_no}"
        query_id = str(row.get("query_id", row.get("_id", "")))
        if query_id not in queries:
            raise InvalidInputError(f"{where}: query {query_id!r} is not in queries.jsonl")
        if "answers" not in row and not row.get("unanswerable"):
            raise InvalidInputError(f"{where}: 'answers' is missing (an empty list: unanswerable)")
        answers = () if row.get("unanswerable") else tuple(
            a for a in _strings(row.get("answers", []), f"{where}: answers") if a.strip())
        raw_evidence = row.get("evidence", row.get("corpus_id"))
        if raw_evidence is not None:
            evidence = _strings(raw_evidence, f"{where}: evidence")
        else:
            evidence = tuple(doc for doc, grade in qrels.get(query_id, {}).items() if grade > 0)
        items.append(GoldAnswer(query_id, queries[query_id], answers, evidence if answers else ()))
    if not items:
        raise InvalidInputError(f"{root / ANSWERS_FILE} holds no question")
    return AnswerDataset(root, tuple(items))


# -- configurations --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AnswerConfig:
    """A named set of settings overrides ``{"section": {"field": value}}`` over the base settings."""

    name: str
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def settings(self, base: Settings) -> Settings:
        return base.with_overrides(self.overrides)


def _checked_sections(name: str, overrides: Mapping[str, Any]) -> None:
    for section, values in overrides.items():
        if section not in QUERY_TIME_SECTIONS:
            raise ConfigError(f"configuration {name!r}: {section}.* shapes the index all configurations share; "
                              f"only {', '.join(sorted(QUERY_TIME_SECTIONS))} may differ")
        if not isinstance(values, Mapping):
            raise ConfigError(f"configuration {name!r}: [{section}] must be a table")


def parse_configs(configs: Sequence[str], sets: Sequence[str]) -> list[AnswerConfig]:
    """Configurations from ``--config NAME[=FILE.toml]`` and ``--set [NAME:]section.field=value``.

    A ``--set`` without a name applies to every configuration; one naming an unknown configuration
    adds it. With neither option: one configuration, ``default`` (the data directory's settings)."""
    overrides: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in configs:
        name, _, path = spec.partition("=")
        name = name.strip()
        if not name or name in overrides:
            raise InvalidInputError(f"--config {spec!r}: give each configuration a distinct name")
        overrides[name] = {}
        if path:
            try:
                document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except OSError as e:
                raise InvalidInputError(f"--config {spec!r}: {e}") from e
            except tomllib.TOMLDecodeError as e:
                raise ConfigError(f"--config {spec!r}: not valid TOML: {e}") from e
            _checked_sections(name, document)
            overrides[name] = {section: dict(values) for section, values in document.items()}
    common: list[tuple[str, str, str]] = []
    named: list[tuple[str, str, str, str]] = []
    for spec in sets:
        head, eq, value = spec.partition("=")
        target, colon, key = head.rpartition(":")  # the value may hold colons; the name never does
        section, dot, setting = key.strip().partition(".")
        if not (eq and dot and setting) or (colon and not target.strip()):
            raise InvalidInputError(f"--set {spec!r}: expected [NAME:]section.field=value")
        _checked_sections(target or "*", {section: {}})
        if target:
            named.append((target.strip(), section, setting, value))
        else:
            common.append((section, setting, value))
    for target, *_ in named:
        overrides.setdefault(target, {})
    if not overrides:
        overrides["default"] = {}
    for values in overrides.values():
        for section, setting, value in common:
            values.setdefault(section, {})[setting] = value
    for target, section, setting, value in named:
        overrides[target].setdefault(section, {})[setting] = value
    return [AnswerConfig(name, values) for name, values in overrides.items()]


# -- running ---------------------------------------------------------------------------------------
def evaluate_answers(
    path: Path,
    dataset: AnswerDataset,
    configs: Sequence[AnswerConfig],
    base: Settings,
    *,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    on_answer: Callable[[str, str], None] | None = None,
    split: str = "test",
) -> dict[str, Any]:
    """Ingest the corpus once (its own namespace), then answer every question under each configuration.

    Each configuration opens the data directory with its settings (so its generator is built from
    them) and shares one embedder, loaded once."""
    settings = [(config, config.settings(base)) for config in configs]  # all validated before any work
    beir = dataset.beir()
    namespace = eval_namespace(beir)
    results: dict[str, Any] = {
        "dataset": str(dataset.root), "split": split, "questions": len(dataset.items),
        "unanswerable": dataset.unanswerable, "configs": {},
    }
    for i, (config, config_settings) in enumerate(settings):
        with LocalRAG(path, settings=config_settings, embedder=embedder) as rag:
            if i == 0:
                results["ingest"] = ingest_dataset(rag, beir, progress)
            embedder = rag.embedder
            t0 = time.perf_counter()
            run = run_config(rag, dataset, namespace, _reporter(on_answer, config.name))
            log.info("configuration %s: %d questions in %.1fs", config.name, len(dataset.items),
                     time.perf_counter() - t0)
            results["configs"][config.name] = {"overrides": {s: dict(v) for s, v in config.overrides.items()},
                                               **run}
    return results


def _reporter(on_answer: Callable[[str, str], None] | None, name: str) -> Callable[[str], None] | None:
    if on_answer is None:
        return None
    return lambda query_id: on_answer(name, query_id)


def run_config(rag: LocalRAG, dataset: AnswerDataset, namespace: str,
               on_answer: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The summary of one configuration and its per-question rows."""
    scores = []
    answered_by: dict[str, int] = {}  # provider:model -> answers, as a fallback chain may switch
    for gold in dataset.items:
        t0 = time.perf_counter()
        answer = rag.ask(gold.question, namespace=namespace)
        if answer.provider:
            key = f"{answer.provider}:{answer.model}"
            answered_by[key] = answered_by.get(key, 0) + 1
        scores.append(score_answer(answer, gold, (time.perf_counter() - t0) * 1000))
        log.info("%s: F1 %s, abstained %s, %.0f ms", gold.query_id, scores[-1].f1, answer.abstained,
                 scores[-1].total_ms)
        if on_answer is not None:
            on_answer(gold.query_id)
    scores = with_similarity(scores, dataset.items, rag.embedder)
    rows = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(s).items()} for s in scores]
    return {**summarise(scores), "answered_by": answered_by, "rows": rows}


def _cell(value: Any, width: int, digits: int = 3) -> str:
    if value is None:
        return f"{'-':>{width}}"
    return f"{value:>{width}.{digits}f}" if digits else f"{value:>{width}.0f}"


def format_answer_table(results: Mapping[str, Any]) -> str:
    """The configurations side by side, one row each (``-``: the metric does not apply)."""
    configs = results["configs"]
    w = max([10, *(len(name) for name in configs)])
    columns = [("EM", "exact_match"), ("F1", "f1"), ("cite P", "citation_precision"),
               ("cite R", "citation_recall"), ("grounded", "grounded_claim_rate"),
               ("abst P", "abstention_precision"), ("abst R", "abstention_recall"), ("sim", "similarity")]
    header = f"{'config':<{w}} " + " ".join(f"{label:>8}" for label, _ in columns)
    header += f" {'p50 ms':>8} {'p95 ms':>8} {'1st tok':>8}"
    lines = [f"{results['dataset']} ({results['questions']} questions, {results['unanswerable']} unanswerable)",
             header]
    for name, m in configs.items():
        first = (m.get("first_token_ms") or {}).get("p50")
        lines.append(f"{name:<{w}} " + " ".join(_cell(m[key], 8) for _, key in columns)
                     + f" {_cell(m['latency_ms']['p50'], 8, 0)} {_cell(m['latency_ms']['p95'], 8, 0)}"
                     + f" {_cell(first, 8, 0)}")
    return "\n".join(lines)
