"""Fine-tune a cross-encoder from the MiniLM embedding weights, listwise, on CPU in minutes.

The encoder of the embedding package (a BertModel trained for mean-pooled sentence vectors) gets
a fresh one-logit head on the mean-pooled output of ``[CLS] query [SEP] passage [SEP]``. Mean
pooling keeps the pretrained geometry useful from the first step, which matters with a few
hundred updates. The loss is softmax cross-entropy over each group (one relevant passage, its
hard negatives): the model learns to rank, not to calibrate.

torch is needed here only; the exported int8 ONNX model serves without it (see export.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from localrag.embed.tokenizer import ModelTokenizer
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

WHAT = "training a reranker"


@dataclass(frozen=True, slots=True)
class TrainSettings:
    max_tokens: int = 192  # query + passage; SciFact abstracts are longer, their start carries most signal
    negatives: int = 3  # hard negatives per group
    epochs: int = 1
    groups_per_step: int = 8
    learning_rate: float = 5e-5
    head_learning_rate: float = 1e-3  # the fresh head starts from nothing
    warmup: float = 0.1
    weight_decay: float = 0.01
    seed: int = 13
    threads: int = 2
    max_groups: int = 0  # 0: all


def build_model(base_folder: Path) -> Any:
    """A ``torch.nn.Module``: the base encoder plus a fresh linear head; forward gives one logit per row."""
    torch = require_torch(WHAT)
    encoder = load_encoder(base_folder)

    class CrossEncoderNet(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = torch.nn.Linear(int(encoder.config.hidden_size), 1)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return self.head(pooled).squeeze(-1)

    return CrossEncoderNet()


def _rows(groups: Sequence[TrainGroup], negatives: int) -> tuple[list[tuple[str, str]], int]:
    pairs: list[tuple[str, str]] = []
    for group in groups:
        passages = [group.positive, *group.negatives[:negatives]]
        passages += [group.negatives[-1]] * (negatives + 1 - len(passages))  # pad short feedback groups
        pairs.extend((group.query, p) for p in passages)
    return pairs, negatives + 1


def train(
    groups: Sequence[TrainGroup],
    base_folder: Path,
    settings: TrainSettings | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train on ``groups``; returns (model in eval mode, a record of the run for the model card)."""
    settings = settings or TrainSettings()
    torch = require_torch(WHAT)
    rng = seeded_rng(torch, settings.seed, settings.threads)
    chosen = chosen_groups(groups, settings.max_groups, rng)
    tokenizer = ModelTokenizer(base_folder, max_tokens=settings.max_tokens)
    model = build_model(base_folder)
    head_params = list(model.head.parameters())
    head_ids = {id(p) for p in head_params}
    body = [p for p in model.parameters() if id(p) not in head_ids]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": settings.learning_rate}, {"params": head_params, "lr": settings.head_learning_rate}],
        weight_decay=settings.weight_decay,
    )
    total = step_count(len(chosen), settings.groups_per_step, settings.epochs)
    scheduler = linear_warmup(torch, optimizer, total, settings.warmup)
    width = settings.negatives + 1
    started = time.perf_counter()
    losses: list[float] = []
    model.train()
    for step, part in enumerate(batches(chosen, settings.groups_per_step, settings.epochs, rng), start=1):
        pairs, width = _rows(part, settings.negatives)
        batch = {k: torch.from_numpy(v) for k, v in tokenizer.encode_pairs(pairs).items()}
        logits = model(**batch).view(-1, width)
        # The positive sits in column 0 of every group.
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long))
        losses.append(apply_step(torch, loss, model.parameters(), optimizer, scheduler))
        if progress is not None:
            progress(step, total, losses[-1])
    model.eval()
    seconds = time.perf_counter() - started
    record = {
        "settings": asdict(settings),
        "groups": len(chosen),
        "pairs": len(chosen) * width * settings.epochs,
        "steps": total,
        "train_seconds": round(seconds, 1),
        **loss_summary(losses),
        "torch": str(torch.__version__),
    }
    log.info("trained on %d groups in %.0fs (loss %.3f -> %.3f)", len(chosen), seconds,
             record["loss_first"], record["loss_last"])
    return model, record


def torch_scores(
    model: Any, tokenizer: ModelTokenizer, pairs: Sequence[tuple[str, str]], batch: int = 32
) -> np.ndarray:
    """The torch model's logits for ``pairs`` (the reference the ONNX export is checked against)."""
    torch = require_torch(WHAT)
    out = []
    with torch.no_grad():
        for start in range(0, len(pairs), batch):
            encoded = tokenizer.encode_pairs(pairs[start : start + batch])
            out.append(model(**{k: torch.from_numpy(v) for k, v in encoded.items()}).numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, dtype=np.float32)
