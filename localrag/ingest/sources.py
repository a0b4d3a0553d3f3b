"""What ``LocalRAG.add`` accepts: paths (files or folders) and ``Document`` objects, read lazily.

Bad metadata on a given ``Document`` is refused before any batch commits (the caller sees one clear
error and nothing is half-stored); a loaded file whose metadata cannot be stored as JSON is skipped
like any other bad file, so one file never stops a folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from localrag.config import IngestSettings
from localrag.errors import InvalidInputError
from localrag.ingest.limits import ParseLimits
from localrag.ingest.loaders import load_many
from localrag.jsonsafe import check_metadata
from localrag.types import Document, SkippedFile

Source = str | Path | Document


def check_given(sources: Source | Iterable[Source]) -> None:
    """Refuse a given Document with bad metadata before anything is written (lists and tuples only:
    a generator is read once, as it is ingested)."""
    if isinstance(sources, (Document, list, tuple)):
        for source in [sources] if isinstance(sources, Document) else sources:
            if isinstance(source, Document):
                check_metadata(source.metadata, f"document {source.doc_id!r}: metadata")


def iter_sources(
    sources: Source | Iterable[Source], include: Sequence[str], exclude: Sequence[str], settings: IngestSettings
) -> Iterator[Document | SkippedFile]:
    """The documents (or skipped files) that ``sources`` hold, loaded one at a time within the parse limits."""
    if isinstance(sources, (str, Path, Document)):
        sources = [sources]
    max_bytes = int(settings.max_file_mb * 1024 * 1024)
    limits = ParseLimits.from_settings(settings)
    for source in sources:
        if isinstance(source, Document):
            check_metadata(source.metadata, f"document {source.doc_id!r}: metadata")
            yield source
        elif isinstance(source, (str, Path)):
            for item in load_many([source], include=include, exclude=exclude, max_bytes=max_bytes, limits=limits):
                yield _checked(item)
        else:
            raise InvalidInputError(f"cannot ingest a {type(source).__name__}; give paths or Documents")


def count_sources(sources: Source | Iterable[Source], include: Sequence[str], exclude: Sequence[str]) -> int | None:
    """How many documents an ``add`` will see, for progress (None when a generator cannot be counted)."""
    if isinstance(sources, (str, Path, Document)):
        sources = [sources]
    if not isinstance(sources, (list, tuple)):
        return None
    from localrag.ingest.discover import discover

    paths = [s for s in sources if isinstance(s, (str, Path))]
    return len(sources) - len(paths) + (len(discover(paths, include, exclude)[0]) if paths else 0)


def _checked(item: Document | SkippedFile) -> Document | SkippedFile:
    """A loaded document whose metadata could not be stored as JSON is skipped like a bad file."""
    if isinstance(item, Document):
        try:
            check_metadata(item.metadata, f"document {item.doc_id!r}: metadata")
        except InvalidInputError as e:
            return SkippedFile(item.source or item.doc_id, str(e))
    return item
