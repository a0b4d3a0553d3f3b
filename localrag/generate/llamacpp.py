"""The llama.cpp provider (llama-cpp-python): a local GGUF model, loaded lazily once per instance.

- The chat template comes from the GGUF metadata (``tokenizer.chat_template``), rendered with
  llama-cpp-python's Jinja2 formatter.
- The context window is sized to the prompt: the first load takes the smallest power of two
  that holds the expected prompt plus completion; a longer prompt reloads with a larger one,
  up to the model's training context.
- The system message is rendered first and never changes, so its evaluated tokens stay in
  the KV cache and llama.cpp reuses them for the next question (the prefix match is counted
  in ``cached_prompt_tokens``). Only that fixed prefix is reused, always evaluated the same
  way, so a prompt's logits (and its greedy answer) never depend on what was asked before
  (see ``prefill``).
- One lock serialises every use of the model: a llama.cpp context is not thread-safe.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from localrag.errors import DependencyMissingError, InvalidInputError, ModelNotFoundError
from localrag.generate.base import GenerationError, GenerationTimeoutError, collect
from localrag.types import ChatMessage, Completion, Prompt

log = logging.getLogger(__name__)

_MIN_CTX = 1024
_PROBES = 16  # fixed-prefix probes kept, one per distinct system message (answer, rewrite, condense)


def _import_llama_cpp() -> Any:
    # llama.cpp's OpenMP workers spin while they wait. On a loaded 2-core machine two spinning
    # threads collapsed decoding to 0.3 tokens/s; with passive waiting they held 15 tokens/s.
    # The policy is read when the OpenMP runtime starts, i.e. on the first import of llama_cpp.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import llama_cpp
    except ImportError as e:
        raise DependencyMissingError(
            "the llama.cpp provider needs llama-cpp-python: pip install 'localrag[llm]' "
            "(or pip install llama-cpp-python)"
        ) from e
    return llama_cpp


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


class LlamaCppGenerator:
    """Generates with a GGUF model file through llama-cpp-python.

    ``threads``: 0 uses every core (1 is the safe choice under load: two threads collapsed to
    1-2 tokens/s on a busy 2-core machine). ``n_ctx``: 0 sizes the window to the prompt;
    ``expected_tokens`` is the prompt-plus-completion size the first load is sized for.
    """

    name = "llamacpp"

    def __init__(
        self,
        path: str | Path,
        *,
        model_name: str | None = None,
        threads: int = 0,
        n_ctx: int = 0,
        expected_tokens: int = 2048,
        seed: int = 0,
        max_ctx: int = 32768,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(f"GGUF model file {self.path} does not exist")
        self.model = model_name or self.path.stem
        self.threads = threads if threads > 0 else (os.cpu_count() or 1)
        self.fixed_ctx = n_ctx
        self.expected_tokens = expected_tokens
        self.seed = seed
        self.max_ctx = max_ctx
        self._llm: Any = None
        self._formatter: Any = None
        self._train_ctx = 0
        self._lock = threading.RLock()
        self._streaming: int | None = None  # the thread whose stream holds the model
        self._probes: dict[tuple[ChatMessage, ...], list[int]] = {}
        self.loads = 0  # how many times the weights were loaded (stays 1 unless a prompt outgrows n_ctx)

    # -- loading -----------------------------------------------------------------------
    def _load(self, n_ctx: int) -> Any:
        llama_cpp = _import_llama_cpp()
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        started = time.perf_counter()
        try:
            llm = llama_cpp.Llama(
                model_path=str(self.path), n_ctx=n_ctx, n_batch=512, n_threads=self.threads,
                n_threads_batch=self.threads, seed=self.seed, verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise GenerationError(f"llama.cpp could not load {self.path}: {e}") from e
        metadata: dict[str, str] = dict(llm.metadata)
        architecture = metadata.get("general.architecture", "")
        self._train_ctx = int(metadata.get(f"{architecture}.context_length", 0) or 0)
        template = metadata.get("tokenizer.chat_template")
        if not template:
            raise InvalidInputError(f"{self.path.name} has no chat template in its metadata; "
                                    "use an instruct model")
        eos = llm.token_eos()
        bos = llm.token_bos()
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=llm.detokenize([eos], special=True).decode("utf-8", "replace") if eos >= 0 else "",
            bos_token=llm.detokenize([bos], special=True).decode("utf-8", "replace") if bos >= 0 else "",
        )
        self.loads += 1
        log.info("loaded %s (n_ctx %d, %d threads) in %.2fs", self.path.name, n_ctx, self.threads,
                 time.perf_counter() - started)
        return llm

    def _model(self, needed: int = 0) -> Any:
        """The loaded model, (re)loaded when ``needed`` tokens do not fit its window. Call under the lock."""
        if self._llm is not None and needed <= self._llm.n_ctx():
            return self._llm
        if self.fixed_ctx:
            size = self.fixed_ctx
        else:
            size = max(_MIN_CTX, _next_power_of_two(max(needed, self.expected_tokens)))
            if self._train_ctx:
                size = min(size, self._train_ctx)
            size = min(size, self.max_ctx)
        if self._llm is not None:
            if needed > size:
                raise InvalidInputError(f"the prompt needs {needed} tokens; {self.model} holds {size}")
            self._llm.close()
            self._llm = None
        self._llm = self._load(size)
        if needed > self._llm.n_ctx():
            raise InvalidInputError(f"the prompt needs {needed} tokens; {self.model} holds {size}")
        return self._llm

    @property
    def context_window(self) -> int:
        with self._lock:
            llm = self._model()
            if self.fixed_ctx:
                return int(llm.n_ctx())
            return min(self.max_ctx, self._train_ctx or int(llm.n_ctx()))

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    # -- tokens ------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self._model().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def render(self, prompt: Prompt) -> list[int]:
        """The prompt's tokens, through the model's own chat template."""
        return self._render(prompt.messages)

    def _render(self, messages: Sequence[ChatMessage]) -> list[int]:
        with self._lock:
            llm = self._model()
            formatted = self._formatter(messages=[{"role": m.role, "content": m.content} for m in messages])
            return list(llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special,
                                     special=True))

    def fixed_prefix(self, prompt: Prompt, tokens: Sequence[int]) -> int:
        """How many leading ``tokens`` (the rendered ``prompt``) every prompt with the same earlier messages
        shares: the system message and the chat markup up to the last message's text. Never all of them."""
        if not prompt.messages:
            return 0
        head = prompt.messages[:-1]
        with self._lock:
            probe = self._probes.get(head)
            if probe is None:
                probe = self._render([*head, ChatMessage(prompt.messages[-1].role, "")])
                if len(self._probes) >= _PROBES:
                    self._probes.clear()
                self._probes[head] = probe
        return min(_common_prefix(probe, tokens), len(tokens) - 1)

    def prefill(self, prompt: Prompt, tokens: Sequence[int]) -> int:
        """Bring the context to the one state every generation of ``tokens`` (``prompt`` rendered) starts
        from; returns how many of its tokens came from the cache.

        llama.cpp evaluates a one-token batch with other kernels than a longer one (matrix-vector
        against matrix-matrix products), and the logits differ: by up to 0.9 on SmolLM2-135M, where
        greedy decoding meets ties closer than 0.1. llama-cpp-python reuses the longest cached match,
        so a prompt cached whole (the same question again) had only its last token re-evaluated, alone,
        and could be answered with other text than the first time. Here the cache keeps only the
        prompt's fixed prefix (``fixed_prefix``), itself always evaluated alone from position 0, and the
        rest of the prompt is evaluated after it in the same batches every time: the logits, hence a
        greedy answer, depend on the prompt alone, never on what the model evaluated before.
        """
        with self._lock:
            llm = self._model(len(tokens))
            fixed = self.fixed_prefix(prompt, tokens)
            held = _common_prefix(list(llm._input_ids[: llm.n_tokens]), tokens[:fixed]) if llm.n_tokens else 0
            if fixed and held == fixed:
                llm.n_tokens = fixed  # create_completion evaluates the rest from here (its KV rows dropped)
                return fixed
            llm.reset()
            if fixed:
                llm.eval(list(tokens[:fixed]))
            return 0

    # -- generation --------------------------------------------------------------------
    def generate(
        self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0, stop: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> Completion:
        return collect(self.stream(prompt, max_tokens=max_tokens, temperature=temperature, stop=stop,
                                   timeout_s=timeout_s))

    def stream(
        self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0, stop: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> Iterator[str | Completion]:
        # Holding the lock across the yields keeps one generation on the context at a time; a
        # consumer that abandons the stream releases it when the generator is closed.
        with self._lock:
            if self._streaming == threading.get_ident():
                raise InvalidInputError("finish or close the previous stream of this model first")
            self._streaming = threading.get_ident()
            try:
                yield from self._stream_locked(prompt, max_tokens, temperature, stop, timeout_s)
            finally:
                self._streaming = None

    def _stream_locked(
        self,
        prompt: Prompt,
        max_tokens: int,
        temperature: float,
        stop: Sequence[str],
        timeout_s: float | None,
    ) -> Iterator[str | Completion]:
        tokens = self.render(prompt)
        llm = self._model(len(tokens) + max_tokens)
        cached = self.prefill(prompt, tokens)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        timed_out = False

        def past_deadline(_ids: Any, _logits: Any) -> bool:
            nonlocal timed_out
            timed_out = deadline is not None and time.monotonic() > deadline
            return timed_out

        criteria = _stopping(past_deadline) if deadline is not None else None
        confidence = _TokenLogprobs(len(tokens))
        pieces: list[str] = []
        finish = ""
        try:
            for chunk in llm.create_completion(
                tokens, max_tokens=max_tokens, temperature=temperature, top_k=40, top_p=0.95, min_p=0.05,
                repeat_penalty=1.0, stop=list(stop) or None, stream=True, seed=self.seed,
                stopping_criteria=criteria, logits_processor=_processors(confidence),
            ):
                choice = chunk["choices"][0]
                if choice.get("text"):
                    pieces.append(choice["text"])
                    yield choice["text"]
                finish = choice.get("finish_reason") or finish
        except (RuntimeError, ValueError) as e:
            raise GenerationError(f"llama.cpp failed while generating: {e}") from e
        if timed_out:
            raise GenerationTimeoutError(f"{self.model} did not finish within {timeout_s:.0f}s")
        text = "".join(pieces)
        completion_tokens = len(llm.tokenize(text.encode(), add_bos=False, special=False)) if text else 0
        yield Completion(text, len(tokens), completion_tokens, self.model, finish or "stop", self.name,
                         cached_prompt_tokens=cached, mean_logprob=confidence.mean(finish == "stop"))


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class _TokenLogprobs:
    """Records the log-probability of each generated token (a llama.cpp logits processor that changes nothing).

    The processor sees the logits before a token is chosen; the choice shows up as the last input id
    of the next call. The final token (end of generation) is never followed by a call, so with
    ``ended`` its probability is taken as the step's most likely token, which is what greedy
    decoding chose.
    """

    def __init__(self, prompt_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.logprobs: list[float] = []
        self._pending: tuple[Any, float] | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        if self._pending is not None and len(input_ids) > self.prompt_tokens:
            previous, norm = self._pending
            self.logprobs.append(float(previous[int(input_ids[-1])]) - norm)
        top = float(scores.max())
        self._pending = (scores.copy(), top + float(np.log(np.exp(scores - top).sum())))
        return scores

    def mean(self, ended: bool) -> float | None:
        values = list(self.logprobs)
        if ended and self._pending is not None:
            previous, norm = self._pending
            values.append(float(previous.max()) - norm)
        return sum(values) / len(values) if values else None


def _processors(*processors: Callable[[Any, Any], Any]) -> Any:
    from llama_cpp import LogitsProcessorList

    return LogitsProcessorList(list(processors))


def _stopping(check: Callable[[Any, Any], bool]) -> Any:
    from llama_cpp import StoppingCriteriaList

    return StoppingCriteriaList([check])
