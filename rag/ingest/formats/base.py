"""What every format loader returns, and the small rules loaders share (title, error reason)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Loaded:
    """A file's normalised text, its title, the text encoding read (`""` for binary formats) and
    metadata the format itself contributes (a PDF's page spans)."""

    text: str
    title: str
    encoding: str
    metadata: dict[str, Any] = field(default_factory=dict)


def first_line_title(text: str, limit: int = 80) -> str:
    """The first line, cut to `limit` characters: the title of formats that mark none."""
    first = text.split("\n", 1)[0].strip()
    return first if len(first) <= limit else first[: limit - 1] + "…"


def brief_reason(exc: Exception, limit: int = 160) -> str:
    """A parser exception's reason, short enough to end a `DocumentError` message."""
    text = str(exc).strip().strip("\"'") or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
