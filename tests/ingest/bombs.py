"""Hostile test files built on the fly: zip-bomb `.docx` files (repeated paragraphs, one huge
text node, a zip directory that understates a member's size), and raw PDFs with many pages, with
pages that draw a lot of text from little, or with content that is slow to read. Imported as
`ingest.bombs`.

Zips are written by hand so that a gigabyte of XML costs a second to build: after a full flush a
deflate stream restarts from scratch, so one repeated piece compresses to the same bytes every
time and is compressed once.
"""

from __future__ import annotations

import struct
import zlib

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
BODY_HEAD = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W}"><w:body>'
).encode()
BODY_TAIL = b"</w:body></w:document>"
PARAGRAPH = "<w:p><w:r><w:t>啊</w:t></w:r></w:p>".encode()


class Member:
    """One zip member: deflated bytes, and the size and CRC of what they inflate to."""

    def __init__(self, name: str, deflated: bytes, size: int, crc: int) -> None:
        self.name, self.deflated, self.size, self.crc = name, deflated, size, crc

    @classmethod
    def of(cls, name: str, data: bytes) -> Member:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return cls(name, c.compress(data) + c.flush(), len(data), zlib.crc32(data))

    @classmethod
    def repeated(cls, name: str, head: bytes, piece: bytes, times: int, tail: bytes) -> Member:
        """`head + piece * times + tail`, deflated without building it."""
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        out = [c.compress(head), c.flush(zlib.Z_FULL_FLUSH)]
        once = c.compress(piece) + c.flush(zlib.Z_FULL_FLUSH)
        out.append(once * times)
        out += [c.compress(tail), c.flush()]
        crc = zlib.crc32(head)
        for _ in range(times):
            crc = zlib.crc32(piece, crc)
        crc = zlib.crc32(tail, crc)
        return cls(name, b"".join(out), len(head) + len(piece) * times + len(tail), crc)


def zip_archive(members: list[Member], *, declared: dict[str, int] | None = None) -> bytes:
    """A zip of deflated members; `declared` overrides the size written for a member (a lie)."""
    out = bytearray()
    central = bytearray()
    for m in members:
        size = (declared or {}).get(m.name, m.size)
        name = m.name.encode()
        offset = len(out)
        fields = (20, 0, 8, 0, 0x21, m.crc, len(m.deflated), size, len(name), 0)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + name + m.deflated
        central += (
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, offset) + name
        )
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0
    )
    return bytes(out + central + end)


def _package(document: Member, **kwargs: dict[str, int]) -> bytes:
    return zip_archive(
        [Member.of("[Content_Types].xml", CONTENT_TYPES), Member.of("_rels/.rels", RELS), document],
        **kwargs,
    )


def docx_of_paragraphs(megabytes: int) -> bytes:
    """A `.docx` whose `word/document.xml` is `megabytes` MB of one-character paragraphs."""
    piece = PARAGRAPH * 10_000
    times = megabytes * 1_000_000 // len(piece)
    return _package(Member.repeated("word/document.xml", BODY_HEAD, piece, times, BODY_TAIL))


def docx_of_one_text_node(megabytes: int) -> bytes:
    """A `.docx` whose body is one paragraph of one text node of `megabytes` MB."""
    head = BODY_HEAD + b"<w:p><w:r><w:t>"
    tail = b"</w:t></w:r></w:p>" + BODY_TAIL
    return _package(Member.repeated("word/document.xml", head, b"a" * 1_000_000, megabytes, tail))


def docx_understating(megabytes: int) -> bytes:
    """A `.docx` whose zip directory says `word/document.xml` is 1 KB; it inflates to
    `megabytes` MB of paragraphs."""
    piece = PARAGRAPH * 10_000
    times = megabytes * 1_000_000 // len(piece)
    document = Member.repeated("word/document.xml", BODY_HEAD, piece, times, BODY_TAIL)
    return _package(document, declared={"word/document.xml": 1024})


def docx_text(paragraphs: list[str]) -> bytes:
    """A small valid `.docx` of these paragraphs (hand-built: no python-docx template)."""
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs).encode()
    return _package(Member.of("word/document.xml", BODY_HEAD + body + BODY_TAIL))


# --- PDF -----------------------------------------------------------------------------------
def pdf_document(
    contents: list[bytes], *, declared_count: int | None = None, compress: bool = True
) -> bytes:
    """A PDF (Helvetica) with one page per content stream; `declared_count` overrides the page
    tree's `/Count` (a lie). Pages with identical content share one stream object."""
    streams: dict[bytes, int] = {}
    objects: list[bytes] = [b"", b"", b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    page_refs = []
    for content in contents:
        if content not in streams:
            body = zlib.compress(content, 9) if compress else content
            flt = b" /Filter /FlateDecode" if compress else b""
            objects.append(
                b"<< /Length %d%s >>\nstream\n" % (len(body), flt) + body + b"\nendstream"
            )
            streams[content] = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % streams[content]
        )
        page_refs.append(b"%d 0 R" % len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    count = len(contents) if declared_count is None else declared_count
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(page_refs), count)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def text_page(lines: list[str]) -> bytes:
    """A content stream drawing these (ASCII) lines."""
    ops = [b"BT /F1 10 Tf 72 760 Td 12 TL"]
    ops += [b"(%s) '" % line.encode("ascii") for line in lines]
    return b"\n".join([*ops, b"ET"])


def pdf_of_pages(pages: int, *, declared_count: int | None = None) -> bytes:
    """A PDF of `pages` trivial pages (one content stream, drawn by every page)."""
    return pdf_document([text_page(["Hello page."])] * pages, declared_count=declared_count)


def pdf_drawing(chars_per_page: int, pages: int) -> bytes:
    """A PDF of `pages` pages, each drawing `chars_per_page` characters of English prose in
    lines of ~100 characters: a few KB that extract to `pages × chars_per_page` characters."""
    sentence = "The quick brown fox jumps over the lazy dog near the river bank. "
    line = (sentence * 2)[:100]
    per_page = [line] * (chars_per_page // len(line))
    return pdf_document([text_page(per_page)] * pages)


def slow_pdf(operators: int) -> bytes:
    """A one-page PDF of a few KB that draws one short sentence and then `operators`
    save/restore pairs: pypdf takes ~0.06 ms per pair to read (~12 s for 200,000; past ~220,000
    its budget of 2 M tokens per content stream refuses the page as damaged)."""
    return pdf_document(
        [text_page(["A slow page to read."]) + b"\n" + b"q 1 0 0 1 0 0 cm Q\n" * operators]
    )
