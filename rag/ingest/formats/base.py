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


TITLE_LOOKAHEAD = 5  # non-blank lines a title may come after (page artefacts before it)
_SENTENCE_END = tuple("。！？；，!?;,")


def first_line_title(text: str, limit: int = 80) -> str:
    """The title of formats that mark none: the first non-blank line that reads like one, or
    none (""). Lines without two letters (`- +1`, a page number: artefacts of a PDF or a web
    page) are passed over; a first line longer than `limit` or ending like a sentence is the
    text's first sentence, not its title, and a cut sentence would be a wrong title: none."""
    seen = 0
    for line in text.split("\n"):
        s = line.strip()
        if not s:
            continue
        seen += 1
        if seen > TITLE_LOOKAHEAD:
            break
        if sum(ch.isalpha() for ch in s) < 2:
            continue
        return "" if len(s) > limit or s.endswith(_SENTENCE_END) else s
    return ""


def brief_reason(exc: Exception, limit: int = 160) -> str:
    """A parser exception's reason, short enough to end a `DocumentError` message."""
    text = str(exc).strip().strip("\"'") or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
