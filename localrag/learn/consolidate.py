"""``localrag learn``: the optional torch step that consolidates stored feedback into the reranker.

Online feedback (feedback.py) changes rankings at once and needs no torch. This step trains a
cross-encoder on the stored judgments (the ``train-reranker`` flow) and adopts it only when it
measures better, as ``tune`` does: a share of the judged queries (fixed seed) is held out of
training, and on those queries nDCG@10 of the chunk rankings is compared between the current
configuration and the candidate reranker, both without online feedback (which would otherwise
answer the held-out queries from their own votes). Adopted: the candidate replaces
``<data>/reranker`` and ``localrag.toml`` gets ``rerank.enabled = true``, ``rerank.model = "trained"``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from localrag.errors import InvalidInputError
from localrag.eval.metrics import ndcg_at_k
from localrag.protocols import Reranker
from localrag.types import SearchRequest

if TYPE_CHECKING:
    from localrag.engine import LocalRAG
    from localrag.rerank.train import TrainSettings

log = logging.getLogger(__name__)

CANDIDATE_DIR = "reranker.candidate"
MIN_QUERIES = 4  # judged queries needed to hold some out and still train


def judged_queries(items: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    """(namespace, query) -> {chunk id: 1} of the chunks judged relevant (queries with at least one)."""
    judged: dict[tuple[str, str], dict[str, int]] = {}
    for item in items:
        if item["relevant"]:
            judged.setdefault((str(item["namespace"]), str(item["query"])), {})[str(item["chunk_id"])] = 1
    return judged


def mean_ndcg(rag: LocalRAG, judged: dict[tuple[str, str], dict[str, int]], reranker: Reranker | None) -> float:
    """nDCG@10 of chunk rankings: the first stage (no online feedback), reranked when ``reranker`` is given."""
    from localrag.rerank import stage

    settings = rag.settings.rerank
    scores = []
    for (namespace, query), relevant in sorted(judged.items()):
        request = SearchRequest(query, 10, rag.settings.search.mode, namespace, rerank=reranker is not None)
        first = stage.widen(request, settings) if reranker is not None else request
        result = rag.retriever.search([first])[0]
        if reranker is not None:
            result = stage.rerank_result(reranker, request, result, settings)
        scores.append(ndcg_at_k([str(h.chunk_id) for h in result.hits], relevant, 10))
    return sum(scores) / len(scores)


def consolidate(
    rag: LocalRAG,
    *,
    holdout_share: float = 0.25,
    min_gain: float = 0.01,
    settings: TrainSettings | None = None,
    adopt: bool = True,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Train a candidate reranker on the stored feedback, measure it on held-out judged queries and
    adopt it when it beats the current configuration by ``min_gain`` nDCG@10; returns the report."""
    from localrag.config import update_settings_file
    from localrag.rerank.build import base_model_folder, held_out
    from localrag.rerank.export import export_reranker
    from localrag.rerank.factory import DATA_DIR_NAME, load_reranker
    from localrag.rerank.mining import groups_from_feedback
    from localrag.rerank.train import TrainSettings, train

    settings = settings or TrainSettings()
    items = rag.feedback_items()
    judged = judged_queries(items)
    if len(judged) < MIN_QUERIES:
        raise InvalidInputError(f"learn needs relevant judgments on at least {MIN_QUERIES} queries to hold some "
                                f"out and measure; there are {len(judged)}")
    keys = {f"{ns}\x00{q}": (ns, q) for ns, q in judged}
    held = {keys[k] for k in held_out(keys, max(1, round(len(keys) * holdout_share)))}
    training = [i for i in items if (str(i["namespace"]), str(i["query"])) not in held]
    groups = groups_from_feedback(rag, training, negatives=settings.negatives, seed=settings.seed)
    if not groups:
        raise InvalidInputError("no training groups from the stored feedback (each needs a relevant chunk)")
    folder = base_model_folder()
    model, record = train(groups, folder, settings, progress)
    candidate_dir = rag.path / CANDIDATE_DIR
    check = [(g.query, p) for g in groups[:24] for p in (g.positive, *g.negatives[:3])]
    export_reranker(model, folder, candidate_dir, check, max_tokens=settings.max_tokens, record=record)
    test = {key: judged[key] for key in held}
    current = rag.reranker if rag.settings.rerank.enabled else None
    candidate_settings = rag.settings.with_overrides({"rerank": {"model": str(candidate_dir)}})
    candidate = load_reranker(candidate_settings, rag.path)
    before, after = mean_ndcg(rag, test, current), mean_ndcg(rag, test, candidate)
    report: dict[str, Any] = {
        "training": {"queries": len(judged) - len(held), "groups": len(groups), "judgments": len(training)},
        "held_out_queries": len(held),
        "current": {"reranker": rag.settings.rerank.model if current else "none", "ndcg@10": round(before, 4)},
        "candidate": {"ndcg@10": round(after, 4)},
        "min_gain": min_gain,
        "adopted": False,
    }
    if adopt and after >= before + min_gain:
        target = rag.path / DATA_DIR_NAME
        if target.exists():
            shutil.rmtree(target)
        candidate_dir.rename(target)
        update_settings_file(rag.path, {"rerank": {"enabled": True, "model": "trained"}}, written_by="localrag learn")
        report["adopted"] = True
        log.info("adopted the consolidated reranker: nDCG@10 %.4f -> %.4f on %d held-out queries", before, after,
                 len(held))
    else:
        report["candidate"]["folder"] = str(candidate_dir)
    return report
