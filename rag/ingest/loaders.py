"""Loaders: file name + bytes → `Document`. One table maps file suffixes to loader functions."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePath

from rag.errors import DocumentError, UnsupportedFormat
from rag.ingest.decode import decode_bytes
from rag.ingest.normalize import normalize_text
from rag.types import Document

_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _load_text(source: str, data: bytes) -> tuple[str, str, str]:
    """Plain text: decode, normalise; the title is the first short line."""
    raw, encoding = decode_bytes(data, source)
    text = normalize_text(raw)
    return text, _first_line_title(text), encoding


def _load_markdown(source: str, data: bytes) -> tuple[str, str, str]:
    """Markdown is stored as written (its markup is harmless to search); the title is the first heading."""
    raw, encoding = decode_bytes(data, source)
    heading = _MD_HEADING.search(raw)
    text = normalize_text(raw)
    return text, heading.group(1).strip() if heading else _first_line_title(text), encoding


LOADERS: dict[str, Callable[[str, bytes], tuple[str, str, str]]] = {
    ".txt": _load_text,
    ".text": _load_text,
    ".md": _load_markdown,
    ".markdown": _load_markdown,
}


def supported_suffixes() -> list[str]:
    """The file suffixes ingestion accepts."""
    return sorted(LOADERS)


def load_document(
    source: str,
    data: bytes,
    metadata: dict[str, object] | None = None,
    *,
    as_type: str | None = None,
) -> tuple[Document, str]:
    """Parse `data` (named `source`) into a normalised `Document`; returns it and the detected encoding.

    The loader is picked by the file suffix, or by `as_type` (e.g. `.txt` for text sent as JSON).
    """
    suffix = (as_type or PurePath(source).suffix).lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise UnsupportedFormat(
            f"{source}: unsupported file type '{suffix or '(none)'}'; supported: {', '.join(supported_suffixes())}"
        )
    text, title, encoding = loader(source, data)
    if not text.strip():
        raise DocumentError(f"{source}: no text left after cleaning")
    return Document(source=source, text=text, title=title, metadata=dict(metadata or {})), encoding


def _first_line_title(text: str, limit: int = 80) -> str:
    """The first line if it is short enough to be a title."""
    first = text.split("\n", 1)[0].strip()
    return first if len(first) <= limit else first[: limit - 1] + "…"
