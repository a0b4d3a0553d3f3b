"""``localrag serve`` through the official SDK: limits and their exact error shapes, auth, API
versions, camelCase/snake_case bodies, namespaces, sparse indexes, persistence and SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pinecone
import pytest
from serving import free_port, running_server, sdk_client

from localrag.errors import ConfigError
from localrag.pinecone.server import serve

pytestmark = pytest.mark.server
HEADERS = {"Api-Key": "k", "X-Pinecone-Api-Version": "2025-01"}


def data_error(exc: Any, message_part: str) -> None:
    assert exc.status_code == 400
    assert set(exc.body) == {"code", "message", "details"}
    assert exc.body["code"] == 3 and exc.body["details"] == []
    assert message_part in exc.body["message"], exc.body


@pytest.fixture
def index(sdk: Any) -> Any:
    name = f"lim-{random.randrange(10**9)}"
    sdk.create_index(name=name, dimension=4, metric="cosine")
    idx = sdk.Index(name)
    idx.upsert(vectors=[("keep", [1.0, 0, 0, 0], {"genre": "a"})], namespace="ns")
    yield idx
    sdk.delete_index(name, timeout=-1)


def unchanged(idx: Any) -> None:
    """A refused request must leave the index exactly as it was."""
    assert idx.describe_index_stats().total_vector_count == 1
    kept = idx.fetch(ids=["keep"], namespace="ns").vectors["keep"]
    assert kept.values == [1.0, 0, 0, 0] and kept.metadata == {"genre": "a"}


def test_upsert_over_1000_vectors(index: Any) -> None:
    with pytest.raises(pinecone.ApiError) as info:
        index.upsert(vectors=[(f"v{i}", [0.1, 0.2, 0.3, 0.4]) for i in range(1001)], namespace="ns")
    data_error(info.value, "1000")
    index.upsert(vectors=[(f"v{i}", [0.1, 0.2, 0.3, 0.4]) for i in range(1000)], namespace="ns2")
    assert index.describe_index_stats().namespaces["ns2"].vector_count == 1000
    index.delete(delete_all=True, namespace="ns2")
    unchanged(index)


def test_upsert_over_2mb(index: Any) -> None:
    big = [(f"v{i}", [0.123456789] * 4, {"text": "x" * 30_000}) for i in range(80)]
    with pytest.raises(pinecone.ApiError) as info:
        index.upsert(vectors=big, namespace="ns")
    data_error(info.value, "exceeds the maximum supported size of 2MB")
    unchanged(index)


def test_metadata_over_40kb_and_null_and_dimension(index: Any) -> None:
    with pytest.raises(pinecone.ApiError) as info:
        index.upsert(vectors=[("m", [1, 2, 3, 4], {"text": "y" * 41_000})], namespace="ns")
    data_error(info.value, "exceeds the limit of 40960 bytes")
    index.upsert(vectors=[("m", [1, 2, 3, 4], {"text": "y" * 40_000})], namespace="ns3")  # under the limit
    with pytest.raises(pinecone.ApiError) as info:
        index.upsert(vectors=[("n", [1, 2, 3, 4], {"genre": None})], namespace="ns")
    data_error(info.value, "got 'null' for field 'genre'")
    with pytest.raises(pinecone.ApiError) as info:
        index.upsert(vectors=[("keep", [1, 2, 3])], namespace="ns")
    data_error(info.value, "Vector dimension 3 does not match the dimension of the index 4")
    with pytest.raises(pinecone.ApiError) as info:
        index.update(id="keep", values=[1.0] * 5, namespace="ns")
    data_error(info.value, "Vector dimension 5")
    with pytest.raises(pinecone.ApiError) as info:
        index.query(vector=[1.0] * 5, top_k=1, namespace="ns")
    data_error(info.value, "Vector dimension 5")
    index.delete(delete_all=True, namespace="ns3")
    unchanged(index)


def test_top_k_and_id_counts(index: Any, server_url: str) -> None:
    with pytest.raises(ValueError):  # the SDK checks top_k itself; the server does too
        index.query(vector=[1.0] * 4, top_k=10_001, namespace="ns")
    raw = httpx.post(f"{index.host}/query", json={"topK": 10_001, "vector": [1.0] * 4}, headers=HEADERS)
    assert raw.status_code == 400 and raw.json()["code"] == 3 and raw.json()["details"] == []
    assert len(index.query(vector=[1.0] * 4, top_k=10_000, namespace="ns").matches) == 1
    with pytest.raises(pinecone.ApiError) as info:
        index.fetch(ids=[f"i{n}" for n in range(1001)], namespace="ns")
    data_error(info.value, "1000")
    assert index.fetch(ids=[f"i{n}" for n in range(999)] + ["keep"], namespace="ns").vectors.keys() == {"keep"}
    with pytest.raises(pinecone.ApiError) as info:
        index.delete(ids=[f"i{n}" for n in range(1001)], namespace="ns")
    data_error(info.value, "1000")
    unchanged(index)


def test_dimension_limit_on_create(sdk: Any) -> None:
    with pytest.raises(pinecone.ApiError) as info:
        sdk.create_index(name="too-wide", dimension=20_001, metric="cosine")
    assert info.value.status_code == 400
    assert info.value.body["status"] == 400 and info.value.body["error"]["code"] == "INVALID_ARGUMENT"
    assert "20000" in info.value.body["error"]["message"]
    assert not sdk.has_index("too-wide")
    sdk.create_index(name="widest", dimension=20_000, metric="cosine")
    assert sdk.describe_index("widest").dimension == 20_000
    sdk.delete_index("widest", timeout=-1)


def test_control_plane_errors(sdk: Any) -> None:
    with pytest.raises(pinecone.NotFoundError) as info:
        sdk.describe_index("missing")
    assert info.value.body == {"error": {"code": "NOT_FOUND", "message": "Resource missing not found"}, "status": 404}
    sdk.create_index(name="twice", dimension=2, metric="dotproduct")
    with pytest.raises(pinecone.ConflictError) as conflict:
        sdk.create_index(name="twice", dimension=2, metric="dotproduct")
    assert conflict.value.body["error"]["code"] == "ALREADY_EXISTS" and conflict.value.body["status"] == 409
    sdk.configure_index("twice", deletion_protection="enabled")
    with pytest.raises(pinecone.ForbiddenError):
        sdk.delete_index("twice", timeout=-1)
    sdk.configure_index("twice", deletion_protection="disabled")
    sdk.delete_index("twice")
    assert not sdk.has_index("twice")


def test_api_versions_and_snake_case(sdk: Any, server_url: str) -> None:
    sdk.create_index(name="versions", dimension=2, metric="dotproduct")
    old = httpx.get(f"{server_url}/indexes/versions", headers=HEADERS).json()
    assert old["dimension"] == 2 and old["spec"] == {"serverless": {"cloud": "aws", "region": "us-east-1"}}
    new = httpx.get(f"{server_url}/indexes/versions", headers={**HEADERS, "X-Pinecone-Api-Version": "2026-07"}).json()
    assert new["schema"]["fields"]["_values"] == {"type": "dense_vector", "dimension": 2, "metric": "dotproduct"}
    bad = httpx.get(f"{server_url}/indexes/versions", headers={**HEADERS, "X-Pinecone-Api-Version": "1999-01"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_ARGUMENT"
    host = old["host"]
    snake = httpx.post(f"{host}/vectors/upsert", headers=HEADERS,
                       json={"vectors": [{"id": "s", "values": [1, 2], "sparse_values": {"indices": [3], "values": [1]},
                                          "metadata": {"year": 2020}}]})
    assert snake.json() == {"upsertedCount": 1}
    found = httpx.post(f"{host}/query", headers=HEADERS,
                       json={"top_k": 1, "vector": [1, 1], "include_metadata": True, "include_values": True}).json()
    assert found["matches"][0]["metadata"] == {"year": 2020.0} and found["matches"][0]["values"] == [1.0, 2.0]
    assert found["matches"][0]["sparseValues"] == {"indices": [3], "values": [1.0]}
    stats_old = httpx.post(f"{host}/describe_index_stats", headers=HEADERS, json={}).json()
    stats_new = httpx.post(f"{host}/describe_index_stats", json={},
                           headers={**HEADERS, "X-Pinecone-Api-Version": "2026-07"}).json()
    assert stats_old["namespaces"] == {"": {"vectorCount": 1}} and stats_old["totalVectorCount"] == 1
    assert stats_new["namespaces"] == {"__default__": {"vectorCount": 1}}
    sdk.delete_index("versions", timeout=-1)


def test_auth(tmp_path: Path) -> None:
    with running_server(tmp_path / "auth", api_keys=["s3cret"]) as url:
        with pytest.raises(pinecone.UnauthorizedError) as info:
            sdk_client(url, api_key="wrong").list_indexes()
        assert info.value.body == {"error": {"code": "UNAUTHENTICATED", "message": "Invalid API Key"}, "status": 401}
        good = sdk_client(url, api_key="s3cret")
        good.create_index(name="guarded", dimension=2, metric="cosine")
        host = good.describe_index("guarded").host
        assert httpx.post(f"{host}/query", json={"topK": 1, "vector": [1, 0]}).status_code == 401
        with pytest.raises(pinecone.UnauthorizedError):
            pinecone.Index(host=host, api_key="wrong").describe_index_stats()
        assert good.Index("guarded").describe_index_stats().total_vector_count == 0
    with pytest.raises(ConfigError, match="without an API key"):
        serve(tmp_path / "open", host="0.0.0.0", port=free_port())


def test_namespaces_and_sparse(sdk: Any) -> None:
    sdk.create_index(name="nsx", dimension=2, metric="dotproduct")
    idx = sdk.Index("nsx")
    assert idx.create_namespace(name="made").record_count == 0
    with pytest.raises(pinecone.ConflictError):
        idx.create_namespace(name="made")
    idx.upsert(vectors=[("a", [1, 0]), ("b", [0, 1])], namespace="used")
    names = [n.name for page in idx.list_namespaces() for n in page.namespaces]
    assert names == ["made", "used"]
    assert idx.describe_namespace(name="used").record_count == 2
    idx.delete_namespace(name="made")
    with pytest.raises(pinecone.NotFoundError):
        idx.describe_namespace(name="made")
    idx.delete(ids=["a", "never-there"], namespace="used")  # a missing id is not an error
    assert list(idx.fetch(ids=["a", "b"], namespace="used").vectors) == ["b"]
    sdk.create_index(name="sparse", vector_type="sparse", metric="dotproduct")
    sp = sdk.Index("sparse")
    sp.upsert(vectors=[{"id": "x", "sparse_values": {"indices": [1, 7], "values": [0.5, 2.0]}},
                       {"id": "y", "sparse_values": {"indices": [2], "values": [1.0]}}])
    hits = sp.query(top_k=5, sparse_vector={"indices": [7, 9], "values": [1.0, 1.0]}).matches
    assert [(h.id, h.score) for h in hits] == [("x", 2.0)]
    with pytest.raises(pinecone.ApiError):
        sp.upsert(vectors=[("dense", [1.0, 2.0])])
    for name in ("nsx", "sparse"):
        sdk.delete_index(name, timeout=-1)


def test_data_survives_a_restart(tmp_path: Path) -> None:
    with running_server(tmp_path) as url:
        pc = sdk_client(url)
        pc.create_index(name="durable", dimension=3, metric="euclidean")
        pc.Index("durable").upsert(vectors=[("a", [1, 2, 3], {"k": "v"}), ("b", [0, 0, 1])], namespace="n")
        pc.Index("durable").update(id="b", set_metadata={"x": True}, namespace="n")
    with running_server(tmp_path) as url:
        idx = sdk_client(url).Index("durable")
        got = idx.fetch(ids=["a", "b"], namespace="n").vectors
        assert got["a"].values == [1.0, 2.0, 3.0] and got["a"].metadata == {"k": "v"}
        assert got["b"].metadata == {"x": True}
        top = idx.query(vector=[0, 0, 1], top_k=2, namespace="n").matches
        assert [(m.id, m.score) for m in top] == [("b", 0.0), ("a", pytest.approx(9.0))]


def test_sigkill_mid_upsert_loses_no_acknowledged_vector(tmp_path: Path) -> None:
    rng = random.Random(5)
    acknowledged: list[str] = []
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for run in range(3):
        port = free_port()
        script = Path(__file__).parent / "server_child.py"
        child = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(port)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{url}/indexes", headers=HEADERS, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        pc = sdk_client(url)
        if not pc.has_index("crash"):
            pc.create_index(name="crash", dimension=8, metric="cosine")
        idx = pc.Index("crash")
        stop = threading.Event()

        def writer(idx: Any = idx, run: int = run, stop: threading.Event = stop) -> None:
            batch = 0
            while not stop.is_set():
                ids = [f"r{run}-b{batch}-{i}" for i in range(100)]
                try:
                    idx.upsert(vectors=[(i, [float(len(i))] + [1.0] * 7) for i in ids])
                except Exception:
                    return  # the server died mid-request: this batch was never acknowledged
                acknowledged.extend(ids)
                batch += 1

        # A daemon: after the kill its request retries against a dead port; nothing it does
        # afterwards can be acknowledged, so the test does not wait for it.
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        time.sleep(rng.uniform(0.5, 1.5))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        stop.set()
        assert child.returncode == -signal.SIGKILL
    with running_server(tmp_path) as url:
        idx = sdk_client(url).Index("crash")
        assert len(acknowledged) > 300, "too few batches landed before the kills to test anything"
        stored = idx.describe_index_stats().total_vector_count
        assert stored >= len(acknowledged)
        for start in range(0, len(acknowledged), 1000):
            ids = acknowledged[start:start + 1000]
            got = idx.fetch(ids=ids).vectors
            assert set(got) == set(ids), f"lost {len(set(ids) - set(got))} acknowledged vectors"
            assert all(got[i].values[0] == float(len(i)) for i in ids)


def test_cli_serve(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    refused = subprocess.run([sys.executable, "-m", "localrag.cli", "serve", "--data", str(tmp_path),
                              "--host", "0.0.0.0", "--port", str(free_port())],
                             env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "without an API key" in refused.stderr
    port = free_port()
    child = subprocess.Popen([sys.executable, "-m", "localrag.cli", "serve", "--data", str(tmp_path),
                              "--port", str(port), "--api-key", "cli-key-0123456789"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(f"{url}/indexes", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        pc = sdk_client(url, api_key="cli-key-0123456789")
        pc.create_index(name="cli", dimension=2, metric="cosine")
        assert pc.Index("cli").upsert(vectors=[("a", [1, 0])]).upserted_count == 1
        assert (tmp_path / "pinecone" / "cli" / "index.json").is_file()
    finally:
        child.terminate()
        child.wait(timeout=30)
