"""Turn raw file bytes into text, detecting the encoding from the bytes (never the file name).

Order: byte-order marks, then strict UTF-8, then charset-normalizer restricted to the encodings
Chinese documents come in (GB18030 ⊃ GBK ⊃ GB2312, Big5, UTF-16). Binary data and bytes no
candidate decodes are refused with a `DocumentError` that says which.
"""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes

from rag.errors import DocumentError

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CANDIDATES = ["gb18030", "big5", "utf_16"]
# Characters that never occur in text documents; a few tolerated for stray form feeds etc.
_CONTROL = {chr(c) for c in range(32)} - {"\n", "\r", "\t", "\f", "\v"}


def decode_bytes(data: bytes, name: str = "<bytes>") -> tuple[str, str]:
    """Decode `data` and return `(text, encoding)`; raise `DocumentError` naming the problem."""
    if not data:
        raise DocumentError(f"{name}: the file is empty")
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return _check_text(data.decode(enc), name), enc
            except UnicodeDecodeError as exc:
                raise DocumentError(f"{name}: has a {enc} byte-order mark but is not valid {enc}") from exc
    if b"\x00" in data[:8192]:
        raise DocumentError(f"{name}: looks like a binary file (NUL bytes), not text")
    try:
        return _check_text(data.decode("utf-8"), name), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=_CANDIDATES).best()
    if best is None or best.encoding is None:
        raise DocumentError(
            f"{name}: cannot decode the bytes as UTF-8, GB18030/GBK or Big5 (wrong encoding or binary)"
        )
    return _check_text(str(best), name), best.encoding


def _check_text(text: str, name: str) -> str:
    """Refuse decoded text that is really binary (many control characters) or blank."""
    if not text.strip():
        raise DocumentError(f"{name}: contains no text (only whitespace)")
    sample = text[:20000]
    bad = sum(1 for ch in sample if ch in _CONTROL)
    if bad > max(8, len(sample) // 100):
        raise DocumentError(f"{name}: looks like a binary file ({bad} control characters), not text")
    return text
