"""Request bodies of the RAG API (validated by FastAPI, published in the OpenAPI schema).

Strict mode: ``"k": true`` or ``"k": "5"`` is refused rather than coerced, so the schema's types
are the server's. Texts that must hold something carry the pattern ``\\S`` (a non-space
character), the same test the engine applies with ``str.strip()``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_QUERY_CHARS = 10_000
MAX_K = 10_000


NON_BLANK = r"\S"


def _whole_number(value: Any) -> Any:
    # JSON Schema counts 25.0 as an integer, so it is one here too; booleans and strings stay refused.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Int = Annotated[int, BeforeValidator(_whole_number)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SearchBody(_Body):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, pattern=NON_BLANK)
    k: Int = Field(10, ge=1, le=MAX_K)
    mode: Literal["dense", "keyword", "hybrid"] | None = None
    namespace: str = Field("", max_length=512)
    filter: dict[str, Any] | None = None
    fusion: Literal["rrf", "weighted"] | None = None
    alpha: float | None = Field(None, ge=0.0, le=1.0)
    rrf_k: Int | None = Field(None, ge=1, le=100_000)
    candidates: Int | None = Field(None, ge=1, le=MAX_K)
    # none | multi_query | hyde | decompose | auto (localrag/query/run.py); None: learn.strategy
    strategy: Literal["none", "multi_query", "hyde", "decompose", "auto"] | None = None
    self_query: Literal["off", "boost", "filter"] | None = None  # None: learn.self_query (learn/selfquery_run.py)
    rerank: bool | None = None  # None: rerank.enabled
    include_text: bool = True


class AskBody(_Body):
    question: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, pattern=NON_BLANK)
    k: Int | None = Field(None, ge=1, le=100)
    mode: Literal["dense", "keyword", "hybrid"] | None = None
    namespace: str = Field("", max_length=512)
    filter: dict[str, Any] | None = None
    max_tokens: Int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    use_cache: bool = True
    # none | multi_query | hyde | decompose | auto (localrag/query/run.py); None: learn.strategy
    strategy: Literal["none", "multi_query", "hyde", "decompose", "auto"] | None = None
    self_query: Literal["off", "boost", "filter"] | None = None  # None: learn.self_query

    def options(self) -> dict[str, Any]:
        fields = ("k", "mode", "namespace", "filter", "max_tokens", "temperature", "strategy", "self_query")
        return {name: getattr(self, name) for name in fields if getattr(self, name) is not None}


class DocumentBody(_Body):
    text: str = Field(min_length=1, pattern=NON_BLANK)
    doc_id: str = Field(min_length=1, max_length=1024)
    title: str = Field("", max_length=4096)
    source: str = Field("", max_length=4096)
    metadata: dict[str, Any] = Field(default_factory=dict)
    namespace: str = Field("", max_length=512)


class FeedbackBody(_Body):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, pattern=NON_BLANK)
    chunk_id: Int = Field(ge=0, le=2**53)  # chunk ids count up from 1; 2^53 keeps JSON numbers exact
    relevant: bool
    namespace: str = Field("", max_length=512)
    grade: float | None = Field(None, ge=-1.0, le=1.0)  # a graded judgment; when given, it decides over relevant


class ChatMessageBody(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # OpenAI clients send fields (name, tool calls) we ignore

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionBody(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # unknown OpenAI parameters are accepted and ignored

    model: str = Field("localrag", max_length=256)
    # The question is the last user message with text; the schema says one must exist.
    messages: list[ChatMessageBody] = Field(min_length=1, max_length=256, json_schema_extra={"contains": {
        "type": "object", "required": ["role", "content"],
        "properties": {"role": {"const": "user"}, "content": {"anyOf": [
            {"type": "string", "pattern": NON_BLANK},
            {"type": "array", "contains": {"type": "object", "required": ["type", "text"], "properties": {
                "type": {"const": "text"}, "text": {"type": "string", "pattern": NON_BLANK}}}}]}}}})
    stream: bool = False
    max_tokens: Int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: Int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    n: Int = Field(1, ge=1, le=1)
    # localrag's own options, passed as extra_body by OpenAI clients
    k: Int | None = Field(None, ge=1, le=100)
    namespace: str = Field("", max_length=512)
    filter: dict[str, Any] | None = None
    # none | multi_query | hyde | decompose | auto; the reply's ``localrag.strategy`` says which ran
    strategy: Literal["none", "multi_query", "hyde", "decompose", "auto"] | None = None
