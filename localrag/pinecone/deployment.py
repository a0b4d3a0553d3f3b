"""Where an index was asked to run: kept as created, so describe and list give it back.

localrag runs every index the same way; the deployment is a record of the request. Two shapes
come in and both go out: the 2026-07 ``deployment`` (``deployment_type`` managed, pod or byoc)
and the older ``spec`` (``{"serverless"|"pod"|"byoc": {...}}``, or the SDK's spec objects).
One normalised dict, the 2026-07 shape, is stored in the index's config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localrag.errors import InvalidInputError

MANAGED_DEFAULT = {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"}
_POD_DEFAULTS = {"pod_type": "p1.x1", "replicas": 1, "shards": 1}


def _fields(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    # the SDK's spec classes (msgspec structs or dataclasses): read the attributes the wire has
    names = ("cloud", "region", "environment", "pod_type", "replicas", "shards", "pods")
    return {n: getattr(value, n) for n in names if getattr(value, n, None) is not None}


def _text(fields: Mapping[str, Any], key: str, what: str, default: str | None = None) -> str:
    value = fields.get(key, default)
    value = getattr(value, "value", value)  # the SDK's enums
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{what} needs a non-empty string {key!r}")
    return value


def _count(fields: Mapping[str, Any], key: str) -> int:
    value = fields.get(key, _POD_DEFAULTS[key])
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"a pod deployment's {key!r} must be a positive integer, got {value!r}")
    return value


def _typed(kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "managed":
        return {"deployment_type": "managed", "cloud": _text(fields, "cloud", "a serverless deployment", "aws"),
                "region": _text(fields, "region", "a serverless deployment", "us-east-1")}
    if kind == "pod":
        replicas, shards = _count(fields, "replicas"), _count(fields, "shards")
        pods = fields.get("pods")
        if pods not in (None, 1, replicas * shards):
            raise InvalidInputError(f"pods={pods!r} is not replicas x shards ({replicas} x {shards})")
        return {"deployment_type": "pod", "environment": _text(fields, "environment", "a pod deployment"),
                "pod_type": _text(fields, "pod_type", "a pod deployment", "p1.x1"),
                "replicas": replicas, "shards": shards}
    if kind == "byoc":
        return {"deployment_type": "byoc", "environment": _text(fields, "environment", "a byoc deployment")}
    raise InvalidInputError(f"deployment_type must be 'managed', 'pod' or 'byoc', got {kind!r}")


def deployment_of(spec: Any) -> dict[str, Any]:
    """The normalised deployment of a create request's ``spec`` or ``deployment`` (None: serverless)."""
    if spec is None:
        return dict(MANAGED_DEFAULT)
    if isinstance(spec, Mapping):
        if "deployment_type" in spec:
            return _typed(str(spec["deployment_type"]), spec)
        for key, kind in (("serverless", "managed"), ("pod", "pod"), ("byoc", "byoc")):
            if spec.get(key) is not None:
                if not isinstance(spec[key], Mapping):
                    raise InvalidInputError(f"spec.{key} must be an object")
                return _typed(kind, spec[key])
        if not spec:
            return dict(MANAGED_DEFAULT)
        if "cloud" in spec or "region" in spec:  # a bare placement, as earlier localrag clients sent it
            return _typed("managed", spec)
        raise InvalidInputError(f"spec must hold 'serverless', 'pod' or 'byoc', got {sorted(map(str, spec))}")
    name = type(spec).__name__.lower()
    kind = "pod" if "pod" in name else "byoc" if "byoc" in name else "managed"
    return _typed(kind, _fields(spec))


def legacy_spec(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The older API's ``spec`` view of a stored deployment."""
    kind = deployment.get("deployment_type")
    if kind == "pod":
        replicas, shards = int(deployment["replicas"]), int(deployment["shards"])
        return {"pod": {"environment": deployment["environment"], "pod_type": deployment["pod_type"],
                        "replicas": replicas, "shards": shards, "pods": replicas * shards}}
    if kind == "byoc":
        return {"byoc": {"environment": deployment["environment"]}}
    return {"serverless": {"cloud": deployment.get("cloud", "aws"), "region": deployment.get("region", "us-east-1")}}
