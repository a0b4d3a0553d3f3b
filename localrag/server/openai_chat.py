"""OpenAI-compatible ``POST /v1/chat/completions`` answering with RAG.

The last user message is the question; earlier user/assistant turns become the chat
history (follow-ups are rewritten into standalone questions, as in ``rag.chat()``).
Responses follow OpenAI's shapes and add ``sources`` (the citations) so chat UIs and
the official clients work unchanged while the sources stay reachable
(``completion.model_extra["sources"]`` in the openai package). The last chunk of a stream also
carries ``localrag``: the whole answer as ``POST /v1/ask`` returns it (what the web app's chat shows).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from localrag.answer.chat import ChatSession
from localrag.answer.format import answer_dict, citation_dict
from localrag.errors import InvalidInputError, LocalRagError
from localrag.filters import validate_filter
from localrag.server.concurrency import Slot
from localrag.server.context import ServerContext, authorize, context_of
from localrag.server.routes import iterate
from localrag.server.schemas import ChatCompletionBody, ChatMessageBody
from localrag.server.security import BoundedJSONRoute, error_body
from localrag.types import Answer


def _text(message: ChatMessageBody) -> str:
    if isinstance(message.content, str):
        return message.content
    if isinstance(message.content, list):  # content parts: keep the text ones
        parts = [p.get("text") for p in message.content if p.get("type") == "text"]
        return " ".join(p for p in parts if isinstance(p, str) and p.strip())
    return ""


def _conversation(body: ChatCompletionBody) -> tuple[str, list[tuple[str, str]]]:
    """(question, [(earlier question, its answer), ...]) from OpenAI messages.

    The question is the last user message with text; turns after it (a tool result, an assistant
    prefix) do not change what is asked.
    """
    turns = [(m.role, _text(m)) for m in body.messages if m.role in ("user", "assistant")]
    last = max((i for i, (role, text) in enumerate(turns) if role == "user" and text.strip()), default=None)
    if last is None:
        raise InvalidInputError("messages must hold a user message with text (the question)")
    turns = turns[: last + 1]
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for role, text in turns[:-1]:
        if role == "user":
            pending = text
        elif pending is not None:
            history.append((pending, text))
            pending = None
    return turns[-1][1], history


def _session(ctx: ServerContext, body: ChatCompletionBody, history: list[tuple[str, str]]) -> ChatSession:
    options: dict[str, Any] = {"namespace": body.namespace}
    max_tokens = body.max_completion_tokens or body.max_tokens
    for name, value in (("k", body.k), ("filter", body.filter), ("max_tokens", max_tokens),
                        ("temperature", body.temperature), ("strategy", body.strategy)):
        if value is not None:
            options[name] = value
    session = ctx.rag.chat(**options)
    session.history.extend((q, Answer(question=q, text=a)) for q, a in history)
    return session


def _sources(answer: Answer) -> list[dict[str, Any]]:
    return [citation_dict(c) for c in answer.citations]


def _usage(answer: Answer) -> dict[str, int]:
    prompt, completion = answer.usage.get("prompt_tokens", 0), answer.usage.get("completion_tokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def router() -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(authorize)], tags=["openai"], route_class=BoundedJSONRoute)

    @api.post("/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionBody, request: Request) -> JSONResponse | StreamingResponse:
        ctx = context_of(request)
        question, history = _conversation(body)
        session = _session(ctx, body, history)
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not body.stream:
            async with Slot(ctx.llm):
                answer = await run_in_threadpool(session.ask, question)
            ctx.record_answer(answer)
            return JSONResponse({
                "id": ident, "object": "chat.completion", "created": created, "model": answer.model or body.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": _usage(answer), "sources": _sources(answer), "abstained": answer.abstained,
                "strategy": answer.strategy,
            })
        validate_filter(body.filter)  # a bad filter is a 400 before the stream's status line, not an event
        slot = Slot(ctx.llm)
        await slot.__aenter__()  # 503 before the stream starts when the queue is full
        return StreamingResponse(_chunks(ctx, session.stream(question), slot, ident, created, body.model),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"},
                                 background=BackgroundTask(slot.release))

    return api


async def _chunks(ctx: ServerContext, stream: Iterator[str | Answer], slot: Slot, ident: str, created: int,
                  model: str) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        payload = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(payload)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""})
        async for item in iterate(stream):
            if isinstance(item, Answer):
                ctx.record_answer(item)
                # The streamed text is the model's own; the verified text (citations added, or the
                # abstention when nothing was supported) comes with the sources in the last chunk.
                yield chunk({}, "stop", usage=_usage(item), sources=_sources(item),
                            answer=item.text, abstained=item.abstained, strategy=item.strategy,
                            localrag=answer_dict(item))
            else:
                yield chunk({"content": item})
    except LocalRagError as e:
        yield f"data: {json.dumps(error_body(e))}\n\n"
    finally:
        slot.release()
    yield "data: [DONE]\n\n"
