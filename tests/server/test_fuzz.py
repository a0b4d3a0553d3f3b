"""Schemathesis fuzzing of the OpenAPI schema against the real server: no 5xx, no crash.

The default run covers the RAG API with a few cases per operation; the slow variant covers
every operation (the Pinecone routes too) with many more.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from rag_serving import BEES, TIDES, extractive_settings, running_server  # noqa: E402

from localrag.engine import LocalRAG  # noqa: E402

pytestmark = pytest.mark.server
RAG_PATHS = r"^/(v1/|healthz|readyz|metrics)"
SUPPRESS = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from fakes import HashingEmbedder

    data = tmp_path_factory.mktemp("fuzz") / "data"
    rag = LocalRAG(data, settings=extractive_settings(), embedder=HashingEmbedder())
    rag.add([BEES, TIDES])
    with running_server(data, rag=rag) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")
    rag.close()


schema = schemathesis.pytest.from_fixture("api_schema")


def no_server_error(case: Any) -> None:
    response = case.call(timeout=60)
    assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text[:500])


@schema.include(path_regex=RAG_PATHS).parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=SUPPRESS, database=None)
def test_rag_api_never_answers_5xx(case: Any) -> None:
    no_server_error(case)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=SUPPRESS, database=None)
def test_every_operation_never_answers_5xx(case: Any) -> None:
    no_server_error(case)
