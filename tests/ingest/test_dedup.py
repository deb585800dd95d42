"""Near-duplicate signatures: a reprint (new header, reflowed, other punctuation and widths) is a
near-duplicate of the original; another article on the same topic is not; the estimate follows the
exact Jaccard similarity of the shingle sets."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.ingest.dedup import (
    NUM_PERM,
    THRESHOLD,
    Fingerprints,
    fold_text,
    from_bytes,
    shingle_hashes,
    signature,
    similarity,
    to_bytes,
)
from rag.ingest.normalize import normalize_text

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
ARTICLE = normalize_text(sorted(CORPUS.glob("*.txt"))[0].read_text(encoding="utf-8"))
FULL_WIDTH = str.maketrans("0123456789%", "０１２３４５６７８９％")

# Two articles on one topic (the Suzhou Industrial Park), sharing its names and vocabulary.
PARK_A = (
    "苏州工业园区位于江苏省苏州市东部，成立于1994年，是中国和新加坡两国政府间的重要合作项目。"
    "园区总面积278平方公里，其中中新合作区80平方公里。2023年，园区实现地区生产总值3686亿元，"
    "同比增长5.8%。园区重点发展新一代信息技术、高端装备制造、生物医药和纳米技术应用等产业。"
    "园区在国家级经济技术开发区综合考评中连续多年位居第一，被誉为中外经济技术互利合作的成功范例。"
)
PARK_B = (
    "记者从苏州工业园区管委会获悉，今年上半年园区新增生物医药企业120家，"
    "累计集聚相关企业超过2300家，形成了从研发到产业化的完整链条。苏州工业园区还启动了"
    "纳米技术应用产业园三期建设，预计2026年建成，可容纳企业400家。园区负责人表示，"
    "将继续深化中新合作，推动新一代信息技术与高端装备制造融合发展。"
)


def reprint(text: str) -> str:
    """The same article as another outlet or format would save it."""
    body = text.split("\n", 1)[1]  # drop the original's first (title) line...
    body = body.translate(FULL_WIDTH)  # ...full-width digits, as some sites write them
    body = body.replace("，", ", ").replace("“", '"').replace("”", '"')  # ASCII punctuation
    body = re.sub(r"(.{37})", "\\1\n", body)  # hard line breaks every 37 characters (a PDF)
    return (
        "转载自《江南经济报》 2024年3月1日 第5版 编辑：王晓明\n\n" + body + "\n（责任编辑：李华）"
    )


def test_a_reprint_with_a_new_header_and_reflowed_lines_is_a_near_duplicate() -> None:
    copy = reprint(ARTICLE)
    assert copy != ARTICLE and len(ARTICLE) > 3000
    assert similarity(signature(ARTICLE), signature(copy)) >= THRESHOLD
    # normalising the copy (as ingestion does) keeps it a near-duplicate
    assert similarity(signature(ARTICLE), signature(normalize_text(copy))) >= THRESHOLD


def test_another_article_on_the_same_topic_is_not() -> None:
    assert similarity(signature(PARK_A), signature(PARK_B)) < 0.3
    others = [normalize_text(p.read_text(encoding="utf-8")) for p in sorted(CORPUS.glob("*.txt"))]
    sigs = [signature(t) for t in others]  # five articles about the Yangtze River Delta
    for i in range(len(sigs)):
        for j in range(i + 1, len(sigs)):
            assert similarity(sigs[i], sigs[j]) < 0.3, (i, j)


def test_half_an_article_is_not_a_near_duplicate_of_the_whole() -> None:
    half = ARTICLE[: len(ARTICLE) // 2]
    assert similarity(signature(ARTICLE), signature(half)) < THRESHOLD


def test_folding_drops_whitespace_punctuation_and_width() -> None:
    assert fold_text("Ａｂｃ １２３，中　文。\n Hello, World!") == "abc123中文helloworld"
    assert np.array_equal(
        signature("园区总面积278平方公里"), signature("园区 总面积２７８，平方公里。")
    )


def exact_jaccard(a: str, b: str) -> float:
    x, y = set(shingle_hashes(fold_text(a)).tolist()), set(shingle_hashes(fold_text(b)).tolist())
    return len(x & y) / len(x | y)


SENTENCES = [s + "。" for s in ARTICLE.replace("\n", "").split("。") if len(s) > 8]
parts = st.lists(st.sampled_from(range(len(SENTENCES))), min_size=3, max_size=20, unique=True)
noise = st.lists(st.sampled_from([" ", "\n", "，", "、", "　", "\t", "。"]), max_size=30)


@settings(max_examples=40, deadline=None)
@given(a=parts, b=parts)
def test_the_estimate_follows_the_exact_jaccard(a: list[int], b: list[int]) -> None:
    x, y = "".join(SENTENCES[i] for i in a), "".join(SENTENCES[i] for i in b)
    sx, sy = signature(x), signature(y)
    assert similarity(sx, sy) == similarity(sy, sx)
    # standard error ≤ 0.5/√128 = 0.044: 0.2 is more than four of them
    assert abs(similarity(sx, sy) - exact_jaccard(x, y)) <= 0.2


@settings(max_examples=40, deadline=None)
@given(sentences=parts, inserts=st.lists(st.tuples(st.integers(0, 10_000), noise), max_size=10))
def test_whitespace_and_punctuation_never_change_the_signature(
    sentences: list[int], inserts: list[tuple[int, list[str]]]
) -> None:
    text = "".join(SENTENCES[i] for i in sentences)
    noisy = text
    for at, chars in inserts:
        at %= len(noisy) + 1
        noisy = noisy[:at] + "".join(chars) + noisy[at:]
    assert similarity(signature(text), signature(noisy)) == 1.0


def test_signatures_round_trip_and_a_foreign_layout_is_refused() -> None:
    sig = signature(ARTICLE)
    assert sig.shape == (NUM_PERM,) and sig.dtype == np.uint32
    assert np.array_equal(from_bytes(to_bytes(sig)), sig)
    assert from_bytes(None) is None and from_bytes(b"") is None
    assert from_bytes(to_bytes(sig)[:-4]) is None  # another NUM_PERM: recompute, never misread


def test_fingerprints_find_the_original_not_itself_nor_a_second_copy() -> None:
    copy, other = signature(reprint(ARTICLE)), signature(PARK_A)
    index = Fingerprints()
    assert index.find(copy) is None
    index.add("a", "article.txt", signature(ARTICLE))
    index.add("p", "park.txt", other)
    match = index.find(copy)
    assert match is not None and (match.doc_id, match.source) == ("a", "article.txt")
    assert match.similarity >= THRESHOLD
    assert index.find(signature(ARTICLE), exclude="a") is None  # its own old version
    index.add("c", "copy.txt", copy, original=False)
    third = index.find(signature(ARTICLE + "\n（完）"), exclude="x")
    assert third is not None and third.source == "article.txt"  # the original, not the copy
    index.discard("a")
    assert len(index) == 2
    found = index.find(signature(ARTICLE))
    assert found is not None and found.source == "copy.txt"
    index.discard("c")
    index.discard("c")  # absent: no error
    assert index.find(signature(ARTICLE)) is None
    assert index.find(other) is not None


def test_fingerprints_grow_past_their_first_capacity() -> None:
    index = Fingerprints()
    for i in range(150):
        index.add(f"d{i}", f"{i}.txt", signature(f"第{i}号文件：" + PARK_B * (1 + i % 3) + str(i)))
    index.add("a", "article.txt", signature(ARTICLE))
    assert len(index) == 151
    match = index.find(signature(reprint(ARTICLE)))
    assert match is not None and match.source == "article.txt"


@pytest.mark.parametrize("text", ["", "。，、 \n"])
def test_text_without_letters_matches_nothing(text: str) -> None:
    index = Fingerprints([("a", "a.txt", signature(ARTICLE), True)])
    assert index.find(signature(text)) is None
