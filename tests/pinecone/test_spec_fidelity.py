"""Describe and list give back what was created: a pod or byoc spec is not turned into serverless, and
dimension, metric, deletion protection and tags come back as sent, through the SDK against
``localrag serve`` (both API versions) and in process, across a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pinecone
import pytest

from localrag.pinecone import ApiError, Pinecone

OLD = {"Api-Key": "k", "X-Pinecone-Api-Version": "2025-01"}
POD = {"environment": "us-east1-gcp", "pod_type": "p1.x2", "replicas": 2, "shards": 1}


def check_pod(model: Any) -> None:
    """The SDK's own model of a described index (10.x deployment and the 9.x spec view)."""
    assert model.dimension == 3 and model.metric == "euclidean"
    assert model.deletion_protection == "enabled" and dict(model.tags) == {"team": "search"}
    assert model.spec.serverless is None
    pod = model.spec.pod
    assert (pod.environment, pod.pod_type, pod.replicas, pod.shards, pod.pods) == ("us-east1-gcp", "p1.x2", 2, 1, 2)
    assert type(model.deployment).__name__ == "PodDeployment" and model.deployment.pod_type == "p1.x2"


@pytest.mark.server
def test_sdk_against_the_server(sdk: Any, server_url: str) -> None:
    sdk.create_index(name="pods", dimension=3, metric="euclidean", spec=pinecone.PodSpec(**POD),
                     deletion_protection="enabled", tags={"team": "search"})
    check_pod(sdk.describe_index("pods"))
    check_pod(next(i for i in sdk.list_indexes() if i.name == "pods"))
    old = httpx.get(f"{server_url}/indexes/pods", headers=OLD).json()
    assert old["spec"] == {"pod": {**POD, "pods": 2}}
    assert (old["dimension"], old["metric"], old["deletion_protection"], old["tags"]) == \
        (3, "euclidean", "enabled", {"team": "search"})
    sdk.create_index(name="byoc", dimension=2, spec=pinecone.ByocSpec(environment="aws-us-east-1-b921"))
    assert sdk.describe_index("byoc").spec.byoc.environment == "aws-us-east-1-b921"
    sdk.create_index(name="west", dimension=2, spec=pinecone.ServerlessSpec(cloud="gcp", region="europe-west4"))
    west = sdk.describe_index("west")
    assert (west.deployment.cloud, west.deployment.region, west.spec.pod) == ("gcp", "europe-west4", None)
    # the older API's create body, with a pod spec, keeps it too
    created = httpx.post(f"{server_url}/indexes", headers=OLD,
                         json={"name": "legacy-pod", "dimension": 2, "metric": "dotproduct",
                               "spec": {"pod": {"environment": "eu-west1-gcp", "pod_type": "s1.x1"}}})
    assert created.status_code == 201, created.text
    assert created.json()["spec"] == {"pod": {"environment": "eu-west1-gcp", "pod_type": "s1.x1", "replicas": 1,
                                              "shards": 1, "pods": 1}}
    refused = httpx.post(f"{server_url}/indexes", headers=OLD,
                         json={"name": "no-env", "dimension": 2, "spec": {"pod": {"pod_type": "p1.x1"}}})
    assert refused.status_code == 400 and "environment" in refused.json()["error"]["message"]
    assert "no-env" not in sdk.list_indexes().names()
    sdk.configure_index("pods", deletion_protection="disabled")
    for name in ("pods", "byoc", "west", "legacy-pod"):
        sdk.delete_index(name, timeout=-1)


def test_in_process_and_after_a_restart(tmp_path: Path) -> None:
    pc = Pinecone(path=tmp_path)
    pc.create_index(name="pods", dimension=3, metric="euclidean", spec=pinecone.PodSpec(**POD),
                    deletion_protection="enabled", tags={"team": "search"})
    pc.create_index(name="dict-pod", dimension=2, spec={"pod": {"environment": "us-west1-gcp", "pods": 1}})
    pc.indexes.create(name="managed", schema={"fields": {"_values": {"type": "dense_vector", "dimension": 2,
                                                                      "metric": "dotproduct"}}},
                      deployment={"deployment_type": "managed", "cloud": "azure", "region": "eastus2"})
    pc.close()
    pc = Pinecone(path=tmp_path)
    pods = pc.describe_index("pods")
    assert pods.spec == {"pod": {**POD, "pods": 2}} and pods.deployment == {"deployment_type": "pod", **POD}
    assert (pods.dimension, pods.metric, pods.deletion_protection, pods.tags) == \
        (3, "euclidean", "enabled", {"team": "search"})
    assert pc.describe_index("dict-pod").spec["pod"]["environment"] == "us-west1-gcp"
    managed = pc.describe_index("managed")
    assert managed.spec == {"serverless": {"cloud": "azure", "region": "eastus2"}} and managed.metric == "dotproduct"
    assert {i.name: i.spec for i in pc.list_indexes()}["pods"] == pods.spec
    with pytest.raises(ApiError) as refused:
        pc.create_index(name="bad", dimension=2, spec={"pod": {"environment": "x", "replicas": 0}})
    assert "replicas" in str(refused.value)
    pc.close()

