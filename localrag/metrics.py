"""Counters, gauges and latency histograms, rendered in the Prometheus text format.

One ``Metrics`` registry per server. It can be written to a JSON snapshot and read
back, so ``localrag stats`` shows the figures ``GET /metrics`` serves (see
``localrag.server.app``). Gauges are computed when rendered (document counts, cache
sizes) through collector callbacks.
"""

from __future__ import annotations

import bisect
import json
import math
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from localrag.fileio import atomic_write_bytes

# Milliseconds: from sub-millisecond searches to multi-second generations.
LATENCY_BUCKETS_MS = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
PREFIX = "localrag_"

Labels = tuple[tuple[str, str], ...]
Collector = Callable[[], Mapping[str, Mapping[Labels, float]]]


def labels_of(**labels: object) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


class Histogram:
    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS_MS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding the q-quantile (what Prometheus would estimate)."""
        if not self.count:
            return 0.0
        rank, seen = q * self.count, 0
        for bound, n in zip((*self.buckets, math.inf), self.counts, strict=True):
            seen += n
            if seen >= rank:
                return bound
        return math.inf

    def to_dict(self) -> dict[str, Any]:
        return {"buckets": list(self.buckets), "counts": self.counts, "sum": self.total, "count": self.count}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        h = cls(tuple(data["buckets"]))
        h.counts, h.total, h.count = list(data["counts"]), float(data["sum"]), int(data["count"])
        return h


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, dict[Labels, float]] = {}
        self.histograms: dict[str, dict[Labels, Histogram]] = {}
        self.help: dict[str, str] = {}
        self._collectors: list[Collector] = []

    def describe(self, name: str, text: str) -> None:
        self.help[name] = text

    def inc(self, name: str, value: float = 1.0, **labels: object) -> None:
        key = labels_of(**labels)
        with self._lock:
            series = self.counters.setdefault(name, {})
            series[key] = series.get(key, 0.0) + value

    def observe(self, name: str, value_ms: float, **labels: object) -> None:
        key = labels_of(**labels)
        with self._lock:
            series = self.histograms.setdefault(name, {})
            histogram = series.get(key)
            if histogram is None:
                histogram = series[key] = Histogram()
            histogram.observe(value_ms)

    def observe_stages(self, name: str, timings: Mapping[str, float], **labels: object) -> None:
        for stage, ms in timings.items():
            self.observe(name, ms, stage=stage, **labels)

    def add_collector(self, collector: Collector) -> None:
        self._collectors.append(collector)

    def counter(self, name: str, **labels: object) -> float:
        with self._lock:
            return self.counters.get(name, {}).get(labels_of(**labels), 0.0)

    def gauges(self) -> dict[str, dict[Labels, float]]:
        out: dict[str, dict[Labels, float]] = {}
        for collect in self._collectors:
            for name, series in collect().items():
                out.setdefault(name, {}).update(series)
        return out

    # -- snapshots (for `localrag stats`) ------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counters = {n: [[list(map(list, k)), v] for k, v in s.items()] for n, s in self.counters.items()}
            histograms = {n: [[list(map(list, k)), h.to_dict()] for k, h in s.items()]
                          for n, s in self.histograms.items()}
        gauges = {n: [[list(map(list, k)), v] for k, v in s.items()] for n, s in self.gauges().items()}
        return {"counters": counters, "histograms": histograms, "gauges": gauges, "help": dict(self.help)}

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, json.dumps(self.snapshot()).encode())

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> Metrics:
        metrics = cls()
        metrics.help = dict(data.get("help", {}))
        for name, series in data.get("counters", {}).items():
            metrics.counters[name] = {_labels(k): float(v) for k, v in series}
        for name, series in data.get("histograms", {}).items():
            metrics.histograms[name] = {_labels(k): Histogram.from_dict(h) for k, h in series}
        gauges = {name: {_labels(k): float(v) for k, v in series} for name, series in data.get("gauges", {}).items()}
        metrics.add_collector(lambda: gauges)
        return metrics

    # -- Prometheus text format ---------------------------------------------------------
    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            counters = {n: dict(s) for n, s in self.counters.items()}
            histograms = {n: {k: Histogram.from_dict(h.to_dict()) for k, h in s.items()}
                          for n, s in self.histograms.items()}
        for name in sorted(counters):
            self._header(lines, name, "counter")
            for key, value in sorted(counters[name].items()):
                lines.append(f"{PREFIX}{name}{_fmt_labels(key)} {_num(value)}")
        for name, series in sorted(self.gauges().items()):
            self._header(lines, name, "gauge")
            for key, value in sorted(series.items()):
                lines.append(f"{PREFIX}{name}{_fmt_labels(key)} {_num(value)}")
        for name in sorted(histograms):
            self._header(lines, name, "histogram")
            for key, h in sorted(histograms[name].items()):
                cumulative = 0
                for bound, n in zip((*h.buckets, math.inf), h.counts, strict=True):
                    cumulative += n
                    le = "+Inf" if bound == math.inf else _num(bound)
                    lines.append(f"{PREFIX}{name}_bucket{_fmt_labels((*key, ('le', le)))} {cumulative}")
                lines.append(f"{PREFIX}{name}_sum{_fmt_labels(key)} {_num(h.total)}")
                lines.append(f"{PREFIX}{name}_count{_fmt_labels(key)} {h.count}")
        return "\n".join(lines) + "\n"

    def _header(self, lines: list[str], name: str, kind: str) -> None:
        if name in self.help:
            lines.append(f"# HELP {PREFIX}{name} {self.help[name]}")
        lines.append(f"# TYPE {PREFIX}{name} {kind}")


def _labels(raw: Any) -> Labels:
    return tuple((str(k), str(v)) for k, v in raw)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt_labels(key: Labels) -> str:
    if not key:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in key) + "}"


def _num(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# -- what `localrag stats` shows ----------------------------------------------------------------
SNAPSHOT_FILE = "server-metrics.json"


def load_snapshot(data_dir: Path) -> Metrics | None:
    """The metrics the server last wrote into ``data_dir`` (None if it never ran there)."""
    path = Path(data_dir) / SNAPSHOT_FILE
    try:
        return Metrics.from_snapshot(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def summary(metrics: Metrics) -> dict[str, Any]:
    """The headline figures of a registry: requests, errors, tokens, caches, latency per search stage."""
    gauges = metrics.gauges()
    with metrics._lock:
        counters = {name: dict(series) for name, series in metrics.counters.items()}
        histograms = {name: dict(series) for name, series in metrics.histograms.items()}

    def total(name: str, **match: str) -> float:
        return sum(v for k, v in counters.get(name, {}).items() if set(match.items()) <= set(k))

    caches = {}
    for key, hits in gauges.get("cache_hits", {}).items():
        name = dict(key).get("cache", "?")
        misses = gauges.get("cache_misses", {}).get(key, 0.0)
        caches[name] = {"hits": int(hits), "misses": int(misses),
                        "hit_rate": round(hits / (hits + misses), 4) if hits + misses else 0.0}
    stages = {}
    for key, h in histograms.get("search_stage_ms", {}).items():
        stages[dict(key).get("stage", "?")] = {"count": h.count, "mean_ms": round(h.total / h.count, 3) if h.count
                                               else 0.0, "p99_le_ms": h.quantile(0.99)}
    return {
        "requests": int(total("http_requests_total")),
        "errors": int(total("http_errors_total")),
        "tokens_in": int(total("tokens_total", direction="in")),
        "tokens_out": int(total("tokens_total", direction="out")),
        "answers": int(total("answers_total")),
        "documents": int(sum(gauges.get("documents_total", {}).values())),
        "chunks": int(sum(gauges.get("chunks_total", {}).values())),
        "caches": caches,
        "search_stages": stages,
    }
