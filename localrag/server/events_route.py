"""``GET /v1/events``: the engine's event bus (``localrag.events``) as server-sent events.

Each event is one SSE message: ``id`` is the bus's sequence number, ``event`` its kind and ``data``
its JSON (kind, doc_id, path, namespace, reason, data, seq, time). ``?kinds=ingest,delete`` narrows
the stream. A client that reads too slowly loses events rather than slowing ingest: the bus calls
listeners on the writing thread, so each client gets a bounded queue, and a gap in ``id`` (and a
``dropped`` comment) tells it what it missed. A comment line every 15 s keeps proxies from closing
an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from localrag.errors import InvalidInputError
from localrag.events import KINDS, Event
from localrag.server.context import authorize, context_of

QUEUE_SIZE = 1000
HEARTBEAT_S = 15.0
POLL_S = 0.5


def router() -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(authorize)], tags=["rag"])

    # Left out of /openapi.json: a stream that never ends by design would hang every schema-driven client
    # and contract test that calls it (schemathesis waits for a body); the README documents it instead.
    @api.get("/events", response_class=StreamingResponse, include_in_schema=False)
    async def events(
        request: Request,
        kinds: str = Query("", description=f"comma-separated kinds to receive (default: all of {sorted(KINDS)})"),
    ) -> StreamingResponse:
        """Server-sent events: ingest, update, delete, skip, rename, duplicate, progress and sync."""
        wanted = [k.strip() for k in kinds.split(",") if k.strip()] or None
        if wanted and not set(wanted) <= KINDS:
            raise InvalidInputError(f"unknown event kinds {sorted(set(wanted) - KINDS)}; known: {sorted(KINDS)}")
        bus = context_of(request).rag.events
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        dropped = [0]

        def put(event: Event) -> None:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                dropped[0] += 1

        def forward(event: Event) -> None:  # on the writer's thread: hand over to the event loop
            with contextlib.suppress(RuntimeError):  # the loop closed while the server shut down
                loop.call_soon_threadsafe(put, event)

        unsubscribe = bus.subscribe(forward, wanted)

        async def stream() -> AsyncIterator[str]:
            try:
                yield ": localrag events\n\n"  # sent at once, so a client knows it is subscribed
                quiet = 0.0
                while not await request.is_disconnected():
                    try:
                        # short waits: a client that left is noticed within a second even when nothing
                        # is sent (with ASGI 2.4 servers a disconnect only shows on a failed send)
                        event = await asyncio.wait_for(queue.get(), POLL_S)
                    except TimeoutError:
                        quiet += POLL_S
                        if quiet >= HEARTBEAT_S:
                            quiet = 0.0
                            yield ": keep-alive\n\n"
                        continue
                    quiet = 0.0
                    if dropped[0]:
                        yield f": dropped {dropped[0]} events (client too slow)\n\n"
                        dropped[0] = 0
                    yield f"id: {event.seq}\nevent: {event.kind}\ndata: {json.dumps(event.to_json())}\n\n"
            finally:
                unsubscribe()

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    return api
