"""Fine-tune the bi-encoder (the embedding model itself) on judged pairs, on CPU in minutes.

Contrastive loss with in-batch negatives plus the mined hard negatives: each query in a step is
scored (cosine × ``scale``) against every passage of the step, its own relevant passage is the
target. The model keeps its architecture and mean pooling, so the result is a drop-in embedder
(exported to int8 ONNX by embed/build.py) and the stored vectors must be recomputed with it.

torch is needed here only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from localrag.embed.tokenizer import ModelTokenizer
from localrag.errors import InvalidInputError
from localrag.rerank.mining import TrainGroup
from localrag.training import (
    apply_step,
    batches,
    chosen_groups,
    linear_warmup,
    load_encoder,
    loss_summary,
    require_torch,
    seeded_rng,
    step_count,
)

log = logging.getLogger(__name__)

WHAT = "training an embedder"


@dataclass(frozen=True, slots=True)
class EmbedTrainSettings:
    max_tokens: int = 256  # passages, as at ingest (embed.max_tokens)
    query_tokens: int = 64
    negatives: int = 1  # hard negatives per group; the other groups' passages add in-batch negatives
    epochs: int = 1
    groups_per_step: int = 32
    learning_rate: float = 2e-5
    scale: float = 20.0  # cosine → logits; the usual temperature for MiniLM sentence models
    warmup: float = 0.1
    weight_decay: float = 0.01
    seed: int = 13
    threads: int = 2
    max_groups: int = 0  # 0: all


def _embed(torch: Any, encoder: Any, batch: dict[str, Any]) -> Any:
    hidden = encoder(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state
    mask = torch.from_numpy(batch["attention_mask"]).unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _step_texts(groups: Sequence[TrainGroup], negatives: int) -> tuple[list[str], list[str]]:
    """Queries, then passages: every group's positive first (column i for query i), then the negatives."""
    queries = [g.query for g in groups]
    passages = [g.positive for g in groups]
    for group in groups:
        chosen = list(group.negatives[:negatives])
        chosen += [group.negatives[-1]] * (negatives - len(chosen))  # pad short feedback groups
        passages.extend(chosen)
    return queries, passages


def train_embedder_model(
    groups: Sequence[TrainGroup],
    base_folder: Path,
    settings: EmbedTrainSettings | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune the encoder of ``base_folder`` on ``groups``; returns (encoder in eval mode, run record)."""
    settings = settings or EmbedTrainSettings()
    if settings.groups_per_step < 2:
        raise InvalidInputError("groups_per_step must be at least 2 (in-batch negatives)")
    torch = require_torch(WHAT)
    rng = seeded_rng(torch, settings.seed, settings.threads)
    chosen = chosen_groups(groups, settings.max_groups, rng)
    query_tokenizer = ModelTokenizer(base_folder, max_tokens=settings.query_tokens)
    passage_tokenizer = ModelTokenizer(base_folder, max_tokens=settings.max_tokens)
    encoder = load_encoder(base_folder)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    total = step_count(len(chosen), settings.groups_per_step, settings.epochs)
    scheduler = linear_warmup(torch, optimizer, total, settings.warmup)
    started = time.perf_counter()
    losses: list[float] = []
    encoder.train()
    step = 0
    for part in batches(chosen, settings.groups_per_step, settings.epochs, rng):
        if len(part) < 2:
            continue  # one query alone has no in-batch negatives worth a step
        queries, passages = _step_texts(part, settings.negatives)
        q = _embed(torch, encoder, query_tokenizer.encode_batch(queries))
        p = _embed(torch, encoder, passage_tokenizer.encode_batch(passages))
        logits = settings.scale * (q @ p.T)
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(part)))
        losses.append(apply_step(torch, loss, encoder.parameters(), optimizer, scheduler))
        step += 1
        if progress is not None:
            progress(step, total, losses[-1])
    encoder.eval()
    seconds = time.perf_counter() - started
    record = {
        "settings": asdict(settings),
        "groups": len(chosen),
        "steps": step,
        "train_seconds": round(seconds, 1),
        **loss_summary(losses or [float("nan")]),
        "torch": str(torch.__version__),
    }
    log.info("trained the embedder on %d groups in %.0fs (loss %.3f -> %.3f)", len(chosen), seconds,
             record["loss_first"], record["loss_last"])
    return encoder, record
