"""What every generator shares: its errors, rough token counts, and joining a stream into a Completion."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from localrag.errors import LocalRagError
from localrag.types import Completion

_PIECE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class GenerationError(LocalRagError):
    """A provider failed to produce text (server error, bad response, model crash).

    ``retryable`` says whether the same call may succeed if tried again (a 5xx, a dropped
    connection), as opposed to a request the provider will always refuse.
    """

    http_status = 502
    grpc_code = 14  # UNAVAILABLE

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class GenerationTimeoutError(GenerationError):
    """A provider did not finish within its time limit."""

    http_status = 504
    grpc_code = 4  # DEADLINE_EXCEEDED


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate that errs high: one token per word or punctuation mark, plus 10%."""
    return int(len(_PIECE.findall(text)) * 1.1) + 1


def collect(pieces: Iterable[str | Completion]) -> Completion:
    """The final Completion of a stream (its pieces are dropped)."""
    final: Completion | None = None
    for piece in pieces:
        if isinstance(piece, Completion):
            final = piece
    if final is None:
        raise GenerationError("the provider's stream ended without a completion")
    return final


def words_stream(completion: Completion) -> Iterator[str | Completion]:
    """Stream a finished completion word by word (for providers that cannot stream)."""
    for match in re.finditer(r"\s*\S+(?:\s+$)?", completion.text):
        yield match.group(0)
    yield completion
