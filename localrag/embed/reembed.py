"""Copy a data directory's documents into a new one embedded with another model (``localrag reembed``).

A new embedding model makes every stored vector obsolete. Rewriting them in place would leave a
store of mixed vectors if the process died half-way, and other processes would keep serving
indexes built from the old ones; so the documents are copied into a fresh data directory (the
source is opened read-only and never changed), chunked and embedded there by the ordinary ingest
path, and the new directory's ``localrag.toml`` names the model. Switch by pointing ``--data``
at the new directory. Feedback judgments name chunk ids of the old store and are not copied.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localrag.config import CONFIG_FILE, update_settings_file
from localrag.errors import InvalidInputError

log = logging.getLogger(__name__)

def reembed(source: Path, target: Path, model: str,
            progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Copy every namespace's documents from ``source`` into ``target`` embedded with ``model``
    (a registry name or a trained embedder folder); returns counts per namespace."""
    from localrag.config import load_settings
    from localrag.embed.factory import embedder_dim, is_model_path
    from localrag.engine import LocalRAG

    source, target = Path(source), Path(target)
    if target.exists() and any(target.iterdir()):
        raise InvalidInputError(f"{target} is not empty: reembed writes a new data directory")
    if target.resolve() == source.resolve():
        raise InvalidInputError("the target must be a new data directory, not the source")
    if is_model_path(model):
        model = str(Path(model).expanduser().resolve())
    embedder_dim(model)  # an unknown name or a folder that is not an embedder fails before anything is written
    target.mkdir(parents=True, exist_ok=True)
    if (source / CONFIG_FILE).is_file():  # tuned and other settings carry over
        shutil.copy(source / CONFIG_FILE, target / CONFIG_FILE)
    update_settings_file(target, {"embed": {"model": model}}, written_by="localrag reembed")
    counts: dict[str, int] = {}
    with LocalRAG(source, read_only=True) as old, LocalRAG(target, settings=load_settings(target)) as new:
        for namespace in sorted(old.store.namespaces()):
            report = new.add(old.iter_documents(namespace), namespace=namespace)
            counts[namespace] = len(report.added)
            if progress is not None:
                progress(namespace, counts[namespace])
            log.info("re-embedded %d documents of namespace %r", counts[namespace], namespace)
        chunks = int(new.stats()["chunks"])
    return {"source": str(source), "target": str(target), "model": model, "documents": counts, "chunks": chunks}
