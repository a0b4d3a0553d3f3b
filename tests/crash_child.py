"""Child for the crash-safety test: ingests forever, printing each committed batch, until killed."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import netguard

netguard.install()

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


def make_doc(run: int, n: int, rng: random.Random, version: int = 0) -> Document:
    token = f"zq{run}x{n}v{version}"
    length = rng.choice([60, 120, 600])  # some documents span several chunks
    body = " ".join(rng.choice(WORDS) for _ in range(length))
    return Document(
        f"doc-{run}-{n}", f"{token} {body} {token}.", title=f"Doc {run}-{n}", metadata={"run": run, "version": version}
    )


def main() -> None:
    data, run = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(run)
    with LocalRAG(data) as rag:
        n = 0
        while True:
            batch = [make_doc(run, n + i, rng) for i in range(rng.randint(1, 6))]
            if n and rng.random() < 0.3:  # rewrite an earlier document of this run
                batch.append(make_doc(run, rng.randrange(n), rng, version=n))
            rag.add(batch)
            print("COMMITTED " + " ".join(f"{d.doc_id}={d.metadata['version']}" for d in batch), flush=True)
            n += len(batch)


if __name__ == "__main__":
    main()
