"""The live dashboard's figures: a sampler over the server's ``Metrics`` and ``GET /v1/dashboard``.

Every ``server.dashboard_interval_s`` seconds the sampler reads the registry (counters, latency
histograms, cache and store gauges), subtracts the previous reading and keeps one ``Point`` of
per-interval figures in a ring of the last ``HISTORY`` points: requests/s, error rate, latency
p50/p95 per stage (interpolated within the histogram buckets that filled during the interval, as
Prometheus' ``histogram_quantile`` does), hit rate per cache, LLM tokens in/out per second and
ingested chunks per second. Rates come from deltas, so the figures describe the last interval, not
the whole life of the server.

Alerts ("band" checks) are computed here, so every client sees the same ones:

- **latency**: the p95 of a stage in the latest point is above ``LATENCY_FACTOR`` (3x) the median
  p95 of its previous ``LATENCY_WINDOW`` points that saw that stage, once there are at least
  ``LATENCY_MIN_HISTORY`` of them, the latest point saw ``LATENCY_MIN_COUNT`` observations and
  its p95 is above ``LATENCY_FLOOR_MS`` (the buckets are coarse: 1 ms against 0.3 ms is noise);
- **errors**: more than ``ERROR_RATE_MAX`` (1%) of the requests of the last ``ERROR_WINDOW_S``
  seconds failed (status >= 400), once that window holds ``ERROR_MIN_REQUESTS`` requests.

The dashboard's own polling, the event stream and the web app's static files are left out of the
request figures: watching the server should not show up as load on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from localrag.events import Event
from localrag.metrics import Metrics
from localrag.server.context import ServerContext, authorize, context_of

log = logging.getLogger(__name__)

HISTORY = 300
LATENCY_FACTOR = 3.0
LATENCY_WINDOW = 30
LATENCY_MIN_HISTORY = 5
LATENCY_MIN_COUNT = 3
LATENCY_FLOOR_MS = 10.0
ERROR_RATE_MAX = 0.01
ERROR_WINDOW_S = 60.0
ERROR_MIN_REQUESTS = 20

DASHBOARD_ROUTE = "/v1/dashboard"
UNCOUNTED_ROUTES = frozenset({DASHBOARD_ROUTE, "/v1/events", "/"})
UNCOUNTED_PREFIXES = ("/app/",)  # the web app's static files
INGEST_COUNTER = "ingest_chunks_total"
GZIP_OVER = 8192  # bytes

# histogram name -> the prefix of its stages on the dashboard ("http" is all counted routes together)
STAGE_HISTOGRAMS = {"search_stage_ms": "search.", "answer_stage_ms": "answer."}


@dataclass(frozen=True, slots=True)
class Reading:
    """The cumulative figures the registry held at one moment."""

    t: float
    requests: float
    errors: float
    tokens_in: float
    tokens_out: float
    ingest_chunks: float
    histograms: Mapping[str, Sequence[int]]  # stage -> per-bucket counts (the last bucket is +Inf)
    buckets: Mapping[str, Sequence[float]]  # stage -> finite upper bounds
    cache_hits: Mapping[str, float]
    cache_misses: Mapping[str, float]
    namespaces: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class Point:
    """Figures over one interval, ending at ``t`` (seconds since the epoch)."""

    t: float
    dt: float
    requests: int
    errors: int
    rps: float
    error_rate: float
    latency_ms: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # stage -> p50, p95, count
    cache_hit_rate: Mapping[str, float] = field(default_factory=dict)  # only caches looked up in the interval
    tokens_in: float = 0.0  # per second
    tokens_out: float = 0.0
    ingest_chunks_per_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3), "dt": round(self.dt, 3), "requests": self.requests, "errors": self.errors,
            "rps": _r(self.rps), "error_rate": _r(self.error_rate),
            # hundredths of a ms are plenty, and keep the 300-point answer small (~1.5-2 KB a point)
            "latency_ms": {s: {"p50": _r(q["p50"], 2), "p95": _r(q["p95"], 2), "count": int(q.get("count", 0))}
                           for s, q in self.latency_ms.items()},
            "cache_hit_rate": {c: _r(v) for c, v in self.cache_hit_rate.items()},
            "tokens_in": _r(self.tokens_in), "tokens_out": _r(self.tokens_out),
            "ingest_chunks_per_s": _r(self.ingest_chunks_per_s),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Alert:
    figure: str
    message: str
    value: float
    band: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        return {"figure": self.figure, "message": self.message, "value": _r(self.value),
                "band": {"min": _r(self.band[0]), "max": _r(self.band[1])}}


def bucket_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float:
    """The q-quantile of per-bucket ``counts`` (one more than ``bounds``: the last is +Inf), linearly
    interpolated within its bucket from the bucket's lower bound (0 for the first). A quantile in the
    +Inf bucket is the last finite bound: nothing better is known about it."""
    total = sum(counts)
    if total <= 0:
        return 0.0
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i >= len(bounds):
                return float(bounds[-1]) if bounds else 0.0
            low = float(bounds[i - 1]) if i else 0.0
            return low + (float(bounds[i]) - low) * max(rank - seen, 0.0) / n
        seen += n
    return float(bounds[-1]) if bounds else 0.0


def read(metrics: Metrics, now: float) -> Reading:
    """What the dashboard needs of the registry, summed over the labels it does not show."""
    snap = metrics.snapshot()
    counters = {name: [(_labels(k), float(v)) for k, v in series] for name, series in snap["counters"].items()}
    gauges = {name: [(_labels(k), float(v)) for k, v in series] for name, series in snap["gauges"].items()}

    def total(name: str, **match: str) -> float:
        return sum(v for k, v in counters.get(name, []) if _counted(k) and all(k.get(a) == b for a, b in match.items()))

    histograms: dict[str, list[int]] = {}
    buckets: dict[str, Sequence[float]] = {}
    for name, series in snap["histograms"].items():
        for raw, h in series:
            labels = _labels(raw)
            if name == "http_request_ms":
                if not _counted(labels):
                    continue
                stage = "http"
            elif name in STAGE_HISTOGRAMS and "stage" in labels:
                stage = STAGE_HISTOGRAMS[name] + labels["stage"]
            else:
                continue
            counts = histograms.setdefault(stage, [0] * len(h["counts"]))
            if len(counts) != len(h["counts"]):  # another bucket layout: not summable, keep the first
                continue
            buckets[stage] = tuple(h["buckets"])
            for i, n in enumerate(h["counts"]):
                counts[i] += int(n)
    namespaces: dict[str, dict[str, int]] = {}
    for kind in ("documents", "chunks"):
        for labels, value in gauges.get(kind, []):
            if "namespace" in labels:
                namespaces.setdefault(labels["namespace"], {"documents": 0, "chunks": 0})[kind] = int(value)

    def by_cache(name: str) -> dict[str, float]:
        return {k.get("cache", "?"): v for k, v in gauges.get(name, [])}

    return Reading(now, total("http_requests_total"), total("http_errors_total"),
                   total("tokens_total", direction="in"), total("tokens_total", direction="out"),
                   total(INGEST_COUNTER), histograms, buckets, by_cache("cache_hits"), by_cache("cache_misses"),
                   namespaces)


def interval(before: Reading, after: Reading) -> Point | None:
    """The figures between two readings (None when the clock did not move forward)."""
    dt = after.t - before.t
    if dt <= 0:
        return None
    requests = max(after.requests - before.requests, 0.0)
    errors = min(max(after.errors - before.errors, 0.0), requests)
    latency: dict[str, dict[str, float]] = {}
    for stage, counts in after.histograms.items():
        old = before.histograms.get(stage, [0] * len(counts))
        delta = [max(a - b, 0) for a, b in zip(counts, old, strict=False)] if len(old) == len(counts) else counts
        n = sum(delta)
        if n:
            bounds = after.buckets[stage]
            latency[stage] = {"p50": bucket_quantile(0.5, bounds, delta), "p95": bucket_quantile(0.95, bounds, delta),
                              "count": float(n)}
    hit_rate = {}
    for cache, hits in after.cache_hits.items():
        # a cache that was emptied restarts its counts: a negative delta means "no lookups known"
        d_hits = max(hits - before.cache_hits.get(cache, 0.0), 0.0)
        d_misses = max(after.cache_misses.get(cache, 0.0) - before.cache_misses.get(cache, 0.0), 0.0)
        if d_hits + d_misses:
            hit_rate[cache] = d_hits / (d_hits + d_misses)
    return Point(after.t, dt, int(requests), int(errors), requests / dt, errors / requests if requests else 0.0,
                 latency, hit_rate, max(after.tokens_in - before.tokens_in, 0.0) / dt,
                 max(after.tokens_out - before.tokens_out, 0.0) / dt,
                 max(after.ingest_chunks - before.ingest_chunks, 0.0) / dt)


def alerts(points: Sequence[Point]) -> list[Alert]:
    """The band checks of the module docstring, on the latest point (and the last minute for errors)."""
    if not points:
        return []
    found: list[Alert] = []
    points = list(points)
    latest = points[-1]
    for stage, figures in sorted(latest.latency_ms.items()):
        history = [p.latency_ms[stage]["p95"] for p in points[:-1] if stage in p.latency_ms][-LATENCY_WINDOW:]
        if len(history) < LATENCY_MIN_HISTORY or figures["count"] < LATENCY_MIN_COUNT:
            continue
        ceiling = LATENCY_FACTOR * statistics.median(history)
        p95 = figures["p95"]
        if p95 > ceiling and p95 > LATENCY_FLOOR_MS:
            found.append(Alert(f"latency_ms.{stage}.p95",
                               f"{stage} p95 latency {p95:.0f} ms is over {LATENCY_FACTOR:g}x its recent median "
                               f"({ceiling / LATENCY_FACTOR:.1f} ms)", p95, (0.0, ceiling)))
    recent = [p for p in points if p.t > latest.t - ERROR_WINDOW_S]
    requests = sum(p.requests for p in recent)
    errors = sum(p.errors for p in recent)
    if requests >= ERROR_MIN_REQUESTS and errors / requests > ERROR_RATE_MAX:
        found.append(Alert("error_rate", f"{errors} of {requests} requests failed in the last "
                           f"{ERROR_WINDOW_S:g} s ({100 * errors / requests:.1f}%, band up to "
                           f"{100 * ERROR_RATE_MAX:g}%)", errors / requests, (0.0, ERROR_RATE_MAX)))
    return found


class DashboardSampler:
    """Keeps the ring of points; ``sample(now)`` is the whole step, so tests drive it without sleeping."""

    def __init__(self, metrics: Metrics, interval_s: float, history: int = HISTORY) -> None:
        self.metrics = metrics
        self.interval_s = interval_s
        self.points: deque[Point] = deque(maxlen=history)
        self.alerts: list[Alert] = []
        self.namespaces: Mapping[str, Mapping[str, int]] = {}
        self._last: Reading | None = None
        self._lock = threading.Lock()

    def sample(self, now: float) -> Point | None:
        """Read the registry at ``now`` (seconds); the first call only sets the baseline."""
        reading = read(self.metrics, now)
        with self._lock:
            before, self._last = self._last, reading
            self.namespaces = reading.namespaces
            point = interval(before, reading) if before is not None else None
            if point is not None:
                self.points.append(point)
                self.alerts = alerts(self.points)
        return point

    def count_ingest(self, event: Event) -> None:
        """Event-bus listener: chunks written by any ingest (uploads, sync, watch) feed ingest chunks/s."""
        chunks = event.data.get("chunks", 0)
        if isinstance(chunks, int) and chunks > 0:
            self.metrics.inc(INGEST_COUNTER, chunks, namespace=event.namespace)

    def to_json(self, since: float | None = None) -> dict[str, Any]:
        with self._lock:
            points = [p for p in self.points if since is None or round(p.t, 3) > since]  # t as sent
            return {"interval_s": self.interval_s, "points": [p.to_json() for p in points],
                    "namespaces": {n: dict(c) for n, c in sorted(self.namespaces.items())},
                    "alerts": [a.to_json() for a in self.alerts],
                    "rules": {"latency_factor": LATENCY_FACTOR, "latency_window": LATENCY_WINDOW,
                              "latency_min_history": LATENCY_MIN_HISTORY, "error_rate_max": ERROR_RATE_MAX,
                              "error_window_s": ERROR_WINDOW_S, "error_min_requests": ERROR_MIN_REQUESTS}}

    async def run(self) -> None:
        if self.interval_s <= 0:
            return
        while True:
            try:
                await run_in_threadpool(self.sample, time.time())
            except Exception:  # a figure that cannot be read must not stop the server's dashboard for good
                log.exception("dashboard sample failed")
            await asyncio.sleep(self.interval_s)


@dataclass
class Running:
    sampler: DashboardSampler
    task: asyncio.Task[None]
    unsubscribe: Callable[[], None]


def start(app: FastAPI) -> Running:
    """Start sampling the app's metrics (called in the server's lifespan); ``stop`` ends it."""
    ctx: ServerContext = app.state.rag
    sampler = DashboardSampler(ctx.metrics, ctx.settings.dashboard_interval_s)
    ctx.metrics.describe(INGEST_COUNTER, "chunks written by ingest, sync and watch, by namespace")
    app.state.dashboard = sampler
    unsubscribe = ctx.rag.events.subscribe(sampler.count_ingest, kinds={"ingest", "update"})
    return Running(sampler, asyncio.create_task(sampler.run()), unsubscribe)


async def stop(running: Running) -> None:
    running.unsubscribe()
    running.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running.task


def router() -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(authorize)], tags=["rag"])

    @api.get("/dashboard")
    async def dashboard(
        request: Request,
        since: float | None = Query(None, description="only the points after this time (a point's t, epoch seconds)"),
    ) -> Response:
        """The live dashboard's figures: per-interval points, documents and chunks per namespace, alerts."""
        sampler: DashboardSampler | None = getattr(request.app.state, "dashboard", None)
        if sampler is None:  # the lifespan has not run (an app used without starting it)
            sampler = DashboardSampler(context_of(request).metrics, 0.0)
        if since is not None and not math.isfinite(since):
            since = None
        body = json.dumps(sampler.to_json(since), separators=(",", ":")).encode()
        # the first poll carries up to 300 points (~300 KB of repeated keys, ~10x smaller gzipped);
        # later ones only the new points
        if len(body) > GZIP_OVER and "gzip" in request.headers.get("accept-encoding", ""):
            return Response(gzip.compress(body, 5), media_type="application/json",
                            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
        return Response(body, media_type="application/json")

    return api


def _labels(raw: Iterable[Sequence[str]]) -> dict[str, str]:
    return {str(k): str(v) for k, v in raw}


def _counted(labels: Mapping[str, str]) -> bool:
    route = labels.get("route", "")
    return route not in UNCOUNTED_ROUTES and not route.startswith(UNCOUNTED_PREFIXES)


def _r(value: float, digits: int = 4) -> float:
    return round(value, digits) if math.isfinite(value) else 0.0

