"""One timed ``LocalRAG.add`` for the benchmarks that report ingest throughput (bench_retrieval,
bench_ingest, bench_scale through scale_corpus): the embedder is loaded and warmed first, so the
model load is reported apart and never counted as ingest time; wall and CPU seconds both, since the
machine may be shared."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from localrag.engine import LocalRAG
from localrag.types import Document, IngestReport


@dataclass(frozen=True, slots=True)
class IngestTiming:
    report: IngestReport
    seconds: float  # wall time of the add alone
    cpu_s: float  # this process's CPU time over the add
    load_s: float  # embedder load and warm-up, before the add

    @property
    def chunks_per_s(self) -> float:
        return self.report.chunks_added / self.seconds


def timed_add(rag: LocalRAG, documents: Sequence[Document | str | Path], namespace: str = "") -> IngestTiming:
    t0 = time.perf_counter()
    rag.embedder.embed_documents(["warm up"])
    load_s = time.perf_counter() - t0
    wall, cpu = time.perf_counter(), time.process_time()
    report = rag.add(list(documents), namespace=namespace)
    return IngestTiming(report, time.perf_counter() - wall, time.process_time() - cpu, load_s)
