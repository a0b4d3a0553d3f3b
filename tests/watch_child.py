"""Child for the watch tests: ``watch_child.py DATA FOLDER BATCH_FILES`` watches FOLDER into DATA with
the fake embedder (what is tested is sync and the write path, not the model).

It prints ``READY <json report>`` once the restart reconcile is done, one JSON line per event after
that, and ``STOPPED`` when SIGTERM ends it. A failpoint armed by the parent (``LOCALRAG_FAILPOINTS``,
e.g. ``sync.mid_batch=2``) SIGKILLs it part way through a batch.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import netguard

netguard.install()

from fakes import HashingEmbedder  # noqa: E402

from localrag.engine import LocalRAG  # noqa: E402
from localrag.ingest.sync import SyncOptions  # noqa: E402
from localrag.ingest.watch import Watcher  # noqa: E402


def main() -> None:
    data, folder, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with LocalRAG(data, embedder=HashingEmbedder()) as rag:
        watcher = Watcher(rag, [folder], SyncOptions(batch_files=batch), debounce_ms=300)
        signal.signal(signal.SIGTERM, lambda *_: watcher.stop())

        def ready(report: object) -> None:
            print("READY", json.dumps({"added": len(report.added), "deleted": len(report.deleted)}),  # type: ignore[attr-defined]
                  flush=True)
            rag.events.subscribe(lambda e: print(json.dumps(e.to_json()), flush=True),
                                 kinds={"ingest", "update", "delete", "rename", "skip"})

        watcher.run(on_ready=ready)
    print("STOPPED", flush=True)


if __name__ == "__main__":
    main()
