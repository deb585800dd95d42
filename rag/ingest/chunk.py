"""Pack sentences into chunks of about `size` characters, overlapping by whole sentences."""

from __future__ import annotations

from rag.ingest.split import split_sentences
from rag.types import Chunk, Span


def chunk_spans(text: str, size: int = 400, overlap: int = 1) -> list[Span]:
    """Return chunk spans over `text`.

    Every non-whitespace character lies in some chunk, chunks are ordered by start, and each
    chunk starts with up to `overlap` trailing sentences of the previous one (only while those
    stay under half the chunk size and leave room for the next sentence, so every chunk ends
    further on than the one before).
    """
    sentences = split_sentences(text, max_len=size)
    chunks: list[Span] = []
    i = 0
    while i < len(sentences):
        first = i
        end = sentences[i].end
        i += 1
        while i < len(sentences) and sentences[i].end - sentences[first].start <= size:
            end = sentences[i].end
            i += 1
        chunks.append(Span(sentences[first].start, end))
        if i >= len(sentences):
            break
        # Step back over up to `overlap` sentences to carry context into the next chunk, but only
        # while the next sentence still fits after them: a chunk of overlap alone adds nothing new.
        back = i
        while (
            back > first + 1
            and i - back < overlap
            and sentences[i - 1].end - sentences[back - 1].start <= size // 2
            and sentences[i].end - sentences[back - 1].start <= size
        ):
            back -= 1
        i = back
    return chunks


def make_chunks(doc_id: str, text: str, size: int = 400, overlap: int = 1) -> list[Chunk]:
    """Cut `text` into `Chunk`s whose `text` is exactly `text[start:end]`."""
    return [
        Chunk(doc_id=doc_id, ord=n, text=text[s.start : s.end], start=s.start, end=s.end)
        for n, s in enumerate(chunk_spans(text, size, overlap))
    ]
