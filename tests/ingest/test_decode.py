"""`decode_bytes`: the encoding comes from the bytes; what cannot be text is refused by name."""

from __future__ import annotations

import codecs
import random
import re
from pathlib import Path

import pytest

from rag.errors import DocumentError
from rag.ingest.decode import decode_bytes

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def _corpus(prefix: str) -> str:
    (path,) = CORPUS.glob(f"{prefix}_*.txt")
    return path.read_text(encoding="utf-8")


SIMPLIFIED = _corpus("000")  # 长三角出台全国首个跨省域物流降本增效方案 …
TRADITIONAL = _corpus("003")  # 推動長三角更高質量一體化發展 …

# Real passages of up to 30 characters. In GB18030, charset-normalizer alone refused the first
# three and the last one ("cannot decode": its mess detector distrusts “quotes” after hanzi).
SHORT_SIMPLIFIED = [
    "阻”，《行动方案》提出，合力开展“一单制”“一箱制”试点，打",
    "定“械谷”；主城区有“链谷”“数字谷”，郊区新城有“美谷”“",
    "在这里，有“本土队”“海归队”，也有“国家队”“国际队”。",
    "“物流是国民经济的‘经脉’，降低全社会物流成本是提高经济运行",
    "长三角出台全国首个跨省域物流降本增效方案",
    "畅通“包邮区”物流“经脉”",
]
# Short GB18030 strings (from 001) charset-normalizer read as Big5 mojibake (第7期 → 菴7ぶ).
READ_AS_BIG5_BEFORE = ["第7期（总第150期）", "2025年7月", "（作者：孔令池）", "邮 编：200032"]
SHORT_TRADITIONAL = [
    "長三角地區是中國經濟最具活力、開放程度最高、創新能力最強的區",
    "量子通信“京滬干線”成功開通,滬通鐵路一期項目順利推進",
    "推動長三角更高質量一體化發展|滬蘇浙皖將一起做許多大項目",
]


def _id(text: object) -> str:
    """A short test id: the passage's length (whole files are `file`)."""
    return f"{len(text)}ch" if isinstance(text, str) and len(text) < 100 else "file"


def _sentences(text: str, lo: int, hi: int) -> list[str]:
    """Every sentence of `text` between `lo` and `hi` characters long."""
    parts = re.findall(r"[^。！？\n]+[。！？]?", text)
    return [p.strip() for p in parts if lo <= len(p.strip()) <= hi]


def _check(data: bytes, expected: str, encodings: set[str]) -> None:
    text, encoding = decode_bytes(data, "doc.txt")
    assert text == expected
    assert encoding.replace("_", "-") in encodings


# --- texts that decode -------------------------------------------------------------------------


def test_passages_are_real_and_short() -> None:
    for passages, source in ((SHORT_SIMPLIFIED, SIMPLIFIED), (SHORT_TRADITIONAL, TRADITIONAL)):
        assert max(len(p) for p in passages) == 30
        assert all(p in source for p in passages)


@pytest.mark.parametrize(
    "text", [SIMPLIFIED, TRADITIONAL, *SHORT_SIMPLIFIED, *SHORT_TRADITIONAL, "plain ASCII"], ids=_id
)
def test_utf8_without_and_with_bom(text: str) -> None:
    _check(text.encode("utf-8"), text, {"utf-8"})
    _check(codecs.BOM_UTF8 + text.encode("utf-8"), text, {"utf-8-sig"})


@pytest.mark.parametrize(
    "text", [SIMPLIFIED, TRADITIONAL, *SHORT_SIMPLIFIED, *SHORT_TRADITIONAL], ids=_id
)
def test_utf16_and_utf32_with_bom(text: str) -> None:
    _check(text.encode("utf-16"), text, {"utf-16"})  # the platform's byte order, with BOM
    _check(codecs.BOM_UTF16_BE + text.encode("utf-16-be"), text, {"utf-16"})
    _check(codecs.BOM_UTF16_LE + text.encode("utf-16-le"), text, {"utf-16"})
    _check(text.encode("utf-32"), text, {"utf-32"})


@pytest.mark.parametrize("text", [SIMPLIFIED, *SHORT_SIMPLIFIED], ids=_id)
@pytest.mark.parametrize("encoding", ["gb18030", "gbk"])
def test_simplified_chinese_in_gb18030_or_gbk(text: str, encoding: str) -> None:
    _check(text.encode(encoding), text, {"gb18030"})


@pytest.mark.parametrize("text", READ_AS_BIG5_BEFORE, ids=_id)
def test_short_gb18030_is_not_read_as_big5(text: str) -> None:
    _check(text.encode("gb18030"), text, {"gb18030"})


@pytest.mark.parametrize("text", [TRADITIONAL, *SHORT_TRADITIONAL], ids=_id)
def test_traditional_chinese_in_big5(text: str) -> None:
    _check(text.encode("big5"), text, {"big5"})


@pytest.mark.parametrize("text", [TRADITIONAL, *SHORT_TRADITIONAL], ids=_id)
def test_traditional_chinese_in_gbk(text: str) -> None:
    _check(text.encode("gbk"), text, {"gb18030"})


def test_every_sentence_of_the_simplified_sample_decodes_from_gb18030() -> None:
    sentences = _sentences(SIMPLIFIED, 10, 80)
    assert len(sentences) > 50
    wrong = [s for s in sentences if decode_bytes(s.encode("gb18030"))[0] != s]
    assert wrong == []


def test_every_sentence_of_the_traditional_sample_decodes_from_big5() -> None:
    sentences = _sentences(TRADITIONAL, 10, 120)
    assert len(sentences) > 10
    wrong = [s for s in sentences if decode_bytes(s.encode("big5"))[0] != s]
    assert wrong == []


def test_sliding_30_character_windows_decode_in_the_right_encoding() -> None:
    for text, encoding in ((SIMPLIFIED, "gb18030"), (TRADITIONAL, "big5")):
        body = text.replace("\n", "")
        windows = [body[i : i + 30] for i in range(0, len(body) - 30, 23)]
        wrong = [w for w in windows if decode_bytes(w.encode(encoding)) != (w, encoding)]
        assert wrong == [], encoding


def test_gb18030_four_byte_characters() -> None:
    text = "长三角𠀀物流€方案，１２３。"  # CJK Extension B and the euro sign need GB18030 proper
    _check(text.encode("gb18030"), text, {"gb18030"})


# --- what is refused --------------------------------------------------------------------------


def _refused(data: bytes, *words: str) -> str:
    with pytest.raises(DocumentError) as info:
        decode_bytes(data, "upload.txt")
    message = str(info.value)
    assert message.startswith("upload.txt: ")
    for word in words:
        assert word in message, message
    return message


def test_empty_bytes() -> None:
    _refused(b"", "empty")


@pytest.mark.parametrize(
    "data",
    [
        b" ",
        b" \n\t\r\n  ",
        "\u3000\u3000\n".encode(),
        codecs.BOM_UTF8 + b"   ",
        " \n ".encode("utf-16"),
    ],
)
def test_whitespace_only(data: bytes) -> None:
    _refused(data, "no text", "whitespace")


def test_png_with_nul_bytes_is_binary() -> None:
    rng = random.Random(7)
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rng.randrange(256) for _ in range(2000))
    _refused(png, "binary", "NUL")


def test_nul_bytes_later_in_the_file() -> None:
    _refused("正文。".encode() * 100 + b"\x00\x01\x02\x00", "binary", "NUL")


def test_control_characters_without_nul_are_binary() -> None:
    _refused(bytes(range(1, 32)) * 50, "binary", "control characters")


def test_high_bytes_no_candidate_decodes() -> None:
    _refused(bytes(range(0x80, 0x100)) * 50, "cannot decode", "GB18030", "Big5")


@pytest.mark.parametrize("seed", range(5))
def test_random_high_bytes_are_refused(seed: int) -> None:
    rng = random.Random(seed)
    blob = bytes(rng.randrange(0x80, 0x100) for _ in range(3000))
    _refused(blob, "cannot decode")


def test_latin1_bytes_are_not_passed_off_as_chinese() -> None:
    # Not a candidate encoding: refused rather than turned into mojibake.
    _refused(("Ça coûte très cher à Noël. " * 20).encode("latin-1"), "cannot decode")


def test_bom_followed_by_invalid_bytes() -> None:
    _refused(codecs.BOM_UTF8 + b"\xff\xfe\xfa\xfb" * 10, "byte-order mark", "not valid")


# --- an encoding the document declares (HTML <meta charset>) -------------------------------------


def test_declared_encoding_decides_between_readings() -> None:
    text = (
        "簡體資訊第7期"  # its Big5 bytes are valid GB18030 too, and read so without a declaration
    )
    data = text.encode("big5")
    assert decode_bytes(data)[0] != text
    assert decode_bytes(data, "page.html", "big5") == (text, "big5hkscs")
    assert decode_bytes(data, "page.html", "x-big5") == (text, "big5hkscs")


@pytest.mark.parametrize("declared", ["gbk", "GB2312", "gb18030", "x-gbk"])
def test_declared_gb_names_read_as_gb18030(declared: str) -> None:
    text = "“一单制”试点 © 2024"  # `©` is in GB18030, not in GBK: browsers read gbk as gb18030
    assert decode_bytes(text.encode("gb18030"), "page.html", declared) == (text, "gb18030")


@pytest.mark.parametrize("declared", ["utf-16", "base64", "no-such-codec", "", "rot13", "big5"])
def test_a_wrong_or_unusable_declaration_falls_back_to_detection(declared: str) -> None:
    text = SHORT_SIMPLIFIED[0]
    assert decode_bytes(text.encode("gb18030"), "page.html", declared) == (text, "gb18030")


def test_utf8_wins_over_a_declared_legacy_encoding() -> None:
    # a page re-saved as UTF-8 that still says gb2312
    assert decode_bytes(SIMPLIFIED.encode("utf-8"), "page.html", "gb2312") == (SIMPLIFIED, "utf-8")


def test_big5_page_declaring_gbk_is_still_read_as_big5() -> None:
    text = SHORT_TRADITIONAL[0]
    assert decode_bytes(text.encode("big5"), "page.html", "gbk") == (text, "big5")
