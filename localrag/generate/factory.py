"""Builds the generator chain from settings: ``generate.providers`` in order, wrapped in a fallback chain.

Providers: ``llamacpp`` (a registry model name or a path to any ``.gguf``), ``openai``
(``generate.base_url``, ``api_key``, ``remote_model``) and ``extractive``. Construction is
cheap: the llama.cpp model is located and loaded on first use, so a missing package only
matters if the chain reaches that provider.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from localrag.config import AnswerSettings, GenerateSettings
from localrag.errors import ConfigError
from localrag.generate.chain import FallbackGenerator
from localrag.generate.extractive import ExtractiveGenerator
from localrag.generate.gguf import resolve_gguf
from localrag.generate.llamacpp import LlamaCppGenerator
from localrag.generate.openai_compat import OpenAICompatGenerator
from localrag.protocols import Generator
from localrag.types import Completion, Prompt

log = logging.getLogger(__name__)

PROVIDERS = ("llamacpp", "openai", "extractive")
_PROMPT_ALLOWANCE = 512  # system message, question and chat markup, besides the sources

# One loaded model per (file, threads, n_ctx) in a process: engines share it (llama.cpp
# contexts are large, and each generator serialises its own use).
_shared: dict[tuple[str, int, int, int], LlamaCppGenerator] = {}
_shared_lock = threading.Lock()


def llamacpp_generator(generate: GenerateSettings, answer: AnswerSettings) -> LlamaCppGenerator:
    path, name = resolve_gguf(generate.model, generate.cache_dir)
    expected = answer.context_tokens + _PROMPT_ALLOWANCE + generate.max_tokens
    key = (str(path.resolve()), generate.threads, generate.n_ctx, generate.seed)
    with _shared_lock:
        generator = _shared.get(key)
        if generator is None:
            generator = LlamaCppGenerator(path, model_name=name, threads=generate.threads,
                                          n_ctx=generate.n_ctx, expected_tokens=expected, seed=generate.seed)
            _shared[key] = generator
        return generator


class LazyLlamaCpp:
    """Defers locating (and, for chunked models, assembling) the GGUF file to first use."""

    name = "llamacpp"

    def __init__(self, generate: GenerateSettings, answer: AnswerSettings) -> None:
        self._settings = (generate, answer)
        self._generator: LlamaCppGenerator | None = None
        self._lock = threading.Lock()
        model = generate.model
        self._declared_model = Path(model).stem if model.endswith(".gguf") else model

    def _get(self) -> LlamaCppGenerator:
        with self._lock:
            if self._generator is None:
                self._generator = llamacpp_generator(*self._settings)
            return self._generator

    def llama(self) -> LlamaCppGenerator:
        """The loaded llama.cpp generator (for reading its logits: claim grounding)."""
        return self._get()

    @property
    def model(self) -> str:
        return self._generator.model if self._generator is not None else self._declared_model

    @property
    def context_window(self) -> int:
        return self._get().context_window

    def count_tokens(self, text: str) -> int:
        return self._get().count_tokens(text)

    def generate(
        self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0, stop: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> Completion:
        return self._get().generate(prompt, max_tokens=max_tokens, temperature=temperature, stop=stop,
                                    timeout_s=timeout_s)

    def stream(
        self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0, stop: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> Iterator[str | Completion]:
        return self._get().stream(prompt, max_tokens=max_tokens, temperature=temperature, stop=stop,
                                  timeout_s=timeout_s)


def build_provider(name: str, generate: GenerateSettings, answer: AnswerSettings) -> Generator:
    if name == "llamacpp":
        return LazyLlamaCpp(generate, answer)
    if name == "openai":
        if not generate.base_url:
            raise ConfigError("the openai provider needs generate.base_url (e.g. http://127.0.0.1:8000/v1)")
        return OpenAICompatGenerator(generate.base_url, model=generate.remote_model, api_key=generate.api_key,
                                     timeout_s=generate.timeout_s, context_window=generate.n_ctx or 4096)
    if name == "extractive":
        return ExtractiveGenerator()
    raise ConfigError(f"unknown generate provider {name!r}; choose from {', '.join(PROVIDERS)}")


def build_generator(generate: GenerateSettings, answer: AnswerSettings) -> FallbackGenerator:
    names = [n.strip().lower() for n in generate.providers.split(",") if n.strip()]
    if not names:
        raise ConfigError("generate.providers must name at least one provider")
    if len(set(names)) != len(names):
        raise ConfigError(f"generate.providers lists a provider twice: {generate.providers!r}")
    providers = [build_provider(n, generate, answer) for n in names]
    return FallbackGenerator(providers, timeout_s=generate.timeout_s, retries=generate.retries)
