"""The local LLM as self-query's helper: asked for the metadata conditions a question implies, as JSON whose
schema (turned into a llama.cpp grammar) allows only the catalogue's enumerated fields and their values.

Dates are left to the rules (learn/dates.py): they depend on "now", which a small model gets wrong.
"""

from __future__ import annotations

import logging
from typing import Any

from localrag.generate.constrained import JsonGenerator
from localrag.generate.llamacpp import LlamaCppGenerator
from localrag.learn.catalogue import Catalogue
from localrag.types import ChatMessage, Prompt

log = logging.getLogger(__name__)

MAX_FIELDS = 8
MAX_VALUES = 30  # per field in the schema and the prompt: the grammar grows with them
MAX_CONDITIONS = 3

SYSTEM = (
    "You turn a search question into metadata filter conditions. Use only the fields and values listed. "
    "Add a condition only when the question clearly asks to restrict results to that value (e.g. a sender, "
    "a document type, a project named in the question). Most questions need no condition: then answer "
    '{"conditions": []}.'
)


def _fields(catalogue: Catalogue) -> list[tuple[str, list[Any]]]:
    enums = [f for f in catalogue.fields.values() if f.role == "enum"]
    enums.sort(key=lambda f: -f.count)
    out = []
    for info in enums[:MAX_FIELDS]:
        values = [v for v in info.values if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
        if values:
            out.append((info.name, values[:MAX_VALUES]))
    return out


def schema(catalogue: Catalogue) -> dict[str, Any]:
    """A JSON schema whose only valid documents name catalogue fields with their own values."""
    options = [{"type": "object", "properties": {"field": {"const": name}, "value": {"enum": values}},
                "required": ["field", "value"]} for name, values in _fields(catalogue)]
    return {"type": "object", "properties": {"conditions": {
        "type": "array", "maxItems": MAX_CONDITIONS, "items": {"anyOf": options}}}, "required": ["conditions"]}


def prompt(question: str, catalogue: Catalogue) -> Prompt:
    lines = [f"- {name}: {', '.join(str(v) for v in values)}" for name, values in _fields(catalogue)]
    user = "Fields and values:\n" + "\n".join(lines) + f"\n\nQuestion: {question}\nJSON:"
    return Prompt((ChatMessage("system", SYSTEM), ChatMessage("user", user)), question=question, task="rewrite")


class LlmFilterModel:
    """A FilterModel (learn/selfquery.py) on a llama.cpp generator."""

    def __init__(self, generator: LlamaCppGenerator, max_tokens: int = 80) -> None:
        self.json = JsonGenerator(generator)
        self.max_tokens = max_tokens

    def propose(self, question: str, catalogue: Catalogue) -> tuple[list[tuple[str, Any]], float]:
        if not _fields(catalogue):
            return [], 0.0
        value, probability = self.json.complete(prompt(question, catalogue), schema(catalogue), self.max_tokens)
        pairs = [(str(c["field"]), c["value"]) for c in value.get("conditions", []) if isinstance(c, dict)]
        log.debug("self-query model: %r -> %s (p %.2f)", question, pairs, probability)
        return pairs, probability


def filter_model_of(generator: object) -> LlmFilterModel | None:
    """The filter model on a generator chain's llama.cpp provider, or None without one."""
    from localrag.generate.factory import LazyLlamaCpp

    for provider in getattr(generator, "providers", [generator]):
        if isinstance(provider, LazyLlamaCpp):
            provider = provider.llama()
        if isinstance(provider, LlamaCppGenerator):
            return LlmFilterModel(provider)
    return None
