"""Waiting on a condition in tests: poll it for up to a minute, never sleep a fixed time.

A slow, loaded machine only makes a test slower; the condition, not the clock, decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable

TIMEOUT_S = 60.0


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.05)  # a polling interval, not synchronisation: the condition decides
