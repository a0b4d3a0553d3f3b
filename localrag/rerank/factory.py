"""``rerank.model`` → a loaded ``Reranker``: the project's trained cross-encoder, a cross-encoder by
path, or the local LLM as judge."""

from __future__ import annotations

import logging
from pathlib import Path

from localrag.config import Settings
from localrag.errors import ModelNotFoundError
from localrag.protocols import Reranker

log = logging.getLogger(__name__)

SHIPPED_NAME = "reranker-minilm-scifact"
DATA_DIR_NAME = "reranker"  # where `localrag train-reranker` writes into a data directory


def shipped_reranker_dir() -> Path:
    """The cross-encoder shipped inside the package (package data, so a plain wheel install has it;
    built by scripts/build_reranker.sh)."""
    return Path(__file__).resolve().parent / "shipped" / SHIPPED_NAME


def trained_reranker_dir(data_dir: Path | None) -> Path:
    """The data directory's own trained reranker if there is one, else the shipped one."""
    if data_dir is not None and (Path(data_dir) / DATA_DIR_NAME / "model.onnx").is_file():
        return Path(data_dir) / DATA_DIR_NAME
    shipped = shipped_reranker_dir()
    if not (shipped / "model.onnx").is_file():
        raise ModelNotFoundError(
            f"no trained reranker in {shipped}: reinstall localrag (the wheel carries it), build it with "
            "`bash scripts/build_reranker.sh` or `localrag train-reranker`, or set rerank.model to a "
            "cross-encoder path"
        )
    return shipped


def load_reranker(settings: Settings, data_dir: Path | None = None) -> Reranker | None:
    """The configured reranker, or None for ``rerank.model`` "" / "none"."""
    rerank = settings.rerank
    name = rerank.model.strip()
    if name.lower() in ("", "none"):
        return None
    if name.lower() == "llm":
        from localrag.generate.gguf import resolve_gguf
        from localrag.generate.llamacpp import LlamaCppGenerator
        from localrag.rerank.llm_judge import LlmJudge

        path, model_name = resolve_gguf(settings.generate.model, settings.generate.cache_dir)
        generator = LlamaCppGenerator(path, model_name=model_name, threads=settings.generate.threads,
                                      seed=settings.generate.seed)
        return LlmJudge(generator, max_tokens=rerank.max_tokens or 256, blend=rerank.blend)
    from localrag.rerank.cross_encoder import load_cross_encoder

    target = trained_reranker_dir(data_dir) if name.lower() == "trained" else Path(name).expanduser()
    log.info("loading reranker %s", target)
    return load_cross_encoder(target, threads=rerank.threads, batch_size=rerank.batch_size,
                              max_tokens=rerank.max_tokens, blend=rerank.blend)
