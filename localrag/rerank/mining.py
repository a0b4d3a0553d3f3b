"""Training groups for the cross-encoder: judged positives plus hard negatives from the engine's own search.

A group is one query, one relevant passage and a few passages the hybrid search ranks high but
nobody judged relevant. Judgments come from BEIR qrels, from stored user feedback, or both.
Passages are what the reranker sees at query time: the chunk text after its document title.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from localrag.errors import NotFoundError
from localrag.store.sqlite import index_text
from localrag.types import Hit, SearchRequest

if TYPE_CHECKING:
    from localrag.engine import LocalRAG
    from localrag.eval.beir import BeirDataset

log = logging.getLogger(__name__)

_DOC_CHARS = 2000  # a positive the search missed is read from its document; the tokenizer truncates further


@dataclass(frozen=True, slots=True)
class TrainGroup:
    """One query with one relevant passage and its hard negatives (listwise training unit)."""

    query: str
    positive: str
    negatives: tuple[str, ...]
    source: str = "qrels"  # "qrels", "feedback" or "titles"


def passage_text(hit: Hit) -> str:
    """What a reranker scores for a hit: the title, then the chunk (as the indexes see it)."""
    return index_text(hit.title, hit.text)


def _search(rag: LocalRAG, queries: Sequence[str], namespace: str, depth: int) -> list[list[Hit]]:
    requests = [SearchRequest(q, depth, "hybrid", namespace, rerank=False) for q in queries]
    out: list[list[Hit]] = []
    for start in range(0, len(requests), 64):
        out.extend(list(r.hits) for r in rag.retrieve(requests[start : start + 64]))
    return out


def _first_per_doc(hits: Sequence[Hit]) -> list[Hit]:
    seen: set[str] = set()
    first = []
    for hit in hits:
        if hit.doc_id not in seen:
            seen.add(hit.doc_id)
            first.append(hit)
    return first


def groups_from_qrels(
    rag: LocalRAG,
    dataset: BeirDataset,
    namespace: str,
    *,
    depth: int = 30,
    negatives: int = 3,
    seed: int = 13,
    query_ids: Sequence[str] | None = None,
) -> list[TrainGroup]:
    """One group per judged (query, relevant document) pair, negatives drawn from the top ``depth`` hits."""
    rng = random.Random(seed)
    ids = list(query_ids) if query_ids is not None else sorted(dataset.queries)
    results = _search(rag, [dataset.queries[q] for q in ids], namespace, depth)
    groups: list[TrainGroup] = []
    for qid, hits in zip(ids, results, strict=True):
        judged = dataset.qrels.get(qid, {})
        ranked = _first_per_doc(hits)
        by_doc = {hit.doc_id: hit for hit in ranked}
        pool = [passage_text(h) for h in ranked if judged.get(h.doc_id, 0) <= 0]
        if len(pool) < negatives:
            continue
        for doc_id, grade in sorted(judged.items()):
            if grade <= 0:
                continue
            hit = by_doc.get(doc_id)
            positive = passage_text(hit) if hit is not None else _document_passage(rag, namespace, doc_id)
            if positive is None:
                continue
            groups.append(TrainGroup(dataset.queries[qid], positive, tuple(rng.sample(pool, negatives))))
    log.info("mined %d groups from %d judged queries", len(groups), len(ids))
    return groups


def _document_passage(rag: LocalRAG, namespace: str, doc_id: str) -> str | None:
    try:
        document = rag.get_document(doc_id, namespace)
    except NotFoundError:
        return None
    return index_text(document.title, document.text[:_DOC_CHARS])


def groups_from_feedback(
    rag: LocalRAG,
    items: Sequence[Mapping[str, object]],
    *,
    depth: int = 30,
    negatives: int = 3,
    seed: int = 13,
) -> list[TrainGroup]:
    """Groups from stored judgments: each relevant chunk is a positive; the query's not-relevant chunks
    come first among its negatives, then hard negatives from the search (never a chunk judged relevant)."""
    rng = random.Random(seed)
    per_query: dict[tuple[str, str], dict[int, bool]] = {}
    for item in items:
        key = (str(item["namespace"]), str(item["query"]))
        per_query.setdefault(key, {})[int(str(item["chunk_id"]))] = bool(item["relevant"])
    records = rag.store.chunk_records([cid for judged in per_query.values() for cid in judged])
    keys = sorted(per_query)
    groups: list[TrainGroup] = []
    for namespace in sorted({ns for ns, _ in keys}):
        mine = [q for ns, q in keys if ns == namespace]
        for query, hits in zip(mine, _search(rag, mine, namespace, depth), strict=True):
            judged = per_query[(namespace, query)]
            good = {cid for cid, ok in judged.items() if ok and cid in records}
            good_docs = {records[cid].doc_id for cid in good}
            bad = [cid for cid, ok in judged.items() if not ok and cid in records]
            told = [index_text(records[c].title, records[c].text) for c in bad]
            mined = [passage_text(h) for h in _first_per_doc(hits) if h.doc_id not in good_docs]
            mined = [p for p in mined if p not in told]
            for cid in sorted(good):
                extra = rng.sample(mined, min(len(mined), max(0, negatives - len(told))))
                chosen = tuple((told + extra)[: max(negatives, len(told))])
                if chosen:
                    record = records[cid]
                    groups.append(TrainGroup(query, index_text(record.title, record.text), chosen, "feedback"))
    log.info("built %d groups from %d feedback judgments", len(groups), len(items))
    return groups


def groups_from_titles(
    rag: LocalRAG,
    namespace: str,
    *,
    limit: int = 0,
    depth: int = 30,
    negatives: int = 3,
    seed: int = 13,
) -> list[TrainGroup]:
    """Unlabelled in-domain pairs from the corpus itself: a document's title as the query, its text
    (without the title) as the positive, hard negatives from the hybrid search for the title.

    Titles of papers and articles read like the claims and questions users search with; the
    title is left out of the positive so that matching needs more than copying words.
    """
    rng = random.Random(seed)
    ids = [d.doc_id for d in rag.iter_documents(namespace) if d.title.strip()]
    if limit and len(ids) > limit:
        ids = sorted(rng.sample(ids, limit))
    documents = [rag.get_document(doc_id, namespace) for doc_id in ids]
    documents = [d for d in documents if len(d.text.split()) >= 20]
    groups: list[TrainGroup] = []
    for document, hits in zip(documents, _search(rag, [d.title for d in documents], namespace, depth), strict=True):
        pool = [passage_text(h) for h in _first_per_doc(hits) if h.doc_id != document.doc_id]
        if len(pool) >= negatives:
            groups.append(TrainGroup(document.title, document.text[:_DOC_CHARS], tuple(rng.sample(pool, negatives)),
                                     "titles"))
    log.info("mined %d title groups from %d documents", len(groups), len(documents))
    return groups


def default_scifact() -> Path:
    """Where the shared SciFact copy sits beside the repository (for scripts and benchmarks)."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scifact"
