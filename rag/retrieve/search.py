"""Search assembly: check the query, turn filters into per-segment masks, retrieve, then merge
touching chunks and collapse copies into the passages a caller sees.

Everything here reads one `Snapshot`; nothing writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag.config import Settings
from rag.errors import InputError
from rag.index.snapshot import Snapshot
from rag.ingest.pages import page_at, pages_within
from rag.retrieve.collapse import Group, collapse
from rag.retrieve.filter import MetadataFilter
from rag.retrieve.hybrid import Hit, Masks, Query, QueryEncoder, analyse, retrieve
from rag.retrieve.lexicon import Lexicon, lexicon
from rag.retrieve.merge import Merged, merge_hits
from rag.retrieve.rerank import load_reranker
from rag.types import Passage

MERGE_PASSAGES = 10  # passages ranked and merged whatever top_k asks (see `ranked`)


@dataclass(frozen=True)
class SearchResult:
    """Passages for a query, with the hits (signals) behind them."""

    query: str
    passages: tuple[Passage, ...]
    hits: tuple[Hit, ...]
    analysed: Query
    idf: dict[str, float]  # IDF of the query tokens in the snapshot searched
    generation: int  # the index generation the whole result comes from


def check_query(settings: Settings, text: str, top_k: int | None) -> int:
    """The one check of every query and question (search, ask, chat, CLI): `InputError` for
    text the retrievers cannot take; returns the effective top_k (RAG_TOP_K when None)."""
    if not text or not text.strip():
        raise InputError("the query is empty")
    if len(text) > settings.max_query_chars:
        raise InputError(
            f"the query is {len(text)} characters; the limit is {settings.max_query_chars}"
        )
    if "\x00" in text:
        raise InputError("the query contains a NUL character")
    try:  # a lone surrogate (JSON "\ud800") is no text: the embedder's tokenizer raises on it
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"the query is not valid Unicode: lone surrogate at character {exc.start}"
        ) from None
    k = settings.top_k if top_k is None else top_k
    if not 1 <= k <= settings.max_top_k:
        raise InputError(f"top_k must be between 1 and {settings.max_top_k}, not {k}")
    return k


def filter_masks(
    snap: Snapshot,
    sources: Iterable[str] | None,
    doc_ids: Iterable[str] | None,
    where: MetadataFilter | None = None,
) -> Masks | None:
    """Per segment, the rows a filtered search may return (None: all). Named sources and doc_ids
    add up; a metadata filter then keeps those of their documents (or of all) that match it."""
    if not sources and not doc_ids and where is None:
        return None
    wanted: list[str] = []
    if sources:
        by_source = {src: d for d, (src, _) in snap.sources.items()}
        wanted += [by_source[s] for s in sources if s in by_source]
    if doc_ids:
        wanted += list(doc_ids)
    if not sources and not doc_ids:
        wanted = list(snap.sources)
    if where is not None:
        wanted = [d for d in wanted if where.matches(snap.metadata.get(d, {}))]
    return snap.rows_for(list(dict.fromkeys(wanted)))  # a document named twice counts once


def search(
    settings: Settings,
    snap: Snapshot,
    encoder: QueryEncoder,
    query: str,
    top_k: int | None = None,
    *,
    sources: Iterable[str] | None = None,
    doc_ids: Iterable[str] | None = None,
    where: MetadataFilter | None = None,
) -> SearchResult:
    """Hybrid search of `snap`; `sources`/`doc_ids` restrict it to those documents, `where` to
    the documents whose metadata matches."""
    k = check_query(settings, query, top_k)
    lex = lexicon(snap.segments)
    analysed = analyse(query.strip(), encoder, lex)
    masks = filter_masks(snap, sources, doc_ids, where)
    return ranked(settings, snap, query, analysed, k, masks, lex)


def ranked(
    settings: Settings,
    snap: Snapshot,
    query: str,
    analysed: Query,
    k: int,
    masks: Masks | None,
    lex: Lexicon,
) -> SearchResult:
    """The passages of an analysed query over `snap` (its rows allowed by `masks`), ranked with
    `lex`'s statistics: what `search` does once the query is checked and analysed (and what the
    PostgreSQL search does over the snapshot of its candidate pool, `rag.retrieve.pg`)."""
    reranker = load_reranker() if settings.rerank else None
    # A passage's extent (the touching chunks merged into it), and so the answer read from it,
    # must not depend on how many passages the caller asked for: at 5 a passage would lack
    # neighbours ranked 11th to 20th that it has at 10. Rank and merge `MERGE_PASSAGES` at least
    # (the depth evaluation reads), then keep the first k.
    wide = max(k, MERGE_PASSAGES)
    depth = 2 * wide  # touching chunks merge into one passage: rank enough to still fill it
    while True:
        hits = retrieve(
            snap,
            analysed,
            depth,
            candidates=settings.candidates,
            masks=masks,
            reranker=reranker,
            lex=lex,
        )
        merged, groups = distinct(snap, hits, wide)
        if len(groups) >= wide or len(hits) < depth:
            break
        depth *= 2
    groups = groups[:k]
    return SearchResult(
        query=query,
        passages=tuple(passage(snap, merged, g) for g in groups),
        hits=tuple(merged[g.kept].hit for g in groups),
        analysed=analysed,
        idf=lex.idf(analysed.terms),
        generation=snap.generation,
    )


def passage(snap: Snapshot, merged: Sequence[Merged], group: Group) -> Passage:
    """The `Passage` of a group of merged hits (its kept one, and where else its text is)."""
    m = merged[group.kept]
    doc_id = snap.doc_id(m.hit.row)
    source, title = snap.sources.get(doc_id, ("", ""))
    pages = snap.pages.get(doc_id, ())
    others = (snap.sources.get(snap.doc_id(merged[i].hit.row), ("", ""))[0] for i in group.absorbed)
    return Passage(
        chunk_id=snap.chunk_id(m.hit.row),
        doc_id=doc_id,
        source=source,
        title=title,
        text=m.text,
        score=round(m.hit.score, 6),
        start=m.start,
        end=m.end,
        metadata=snap.metadata.get(doc_id, {}),
        page=page_at(pages, m.start),
        page_spans=pages_within(pages, m.start, m.end),
        also_in=tuple(dict.fromkeys(o for o in others if o and o != source)),
    )


def distinct(snap: Snapshot, hits: Sequence[Hit], k: int) -> tuple[list[Merged], list[Group]]:
    """Merged passages of `hits` and up to `k` groups of them, near-identical texts (copies of one
    article) collapsed into the best-ranked one. Merges deeper while collapsing left fewer than `k`
    and the hits hold more; without duplicates this is exactly `merge_hits(snap, hits, k)`."""
    limit = k
    while True:
        merged = merge_hits(snap, hits, limit)
        groups = collapse([m.text for m in merged], k)
        if len(groups) >= k or len(merged) < limit:
            return merged, groups
        limit += k - len(groups)
