"""An ordered fallback chain of generators, with a time limit and retries per provider.

The first provider that answers wins. A provider whose model or library is not installed
(``ModelNotFoundError``, ``DependencyMissingError``) is skipped from then on, with a warning
naming what to install; one that fails transiently is retried ``retries`` times with a
short backoff, then the chain moves on. A stream falls back only until its first piece:
after that the text is committed and a failure propagates.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from localrag.errors import DependencyMissingError, InvalidInputError, ModelNotFoundError
from localrag.generate.base import GenerationError, collect
from localrag.protocols import Generator
from localrag.types import Completion, Prompt

log = logging.getLogger(__name__)

_UNAVAILABLE = (ModelNotFoundError, DependencyMissingError)


class FallbackGenerator:
    name = "chain"

    def __init__(
        self,
        providers: Sequence[Generator],
        *,
        timeout_s: float = 300.0,
        retries: int = 1,
        backoff_s: float = 0.5,
    ) -> None:
        if not providers:
            raise InvalidInputError("the generator chain needs at least one provider")
        self.providers = list(providers)
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._unavailable: dict[int, BaseException] = {}
        self._lock = threading.Lock()
        self._takes_timeout = [
            "timeout_s" in inspect.signature(p.stream).parameters for p in self.providers
        ]

    # -- the primary provider: the first one that is installed ---------------------------
    def _available(self) -> list[int]:
        with self._lock:
            return [i for i in range(len(self.providers)) if i not in self._unavailable]

    def _mark_unavailable(self, index: int, error: BaseException) -> None:
        with self._lock:
            if index not in self._unavailable:
                self._unavailable[index] = error
                name = self.providers[index].name
                log.warning("generator %r is unavailable, falling back: %s", name, error)

    def _raise_none_left(self) -> None:
        errors = "; ".join(f"{self.providers[i].name}: {e}" for i, e in self._unavailable.items())
        first = next(iter(self._unavailable.values()), None)
        if len(self._unavailable) == 1 and isinstance(first, _UNAVAILABLE):
            raise first  # a single provider: its own error (it names the package to install)
        raise GenerationError(f"no generator is available ({errors})", retryable=False)

    def _primary(self, use: str) -> Any:
        """Call ``use`` on the first available provider (marking uninstalled ones on the way)."""
        for index in self._available():
            provider = self.providers[index]
            try:
                return getattr(provider, use)
            except _UNAVAILABLE as e:
                self._mark_unavailable(index, e)
        self._raise_none_left()
        raise AssertionError("unreachable")

    @property
    def primary(self) -> Generator:
        for index in self._available():
            return self.providers[index]
        self._raise_none_left()
        raise AssertionError("unreachable")

    @property
    def model(self) -> str:
        return self.primary.model

    @property
    def context_window(self) -> int:
        return int(self._primary("context_window"))

    def count_tokens(self, text: str) -> int:
        for index in self._available():
            try:
                return self.providers[index].count_tokens(text)
            except _UNAVAILABLE as e:
                self._mark_unavailable(index, e)
        self._raise_none_left()
        raise AssertionError("unreachable")

    # -- generation --------------------------------------------------------------------
    def generate(
        self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0, stop: Sequence[str] = ()
    ) -> Completion:
        return collect(self.stream(prompt, max_tokens=max_tokens, temperature=temperature, stop=stop))

    def stream(
        self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0, stop: Sequence[str] = ()
    ) -> Iterator[str | Completion]:
        failures: list[str] = []
        for index in self._available():
            provider = self.providers[index]
            kwargs: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature, "stop": stop}
            if self._takes_timeout[index]:
                kwargs["timeout_s"] = self.timeout_s
            for attempt in range(self.retries + 1):
                started = False
                try:
                    for piece in provider.stream(prompt, **kwargs):
                        started = True
                        yield piece
                    return
                except _UNAVAILABLE as e:
                    if started:
                        raise
                    self._mark_unavailable(index, e)
                    break
                except GenerationError as e:
                    if started:
                        raise
                    failures.append(f"{provider.name}: {e}")
                    if not e.retryable or attempt == self.retries:
                        log.warning("generator %r failed, trying the next one: %s", provider.name, e)
                        break
                    log.info("generator %r failed (attempt %d), retrying: %s", provider.name, attempt + 1, e)
                    time.sleep(self.backoff_s * (2**attempt))
        if failures:
            raise GenerationError("every generator failed: " + "; ".join(failures), retryable=False)
        self._raise_none_left()
