"""Child for the crash-safety tests: writes to a data directory until a failpoint kills it.

``crash_child.py DATA RUN MODE MAX_OPS``. MODE ``ingest`` adds batches (now and then rewriting an
earlier document of this run); ``delete`` alternates a batch with deleting some of this run's
documents. Before each operation it prints what it is about to do, after it what was acknowledged:

    BEGIN ADD doc-3-0=0 doc-3-1=0     COMMITTED doc-3-0=0 doc-3-1=0
    BEGIN DELETE doc-3-0              DELETED doc-3-0

The parent arms a failpoint (``LOCALRAG_FAILPOINTS``) that SIGKILLs this process; if it never
fires within MAX_OPS operations the child prints ``DONE`` and exits 0, which the parent reports.
The fake embedder is used: what is tested is the write path, not the model.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import netguard

netguard.install()

from fakes import HashingEmbedder  # noqa: E402

from localrag.engine import LocalRAG  # noqa: E402
from localrag.types import Document  # noqa: E402

WORDS = [
    "river",
    "stone",
    "light",
    "paper",
    "garden",
    "engine",
    "signal",
    "harbor",
    "winter",
    "orbit",
    "copper",
    "lantern",
    "meadow",
    "thunder",
    "canvas",
    "anchor",
    "violet",
    "marble",
    "falcon",
    "pepper",
]


def make_doc(prefix: str, n: int, rng: random.Random, version: int = 0) -> Document:
    """A document whose first word (``zq<prefix>x<n>v<version>``) occurs in no other document."""
    token = f"zq{prefix}x{n}v{version}".replace("-", "y")
    length = rng.choice([60, 120, 600])  # some documents span several chunks
    body = " ".join(rng.choice(WORDS) for _ in range(length))
    return Document(
        f"doc-{prefix}-{n}", f"{token} {body} {token}.", title=f"Doc {prefix}-{n}", metadata={"version": version}
    )


def say(*words: str) -> None:
    print(" ".join(words), flush=True)


def main() -> None:
    data, run, mode, max_ops = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    rng = random.Random(run)
    alive: list[str] = []
    with LocalRAG(data, embedder=HashingEmbedder()) as rag:
        n = 0
        for op in range(max_ops):
            if mode == "delete" and op % 2 and alive:
                doomed = rng.sample(alive, min(len(alive), rng.randint(1, 3)))
                say("BEGIN DELETE", *doomed)
                rag.delete(doc_ids=doomed)
                say("DELETED", *doomed)
                alive = [d for d in alive if d not in doomed]
                continue
            batch = [make_doc(str(run), n + i, rng) for i in range(rng.randint(1, 6))]
            if n and rng.random() < 0.3:  # rewrite an earlier document of this run
                batch.append(make_doc(str(run), rng.randrange(n), rng, version=n))
            items = [f"{d.doc_id}={d.metadata['version']}" for d in batch]
            say("BEGIN ADD", *items)
            rag.add(batch)
            say("COMMITTED", *items)
            alive = [*dict.fromkeys([*alive, *(d.doc_id for d in batch)])]
            n += len(batch)
    say("DONE")


if __name__ == "__main__":
    main()
