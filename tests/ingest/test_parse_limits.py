"""What a file may expand to while it is parsed (`rag.ingest.limits`): zip bombs refused from
their zip directory before anything is inflated, a zip directory that lies caught without
inflating, PDFs refused by their page count before their pages are read and by their text while
it is extracted, documents over the chunk limit; and the engine's side: all documents of a
request together, and a cancelled ingest that stores nothing.

The in-process parses run under `address_space_headroom`: a regression that inflates a bomb in
this process fails with a `MemoryError` instead of taking gigabytes from the machine.
"""

from __future__ import annotations

import io
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from ingest import bombs, samples
from ingest.processes import address_space_headroom

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine, Upload
from rag.errors import Cancelled, CorruptDocument, DocumentTooLarge
from rag.ingest.limits import DEFAULT_LIMITS, ParseLimits
from rag.ingest.loaders import load_document
from rag.ingest.pipeline import prepare

GIB = 1 << 30


def parse(name: str, data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> Any:
    return prepare(name, data, chunk_size=400, chunk_overlap=1, max_bytes=20 << 20, limits=limits)


def refused(
    error: type[Exception], call: Callable[[], object], *, trace: bool = True
) -> tuple[str, float, int]:
    """The message of the `error` `call` raises, the seconds it took, and the most it allocated
    (bytes, traced; 0 untraced: tracing slows pure-Python parsing several times)."""
    if trace:
        tracemalloc.start()
    start = time.monotonic()
    try:
        with address_space_headroom(GIB), pytest.raises(error) as info:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return str(info.value), time.monotonic() - start, peak


# --- .docx ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "expanded"),
    [
        (lambda: bombs.docx_of_paragraphs(350), 349_000_000),  # 1 MB → 350 MB of XML
        (lambda: bombs.docx_of_one_text_node(1000), 1_000_000_000),  # 1 MB → 1 GB
    ],
    ids=["paragraphs", "one-text-node"],
)
def test_docx_zip_bomb_is_refused_from_its_zip_directory(
    make: Callable[[], bytes], expanded: int
) -> None:
    data = make()
    assert len(data) < 1_200_000  # the upload itself is small
    message, seconds, peak = refused(DocumentTooLarge, lambda: parse("bomb.docx", data))
    assert message.startswith("bomb.docx: the .docx expands to ")
    assert "RAG_MAX_EXPANDED_BYTES" in message and str(DEFAULT_LIMITS.max_expanded_bytes) in message
    declared = int(message.split("expands to ")[1].split()[0])
    assert declared >= expanded
    assert peak < 20_000_000, f"{peak} bytes allocated: the bomb was inflated"
    assert seconds < 10


def test_docx_whose_zip_understates_a_member_is_refused_without_inflating_it() -> None:
    # the directory says 1 KiB; the member inflates to 200 MB
    data = bombs.docx_understating(200)
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo("word/document.xml").file_size == 1024
    message, _, peak = refused(CorruptDocument, lambda: parse("liar.docx", data))
    assert message.startswith("liar.docx: not a valid .docx file")
    assert peak < 20_000_000, f"{peak} bytes allocated: the member was inflated in one piece"


def test_docx_member_compressed_with_bzip2_is_refused() -> None:
    # zipfile inflates bzip2 in one call, whatever size the directory declares: Word never uses it
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("[Content_Types].xml", bombs.CONTENT_TYPES)
        z.writestr("_rels/.rels", bombs.RELS)
        z.writestr(
            "word/document.xml",
            bombs.BODY_HEAD + "<w:p><w:r><w:t>正文。</w:t></w:r></w:p>".encode() + bombs.BODY_TAIL,
        )
    message, _, _ = refused(CorruptDocument, lambda: parse("bz.docx", buf.getvalue()))
    assert "compression method 12" in message


def test_docx_under_the_limits_is_read() -> None:
    doc, _ = load_document("ok.docx", bombs.docx_text(["第一段。", "第二段。"]))
    assert doc.text == "第一段。\n第二段。"


def test_docx_text_over_the_chars_limit_stops_while_it_is_read() -> None:
    data = bombs.docx_text(["字" * 1000] * 200)  # 200,000 characters
    limits = ParseLimits(max_document_chars=50_000)
    message, _, _ = refused(DocumentTooLarge, lambda: parse("long.docx", data, limits))
    assert message == (
        "long.docx: the text is over the limit of 50000 characters (RAG_MAX_DOCUMENT_CHARS)"
    )


# --- PDF -----------------------------------------------------------------------------------
def test_pdf_of_100000_pages_is_refused_by_its_page_count() -> None:
    data = bombs.pdf_of_pages(100_000)  # 16 MB; reading every page took minutes
    assert len(data) < 20 << 20
    message, seconds, _ = refused(DocumentTooLarge, lambda: parse("pages.pdf", data), trace=False)
    assert message == (
        "pages.pdf: the PDF has 100000 pages, over the limit of 10000 pages (RAG_MAX_PDF_PAGES)"
    )
    assert seconds < 20  # the page tree's count, not 100,000 pages read (~40 s only to list them)


def test_pdf_whose_page_count_lies_is_refused_by_its_pages() -> None:
    data = bombs.pdf_of_pages(1500, declared_count=1)
    message, _, _ = refused(
        DocumentTooLarge,
        lambda: parse("liar.pdf", data, ParseLimits(max_pdf_pages=1000)),
        trace=False,
    )
    assert "has 1500 pages, over the limit of 1000 pages (RAG_MAX_PDF_PAGES)" in message


def test_pdf_within_the_page_limit_is_read() -> None:
    doc, _ = load_document(
        "gazette.pdf", samples.gazette_pdf(), limits=ParseLimits(max_pdf_pages=4)
    )
    assert len(doc.metadata["pages"]) == 4


def test_small_pdf_expanding_past_the_chars_limit_is_refused_while_extracted() -> None:
    data = bombs.pdf_drawing(50_000, 40)  # a few KB that draw 2,000,000 characters
    assert len(data) < 20_000
    limits = ParseLimits(max_document_chars=200_000)
    message, _, peak = refused(DocumentTooLarge, lambda: parse("dense.pdf", data, limits))
    assert message == (
        "dense.pdf: the text is over the limit of 200000 characters (RAG_MAX_DOCUMENT_CHARS)"
    )
    assert peak < 10_000_000  # stopped a few pages in, not after extracting all 40


# --- any format ----------------------------------------------------------------------------
def test_text_over_the_chars_limit_is_refused() -> None:
    message, _, _ = refused(
        DocumentTooLarge,
        lambda: parse("a.txt", "正文。".encode() * 1000, ParseLimits(max_document_chars=2999)),
    )
    assert "over the limit of 2999 characters (RAG_MAX_DOCUMENT_CHARS)" in message


def test_document_over_the_chunk_limit_is_refused() -> None:
    text = "这是一个用来测试分块数量上限的句子。" * 400  # ~7,200 characters: ~20 chunks
    message, _, _ = refused(
        DocumentTooLarge,
        lambda: parse("many.txt", text.encode(), ParseLimits(max_chunks_per_document=5)),
    )
    assert message.startswith("many.txt: ")
    assert "over the limit of 5 chunks per document (RAG_MAX_CHUNKS_PER_DOCUMENT)" in message


def test_settings_carry_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().parse_limits == DEFAULT_LIMITS
    monkeypatch.setenv("RAG_MAX_PDF_PAGES", "7")
    monkeypatch.setenv("RAG_MAX_EXPANDED_BYTES", "1000")
    limits = Settings().parse_limits
    assert (limits.max_pdf_pages, limits.max_expanded_bytes) == (7, 1000)
    for name in (
        "max_expanded_bytes",
        "max_document_chars",
        "max_pdf_pages",
        "max_chunks_per_document",
        "parse_sandbox",
        "parse_timeout",
        "parse_memory_mb",
    ):
        assert Settings.model_fields[name].description, name


def test_the_bundled_corpus_is_within_the_default_limits() -> None:
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[2] / "corpus").iterdir()):
        assert parse(path.name, path.read_bytes()).chunks


# --- the engine ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Iterator[Engine]:
    # small embedding batches: a cancelled ingest stops after one slice of 8 batches = 64 texts
    settings = Settings(
        index_dir=tmp_path_factory.mktemp("limits_idx"), max_document_chars=6000, embed_batch_size=8
    )
    engine = Engine(settings, embedder=use_embedder)
    yield engine
    engine.close()


def state(engine: Engine) -> tuple[int, int, int]:
    return engine.store.count_documents(), engine.store.count_chunks(), engine.store.generation()


def test_documents_of_one_request_are_limited_together(engine: Engine) -> None:
    before = state(engine)
    half = ("正文。" * 1100).encode()  # 3,300 characters each: under 6,000 alone, over together
    with pytest.raises(DocumentTooLarge) as info:
        engine.ingest_documents([Upload("a.txt", half), Upload("b.txt", half + b"x")])
    assert "hold more than 6000 characters together (RAG_MAX_DOCUMENT_CHARS)" in str(info.value)
    assert state(engine) == before
    assert engine.ingest_documents([Upload("a.txt", half)])[0].status == "added"


def test_cancelled_ingest_stops_embedding_and_stores_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = state(engine)
    text = "".join(f"第{i}条不同。" for i in range(100))  # 100 sentences: > 64 texts to embed
    calls: list[int] = []
    embed = engine.embedder.embed

    def counted(texts: Any, kind: Any = "passage", batch_size: int = 64) -> np.ndarray:
        calls.append(len(texts))
        return embed(texts, kind, batch_size)

    monkeypatch.setattr(engine.embedder, "embed", counted)
    if hasattr(engine.embedder, "pool"):  # the default embedder pools parts (rag.embed.passages)
        pool = engine.embedder.pool

        def pooled(texts: Any) -> Any:
            calls.append(len(texts))
            return pool(texts)

        monkeypatch.setattr(engine.embedder, "pool", pooled)
    with pytest.raises(Cancelled):  # the client goes away once embedding has started
        engine.ingest_documents([Upload("gone.txt", text.encode())], cancelled=lambda: bool(calls))
    assert sum(calls) == 64  # one slice of 8 batches, not all the texts
    assert state(engine) == before
