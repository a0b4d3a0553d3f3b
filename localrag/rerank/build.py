"""``localrag train-reranker``: mine groups (BEIR qrels and/or stored feedback), train, export, card."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrag.errors import InvalidInputError
from localrag.rerank.mining import TrainGroup, groups_from_feedback, groups_from_qrels
from localrag.rerank.train import TrainSettings

if TYPE_CHECKING:
    from localrag.engine import LocalRAG

log = logging.getLogger(__name__)

BASE_MODEL = "minilm-l6"  # the registry entry whose package folder holds the starting weights
CHECK_PAIRS = 96


HOLDOUT_SEED = 7


def held_out(query_ids: Iterable[str], n: int) -> list[str]:
    """The ``n`` judged queries kept out of training (to choose k1 and blend on), fixed by HOLDOUT_SEED."""
    ids = sorted(query_ids)
    return sorted(random.Random(HOLDOUT_SEED).sample(ids, min(n, len(ids)))) if n > 0 else []


def base_model_folder() -> Path:
    from localrag.models import get_spec, locate_folder

    return locate_folder(get_spec(BASE_MODEL))


def collect_groups(
    rag: LocalRAG,
    *,
    dataset: Path | None = None,
    split: str = "train",
    feedback: bool = True,
    depth: int = 30,
    negatives: int = 3,
    seed: int = 13,
    holdout: int = 0,
    require: bool = True,
) -> tuple[list[TrainGroup], str]:
    """Training groups and a one-line description of where they came from (``require``: raise
    InvalidInputError when there are none)."""
    groups: list[TrainGroup] = []
    parts = []
    if dataset is not None:
        from localrag.eval.beir import load_beir
        from localrag.eval.runner import eval_namespace, ingest_dataset

        data = load_beir(dataset, split)
        if rag.store.namespace_id(eval_namespace(data)) is None:  # ingested by `localrag eval` already?
            ingest_dataset(rag, data)
        kept = sorted(set(data.queries) - set(held_out(data.queries, holdout)))
        # Mined over every query, then the held-out ones dropped: the draws do not depend on the holdout.
        found = groups_from_qrels(rag, data, eval_namespace(data), depth=depth, negatives=negatives, seed=seed)
        kept_texts = {data.queries[q] for q in kept}
        found = [g for g in found if g.query in kept_texts]
        groups += found
        note = f" ({holdout} held out, seed {HOLDOUT_SEED})" if holdout else ""
        parts.append(f"{data.name} {split} qrels: {len(kept)} queries{note}, {len(found)} groups")
    if feedback:
        items = rag.feedback_items()
        found = groups_from_feedback(rag, items, depth=depth, negatives=negatives, seed=seed)
        groups += found
        parts.append(f"stored feedback: {len(items)} judgments, {len(found)} groups")
    if require and not groups:
        raise InvalidInputError("nothing to train on: give --dataset with qrels, or store feedback first "
                                "(rag.feedback / localrag feedback) with at least one relevant chunk")
    return groups, "; ".join(parts)


def train_reranker(
    rag: LocalRAG,
    out_dir: Path,
    *,
    dataset: Path | None = None,
    split: str = "train",
    feedback: bool = True,
    settings: TrainSettings | None = None,
    depth: int = 30,
    holdout: int = 0,
    mine_negatives: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Train a cross-encoder on the judged pairs and write the int8 ONNX folder ``out_dir``.

    ``mine_negatives``: how many negatives to draw per group when mining (training uses the first
    ``settings.negatives``); part of what fixes the draws, so a rebuild must use the same value.
    """
    from localrag.rerank.export import export_reranker
    from localrag.rerank.train import train

    settings = settings or TrainSettings()
    groups, described = collect_groups(rag, dataset=dataset, split=split, feedback=feedback, depth=depth,
                                       negatives=max(settings.negatives, mine_negatives), seed=settings.seed,
                                       holdout=holdout)
    folder = base_model_folder()
    model, record = train(groups, folder, settings, progress)
    record["data"] = described
    record["base_model"] = f"{BASE_MODEL} ({folder.parent.name})"
    check = [(g.query, p) for g in groups[:CHECK_PAIRS // 4] for p in (g.positive, *g.negatives[:3])]
    return export_reranker(model, folder, out_dir, check, max_tokens=settings.max_tokens, record=record)
