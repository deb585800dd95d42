"""Page spans: joining pages records where each one lies in the text; `page_of` reads them back."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.ingest.pages import join_pages, page_at, page_of, page_spans, pages_within
from rag.types import PageSpan


def test_join_pages_records_each_page_span() -> None:
    texts = ["第一页的正文。", "第二页。\n还有一段。", "第三页。"]
    text, spans = join_pages(texts)
    assert text == "第一页的正文。\n\n第二页。\n还有一段。\n\n第三页。"
    assert [text[a:b] for a, b in spans] == texts
    assert spans[0][0] == 0 and spans[-1][1] == len(text)


def test_blank_pages_keep_their_place_but_add_no_text() -> None:
    text, spans = join_pages(["", "第二页。", " ", "", "第五页。", ""])
    assert text == "第二页。\n\n第五页。"
    assert spans == [[0, 0], [0, 4], [4, 4], [4, 4], [6, 10], [10, 10]]
    meta = {"pages": spans}
    assert [page_of(meta, i) for i in range(len(text))] == [2, 2, 2, 2, 2, 2, 5, 5, 5, 5]
    assert page_of(meta, len(text)) is None


@given(st.lists(st.text(alphabet="页文。\n ab", max_size=12), max_size=8))
def test_every_character_of_a_page_maps_back_to_it(texts: list[str]) -> None:
    text, spans = join_pages(texts)
    meta = {"pages": spans}
    assert len(spans) == len(texts)
    for n, (a, b) in enumerate(spans, 1):
        if texts[n - 1].strip():
            assert text[a:b] == texts[n - 1]
            assert {page_of(meta, i) for i in range(a, b)} == {n}
        else:
            assert a == b


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"pages": 12},  # a caller's own page count
        {"pages": "1-3"},
        {"pages": []},
        {"pages": [[0, 5], [3, 8]]},  # overlapping
        {"pages": [[5, 2]]},
        {"pages": [[0, 5, 9]]},
        {"pages": [[0, True]]},
        {"pages": [["0", "5"]]},
    ],
)
def test_anything_but_well_formed_spans_is_no_pages(metadata: dict[str, Any]) -> None:
    assert page_spans(metadata) == ()
    assert page_of(metadata, 0) is None and page_of(metadata, 3) is None


def test_pages_within_a_passage() -> None:
    spans = page_spans({"pages": [[0, 10], [12, 20], [20, 20], [22, 30]]})
    assert spans[1] == PageSpan(2, 12, 20)
    assert pages_within(spans, 5, 15) == (PageSpan(1, 0, 10), PageSpan(2, 12, 20))
    assert pages_within(spans, 12, 20) == (PageSpan(2, 12, 20),)
    assert pages_within(spans, 25, 28) == (PageSpan(4, 22, 30),)
    within = pages_within(spans, 5, 15)
    # a quote inside the passage finds its page among the passage's pages alone
    assert page_at(within, 6) == 1 and page_at(within, 14) == 2
    assert page_at(within, 11) == 1  # the separator counts to the page before it
    assert page_at((), 3) is None
