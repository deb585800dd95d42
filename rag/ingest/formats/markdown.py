"""Markdown (`.md`, `.markdown`): stored as written (its markup is harmless to search); the title
is the first heading."""

from __future__ import annotations

import re

from rag.ingest.decode import decode_bytes
from rag.ingest.formats.base import Loaded, first_line_title
from rag.ingest.limits import DEFAULT_LIMITS, ParseLimits
from rag.ingest.normalize import normalize_text

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def load(source: str, data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> Loaded:
    """Decode and normalise a Markdown file; its first ATX heading is the title."""
    raw, encoding = decode_bytes(data, source)
    heading = _HEADING.search(raw)
    text = normalize_text(raw)
    return Loaded(text, heading.group(1).strip() if heading else first_line_title(text), encoding)
