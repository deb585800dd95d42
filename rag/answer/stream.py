"""Answer events, for streaming: the passages first, then text deltas, then the final answer.

The HTTP layer turns them into server-sent events (`/v1/ask`) or OpenAI `chat.completion.chunk`s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from rag.types import Answer, Passage

_PIECE = re.compile(r".+?\[\d+\]|.+$", re.DOTALL)


@dataclass(frozen=True)
class PassagesEvent:
    """The retrieved passages, before any answer text."""

    passages: tuple[Passage, ...]


@dataclass(frozen=True)
class DeltaEvent:
    """A piece of answer text (concatenating all deltas gives `Answer.answer`)."""

    text: str


@dataclass(frozen=True)
class FinalEvent:
    """The complete answer with its citations."""

    answer: Answer


AnswerEvent = PassagesEvent | DeltaEvent | FinalEvent


def replay(answer: Answer) -> Iterator[AnswerEvent]:
    """Stream an already composed answer: passages, one delta per cited sentence, final."""
    yield PassagesEvent(answer.passages)
    for piece in _PIECE.findall(answer.answer):
        yield DeltaEvent(piece)
    yield FinalEvent(answer)
