"""The OpenAI-compatible HTTP provider: ``POST {base_url}/chat/completions``, plain or streamed (SSE).

Works with llama-cpp-python's own server, Ollama (``http://127.0.0.1:11434/v1``), vLLM and
OpenAI. It uses only the standard library. Token counts are estimated locally (the server's
tokenizer is unknown), and err high so a context budget is never overrun.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from localrag.errors import ConfigError
from localrag.generate.base import GenerationError, GenerationTimeoutError, approx_tokens
from localrag.types import Completion, Prompt

log = logging.getLogger(__name__)


class OpenAICompatGenerator:
    """``base_url`` includes the API version path, e.g. ``http://127.0.0.1:8000/v1``.

    ``extra_body`` adds server-specific fields to every request (as the OpenAI client's
    ``extra_body`` does), e.g. ``{"repeat_penalty": 1.0}`` for llama-cpp-python's server.
    """

    name = "openai"

    def __init__(
        self, base_url: str, *, model: str = "", api_key: str = "", timeout_s: float = 120.0,
        context_window: int = 4096, extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"generate.base_url must be an http(s) URL; got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model or "default"
        self.api_key = api_key
        self.timeout_s = timeout_s
        self._context_window = context_window
        self.extra_body = dict(extra_body or {})

    @property
    def context_window(self) -> int:
        return self._context_window

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def _request(self, body: dict[str, Any], timeout_s: float) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions", data=json.dumps(body).encode("utf-8"), headers=headers,
            method="POST",
        )
        try:
            return urllib.request.urlopen(request, timeout=timeout_s)
        except urllib.error.HTTPError as e:
            detail = e.read(2000).decode("utf-8", "replace")
            raise GenerationError(f"{self.base_url} answered HTTP {e.code}: {detail}",
                                  retryable=e.code >= 500 or e.code == 429) from e
        except TimeoutError as e:
            raise GenerationTimeoutError(f"{self.base_url} did not answer within {timeout_s:.0f}s") from e
        except (urllib.error.URLError, OSError) as e:
            raise GenerationError(f"cannot reach {self.base_url}: {e}") from e

    def _body(
        self, prompt: Prompt, max_tokens: int, temperature: float, stop: Sequence[str], stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }
        if stop:
            body["stop"] = list(stop)
        return {**body, **self.extra_body}

    def generate(
        self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0, stop: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> Completion:
        timeout = timeout_s or self.timeout_s
        with self._request(self._body(prompt, max_tokens, temperature, stop, False), timeout) as response:
            try:
                payload = json.loads(response.read())
                choice = payload["choices"][0]
                text = choice["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise GenerationError(f"{self.base_url} sent a malformed chat completion: {e}") from e
            except TimeoutError as e:
                raise GenerationTimeoutError(f"{self.base_url} did not finish within {timeout:.0f}s") from e
        usage = payload.get("usage") or {}
        return self._completion(prompt, text, usage, str(payload.get("model") or self.model),
                                str(choice.get("finish_reason") or "stop"))

    def stream(
        self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0, stop: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> Iterator[str | Completion]:
        timeout = timeout_s or self.timeout_s
        pieces: list[str] = []
        finish = "stop"
        model = self.model
        usage: dict[str, Any] = {}
        with self._request(self._body(prompt, max_tokens, temperature, stop, True), timeout) as response:
            try:
                for raw in response:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    model = str(event.get("model") or model)
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content") or ""
                        if piece:
                            pieces.append(piece)
                            yield piece
                        finish = choice.get("finish_reason") or finish
            except TimeoutError as e:
                raise GenerationTimeoutError(f"{self.base_url} stalled for over {timeout:.0f}s") from e
            except (ValueError, AttributeError, TypeError) as e:
                raise GenerationError(f"{self.base_url} sent a malformed event stream: {e}") from e
        text = "".join(pieces)
        yield self._completion(prompt, text, usage, model, finish)

    def _completion(
        self, prompt: Prompt, text: str, usage: dict[str, Any], model: str, finish: str
    ) -> Completion:
        """A Completion with the server's token counts, or local estimates where it sent none."""
        estimate = sum(self.count_tokens(m.content) for m in prompt.messages)
        prompt_tokens = usage.get("prompt_tokens") or estimate
        completion_tokens = usage.get("completion_tokens") or self.count_tokens(text)
        return Completion(text, int(prompt_tokens), int(completion_tokens), model, finish, self.name)

