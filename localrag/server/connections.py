"""Connection-level limits for ``localrag serve``: slow clients are timed out, and each client
address may hold only so many connections.

uvicorn closes idle keep-alive connections, but a client that sends a request's headers or
body a byte at a time holds its connection (and a task, and buffered bytes) forever. These
limits live in the HTTP protocol object, the only place that sees a connection before and
between requests:

* ``header_timeout_s``: from the connection (or the end of the previous response) to the end of
  the next request's headers; past it the connection is closed (with a 408 if part of a request
  was received).
* ``body_timeout_s``: from the end of the headers to the end of the body; past it the request
  gets 408 and the connection is closed. The application sees a disconnect.
* ``max_connections_per_ip``: connections beyond it from one address are closed at once.

Each is off at 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from localrag.config import ServerSettings
from localrag.errors import RequestTimeoutError
from localrag.server.security import Render, rag_error

log = logging.getLogger(__name__)

_WARN_EVERY_S = 10.0


class _Limits:
    def __init__(self, settings: ServerSettings, render: Render) -> None:
        self.header_timeout_s = settings.header_timeout_s
        self.body_timeout_s = settings.body_timeout_s
        self.max_per_ip = settings.max_connections_per_ip
        self.render = render
        self.open: dict[str, int] = {}
        self.refused = 0
        self._warned = 0.0

    def warn_refused(self, host: str) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._warned > _WARN_EVERY_S:  # one line per burst, not one per connection
            self._warned = now
            log.warning("refused a connection from %s: over server.max_connections_per_ip=%d (%d refused so far)",
                        host, self.max_per_ip, self.refused)


class _GuardMixin(asyncio.Protocol):
    """Mixed in before uvicorn's HTTP protocol class (httptools or h11); see the module docstring."""

    limits: _Limits

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        proto: Any = self
        self._host = proto.client[0] if proto.client else "?"
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._partial = False
        limits = self.limits
        limits.open[self._host] = limits.open.get(self._host, 0) + 1
        if limits.max_per_ip and limits.open[self._host] > limits.max_per_ip:
            limits.warn_refused(self._host)
            transport.close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        left = self.limits.open.get(self._host, 1) - 1
        if left > 0:
            self.limits.open[self._host] = left
        else:
            self.limits.open.pop(self._host, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        proto: Any = self
        before = proto.cycle
        self._partial = True
        super().data_received(data)
        cycle = proto.cycle
        if cycle is not None and cycle is not before:  # a request's headers are complete
            self._partial = False
            self._cancel(self._header_timer)
            self._header_timer = None
            if cycle.more_body and self.limits.body_timeout_s > 0:
                self._cancel(self._body_timer)
                self._body_timer = proto.loop.call_later(self.limits.body_timeout_s, self._body_timeout, cycle)
        if cycle is not None and not cycle.more_body:
            self._cancel(self._body_timer)
            self._body_timer = None

    def on_response_complete(self) -> None:
        getattr(super(), "on_response_complete")()  # noqa: B009  (defined by uvicorn's class, not Protocol)
        self._cancel(self._body_timer)
        self._body_timer = None
        proto: Any = self
        if not proto.transport.is_closing():
            self._partial = False
            self._arm_header_timer()

    # -- timers --------------------------------------------------------------------------
    def _arm_header_timer(self) -> None:
        if self.limits.header_timeout_s > 0:
            self._cancel(self._header_timer)
            proto: Any = self
            self._header_timer = proto.loop.call_later(self.limits.header_timeout_s, self._header_timeout)

    def _header_timeout(self) -> None:
        proto: Any = self
        self._header_timer = None
        cycle = proto.cycle
        if cycle is not None and not cycle.response_complete:
            return  # a request is being served: its own limits apply
        if self._partial:
            self._reject(RequestTimeoutError("request headers were not received in time"), "")
        else:
            proto.transport.close()

    def _body_timeout(self, cycle: Any) -> None:
        self._body_timer = None
        proto: Any = self
        if cycle is not proto.cycle or not cycle.more_body or cycle.response_complete:
            return
        error = RequestTimeoutError(f"the request body was not received within {self.limits.body_timeout_s:g} s")
        log.info("closing a connection from %s: request body too slow", self._host)
        # The application waiting for the body sees a disconnect, and its late response is dropped.
        cycle.disconnected = True
        cycle.message_event.set()
        if cycle.response_started:
            proto.transport.close()
        else:
            self._reject(error, str(cycle.scope.get("path", "")))

    def _reject(self, error: Exception, path: str) -> None:
        proto: Any = self
        status, payload = self.limits.render(path, error)
        body = json.dumps(payload).encode()
        head = (f"HTTP/1.1 {status} Request Timeout\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
        proto.transport.write(head.encode() + body)
        proto.transport.close()

    def _cancel_timers(self) -> None:
        self._cancel(getattr(self, "_header_timer", None))
        self._cancel(getattr(self, "_body_timer", None))
        self._header_timer = self._body_timer = None

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()


def guarded_protocol(settings: ServerSettings, render: Render = rag_error) -> type[asyncio.Protocol]:
    """uvicorn's own HTTP protocol class with the limits of ``settings`` (pass as ``http=``)."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    limits = _Limits(settings, render)
    base: Any = AutoHTTPProtocol
    return type("GuardedHTTPProtocol", (_GuardMixin, base), {"limits": limits})


def uvicorn_options(settings: ServerSettings, render: Render = rag_error) -> dict[str, Any]:
    """The ``uvicorn.Config`` keywords that apply ``settings``' connection limits."""
    return {"http": guarded_protocol(settings, render), "timeout_keep_alive": max(1, round(settings.keep_alive_s))}

