"""The LLM contract: one abstract streaming method; `complete` and error types shared on the base."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Self

from rag.errors import LLMBadResponse, LLMError, LLMRateLimited, LLMTimeout

__all__ = [
    "LLM",
    "Completion",
    "LLMBadResponse",
    "LLMError",
    "LLMRateLimited",
    "LLMTimeout",
    "Message",
    "Usage",
]


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: str
    content: str


@dataclass(frozen=True)
class Usage:
    """Token counts reported by the model server (0 when it reports none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    """A finished reply."""

    text: str
    usage: Usage
    latency_ms: float
    model: str


class LLM(ABC):
    """A chat model. Backends implement `stream`; `complete` collects it."""

    #: Model name, for responses and metrics.
    model: str = ""

    @abstractmethod
    def stream(self, messages: Sequence[Message]) -> Iterator[str | Usage]:
        """Yield text deltas as they arrive (and a `Usage` when the server reports one).

        Raises `LLMError` subclasses; never returns garbage silently.
        """

    def close(self) -> None:  # noqa: B027  (not abstract: a backend holding nothing has none)
        """Release what the backend holds (connections); the engine that uses it calls this."""

    def __enter__(self) -> Self:
        """`with get_llm(...) as llm:` closes it at the end."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the backend."""
        self.close()

    def complete(self, messages: Sequence[Message]) -> Completion:
        """The whole reply."""
        t0 = time.perf_counter()
        parts: list[str] = []
        usage = Usage()
        for item in self.stream(messages):
            if isinstance(item, Usage):
                usage = item
            else:
                parts.append(item)
        return Completion("".join(parts), usage, 1000 * (time.perf_counter() - t0), self.model)
