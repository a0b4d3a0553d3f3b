"""What the two trainers (the cross-encoder reranker, the bi-encoder embedder) share.

torch and transformers are needed only while training; nothing here is imported at query time.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from localrag.errors import DependencyMissingError

log = logging.getLogger(__name__)


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
