"""JSON from a llama.cpp model constrained by a JSON schema: llama.cpp compiles the schema into a GBNF
grammar (``LlamaGrammar.from_json_schema``), and sampling can then only produce text the schema allows.

Used by self-query (learn/selfquery_llm.py), whose schema lists only the catalogue's fields and values, so
even a tiny model cannot name a field or value the namespace does not hold.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from localrag.generate.base import GenerationError
from localrag.generate.llamacpp import LlamaCppGenerator, _import_llama_cpp, _processors, _TokenLogprobs
from localrag.types import Prompt

log = logging.getLogger(__name__)

_GRAMMARS_KEPT = 32


class JsonGenerator:
    """Greedy, schema-constrained completions on one llama.cpp generator (its lock held throughout)."""

    def __init__(self, generator: LlamaCppGenerator) -> None:
        self.generator = generator
        self._grammars: dict[str, Any] = {}

    def _grammar(self, schema: Mapping[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            llama_cpp = _import_llama_cpp()
            grammar = llama_cpp.LlamaGrammar.from_json_schema(key, verbose=False)
            if len(self._grammars) >= _GRAMMARS_KEPT:
                self._grammars.clear()
            self._grammars[key] = grammar
        return grammar

    def complete(self, prompt: Prompt, schema: Mapping[str, Any], max_tokens: int = 96) -> tuple[Any, float]:
        """The parsed JSON value and the model's own probability of it (geometric mean over its tokens, from
        the logits before the grammar masked them: how sure the model was, not how sure the grammar made it)."""
        gen = self.generator
        grammar = self._grammar(schema)
        with gen._lock:
            tokens = gen.render(prompt)
            llm = gen._model(len(tokens) + max_tokens)
            gen.prefill(prompt, tokens)
            confidence = _TokenLogprobs(len(tokens))
            try:
                out = llm.create_completion(
                    tokens, max_tokens=max_tokens, temperature=0.0, grammar=grammar, repeat_penalty=1.0,
                    seed=gen.seed, logits_processor=_processors(confidence),
                )
            except (RuntimeError, ValueError) as e:
                raise GenerationError(f"llama.cpp failed while generating JSON: {e}") from e
        choice = out["choices"][0]
        text = choice.get("text") or ""
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:  # cut off at max_tokens
            raise GenerationError(f"the model's JSON did not finish within {max_tokens} tokens: {text[:80]!r}") from e
        mean = confidence.mean(choice.get("finish_reason") == "stop")
        return value, math.exp(mean) if mean is not None else 0.0
