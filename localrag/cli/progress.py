"""The CLI's progress line for long ingests, fed by the engine's ``progress`` events.

It shows documents done of the total, chunks/s and an ETA, and moves as chunks are embedded (the
pipeline reports every embedding slice), so one large file no longer holds it still until it
commits. Drawn on stderr only when stderr is a terminal; otherwise nothing is printed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from localrag.events import Event


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60:02d}:{seconds % 60:02d}"


@contextmanager
def event_progress(rag: Any, desc: str) -> Iterator[None]:
    """While active, a progress bar driven by ``rag.events``."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="doc", file=sys.stderr, disable=not sys.stderr.isatty(),
               bar_format="{desc}: {n}/{total} documents |{bar}| {postfix}")

    def update(event: Event) -> None:
        data = event.data
        if data.get("docs_total") is not None:
            bar.total = data["docs_total"]
        bar.n = data["docs_done"]
        bar.set_postfix_str(f"{data['chunks']} chunks, {data['chunks_per_s']:.0f} chunks/s, ETA {_eta(data['eta_s'])}",
                            refresh=False)
        bar.refresh()

    unsubscribe = rag.events.subscribe(update, kinds={"progress"})
    try:
        yield
    finally:
        unsubscribe()
        bar.close()
