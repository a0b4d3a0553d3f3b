"""Retries for hosted Pinecone calls: bounded, jittered exponential backoff on 429, 5xx and timeouts.

The SDK's own retries are turned off where the hosted index is opened (``hosted_docs.connect``), so
this policy is the only one: one place decides how long a replica waits, and tests drive it with an
injected ``sleep`` and random source instead of the wall clock. What is still failing after the last
attempt is mapped onto localrag's error hierarchy: 429 -> ``RateLimitedError``, 503 ->
``OverloadedError``, a timeout -> ``HostedTimeoutError``, anything else -> ``RemoteIndexError``;
a 4xx other than 429 is not retried (the request itself is wrong) and keeps its meaning
(400 -> ``InvalidInputError``, 404 -> ``NotFoundError``, 401/403 -> ``UnauthorizedError``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from localrag.errors import (
    InvalidInputError,
    LocalRagError,
    NotFoundError,
    OverloadedError,
    RateLimitedError,
    UnauthorizedError,
)
from localrag.pinecone.remote import RemoteIndexError

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class HostedTimeoutError(RemoteIndexError):
    """A hosted call did not answer within ``vector.timeout_s``, every time it was tried."""

    http_status = 504
    grpc_code = 4  # DEADLINE_EXCEEDED


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; before try n+1 it waits uniform(0, min(cap, base * 2**n)) ("full jitter")."""

    attempts: int = 5
    base_s: float = 0.25
    cap_s: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    uniform: Callable[[float, float], float] = field(default=random.uniform, compare=False)

    def delay(self, retry: int) -> float:
        return self.uniform(0.0, min(self.cap_s, self.base_s * (2 ** retry)))


def status_of(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None) or getattr(error, "status", None)
    return int(status) if isinstance(status, int) else None


def is_timeout(error: BaseException) -> bool:
    # PineconeTimeoutError subclasses TimeoutError; urllib3/httpx timeouts name themselves so.
    return isinstance(error, TimeoutError) or "timeout" in type(error).__name__.lower()


def _retryable(error: BaseException) -> bool:
    if is_timeout(error):
        return True
    status = status_of(error)
    if status is not None:
        return status in RETRY_STATUSES
    return "connection" in type(error).__name__.lower()  # the SDK's PineconeConnectionError: a reset, a refusal


def mapped(error: BaseException, what: str) -> LocalRagError:
    """The localrag error for a hosted failure ``error`` of the call ``what``."""
    if isinstance(error, LocalRagError):
        return error
    status = status_of(error)
    message = f"Pinecone {what} failed: {error}"
    if is_timeout(error):
        return HostedTimeoutError(f"Pinecone {what} timed out: {error}")
    if status == 429:
        return RateLimitedError(message)
    if status == 503:
        return OverloadedError(message)
    if status == 404:
        return NotFoundError(message)
    if status in (401, 403):
        return UnauthorizedError(message)
    if status is not None and 400 <= status < 500:
        return InvalidInputError(message)
    return RemoteIndexError(message)


def call(policy: RetryPolicy, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, retried under ``policy``; a final failure raised as a localrag error."""
    for attempt in range(max(1, policy.attempts)):
        try:
            return fn(*args, **kwargs)
        except LocalRagError:
            raise
        except Exception as e:  # the SDK's ApiError family, its timeout and connection errors
            if not _retryable(e) or attempt + 1 >= policy.attempts:
                raise mapped(e, what) from e
            wait = policy.delay(attempt)
            log.info("Pinecone %s failed (%s); retry %d of %d in %.2f s", what, status_of(e) or type(e).__name__,
                     attempt + 1, policy.attempts - 1, wait)
            policy.sleep(wait)
    raise AssertionError("unreachable")  # the loop returns or raises
