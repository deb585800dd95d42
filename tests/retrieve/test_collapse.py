"""Collapsing near-identical passages of a ranking (pure function; the engine test is in
tests/api/test_duplicates.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.retrieve.collapse import Group, collapse, repeats, shingles

A = "苏州工业园区位于江苏省苏州市东部，成立于1994年，是中国和新加坡两国政府间的重要合作项目。"
B = "长三角生态绿色一体化发展示范区于2019年11月1日正式揭牌，面积约2413平方公里。"
C = "沪苏湖高铁全长约164公里，设计时速350公里，于2024年12月26日开通运营。"


def test_copies_collapse_into_the_best_ranked() -> None:
    reflowed = A.replace("，", ",\n").replace("1994", "１９９４")
    groups = collapse([A, B, reflowed, C], limit=5)
    assert groups == [Group(0, (2,)), Group(1), Group(3)]


def test_a_passage_that_adds_little_to_a_better_one_joins_it() -> None:
    # one copy's passage spans two chunks, the other's only the second
    assert collapse([A + B, B], limit=5) == [Group(0, (1,))]
    # ...but a passage that adds a lot of its own stays
    assert collapse([B, B + A + C], limit=5) == [Group(0), Group(1)]


def test_the_limit_counts_kept_passages_and_later_copies_still_join() -> None:
    assert collapse([A, B, C, A], limit=2) == [Group(0, (3,)), Group(1)]


def test_short_and_empty_texts() -> None:
    assert repeats(shingles("一二三"), shingles("一 二，三"))
    assert not repeats(shingles("一二三"), shingles("一二四"))
    assert repeats(shingles(A), shingles("，。"))  # no letters: nothing of its own
    assert not repeats(shingles("，。"), shingles(A))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([A, B, C, A + B, B + C, "。", "x"]), max_size=12), st.integers(1, 6)
)
def test_groups_partition_a_prefix_of_the_ranking(texts: list[str], limit: int) -> None:
    groups = collapse(texts, limit)
    assert len(groups) <= limit
    kept = [g.kept for g in groups]
    assert kept == sorted(kept) and (not texts or kept[0] == 0)
    seen = [i for g in groups for i in (g.kept, *g.absorbed)]
    assert len(seen) == len(set(seen))
    for g in groups:
        assert all(i > g.kept for i in g.absorbed)
        for i in g.absorbed:
            assert repeats(shingles(texts[g.kept]), shingles(texts[i]))
    for a in range(len(groups)):  # no kept passage repeats a better-ranked one
        for b in range(a + 1, len(groups)):
            assert not repeats(shingles(texts[kept[a]]), shingles(texts[kept[b]]))
