"""Turn raw file bytes into text, detecting the encoding from the bytes (never the file name).

Order: byte-order marks, then strict UTF-8, then the encoding the document declares itself (an
HTML `<meta charset>`, passed in as `declared`) if the bytes are valid in it (and, for a declared
GB18030/Big5, read as common Chinese or no better reading exists), then the GB18030 (⊃ GBK ⊃ GB2312) or Big5 reading
that is clearly common Chinese, then charset-normalizer restricted to the encodings Chinese
documents come in (GB18030, Big5, UTF-16). Binary data and bytes no candidate decodes are refused
with a `DocumentError` that says which.

Why the scoring step: most byte strings are valid in both GB18030 and Big5, and charset-normalizer
misjudges short Chinese texts with “quotes” (it rejects correct GB18030 text such as
`阻”，《行动方案》提出，合力开展“一单制”“一箱制”试点，打`, or prefers a garbled Big5 reading).
A reading in the wrong encoding is mostly rare characters and stray symbols, so the share of common
characters tells them apart.

Why UTF-8 before a declared encoding: valid multi-byte UTF-8 practically never happens by chance in
GBK or Big5 text, while pages re-saved as UTF-8 that still say `charset=gb2312` are common (and
HTML sent as JSON text arrives re-encoded as UTF-8 whatever its `<meta>` says). A declared legacy
name is read as its WHATWG superset (GB2312/GBK as GB18030, Big5 as Big5-HKSCS, Latin-1 as
windows-1252), as browsers do.
"""

from __future__ import annotations

import codecs
import contextlib
from collections.abc import Callable

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
# Declared names read as the superset browsers use (keys are Python's canonical codec names).
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "big5": "big5hkscs",
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
}
_ALIASES = {"x-gbk": "gbk", "x-big5": "big5", "big5-hkscs": "big5hkscs"}
# Characters that never occur in text documents; a few tolerated for stray form feeds etc.
_CONTROL = {chr(c) for c in range(32)} - {"\n", "\r", "\t", "\f", "\v"}
# A GB18030/Big5 reading is taken without asking charset-normalizer when at least this share of
# its (sampled) non-ASCII characters are common Chinese characters or punctuation.
_PLAUSIBLE = 0.7
_SAMPLE = 4000
# Punctuation and symbols of Chinese text, and the full-width ASCII forms (！ … ～, ０-９, Ａ-ｚ).
_CJK_PUNCT = frozenset("、。〈〉《》「」『』【】〔〕“”‘’—…·°×÷€").union(
    map(chr, range(0xFF01, 0xFF5F))
)


def decode_bytes(
    data: bytes, name: str = "<bytes>", declared: str | None = None
) -> tuple[str, str]:
    """Decode `data` and return `(text, encoding)`; raise `DocumentError` naming the problem.

    `declared` is the encoding the document names itself (e.g. HTML `<meta charset>`), if any.
    """
    if not data:
        raise DocumentError(f"{name}: the file is empty")
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return _check_text(data.decode(enc), name), enc
            except UnicodeDecodeError as exc:
                raise DocumentError(
                    f"{name}: has a {enc} byte-order mark but is not valid {enc}"
                ) from exc
    if b"\x00" in data[:8192]:
        raise DocumentError(f"{name}: looks like a binary file (NUL bytes), not text")
    try:
        return _check_text(data.decode("utf-8"), name), "utf-8"
    except UnicodeDecodeError:
        pass
    encoding = _declared_codec(declared)
    if encoding is not None:
        # A wrong declaration, or a name of a non-text codec (`base64`): detect instead.
        with contextlib.suppress(UnicodeDecodeError, LookupError):
            text = data.decode(encoding)
            if _believable(text, encoding, data):
                return _check_text(text, name), encoding
    guessed = _guess_chinese(data)
    if guessed is not None:
        return _check_text(guessed[0], name), guessed[1]
    best = from_bytes(data, cp_isolation=_CANDIDATES).best()
    if best is None or best.encoding is None:
        raise DocumentError(
            f"{name}: cannot decode the bytes as UTF-8, GB18030/GBK or Big5 (wrong encoding or binary)"
        )
    return _check_text(str(best), name), best.encoding


def _declared_codec(declared: str | None) -> str | None:
    """The codec to read a declared encoding with, or None when it is unknown or not a single-
    document byte encoding (a UTF-16 declaration in a file without a BOM is wrong by definition)."""
    if not declared:
        return None
    label = declared.strip().lower()
    try:
        codec = codecs.lookup(_ALIASES.get(label, label)).name
    except LookupError:
        return None
    if codec.startswith("utf"):
        return None  # UTF-8 was tried already; UTF-16/32 without a BOM cannot be meant (nor UTF-7)
    return _SUPERSETS.get(codec, codec)


def _is_common_big5(ch: str) -> bool:
    """One of Big5's 5,401 frequently used characters (codes A440–C67E)."""
    try:
        code = ch.encode("big5")
    except UnicodeEncodeError:
        return False
    return len(code) == 2 and 0xA440 <= (code[0] << 8 | code[1]) <= 0xC67E


def _is_common_gb(ch: str) -> bool:
    """One of GB2312's 3,755 level-1 hanzi (lead bytes B0–D7), or a common traditional one."""
    try:
        code = ch.encode("gb2312")
    except UnicodeEncodeError:
        return _is_common_big5(ch)  # GBK text may be traditional Chinese
    return len(code) == 2 and 0xB0 <= code[0] <= 0xD7


def _score(text: str, common: Callable[[str], bool]) -> float | None:
    """Share of common characters among the (sampled) non-ASCII ones; None when all are ASCII."""
    sample = [ch for ch in text[:_SAMPLE] if ord(ch) > 0x7F]
    if not sample:
        return None
    return sum(1 for ch in sample if ch in _CJK_PUNCT or common(ch)) / len(sample)


def _guess_chinese(data: bytes) -> tuple[str, str] | None:
    """The strict GB18030 or Big5 reading with more common characters, if convincing enough."""
    best: tuple[float, str, str] | None = None
    for enc, common in (("gb18030", _is_common_gb), ("big5", _is_common_big5)):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        score = _score(text, common)
        if score is not None and score >= _PLAUSIBLE and (best is None or score > best[0]):
            best = (score, text, enc)
    return None if best is None else (best[1], best[2])


def _believable(text: str, encoding: str, data: bytes) -> bool:
    """Take a declared GB18030/Big5 reading unless it is mostly rare characters while the other
    encoding reads the bytes as common Chinese (a page declaring big5 that is GBK, or the reverse).
    Other declared encodings are taken as they are."""
    common = {"gb18030": _is_common_gb, "big5hkscs": _is_common_big5}.get(encoding)
    if common is None:
        return True
    score = _score(text, common)
    return score is None or score >= _PLAUSIBLE or _guess_chinese(data) is None


def _check_text(text: str, name: str) -> str:
    """Refuse decoded text that is really binary (many control characters) or blank."""
    if not text.strip():
        raise DocumentError(f"{name}: contains no text (only whitespace)")
    sample = text[:20000]
    bad = sum(1 for ch in sample if ch in _CONTROL)
    if bad > max(8, len(sample) // 100):
        raise DocumentError(
            f"{name}: looks like a binary file ({bad} control characters), not text"
        )
    return text
