"""The search, dashboard and settings pages in chromium, against one real keyed server that samples its
dashboard every 0.25 s. Each test's page may talk only to that server (the ``page`` fixture checks)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from webharness import KEY, Served, start_server, wait_ready

INTERVAL_S = 0.25
DEADLINE_S = 90.0  # a bound for a loaded 2-core machine; nothing here asserts a duration
DOCS = [
    ("bees-2020", "Honeybees dance to tell the hive where the flowers grow.", {"topic": "bees", "year": 2020}),
    ("bees-2023", "A forager bee repeats the waggle dance until others follow her.", {"topic": "bees", "year": 2023}),
    ("cranes", "Cranes dance in the winter fields, leaping and bowing.", {"topic": "birds", "year": 2021}),
    ("tango", "The tango is a dance from Buenos Aires, danced in close embrace.", {"topic": "people", "year": 2019}),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("web-search") / "data"
    with start_server(data, real_embedder, keys=KEY, server={"dashboard_interval_s": INTERVAL_S}) as s, \
            httpx.Client(base_url=s.url, headers=s.headers, timeout=120) as client:
        for doc_id, text, metadata in DOCS:
            body = {"doc_id": doc_id, "text": text, "title": doc_id.title(), "metadata": metadata}
            assert client.post("/v1/documents", json=body).status_code == 201
        yield s


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, headers=served.headers, timeout=120) as c:
        yield c


def open_page(page: Any, served: Served, hash_: str) -> None:
    """Open a page of the app and answer the key prompt the first /v1 call brings up."""
    page.goto(f"{served.url}/{hash_}")
    page.fill("#api-key", KEY)
    page.press("#api-key", "Enter")
    wait_ready(page)


def until(read: Any, check: Any, what: str) -> Any:
    """Poll ``read()`` until ``check(value)``; fails naming ``what`` after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = read()
        if check(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; last value: {value!r}")
        time.sleep(0.1)


def result_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all(".search-results li.hit", "items => items.map(i => i.dataset.docId)")


def search(page: Any) -> None:
    page.click(".search-form button[type=submit]")
    page.wait_for_selector(".search-form button[type=submit]:enabled")


def test_search_with_a_filter_built_in_the_builder(served: Served, page: Any, shot: Any) -> None:
    open_page(page, served, "#/search")
    page.fill("#search-q", "dance")
    assert page.is_visible("#search-alpha")  # hybrid by default: alpha shown
    search(page)
    assert sorted(result_ids(page)) == sorted(d[0] for d in DOCS)

    page.fill(".filter-row .filter-field", "topic")
    page.fill(".filter-row .filter-value", "bees")
    search(page)
    assert sorted(result_ids(page)) == ["bees-2020", "bees-2023"]
    page.click("text=+ Add condition")
    row = page.locator(".filter-row").nth(1)
    row.locator(".filter-field").fill("year")
    row.locator(".filter-op").select_option("$gte")
    row.locator(".filter-value").fill("2022")
    search(page)
    assert result_ids(page) == ["bees-2023"]  # both conditions, under $and
    hit = page.locator("li.hit").first
    stages = hit.locator(".hit-scores li").evaluate_all("items => items.map(i => i.dataset.stage)")
    assert {"dense", "keyword", "fused"} <= set(stages)
    assert "ms" in page.inner_text(".search-summary")  # the timings
    shot(page, "search-results")

    page.check("#filter-raw")  # the rows as JSON, then a filter the server refuses
    assert json.loads(page.input_value("#filter-json")) == {
        "$and": [{"topic": {"$eq": "bees"}}, {"year": {"$gte": 2022}}]}
    page.fill("#filter-json", '{"year": {"$regex": "20.."}}')
    search(page)
    page.wait_for_selector(".search-error:visible")
    message = page.inner_text(".search-error")
    assert "refused" in message and "$regex" in message
    assert result_ids(page) == []

    page.select_option("#search-mode", "keyword")
    assert page.is_hidden("#search-alpha")  # alpha only for hybrid
    assert unlabelled(page) == []


UNLABELLED = """() => [...document.querySelectorAll('main input, main select, main textarea, main button')]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
  .map(el => el.outerHTML.slice(0, 80))"""


def unlabelled(page: Any) -> list[str]:
    """Controls of the page with no label, aria-label or text: a keyboard or screen-reader user could not tell them."""
    assert page.locator("main input, main select").count() >= 1
    found: list[str] = page.evaluate(UNLABELLED)
    return found


FILTER_CASES = """async () => {
  const {buildFilter, rowsOf, parseValue} = await import('/app/js/pages/search.js');
  const rows = (...r) => r.map(([field, op, value]) => ({field, op, value}));
  const attempt = (f) => { try { return f(); } catch (e) { return 'error: ' + e.message; } };
  return {
    values: ['2020', 'true', 'drama', '"2020"', '[1, "a"]', '{"a": 1}', ' x '].map(parseValue),
    single: buildFilter(rows(['genre', '$eq', 'drama'])),
    list: buildFilter(rows(['genre', '$in', 'drama, comedy, 7'], ['year', '$exists', 'false'])),
    jsonList: buildFilter(rows(['tags', '$nin', '["a,b", "c"]'])),
    blankRows: buildFilter(rows(['', '$eq', ''])),
    noValue: attempt(() => buildFilter(rows(['year', '$gt', '  ']))),
    noField: attempt(() => buildFilter(rows(['', '$eq', 'x']))),
    back: rowsOf({$and: [{genre: {$in: ['drama', 7]}}, {year: {$gte: 2020}}, {draft: false}]}),
    implicit: rowsOf({genre: 'drama', year: {$lt: 2000, $gt: 1990}}),
    notRows: [rowsOf({$or: [{a: 1}]}), rowsOf({a: {$regex: 'x'}}), rowsOf([1])],
  };
}"""


def test_filter_builder_conversions(served: Served, page: Any) -> None:
    open_page(page, served, "#/search")
    got = page.evaluate(FILTER_CASES)
    assert got["values"] == [2020, True, "drama", "2020", [1, "a"], '{"a": 1}', "x"]
    assert got["single"] == {"genre": {"$eq": "drama"}}
    assert got["list"] == {"$and": [{"genre": {"$in": ["drama", "comedy", 7]}}, {"year": {"$exists": False}}]}
    assert got["jsonList"] == {"tags": {"$nin": ["a,b", "c"]}}
    assert got["blankRows"] is None
    assert got["noValue"] == 'error: The filter on "year" needs a value.'
    assert got["noField"].startswith("error: A filter row has a value but no field")
    assert got["back"] == [{"field": "genre", "op": "$in", "value": "drama, 7"},
                           {"field": "year", "op": "$gte", "value": "2020"},
                           {"field": "draft", "op": "$eq", "value": "false"}]
    assert got["implicit"] == [{"field": "genre", "op": "$eq", "value": "drama"},
                               {"field": "year", "op": "$lt", "value": "2000"},
                               {"field": "year", "op": "$gt", "value": "1990"}]
    assert got["notRows"] == [None, None, None]


def test_feedback_is_recorded_and_a_result_opens_its_source(served: Served, page: Any, shot: Any,
                                                            client: httpx.Client) -> None:
    open_page(page, served, "#/search")
    page.fill("#search-q", "waggle dance forager")
    page.select_option("#search-mode", "keyword")
    search(page)
    first = page.locator("li.hit").first
    chunk_id = int(first.get_attribute("data-chunk-id"))
    first.locator("button.vote[data-relevant=true]").click()
    page.wait_for_selector("li.hit >> nth=0 >> .feedback-state:has-text('Recorded')")
    assert first.get_attribute("data-feedback") == "relevant"
    assert first.locator("button.vote[data-relevant=true]").get_attribute("aria-pressed") == "true"
    stored = client.get("/v1/feedback").json()["feedback"]
    assert any(f["chunk_id"] == chunk_id and f["relevant"] and f["query"] == "waggle dance forager" for f in stored)
    first.locator("button.hit-title").click()  # the source opens beside the results, the chunk marked
    page.wait_for_selector("#source-panel mark.quote")
    assert "waggle dance" in page.inner_text("#source-panel mark.quote")
    shot(page, "search-feedback")


def chart_points(page: Any, chart: str) -> dict[str, list[list[float]]]:
    data: dict[str, list[list[float]]] = json.loads(page.get_attribute(f'[data-chart="{chart}"]', "data-points"))
    return data


def test_dashboard_charts_move_after_a_burst(served: Served, page: Any, shot: Any, client: httpx.Client) -> None:
    open_page(page, served, "#/dashboard")
    before = until(lambda: chart_points(page, "rps").get("requests/s", []), lambda s: len(s) >= 2,
                   "the first dashboard points")
    last_t = before[-1][0]
    for i in range(50):
        assert client.post("/v1/search", json={"query": f"dance {i}", "mode": "keyword"}).status_code == 200
    burst_end = time.time()
    after = until(lambda: chart_points(page, "rps")["requests/s"], lambda s: s[-1][0] > burst_end + INTERVAL_S,
                  "a point after the burst")
    # the series rose: the area under requests/s since the last point before the burst holds its 50 searches
    area, previous = 0.0, None
    for t, v in after:
        if t > last_t:
            area += v * (t - previous if previous is not None else INTERVAL_S)
        previous = t
    assert area >= 49.5, after
    assert max(v for t, v in after if t > last_t) > 0
    points = client.get("/v1/dashboard", params={"since": last_t}).json()["points"]
    assert sum(p["requests"] for p in points) >= 50
    assert "keyword" in chart_points(page, "search")  # a line per search stage
    p95 = chart_points(page, "search")["keyword"]
    page.select_option("#dash-quantile", "p50")  # the stage charts switch to the median
    assert page.inner_text('[data-chart="search"] figcaption') == "Search stages, p50"
    p50 = chart_points(page, "search")["keyword"]
    high = {t: v for t, v in p95 if v is not None}  # matched by time: new points may arrive in between
    assert all(v <= high[t] for t, v in p50 if v is not None and t in high)
    assert any(a[1] is not None for a in p50)
    labels = page.eval_on_selector_all('[data-chart] svg', "svgs => svgs.map(s => s.getAttribute('aria-label'))")
    assert len(labels) == 8 and labels[0].startswith("Requests per second: requests/s ")  # charts are named

    for _ in range(25):  # failures (a bad filter) push the error rate out of its band
        client.post("/v1/search", json={"query": "dance", "filter": {"year": {"$regex": "x"}}})
    page.wait_for_selector('.dash-alerts li[data-figure="error_rate"]')
    assert page.is_visible(".dash-alerts")
    rows = page.eval_on_selector_all(".dash-namespaces tbody tr", "rows => rows.map(r => r.innerText)")
    assert any("4" in r for r in rows), rows  # the default namespace holds the four documents
    shot(page, "dashboard")
    page.emulate_media(color_scheme="dark")  # the charts follow the system's dark theme
    shot(page, "dashboard-dark")


def test_dashboard_asks_for_the_key_once_then_waits_for_retry(served: Served, page: Any) -> None:
    page.goto(f"{served.url}/#/dashboard")
    page.click("dialog.modal button:has-text('Cancel')")
    page.wait_for_selector(".page-dashboard .notice.error:has-text('needs an API key')")
    page.click(".page-dashboard .notice.error button:has-text('Retry')")
    page.fill("#api-key", KEY)
    page.press("#api-key", "Enter")
    page.wait_for_selector('[data-chart="rps"] .chart-legend .legend-value')
    assert page.is_hidden(".page-dashboard .notice.error")


def test_settings_show_effective_values_and_no_secret(served: Served, page: Any, shot: Any) -> None:
    open_page(page, served, "#/settings")
    page.wait_for_selector('[data-setting="server.dashboard_interval_s"]')
    assert page.inner_text('[data-setting="server.dashboard_interval_s"] td') == str(INTERVAL_S)
    assert page.inner_text('[data-setting="generate.model"] td') == "smollm2-135m"
    assert page.inner_text('[data-setting="server.api_keys"] td') == "set (hidden)"
    assert "asks for an API key" in page.inner_text(".settings-key")
    assert str(served.data.resolve()) in page.inner_text(".settings-datadir")
    assert KEY not in page.content()
    page.fill("#settings-filter", "alpha")
    assert page.is_visible('[data-setting="search.alpha"]') and page.is_hidden('[data-setting="generate.model"]')
    page.fill("#settings-filter", "")
    assert unlabelled(page) == []
    shot(page, "settings")


def test_phone_width(served: Served, page: Any, shot: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    open_page(page, served, "#/search")
    page.fill("#search-q", "dance")
    page.fill(".filter-row .filter-field", "topic")
    page.fill(".filter-row .filter-value", "bees")
    search(page)
    assert len(result_ids(page)) == 2
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    shot(page, "phone-search")
    page.click('nav a[data-page="dashboard"]')
    page.wait_for_selector('[data-chart="rps"] svg')
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "phone-dashboard")
