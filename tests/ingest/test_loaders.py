"""`load_document`: suffix → loader, decoded and normalised text, a title, the encoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import DocumentError, UnsupportedFormat
from rag.ingest.loaders import load_document, supported_suffixes
from rag.ingest.normalize import normalize_text
from rag.types import Document

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def test_supported_suffixes() -> None:
    assert supported_suffixes() == [
        *(".docx", ".htm", ".html", ".markdown", ".md", ".pdf", ".text", ".txt")
    ]


def test_txt_from_the_corpus() -> None:
    (path,) = CORPUS.glob("000_*.txt")
    data = path.read_bytes()
    doc, encoding = load_document(path.name, data, {"lang": "zh"})
    assert isinstance(doc, Document)
    assert encoding == "utf-8"
    assert doc.source == path.name
    assert doc.title == "长三角出台全国首个跨省域物流降本增效方案"
    assert doc.text == normalize_text(data.decode("utf-8"))
    assert doc.metadata == {"lang": "zh"}


def test_txt_in_gb18030_and_big5() -> None:
    doc, encoding = load_document(
        "notes.txt", "物流降本增效方案\n“物流是国民经济的经脉”。".encode("gb18030")
    )
    assert (doc.title, encoding) == ("物流降本增效方案", "gb18030")
    doc, encoding = load_document(
        "notes.TXT", "長三角一體化發展\n滬蘇浙皖將一起做許多大項目。".encode("big5")
    )
    assert (doc.title, encoding) == ("長三角一體化發展", "big5")
    assert doc.text == "長三角一體化發展\n滬蘇浙皖將一起做許多大項目。"


def test_txt_title_is_a_title_like_first_line_or_none() -> None:
    long_first = "长" * 100 + "。"  # the text opens with a sentence: no title, not a cut one
    assert load_document("a.text", f"{long_first}\n第二行。".encode())[0].title == ""
    sentence = "11月8日,第六届中国国际进口博览会在国家会展中心举行,代表齐聚一堂。"
    assert load_document("b.txt", f"{sentence}\n第二句。".encode())[0].title == ""
    # a page artefact before the title is passed over
    doc, _ = load_document("c.txt", "- +1\n推動長三角更高質量一體化發展\n正文。".encode())
    assert doc.title == "推動長三角更高質量一體化發展"
    assert load_document("d.txt", "\n\n12\n长三角观察\n正文。".encode())[0].title == "长三角观察"


def test_metadata_is_copied_not_shared() -> None:
    metadata: dict[str, object] = {"k": 1}
    doc, _ = load_document("a.txt", "正文。".encode(), metadata)
    metadata["k"] = 2
    assert doc.metadata == {"k": 1}
    assert load_document("a.txt", "正文。".encode())[0].metadata == {}


@pytest.mark.parametrize(
    ("markdown", "title"),
    [
        ("# 长三角物流方案\n\n正文第一段。\n", "长三角物流方案"),
        ("前言一行\n\n## 第二节 标题 ##\n\n正文。\n", "第二节 标题"),
        ("   ### Indented heading\nbody text.\n", "Indented heading"),
        ("没有标题的说明文字\n\n正文。\n", "没有标题的说明文字"),
        ("#not a heading\n正文。\n", "#not a heading"),
    ],
)
def test_markdown_title_is_the_first_heading(markdown: str, title: str) -> None:
    for suffix in (".md", ".markdown"):
        doc, encoding = load_document(f"docs/readme{suffix}", markdown.encode())
        assert doc.title == title
        assert encoding == "utf-8"
        assert doc.text == normalize_text(markdown)


def test_markdown_heading_in_gbk() -> None:
    doc, encoding = load_document("说明.md", "# 物流“经脉”\n\n正文，“包邮区”。".encode("gbk"))
    assert (doc.title, encoding) == ("物流“经脉”", "gb18030")


@pytest.mark.parametrize(
    "source", ["report.doc", "scan.PNG", "data.csv", "slides.pptx", "archive.tar.gz"]
)
def test_unsupported_suffix_is_refused_naming_the_supported_types(source: str) -> None:
    with pytest.raises(UnsupportedFormat) as info:
        load_document(source, b"whatever")
    message = str(info.value)
    suffix = Path(source).suffix.lower()
    assert message.startswith(f"{source}: unsupported file type '{suffix}'")
    assert "supported: .docx, .htm, .html, .markdown, .md, .pdf, .text, .txt" in message
    assert info.value.code == "unsupported_format"
    assert isinstance(info.value, DocumentError)


def test_no_suffix_is_refused() -> None:
    with pytest.raises(
        UnsupportedFormat, match=r"README: unsupported file type '\(none\)'; supported: "
    ):
        load_document("README", "正文。".encode())


def test_suffix_is_checked_before_the_bytes() -> None:
    with pytest.raises(UnsupportedFormat):
        load_document("image.png", b"\x89PNG\r\n\x1a\n\x00\x00")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"  \n\t ", "whitespace"),
        (
            "\u200b\ufeff\u200b".encode(),
            "no text left",
        ),  # only format characters: nothing after cleaning
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ],
)
def test_bad_contents_raise_document_error(data: bytes, words: str) -> None:
    with pytest.raises(DocumentError, match=words) as info:
        load_document("upload.txt", data)
    assert str(info.value).startswith("upload.txt: ")
    assert not isinstance(info.value, UnsupportedFormat)
