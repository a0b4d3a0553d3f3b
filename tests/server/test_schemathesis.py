"""The OpenAPI contract, checked by schemathesis (its ``st`` CLI, every check) against the real server.

The server runs in this process on 127.0.0.1 with API keys, the fake embedder and the extractive
answer provider; ``st`` runs as a subprocess against it and writes its JSON report to tmp_path.
A run must find no server error, no undocumented status code or content type, no schema-valid
request refused and no schema-violating request accepted. Two exceptions are configured per
operation, because a schema cannot state them: an upload must be a readable document (the
fuzzer's random bytes are refused with 400), and Pinecone's vector operations need vectors of
the index's own dimension (and page tokens the server issued).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rag_serving import BEES, KEY, TIDES, extractive_settings, running_server

from localrag.engine import LocalRAG

pytestmark = [pytest.mark.server, pytest.mark.slow]

LLM_PATHS = r"^/v1/(ask|chat/)"
_DATA_PLANE_DIMENSION = ["/data/{index_name}/vectors/upsert", "/data/{index_name}/query",
                         "/data/{index_name}/vectors/update", "/data/{index_name}/vectors/list",
                         "/data/{index_name}/vectors/fetch_by_metadata", "/data/{index_name}/namespaces",
                         # document operations: which fields a document needs depends on the index's schema
                         *[f"/data/{{index_name}}/namespaces/{{namespace}}/documents/{op}"
                           for op in ("upsert", "search", "fetch", "delete", "update", "list")]]
CONFIG = "\n".join([
    "[[operations]]", 'include-path = "/v1/documents"', 'include-method = "POST"',
    "checks.positive_data_acceptance.expected-statuses = "
    '["2xx", "400", "401", "403", "404", "409", "429"]',
    *[line for path in _DATA_PLANE_DIMENSION for line in (
        "[[operations]]", f'include-path = "{path}"',
        "checks.positive_data_acceptance.expected-statuses = "
        '["2xx", "400", "401", "403", "404", "409", "429"]')],
])


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from fakes import HashingEmbedder

    data = tmp_path_factory.mktemp("contract") / "data"
    settings = extractive_settings(api_keys=KEY, metrics_flush_s=0, llm_queue_size=64)
    with LocalRAG(data, settings=settings, embedder=HashingEmbedder()) as rag:
        rag.add([BEES, TIDES])
        with running_server(data, rag=rag) as url:
            yield url


def run_st(url: str, folder: Path, *args: str) -> dict[str, Any]:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if st is None:
        pytest.skip("schemathesis's st command is not installed")
    (folder / "schemathesis.toml").write_text(CONFIG + "\n")
    report = folder / "report.json"
    cmd = [st, "--config-file", str(folder / "schemathesis.toml"), "run", f"{url}/openapi.json",
           "--checks", "all", "--seed", "1", "--generation-database", "none", "--no-color", "--workers", "2",
           "--request-timeout", "60", "--suppress-health-check", "filter_too_much",
           "--report", "json", "--report-json-path", str(report),
           "-H", f"Authorization: Bearer {KEY}", "-H", f"Api-Key: {KEY}", *args]
    done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-3000:]
    return json.loads(report.read_text())


def cases(report: dict[str, Any]) -> int:
    counts = report["test_cases"]
    assert counts["with_failures"] == 0 and counts["errored"] == 0, json.dumps(report)[:5000]
    print(f"schemathesis: {counts['generated']} cases generated")  # shown with -s / -rP
    return int(counts["generated"])


def test_every_route_but_the_llm_ones_keeps_its_contract(server_url: str, tmp_path: Path) -> None:
    report = run_st(server_url, tmp_path, "--exclude-path-regex", LLM_PATHS, "--max-examples", "40",
                    "--phases", "examples,coverage,fuzzing,stateful")
    assert cases(report) >= 2000


def test_the_llm_routes_keep_their_contract(server_url: str, tmp_path: Path) -> None:
    report = run_st(server_url, tmp_path, "--include-path-regex", LLM_PATHS, "--max-examples", "6",
                    "--phases", "examples,coverage,fuzzing")
    assert cases(report) >= 200
