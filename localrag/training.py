"""What the two trainers (the cross-encoder reranker, the bi-encoder embedder) share.

torch and transformers are needed only while training; nothing here is imported at query time.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from localrag.errors import DependencyMissingError, InvalidInputError

log = logging.getLogger(__name__)

G = TypeVar("G")


def require_torch(what: str) -> Any:
    """The torch module, or DependencyMissingError naming the extra to install."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        raise DependencyMissingError(f"{what} needs torch and transformers: {e}; "
                                     "pip install 'localrag[torch]'") from e
    return torch


def seeded_rng(torch: Any, seed: int, threads: int) -> random.Random:
    """Seed every generator a training run draws from; returns the run's own ``random.Random``."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(max(1, threads))
    return random.Random(seed)


def load_encoder(folder: Path) -> Any:
    """The transformers encoder of a model folder, offline, with eager attention.

    Eager attention traces to the MatMul/Softmax pattern onnxruntime's BERT fusion recognises.
    """
    from transformers import AutoModel

    from localrag.embed.sentence_transformer import quiet_transformers
    from localrag.models import ensure_offline

    ensure_offline()
    with quiet_transformers():
        return AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation="eager")


def linear_warmup(torch: Any, optimizer: Any, total: int, warmup_fraction: float) -> Any:
    """Linear warm-up over the first ``warmup_fraction`` of ``total`` steps, then linear decay to 0."""
    warmup = max(1, int(total * warmup_fraction))

    def schedule(step: int) -> float:
        return (step + 1) / warmup if step < warmup else max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def loss_summary(losses: Sequence[float]) -> dict[str, float]:
    """Mean loss over the first and the last tenth of the steps (for the model card)."""
    tenth = max(1, len(losses) // 10)
    return {"loss_first": round(float(np.mean(losses[:tenth])), 4),
            "loss_last": round(float(np.mean(losses[-tenth:])), 4)}


def apply_step(torch: Any, loss: Any, parameters: Any, optimizer: Any, scheduler: Any) -> float:
    """One update: backward, gradient norm clipped to 1, optimizer and schedule step; the loss value."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return float(loss.detach())


def chosen_groups(groups: Sequence[G], max_groups: int, rng: random.Random) -> list[G]:
    """The groups a run trains on (a seeded sample of ``max_groups`` when set); refuses unusable ones."""
    if not groups:
        raise InvalidInputError("no training groups: give judged queries (qrels) or stored feedback")
    if any(not getattr(g, "negatives", ()) for g in groups):
        raise InvalidInputError("every training group needs at least one negative passage")
    chosen = list(groups)
    if max_groups and len(chosen) > max_groups:
        chosen = rng.sample(chosen, max_groups)
    return chosen


def step_count(groups: int, per_step: int, epochs: int) -> int:
    return math.ceil(groups / per_step) * epochs


def batches(chosen: Sequence[G], per_step: int, epochs: int, rng: random.Random) -> Iterator[list[G]]:
    """The groups of each step: every epoch reshuffled by the run's rng, then cut into steps."""
    for _ in range(epochs):
        order = list(chosen)
        rng.shuffle(order)
        for start in range(0, len(order), per_step):
            yield order[start : start + per_step]
