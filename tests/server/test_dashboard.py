"""The dashboard's figures (localrag/server/dashboard.py): deltas, bucket quantiles and band alerts on a
hand-fed ``Metrics`` registry, driven through ``sample(now)`` with no sleeping; then GET /v1/dashboard on
the real server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from rag_serving import BEES, KEY, TIDES, extractive_settings
from threaded_server import app_in_thread

from localrag.engine import LocalRAG
from localrag.events import Event
from localrag.metrics import Metrics, labels_of
from localrag.server import create_app
from localrag.server.dashboard import (
    ERROR_MIN_REQUESTS,
    LATENCY_MIN_HISTORY,
    DashboardSampler,
    Point,
    alerts,
    bucket_quantile,
)

T0 = 1_700_000_000.0


def search(metrics: Metrics, n: int, ms: float, *, status: int = 200, route: str = "/v1/search") -> None:
    """What the request middleware records for ``n`` requests of ``ms`` each."""
    for _ in range(n):
        metrics.inc("http_requests_total", route=route, method="POST", status=status)
        if status >= 400:
            metrics.inc("http_errors_total", route=route, status=status)
        metrics.observe("http_request_ms", ms, route=route)


def test_bucket_quantile_interpolates_within_the_bucket() -> None:
    bounds = (10.0, 20.0, 40.0)
    assert bucket_quantile(0.5, bounds, [0, 4, 0, 0]) == pytest.approx(15.0)  # rank 2 of 4 in (10, 20]
    assert bucket_quantile(0.95, bounds, [0, 4, 0, 0]) == pytest.approx(19.5)
    assert bucket_quantile(0.5, bounds, [2, 0, 2, 0]) == pytest.approx(10.0)  # the first bucket's top
    assert bucket_quantile(0.75, bounds, [2, 0, 2, 0]) == pytest.approx(30.0)  # halfway into (20, 40]
    assert bucket_quantile(0.5, bounds, [1, 0, 0, 0]) == pytest.approx(5.0)  # the first bucket starts at 0
    assert bucket_quantile(0.95, bounds, [0, 0, 0, 3]) == 40.0  # +Inf: the last finite bound
    assert bucket_quantile(0.5, bounds, [0, 0, 0, 0]) == 0.0


def test_first_sample_is_the_baseline_and_figures_come_from_deltas() -> None:
    metrics = Metrics()
    search(metrics, 50, 400.0)  # before the baseline: must not show in any point
    sampler = DashboardSampler(metrics, 2.0)
    assert sampler.sample(T0) is None
    search(metrics, 8, 12.0)
    search(metrics, 2, 12.0, status=500)
    search(metrics, 30, 1.0, route="/v1/dashboard")  # the dashboard's own polling is not load
    search(metrics, 30, 1.0, route="/app/{path:path}")
    metrics.inc("tokens_total", 100, direction="in")
    metrics.inc("tokens_total", 40, direction="out")
    metrics.observe_stages("search_stage_ms", {"dense": 3.0, "keyword": 0.7})
    metrics.observe_stages("answer_stage_ms", {"total": 700.0})
    sampler.count_ingest(Event("ingest", doc_id="a", namespace="n", data={"chunks": 6}))
    sampler.count_ingest(Event("update", doc_id="b", namespace="", data={"chunks": 4}))

    point = sampler.sample(T0 + 2.0)
    assert point is not None
    assert (point.requests, point.errors) == (10, 2)
    assert point.rps == pytest.approx(5.0)
    assert point.error_rate == pytest.approx(0.2)
    assert (point.tokens_in, point.tokens_out) == (pytest.approx(50.0), pytest.approx(20.0))
    assert point.ingest_chunks_per_s == pytest.approx(5.0)
    http = point.latency_ms["http"]
    assert http["count"] == 10
    assert 10.0 < http["p50"] <= 25.0 and 10.0 < http["p95"] <= 25.0  # 12 ms lies in (10, 25]; 400 ms is gone
    assert 2.5 < point.latency_ms["search.dense"]["p95"] <= 5.0
    assert 0.5 < point.latency_ms["search.keyword"]["p95"] <= 1.0
    assert 500.0 < point.latency_ms["answer.total"]["p95"] <= 1000.0

    quiet = sampler.sample(T0 + 4.0)  # nothing happened: zero rates, no latency figures
    assert quiet is not None
    assert (quiet.rps, quiet.error_rate, quiet.ingest_chunks_per_s, quiet.tokens_in) == (0.0, 0.0, 0.0, 0.0)
    assert quiet.latency_ms == {}
    assert [p.t for p in sampler.points] == [T0 + 2.0, T0 + 4.0]


def test_cache_hit_rate_and_namespaces_come_from_the_gauges() -> None:
    metrics = Metrics()
    gauges: dict[str, dict[Any, float]] = {
        "cache_hits": {labels_of(cache="embedding"): 10, labels_of(cache="result"): 0},
        "cache_misses": {labels_of(cache="embedding"): 10, labels_of(cache="result"): 0},
        "documents": {labels_of(namespace=""): 2, labels_of(namespace="team"): 1},
        "chunks": {labels_of(namespace=""): 7, labels_of(namespace="team"): 3},
    }
    metrics.add_collector(lambda: gauges)
    sampler = DashboardSampler(metrics, 1.0)
    sampler.sample(T0)
    gauges["cache_hits"][labels_of(cache="embedding")] = 13  # 3 hits, 1 miss in the interval
    gauges["cache_misses"][labels_of(cache="embedding")] = 11
    gauges["chunks"][labels_of(namespace="team")] = 5
    point = sampler.sample(T0 + 1.0)
    assert point is not None
    assert point.cache_hit_rate == {"embedding": pytest.approx(0.75)}  # "result" had no lookups: no figure
    body = sampler.to_json()
    assert body["namespaces"] == {"": {"documents": 2, "chunks": 7}, "team": {"documents": 1, "chunks": 5}}
    gauges["cache_hits"][labels_of(cache="embedding")] = 0  # the cache was emptied: counts restart
    gauges["cache_misses"][labels_of(cache="embedding")] = 0
    point = sampler.sample(T0 + 2.0)
    assert point is not None and point.cache_hit_rate == {}


def test_a_clock_that_does_not_move_forward_adds_no_point_and_the_ring_is_bounded() -> None:
    metrics = Metrics()
    sampler = DashboardSampler(metrics, 1.0, history=5)
    sampler.sample(T0)
    assert sampler.sample(T0) is None
    assert sampler.sample(T0 - 1) is None
    for i in range(1, 9):
        search(metrics, i, 5.0)
        sampler.sample(T0 + i)
    assert [p.requests for p in sampler.points] == [4, 5, 6, 7, 8]
    body = sampler.to_json(since=T0 + 6)
    assert [p["t"] for p in body["points"]] == [T0 + 7, T0 + 8]


def run_intervals(sampler: DashboardSampler, metrics: Metrics, latencies: list[float], start: float = T0,
                  per_interval: int = 5) -> float:
    """One point per latency, ``per_interval`` requests of that latency each; returns the last time."""
    t = start
    for ms in latencies:
        search(metrics, per_interval, ms)
        t += 1.0
        sampler.sample(t)
    return t


def test_latency_alert_when_p95_leaves_three_times_its_trailing_median() -> None:
    metrics = Metrics()
    sampler = DashboardSampler(metrics, 1.0)
    sampler.sample(T0)
    t = run_intervals(sampler, metrics, [20.0] * LATENCY_MIN_HISTORY)
    assert sampler.alerts == []
    t = run_intervals(sampler, metrics, [45.0], start=t)  # 2.25x: inside the band
    assert sampler.alerts == []
    t = run_intervals(sampler, metrics, [400.0], start=t)
    [alert] = sampler.alerts
    assert alert.figure == "latency_ms.http.p95"
    assert alert.value > alert.band[1]
    assert "http" in alert.message and "p95" in alert.message
    assert sampler.to_json()["alerts"][0]["figure"] == "latency_ms.http.p95"
    run_intervals(sampler, metrics, [20.0], start=t)  # back in the band: the alert clears
    assert sampler.alerts == []


def test_latency_alert_needs_history_a_few_requests_and_a_floor() -> None:
    metrics = Metrics()
    sampler = DashboardSampler(metrics, 1.0)
    sampler.sample(T0)
    t = run_intervals(sampler, metrics, [20.0] * (LATENCY_MIN_HISTORY - 1) + [400.0])
    assert sampler.alerts == []  # too little history to know the band
    t = run_intervals(sampler, metrics, [20.0] * 3, start=t)
    t = run_intervals(sampler, metrics, [400.0], start=t, per_interval=1)  # one slow request is not a trend
    assert sampler.alerts == []
    metrics2 = Metrics()
    fast = DashboardSampler(metrics2, 1.0)
    fast.sample(T0)
    run_intervals(fast, metrics2, [0.3] * 10 + [4.0])  # 10x, but a few ms is bucket noise
    assert fast.alerts == []


def test_error_rate_alert_over_the_last_minute_with_a_minimum_count() -> None:
    metrics = Metrics()
    sampler = DashboardSampler(metrics, 1.0)
    sampler.sample(T0)
    search(metrics, 1, 5.0, status=500)
    search(metrics, ERROR_MIN_REQUESTS - 2, 5.0)
    sampler.sample(T0 + 1)
    assert sampler.alerts == []  # 1 of 19: too few requests to judge
    search(metrics, 1, 5.0)
    sampler.sample(T0 + 2)
    [alert] = sampler.alerts  # 1 of 20 is 5%
    assert alert.figure == "error_rate" and alert.value == pytest.approx(0.05) and alert.band == (0.0, 0.01)
    search(metrics, 200, 5.0)  # 1 of 220 is under 1%
    sampler.sample(T0 + 3)
    assert sampler.alerts == []
    search(metrics, 5, 5.0, status=404)
    sampler.sample(T0 + 4)
    assert [a.figure for a in sampler.alerts] == ["error_rate"]  # 6 of 225
    search(metrics, 30, 5.0)
    sampler.sample(T0 + 70)  # a minute later the old failures have left the window
    assert sampler.alerts == []


def test_alerts_of_no_points_is_empty_and_points_serialise_finite_numbers() -> None:
    assert alerts([]) == []
    point = Point(T0, 1.0, 0, 0, 0.0, 0.0, {"http": {"p50": 1.23456, "p95": float("inf"), "count": 1.0}})
    data = point.to_json()
    assert data["latency_ms"]["http"] == {"p50": 1.23, "p95": 0.0, "count": 1}


@pytest.mark.server
def test_dashboard_endpoint_on_the_real_server(tmp_path: Path, fake_embedder: Any) -> None:
    settings = extractive_settings(api_keys=KEY, dashboard_interval_s=0.05, metrics_flush_s=0)
    rag = LocalRAG(tmp_path / "data", settings=settings, embedder=fake_embedder)
    rag.add([TIDES], namespace="sea")
    try:
        app = create_app(tmp_path / "data", rag=rag)
        with app_in_thread(app) as url, \
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
            assert httpx.get(f"{url}/v1/dashboard").status_code == 401  # key-protected like the rest of /v1
            added = client.post("/v1/documents", json={"doc_id": BEES.doc_id, "text": BEES.text, "title": "Bees"})
            assert added.status_code == 201
            for query in ("waggle dance", "moon tides", "flowers"):
                assert client.post("/v1/search", json={"query": query, "mode": "keyword"}).status_code == 200
            assert client.post("/v1/search", json={"query": "x", "filter": {"n": {"$bad": 1}}}).status_code == 400

            def seen(body: dict[str, Any]) -> bool:
                points = body["points"]
                return (sum(p["requests"] for p in points) >= 5 and any(p["ingest_chunks_per_s"] > 0 for p in points)
                        and any("search.keyword" in p["latency_ms"] for p in points))

            body = client.get("/v1/dashboard").json()
            deadline = time.monotonic() + 60  # a bound for a loaded machine, not a timing assertion
            while not seen(body) and time.monotonic() < deadline:
                time.sleep(0.05)
                body = client.get("/v1/dashboard").json()
            assert seen(body), body
            assert body["interval_s"] == 0.05
            points = body["points"]
            assert sum(p["requests"] for p in points) == 5  # the upload, 3 searches, the bad filter; no polls
            assert sum(p["errors"] for p in points) == 1
            assert body["namespaces"]["sea"] == {"documents": 1, "chunks": 1}
            assert body["namespaces"][""]["documents"] == 1
            later = client.get("/v1/dashboard", params={"since": points[-1]["t"]}).json()
            assert all(p["t"] > points[-1]["t"] for p in later["points"])
            assert "ingest_chunks_total" in client.get("/metrics").text
            sampler = app.state.dashboard
            for _ in range(200):  # enough points for an answer worth compressing
                sampler.sample(time.time())
            big = client.get("/v1/dashboard", headers={"Accept-Encoding": "gzip"})
            assert big.headers["content-encoding"] == "gzip" and len(big.json()["points"]) >= 200
            plain = client.get("/v1/dashboard", headers={"Accept-Encoding": "identity"})
            assert "content-encoding" not in plain.headers and len(plain.json()["points"]) >= 200
    finally:
        rag.close()
