"""Settings: frozen dataclasses, read once from ``localrag.toml`` and ``LOCALRAG_*`` variables.

Only ``load_settings`` (called by ``LocalRAG`` and the CLI) reads files or the environment;
every other module receives a ``Settings`` value.

Environment names are ``LOCALRAG_<SECTION>__<FIELD>`` (double underscore), e.g.
``LOCALRAG_SEARCH__RRF_K=30``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

import tomllib

from localrag.errors import ConfigError

CONFIG_FILE = "localrag.toml"
ENV_PREFIX = "LOCALRAG_"


@dataclass(frozen=True, slots=True)
class EmbedSettings:
    model: str = "minilm-l6-onnx-int8"
    batch_size: int = 32
    threads: int = 0  # 0: as many as the machine has cores
    max_tokens: int = 256


@dataclass(frozen=True, slots=True)
class ChunkSettings:
    chunk_tokens: int = 200
    overlap_tokens: int = 32


@dataclass(frozen=True, slots=True)
class IndexSettings:
    exact_threshold: int = 300_000  # above it: IVF-PQ codes reranked from the store (index/ivf.py)
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 64
    search_threads: int = 1  # FAISS single queries are 2.5-3x slower with 2 threads on 2 cores
    save_every_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class BM25Settings:
    k1: float = 1.5
    b: float = 0.75
    stem: bool = True
    stopwords: bool = True


@dataclass(frozen=True, slots=True)
class SearchSettings:
    mode: Literal["dense", "keyword", "hybrid"] = "hybrid"
    fusion: Literal["rrf", "weighted"] = "weighted"  # chosen by tune on SciFact train; also best on SQuAD
    rrf_k: int = 60
    alpha: float = 0.5  # weight of the dense side in weighted fusion
    candidates: int = 100  # per-index depth fed to fusion
    max_k: int = 10_000


@dataclass(frozen=True, slots=True)
class IngestSettings:
    max_file_mb: float = 20.0
    batch_documents: int = 64
    # Files are parsed in a worker process (ingest/sandbox.py); these bound what one file may cost.
    parse_timeout_s: float = 60.0  # wall time per file; past it the worker is killed (0: no limit)
    parse_memory_mb: int = 2048  # the worker's address space (0: no limit)
    max_unzipped_mb: float = 256.0  # zip-based formats (docx, xlsx, epub, ...): all members, nested ones too
    max_zip_ratio: float = 100.0  # unpacked bytes per file byte, judged above 8 MB unpacked
    max_pdf_pages: int = 5000  # 0: no limit
    # Images, scanned PDFs and audio/video run models in the worker (ingest/formats/): they get their own bounds.
    ocr_timeout_s: float = 600.0  # wall time per image or PDF file (OCR is ~1 s a page on one core)
    media_timeout_s: float = 3600.0  # wall time per audio/video file (whisper-base: ~0.1-0.2 x real time)
    media_memory_mb: int = 4096  # the worker's address space while it transcribes a recording (0: no limit)
    media_max_file_mb: float = 300.0  # audio/video files are bounded by this instead of max_file_mb (~5 h of mp3)
    ocr_language: str = "eng"  # Tesseract language(s), e.g. "eng+deu" (each needs its tesseract-ocr-* package)
    speech_model: str = "whisper-base"  # a registry name (localrag models) or a CTranslate2 Whisper folder
    speech_language: str = ""  # "" detects the language per file; "en", "de", ... forces it
    media_threads: int = 0  # CPU threads for OCR and speech (0: all cores; use 1 in tests)


@dataclass(frozen=True, slots=True)
class GenerateSettings:
    providers: str = "llamacpp,extractive"  # fallback chain, in order: llamacpp, openai, extractive
    model: str = "qwen2.5-coder-0.5b"  # a registry name or a path to any .gguf file
    threads: int = 0  # 0: as many as the machine has cores; use 1 in tests and CI
    n_ctx: int = 0  # 0: sized to the prompt (grown on demand up to the model's training context)
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    timeout_s: float = 300.0  # per provider call; past it the chain moves to the next provider
    retries: int = 1  # extra attempts per provider on a transient failure
    base_url: str = ""  # OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1
    api_key: str = ""
    remote_model: str = ""  # the model name sent to the OpenAI-compatible server
    cache_dir: str = ""  # where assembled GGUF files go; default $LOCALRAG_CACHE_DIR or ~/.cache/localrag


@dataclass(frozen=True, slots=True)
class AnswerSettings:
    k: int = 5  # hits retrieved as context
    context_tokens: int = 1536  # token budget of the sources in the prompt
    system_template: str = ""  # empty: the built-in template (see localrag/generate/prompts.py)
    user_template: str = ""
    abstain_phrase: str = "I don't know based on the provided sources."
    # strict: cite supported claims the model left uncited, and abstain when no claim is supported;
    # attribute: only add the citations; off: only check the model's own [n] markers.
    verify: Literal["strict", "attribute", "off"] = "strict"
    min_support: float = 0.5  # share of a claim's new content words a passage must contain
    # abstain when the model's geometric-mean token probability is lower (0: never; llama.cpp only)
    min_confidence: float = 0.0
    # answers longer than this many words are condensed by a second, short generation to the shortest
    # phrase of the answer that still answers the question (0: never; for factoid question answering)
    max_words: int = 0
    rewrite_followups: bool = True
    history_turns: int = 3
    # claim-level grounding (answer/grounding.py): each claim checked against the passages it cites by
    # rules and the llama.cpp model as a yes/no judge. flag: keep and mark; drop: remove failed claims;
    # abstain: withhold the answer when its first claim fails
    grounding: bool = True
    grounding_policy: Literal["flag", "drop", "abstain"] = "flag"
    # the judge's P(yes) against P(no) a supported claim reaches; 0: no judge (rules and word overlap only)
    grounding_min_score: float = 0.25
    grounding_max_claims: int = 8  # claims judged by the model per answer; later ones get the rules only
    # sources disagreeing on the asked fact (answer/conflicts.py); precedence: "" (none), "date"
    # (newer metadata conflict_date_field wins) or "priority" (higher metadata priority wins)
    conflicts: bool = True
    conflict_precedence: Literal["", "date", "priority"] = ""
    conflict_date_field: str = "date"
    # when the passages exceed context_tokens: "off" cuts them (whole passages while they fit, the first
    # one truncated); "sentences" keeps their most relevant sentences instead (answer/compress.py)
    compression: Literal["off", "sentences"] = "off"
    # per-question context and shape (answer/adaptive.py): factoid questions get factoid_k passages and the
    # answer first in a few words, yes/no questions open with Yes or No, compound questions are split into
    # at most max_parts parts answered apart and composed; explain/describe questions keep the general path
    adaptive: bool = True
    # why/how-did questions answered like factoids (the reason first in a few words, its source sentence after);
    # false: the general path's longer answer (docs/DESIGN.md "Adaptive answers": chosen on a dev split)
    short_reasons: bool = True
    factoid_k: int = 1
    factoid_max_words: int = 6  # longer short answers are condensed (see max_words)
    max_parts: int = 3
    # abstain when the best passage's relevance (answer/adaptive.py relevance_of: dense cosine and idf-weighted
    # share of the question's words, in [0, 1]) is under min_relevance (0: no check; the general path too, with a
    # llama.cpp model), or when the model's P(yes) that the passage gives the factoid answer is under
    # min_answer_check (0: no check; off: on SQuAD it rejected right answers)
    min_relevance: float = 0.42
    min_answer_check: float = 0.0
    # question words the corpus does not know are corrected to the most frequent corpus word one edit away
    # before retrieval and the relevance bar (answer/spelling.py; adaptive path); the answer lists them
    spelling: bool = True


@dataclass(frozen=True, slots=True)
class VectorSettings:
    """Where retrieval lives: local FAISS; the dense side on a legacy Pinecone index ("pinecone"); or every
    chunk as a document of one hosted document index, both search sides on it ("pinecone_documents",
    localrag/pinecone/hosted_docs.py), via the official SDK."""

    backend: Literal["faiss", "pinecone", "pinecone_documents"] = "faiss"
    host: str = ""  # the index's data-plane host, e.g. https://docs-abc123.svc.pinecone.io
    index: str = ""  # or the index name, resolved to a host through the control plane
    control_host: str = ""  # control plane; empty: the SDK's default (https://api.pinecone.io)
    api_key_env: str = "PINECONE_API_KEY"  # the environment variable holding the API key
    namespace_prefix: str = "localrag-"  # Pinecone namespace of a localrag namespace: prefix + its id
    # pinecone_documents: each hosted call is retried on 429/5xx/timeouts, with jittered exponential backoff
    retries: int = 4
    retry_base_s: float = 0.25
    retry_max_s: float = 8.0
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """``localrag serve``: security, concurrency and the caches (the caches also serve library searches)."""

    api_keys: str = ""  # comma-separated; also $LOCALRAG_API_KEYS and --api-key
    rate_limit_rps: float = 0.0  # per key (per client address without keys); 0: off
    rate_limit_burst: int = 20
    max_body_mb: float = 4.0  # JSON request bodies
    max_upload_mb: float = 20.0  # POST /v1/documents file uploads
    cors_origins: str = ""  # comma-separated origins allowed by CORS; "*" for any; empty: none
    micro_batching: bool = True
    batch_window_ms: float = 2.0  # how long a search waits for others to share its batch
    batch_max: int = 64
    # batches in flight at once. Two keep both cores busy: on a quiet 2-core machine, c=32 on 100k chunks
    # gave 231 QPS with two against 174 with one; one forms larger batches (less CPU per search: 5.7-8
    # vs 6.3-10 ms) and did better while other jobs held the cores
    batch_workers: int = 2
    llm_concurrency: int = 1  # generations at once (a local model runs one at a time anyway)
    llm_queue_size: int = 8  # waiting generations beyond which requests get 503
    embed_cache_size: int = 1024  # query embeddings (LRU)
    result_cache_size: int = 1024  # search results, keyed by query, parameters and store generation
    result_cache_ttl_s: float = 300.0
    answer_cache_size: int = 128  # answers, keyed the same way; 0 turns a cache off
    json_log: bool = False  # one JSON log line per request (logger localrag.server.access)
    metrics_flush_s: float = 5.0  # how often the server writes its metrics for `localrag stats`
    dashboard_interval_s: float = 2.0  # how often GET /v1/dashboard gains a point (server/dashboard.py); 0: off
    # slow clients (0 turns each off): time to send a request's headers, and then its body (a 20 MB
    # upload at 2 Mbit/s takes 80 s); idle keep-alive connections close after keep_alive_s
    header_timeout_s: float = 10.0
    body_timeout_s: float = 120.0
    keep_alive_s: float = 5.0
    max_connections_per_ip: int = 64  # more from one address are closed at once; the load test uses 32
    # /docs, /redoc and /openapi.json without a key even when keys are set (with keys they need one)
    expose_docs: bool = False
    web_ui: bool = True  # the browser app at / and /app/* (its files hold no data; /v1 still asks for the key)


@dataclass(frozen=True, slots=True)
class RerankSettings:
    """Two-stage retrieval: ``candidates`` (k1) first-stage hits are rescored and cut to k."""

    enabled: bool = False  # the default for a search; SearchRequest.rerank overrides per query
    # "trained": the project's own cross-encoder (models/); a path to a cross-encoder folder or .onnx
    # file; "llm": the generate.model GGUF as a yes/no judge; "" or "none": no reranker
    model: str = "trained"
    # k1 when a request names no candidates, and the blend: both chosen on 100 held-out SciFact
    # train queries for the trained model (benchmarks/results/reranker.json)
    candidates: int = 50
    batch_size: int = 32
    max_tokens: int = 0  # per (query, passage) pair; 0: the model's own limit
    threads: int = 0  # onnxruntime/torch threads; 0: every core
    blend: float = 0.4  # weight of the (min-max normalised) first-stage score mixed into the order


@dataclass(frozen=True, slots=True)
class LearnSettings:
    """Online learning from feedback (learn/feedback.py) and the default query strategy."""

    feedback: bool = True  # votes adjust the next search's ranking (only near queries that have votes)
    weight: float = 0.5  # the most a hit can move, as a share of its result list's score spread (docs/DESIGN.md)
    prior: float = 2.0  # pseudo-votes that shrink the evidence: one vote moves a hit weight/(1+prior)
    # pseudo-pairs of agreeing votes behind the voters' reliability (learn/reliability.py): trusted until
    # different voters' votes on the same chunk disagree; votes agreeing only by chance then move nothing
    agreement_prior: float = 10.0
    similarity: float = 0.8  # query-embedding cosine at or above which a vote counts (docs/DESIGN.md)
    half_life_days: float = 90.0  # a vote's weight halves every this many days; 0: no decay
    max_per_source: float = 3.0  # one voter (API key or address) counts for at most this many votes a chunk
    depth: int = 50  # how many hits are re-ordered when votes apply (then cut to k)
    scope: Literal["namespace", "source"] = "namespace"  # "source": a voter's votes affect only their searches
    strategy: Literal["none", "multi_query", "hyde", "decompose", "auto"] = "none"  # the default query strategy
    # route every search through the learned router (learn/router.py, <data>/router.json); strategy "auto"
    # routes regardless. Off: on held-out SQuAD it did not beat the fixed search (benchmarks/results/router.json)
    router: bool = False
    # a metadata filter read from the question (learn/selfquery.py): off, boost (fused with the plain list) or filter
    self_query: Literal["off", "boost", "filter"] = "off"
    self_query_min_confidence: float = 0.7  # conditions less sure than this are shown, never applied
    self_query_llm: bool = False  # the local LLM confirms weak matches (JSON constrained by a grammar; ~1-3 s)


@dataclass(frozen=True, slots=True)
class Settings:
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    bm25: BM25Settings = field(default_factory=BM25Settings)
    search: SearchSettings = field(default_factory=SearchSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    vector: VectorSettings = field(default_factory=VectorSettings)
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    rerank: RerankSettings = field(default_factory=RerankSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    learn: LearnSettings = field(default_factory=LearnSettings)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> Settings:
        """A copy with ``{"section": {"field": value}}`` applied and validated."""
        sections = {}
        for section_name, values in overrides.items():
            current = getattr(self, section_name, None)
            if current is None or not dataclasses.is_dataclass(current):
                raise ConfigError(f"unknown settings section {section_name!r}")
            sections[section_name] = _replace_validated(current, section_name, values)
        return replace(self, **sections)


def _replace_validated(section: Any, section_name: str, values: Mapping[str, Any]) -> Any:
    hints = get_type_hints(type(section))
    known = {f.name for f in fields(section)}
    changes: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in known:
            raise ConfigError(f"unknown setting {section_name}.{name}")
        changes[name] = _coerce(raw, hints[name], f"{section_name}.{name}")
    result = replace(section, **changes)
    _check_ranges(result, section_name)
    return result


def _coerce(raw: Any, hint: Any, name: str) -> Any:
    choices = get_args(hint) if getattr(hint, "__origin__", None) is Literal else ()
    if choices:
        if raw not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}; got {raw!r}")
        return raw
    try:
        if hint is bool:
            if isinstance(raw, str):
                if raw.lower() not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError(raw)
                return raw.lower() in {"1", "true", "yes", "on"}
            return bool(raw)
        if hint is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        if hint is float:
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name} must be of type {getattr(hint, '__name__', hint)}; got {raw!r}") from e


def _check_ranges(section: Any, section_name: str) -> None:
    for f in fields(section):
        value = getattr(section, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"{section_name}.{f.name} must not be negative; got {value}")
    if isinstance(section, SearchSettings) and not 0.0 <= section.alpha <= 1.0:
        raise ConfigError(f"search.alpha must lie in [0, 1]; got {section.alpha}")
    if isinstance(section, ChunkSettings) and section.overlap_tokens >= section.chunk_tokens:
        raise ConfigError("chunk.overlap_tokens must be smaller than chunk.chunk_tokens")
    if isinstance(section, RerankSettings) and not 0.0 <= section.blend <= 1.0:
        raise ConfigError(f"rerank.blend must lie in [0, 1]; got {section.blend}")
    if isinstance(section, LearnSettings) and not 0.0 <= section.similarity <= 1.0:
        raise ConfigError(f"learn.similarity must lie in [0, 1]; got {section.similarity}")
    if isinstance(section, LearnSettings) and section.depth < 1:
        raise ConfigError("learn.depth must be at least 1")
    if isinstance(section, AnswerSettings) and section.k < 1:
        raise ConfigError("answer.k must be at least 1")
    if isinstance(section, AnswerSettings) and not 0.0 <= section.min_support <= 1.0:
        raise ConfigError(f"answer.min_support must lie in [0, 1]; got {section.min_support}")
    if isinstance(section, AnswerSettings) and section.max_words < 0:
        raise ConfigError(f"answer.max_words must be 0 (off) or more; got {section.max_words}")
    if isinstance(section, AnswerSettings) and not 0.0 <= section.min_confidence <= 1.0:
        raise ConfigError(f"answer.min_confidence must lie in [0, 1]; got {section.min_confidence}")


def load_settings(data_dir: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then ``<data_dir>/localrag.toml``, then ``LOCALRAG_SECTION__FIELD`` variables."""
    settings = Settings()
    if data_dir is not None:
        path = Path(data_dir) / CONFIG_FILE
        if path.is_file():
            try:
                document = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise ConfigError(f"{path} is not valid TOML: {e}") from e
            settings = settings.with_overrides(
                {k: v for k, v in document.items() if isinstance(v, dict)}
            )
    overrides: dict[str, dict[str, str]] = {}
    for key, value in (os.environ if env is None else env).items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        section, _, name = key[len(ENV_PREFIX) :].lower().partition("__")
        overrides.setdefault(section, {})[name] = value
    return settings.with_overrides(overrides) if overrides else settings


def update_settings_file(data_dir: Path | str, sections: Mapping[str, Mapping[str, Any]], *, written_by: str) -> Path:
    """Merge ``sections`` into ``<data_dir>/localrag.toml`` (other settings kept, the previous file
    copied to ``localrag.toml.bak``); validated before anything is written."""
    path = Path(data_dir) / CONFIG_FILE
    document: dict[str, Any] = {}
    if path.is_file():
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        path.with_name(CONFIG_FILE + ".bak").write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    for section, values in sections.items():
        document.setdefault(section, {}).update(values)
    Settings().with_overrides({k: v for k, v in document.items() if isinstance(v, dict)})  # raises ConfigError
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_toml(document, written_by), encoding="utf-8")
    return path


def _toml(document: Mapping[str, Any], written_by: str) -> str:
    """Serialise a settings document (top-level tables of scalars) as TOML."""
    lines = [f"# written by `{written_by}` (a copy of the previous file, if any, is in localrag.toml.bak)"]
    for section, values in document.items():
        if not isinstance(values, Mapping):
            lines.insert(1, f"{section} = {_toml_scalar(values)}")
            continue
        lines += ["", f"[{section}]", *(f"{key} = {_toml_scalar(value)}" for key, value in values.items())]
    return "\n".join(lines) + "\n"


def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    raise ConfigError(f"cannot write {value!r} to {CONFIG_FILE}")
