"""PDF, Word and HTML documents: what is stored of them, their pages in citations, and every kind
of bad file refused by name with the index left as it was.

Fixtures are made here: Chinese PDFs by reportlab with its built-in CID font, Word files by
python-docx, HTML pages by hand (`ingest.samples`).
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ingest import samples

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.errors import (
    CorruptDocument,
    DocumentError,
    DocumentTooLarge,
    EncryptedDocument,
    NoTextLayer,
    UnsupportedFormat,
)
from rag.ingest.decode import decode_bytes
from rag.ingest.formats.html import declared_charset
from rag.ingest.formats.pdf import page_texts
from rag.ingest.loaders import load_document
from rag.ingest.pages import page_of
from rag.ingest.pipeline import prepare


# --- PDF -----------------------------------------------------------------------------------------
def test_pdf_text_layer_is_exact_chinese() -> None:
    # reportlab writes CID codes of Adobe-GB1; the extractor must map them back to these characters
    raw = page_texts("gazette.pdf", samples.gazette_pdf())
    assert len(raw) == len(samples.GAZETTE_PAGES)
    for text, lines in zip(raw, samples.GAZETTE_PAGES, strict=True):
        assert all(line in text for line in lines)
        assert samples.HEADER in text  # what cleaning has to remove is really there


def test_pdf_headers_footers_go_and_the_body_stays() -> None:
    doc, encoding = load_document("gazette.pdf", samples.gazette_pdf(), {"lang": "zh"})
    text = doc.text
    assert encoding == ""
    assert samples.HEADER not in text and "2024年第" not in text
    for n in range(1, len(samples.GAZETTE_PAGES) + 1):
        assert f"- {n} -" not in text
    assert "\n1\n" not in text and not text.rstrip().endswith("4")
    # every body line is there, whole (wrapped lines may be joined: each stays intact), in order
    body = [ln.replace("２０２７", "2027") for page in samples.GAZETTE_PAGES for ln in page]
    body = [ln for ln in body if "infor-" not in ln and not ln.startswith("mation")]
    positions = [text.find(ln) for ln in body]
    assert -1 not in positions and positions == sorted(positions)
    assert "The port community information system will link" in text  # hyphenated word joined
    # lines that fill the page's measure and stop mid-sentence go on in the next one
    assert "现就推进港航物流一体化提出如下意见" in text and "上海国际港务集团负责运营" in text
    assert "实施意见\n各区人民政府" in text  # the title keeps its own line
    assert doc.title == samples.GAZETTE_PAGES[0][0]
    assert doc.metadata["lang"] == "zh"


def test_pdf_pages_are_spans_of_the_stored_text() -> None:
    doc, _ = load_document("gazette.pdf", samples.gazette_pdf())
    spans = doc.metadata["pages"]
    assert len(spans) == len(samples.GAZETTE_PAGES)
    assert "\n\n".join(doc.text[a:b] for a, b in spans) == doc.text
    for n, ((a, b), lines) in enumerate(zip(spans, samples.GAZETTE_PAGES, strict=True), 1):
        page_text = doc.text[a:b]
        assert page_text.startswith(lines[0])  # each page's own heading opens its span
        assert page_of(doc.metadata, a) == n and page_of(doc.metadata, b - 1) == n
    answer = doc.text.index("六百三十万标准箱")
    assert page_of(doc.metadata, answer) == 3


def test_pdf_pages_win_over_a_callers_pages_key() -> None:
    doc, _ = load_document("gazette.pdf", samples.gazette_pdf(), {"pages": 4})
    assert isinstance(doc.metadata["pages"], list) and len(doc.metadata["pages"]) == 4


def test_pdf_with_only_an_owner_password_is_read() -> None:
    # "Protected" PDFs that only forbid copying open with an empty password: they are not refused.
    locked, _ = load_document("locked.pdf", samples.owner_locked_pdf())
    plain, _ = load_document("plain.pdf", samples.gazette_pdf())
    assert locked.text == plain.text


# --- Word ----------------------------------------------------------------------------------------
def test_docx_paragraphs_headings_and_table_rows() -> None:
    doc, encoding = load_document("report.docx", samples.docx_bytes())
    assert encoding == "" and doc.title == samples.DOCX_TITLE
    rows = [" | ".join(r) for r in samples.DOCX_TABLE]
    assert doc.text.split("\n") == [
        samples.DOCX_TITLE,
        samples.DOCX_HEADING,
        *samples.DOCX_PARAGRAPHS,
        *rows,
        "数据来源：青石镇统计站",  # the merged cell, once
        "以上数据均为初步统计。",
    ]


# --- HTML ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("charset", ["utf-8", "gbk", "gb2312", "GB18030"])
def test_html_main_content_without_boilerplate(charset: str) -> None:
    page = samples.html_page(charset)
    data = page.encode("utf-8" if charset == "utf-8" else "gb18030")
    for suffix in (".html", ".htm"):
        doc, encoding = load_document(f"news/page{suffix}", data)
        assert encoding == ("utf-8" if charset == "utf-8" else "gb18030")
        assert doc.title == samples.ARTICLE_TITLE
        for p in samples.ARTICLE_PARAGRAPHS:
            assert p in doc.text.split("\n")
        for junk in [*samples.BOILERPLATE, "不应出现的脚本文字", "<p>", "|---"]:
            assert junk not in doc.text, junk
        assert "物流费用比率 | 13%" in doc.text  # the article's table, a row per line


def test_html_meta_charset_is_respected() -> None:
    # Big5 bytes that also read as valid GB18030: detection alone picks the wrong one.
    text = "<html><head><title>資訊</title></head><body><p>簡體資訊第7期</p></body></html>"
    undeclared = text.encode("big5")
    assert decode_bytes(undeclared)[0] != text  # the test can fail: detection reads it wrongly
    declared = text.replace("<head>", '<head><meta charset="big5">').encode("big5")
    doc, encoding = load_document("zh-tw.html", declared)
    assert encoding == "big5hkscs"
    assert doc.text == "簡體資訊第7期" and doc.title == "資訊"
    http_equiv = text.replace(
        "<head>", '<head><meta http-equiv="Content-Type" content="text/html; charset=big5">'
    )
    assert load_document("zh-tw.htm", http_equiv.encode("big5"))[0].text == "簡體資訊第7期"


@pytest.mark.parametrize(
    ("head", "charset"),
    [
        (b'<meta charset="gbk">', "gbk"),
        (b"<META CHARSET=big5>", "big5"),
        (b'<meta http-equiv="content-type" content="text/html; charset=GB2312" />', "GB2312"),
        (b'<?xml version="1.0" encoding="gb18030"?><html>', "gb18030"),
        (b"<html><head><title>none</title>", None),
    ],
)
def test_declared_charset(head: bytes, charset: str | None) -> None:
    assert declared_charset(b"<!DOCTYPE html>" * (head[:5] != b"<?xml") + head) == charset


def test_html_declaring_a_wrong_charset_is_still_read() -> None:
    # Saved as UTF-8 but still saying gb2312, as re-encoded pages often do.
    data = samples.html_page("gb2312").encode("utf-8")
    doc, encoding = load_document("resaved.html", data)
    assert encoding == "utf-8" and samples.ARTICLE_PARAGRAPHS[0] in doc.text


# --- bad files: named errors ---------------------------------------------------------------------
def _zip_named_docx() -> bytes:
    return samples.plain_zip()


def _truncated_pdf() -> bytes:
    data = samples.gazette_pdf()
    return data[: len(data) // 2]


def _encrypted_docx() -> bytes:
    # Word saves a password-protected .docx as an OLE2 compound file with these streams.
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    return ole + "EncryptionInfo".encode("utf-16-le") + "EncryptedPackage".encode("utf-16-le")


BAD_FILES: dict[str, tuple[str, Callable[[], bytes], type[DocumentError], list[str]]] = {
    # case: (file name, bytes, error class, words the message holds besides the file name)
    "encrypted-pdf": (
        "secret.pdf",
        samples.encrypted_pdf,
        EncryptedDocument,
        ["encrypted", "decrypt it first"],
    ),
    "truncated-pdf": ("cut.pdf", _truncated_pdf, CorruptDocument, ["damaged or truncated"]),
    "not-a-pdf": ("fake.pdf", lambda: b"<html>not a pdf</html>", CorruptDocument, ["not a pdf"]),
    "image-only-pdf": (
        "scan.pdf",
        samples.image_only_pdf,
        NoTextLayer,
        ["no text layer (scanned?)", "ocr", "ocrmypdf"],
    ),
    "zip-not-docx": ("archive.docx", _zip_named_docx, CorruptDocument, ["not a valid .docx"]),
    "docx-without-body": (
        "hollow.docx",
        samples.docx_without_document_xml,
        CorruptDocument,
        ["word/document.xml"],
    ),
    "random-docx": (
        "noise.docx",
        lambda: os.urandom(2048),
        CorruptDocument,
        ["not a valid .docx", "not a zip"],
    ),
    "truncated-docx": (
        "half.docx",
        lambda: samples.docx_bytes()[:5000],
        CorruptDocument,
        ["not a valid .docx"],
    ),
    "encrypted-docx": ("locked.docx", _encrypted_docx, EncryptedDocument, ["encrypted"]),
    "old-doc": (
        "old.docx",
        lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000),
        UnsupportedFormat,
        ["97-2003", "save it as .docx"],
    ),
    "empty-pdf": ("empty.pdf", lambda: b"", DocumentError, ["empty"]),
    "empty-docx": ("empty.docx", lambda: b"", DocumentError, ["empty"]),
    "empty-html": ("empty.html", lambda: b"", DocumentError, ["empty"]),
    "html-without-text": (
        "blank.html",
        lambda: b"<html><head><title>t</title></head><body><script>x=1</script></body></html>",
        DocumentError,
        ["no text"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_gives_its_named_error(case: str) -> None:
    name, make, error, words = BAD_FILES[case]
    with pytest.raises(DocumentError) as info:
        load_document(name, make())
    assert type(info.value) is error, info.value
    message = str(info.value)
    assert message.startswith(f"{name}: ")
    for word in words:
        assert word in message.lower(), message


def test_zip_not_docx_really_is_a_valid_zip() -> None:
    assert zipfile.ZipFile(io.BytesIO(_zip_named_docx())).namelist() == ["notes.txt"]


def test_file_over_the_limit_names_the_setting() -> None:
    data = samples.gazette_pdf()
    with pytest.raises(DocumentTooLarge) as info:
        prepare("big.pdf", data, chunk_size=400, chunk_overlap=1, max_bytes=len(data) - 1)
    message = str(info.value)
    assert message.startswith("big.pdf: ") and "RAG_MAX_FILE_BYTES" in message
    assert str(len(data) - 1) in message


# --- into a real engine --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Iterator[Engine]:
    engine = Engine(
        Settings(index_dir=tmp_path_factory.mktemp("formats_idx")), embedder=use_embedder
    )
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def gazette(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The gazette PDF ingested from a folder, with a Word file and an HTML page beside it."""
    folder = tmp_path_factory.mktemp("formats_src")
    (folder / "gazette.pdf").write_bytes(samples.gazette_pdf())
    (folder / "report.docx").write_bytes(samples.docx_bytes())
    (folder / "news.html").write_bytes(samples.html_page("gbk").encode("gb18030"))
    results = engine.ingest_paths([folder])
    assert {r.source: r.status for r in results} == {
        "gazette.pdf": "added",
        "news.html": "added",
        "report.docx": "added",
    }
    return next(r.doc_id for r in results if r.source == "gazette.pdf")


def _state(engine: Engine) -> tuple[int, int, int]:
    return engine.store.count_documents(), engine.store.count_chunks(), engine.store.generation()


@pytest.mark.parametrize(
    ("question", "page", "answer"),
    [
        ("洋山港四期自动化码头的年设计吞吐能力是多少？", 3, "六百三十万标准箱"),
        ("内河集装箱运输量的目标是多少？", 2, "一千万标准箱"),
    ],
)
def test_citation_gives_the_page_of_its_quote(
    engine: Engine, gazette: str, question: str, page: int, answer: str
) -> None:
    result = engine.ask(question, mode="extractive", sources=["gazette.pdf"])
    assert result.answerable, result
    cited = [c for c in result.citations if answer in c.quote]
    assert cited, result.citations
    text = engine.store.document_text(gazette)
    for c in result.citations:
        passage = result.passages[c.marker - 1]
        assert passage.text[c.start - passage.start : c.end - passage.start] == c.quote
        assert text[c.start : c.end] == c.quote
        assert c.page == page_of({"pages": _pages(engine, gazette)}, c.start)
    assert all(c.page == page for c in cited)
    for p in result.passages:
        assert p.page == page_of({"pages": _pages(engine, gazette)}, p.start)
        assert p.page is not None


def _pages(engine: Engine, doc_id: str) -> list[list[int]]:
    pages = engine.document(doc_id).metadata["pages"]
    assert isinstance(pages, list)
    return pages


def test_search_passages_of_other_formats_have_no_page(engine: Engine, gazette: str) -> None:
    result = engine.search("青石镇竹编合作社有多少家？", sources=["report.docx", "news.html"])
    assert result.passages and all(p.page is None and not p.page_spans for p in result.passages)
    answer = engine.ask("青石镇竹编合作社有多少家？", mode="extractive", sources=["report.docx"])
    assert answer.citations and all(c.page is None for c in answer.citations)


def test_page_spans_come_with_the_snapshot(engine: Engine, gazette: str) -> None:
    spans = engine.snapshot.pages[gazette]
    assert [[s.start, s.end] for s in spans] == _pages(engine, gazette)
    assert [s.page for s in spans] == [1, 2, 3, 4]
    assert set(engine.snapshot.pages) == {gazette}  # the Word file and the page have none


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_leaves_the_index_unchanged(engine: Engine, gazette: str, case: str) -> None:
    name, make, error, _ = BAD_FILES[case]
    before = _state(engine)
    with pytest.raises(error):
        engine.ingest_bytes(f"bad/{name}", make())
    assert _state(engine) == before
    assert f"bad/{name}" not in {d.source for d in engine.documents()}


def test_ingesting_a_folder_reports_each_bad_file_and_keeps_the_good(
    engine: Engine, gazette: str, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for case in ("encrypted-pdf", "image-only-pdf", "random-docx", "truncated-pdf"):
        name, make, _, _ = BAD_FILES[case]
        (folder / name).write_bytes(make())
    (folder / "good.pdf").write_bytes(
        samples.pdf_bytes([["沪苏湖高铁全长约一百六十四公里，设计时速三百五十公里。"]])
    )
    docs, _, generation = _state(engine)
    results = engine.ingest_paths([folder])
    status = {r.source: r.status for r in results}
    assert status == {
        "cut.pdf": "failed",
        "good.pdf": "added",
        "noise.docx": "failed",
        "scan.pdf": "failed",
        "secret.pdf": "failed",
    }
    reasons = {r.source: r.reason for r in results}
    assert "encrypted" in reasons["secret.pdf"] and "no text layer" in reasons["scan.pdf"]
    assert "truncated" in reasons["cut.pdf"] and "not a valid .docx" in reasons["noise.docx"]
    assert all(reasons[s].startswith(f"{s}: ") for s in reasons if status[s] == "failed")
    assert _state(engine)[0] == docs + 1 and _state(engine)[2] == generation + 1
