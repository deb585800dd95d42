"""Plain text (`.txt`, `.text`): decode, normalise; the title is the first line."""

from __future__ import annotations

from rag.ingest.decode import decode_bytes
from rag.ingest.formats.base import Loaded, first_line_title
from rag.ingest.limits import DEFAULT_LIMITS, ParseLimits
from rag.ingest.normalize import normalize_text


def load(source: str, data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> Loaded:
    """Decode (encoding detected from the bytes) and normalise a plain-text file."""
    raw, encoding = decode_bytes(data, source)
    text = normalize_text(raw)
    return Loaded(text, first_line_title(text), encoding)
