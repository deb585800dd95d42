"""Cross-lingual query terms: CC-CEDICT read backwards and pinyin, bounded to the collection."""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import pytest
from hashing import segment_set

from rag.retrieve.crosslingual import PinyinIndex, dictionary_terms, glossary, synonym_terms
from rag.retrieve.lexicon import LATIN_SCRIPT_MIN, Lexicon

DOC_FREQ = {"平方公里": 3, "平方千米": 1, "走廊": 5, "航运": 4, "绿色": 9, "企业": 40, "公司": 12}


def test_glossary_maps_english_glosses_to_chinese_headwords() -> None:
    table = glossary()
    assert "平方公里" in table["square kilometer"]
    assert "走廊" in table["corridor"]
    assert all(len(h) >= 2 for heads in table.values() for h in heads)  # no single characters


def test_acronyms_a_sense_spells_its_words_with() -> None:
    table = glossary()
    assert table["ai"] == ("人工智能",)  # "artificial intelligence (AI)"
    assert "国内生产总值" in table["gdp"]  # "gross domestic product (GDP)"
    # a parenthesis qualifying a sense abbreviates nothing, and an English word stays a word
    assert "中医学" not in table.get("herb", ())
    assert "世界卫生组织" not in table["who"]
    terms = dictionary_terms("Which AI companies joined?", {"人工智能": 3, "企业": 9})
    assert "人工智能" in terms


def test_british_spelling_plurals_and_phrases_are_folded() -> None:
    terms = dictionary_terms("How many square kilometres is the green shipping corridor?", DOC_FREQ)
    assert "平方公里" in terms  # the two-word gloss, British plural folded
    assert {"绿色", "航运", "走廊"} <= set(terms)


def test_only_words_of_the_collection_most_used_first() -> None:
    terms = dictionary_terms("Which companies joined?", DOC_FREQ)
    assert terms[:2] == ["企业", "公司"]  # by document frequency
    assert dictionary_terms("Which companies joined?", {}) == []


def test_function_word_phrases_are_not_translated() -> None:
    assert dictionary_terms("how many among them", {"几个": 5, "其中": 5, "之间": 5}) == []


def test_pinyin_matches_romanised_names() -> None:
    index = PinyinIndex(["张江", "嘉兴", "上海", "平方公里", "a"])
    assert index.terms("the Zhangjiang park near Jiaxing") == ["张江", "嘉兴"]
    assert index.terms("a park") == []


def test_lexicon_translates_only_english_questions_over_chinese_text() -> None:
    lex = Lexicon(segment_set(["张江长三角科技城金山园面积为2.4平方公里。", "嘉兴的走廊建设。"]))
    english = lex.cross_lingual_terms("How many square kilometres is the Zhangjiang park?")
    assert "平方公里" in english and "张江" in english
    assert lex.cross_lingual_terms("张江的面积是多少平方公里？") == []
    latin = Lexicon(segment_set(["The corridor opened in 2022.", "Shipping lines were green."]))
    assert latin.cross_lingual_terms("When did the green shipping corridor open?") == []


def test_concurrent_english_readers_build_the_pinyin_table_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Eight English questions arriving together on a fresh index romanise its vocabulary once
    (before: each reader built its own table, and English searches stalled while a writer made
    new snapshots). Tables are per segment: a write adds one small segment and romanises only
    its words."""
    import rag.retrieve.lexicon as lexicon

    builds: list[int] = []

    class Counted(PinyinIndex):
        def __init__(self, words: Iterable[str]) -> None:
            builds.append(1)
            time.sleep(0.2)  # a large vocabulary: the window in which other readers arrive
            super().__init__(words)

    monkeypatch.setattr(lexicon, "PinyinIndex", Counted)
    lex = Lexicon(segment_set([f"张江{i}号园区的面积为{i}平方公里。" for i in range(50)]))
    question = "How many square kilometres is the Zhangjiang park?"
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: lex.cross_lingual_terms(question), range(8)))
    assert len(builds) == 1
    assert all("张江" in terms for terms in found)


def test_a_new_index_reuses_words_romanised_before() -> None:
    words = [f"嘉兴{c}" for c in "甲乙丙丁戊己庚辛"]
    PinyinIndex(words)
    from rag.retrieve import crosslingual

    assert all(w in crosslingual._ROMANISED for w in words)
    assert PinyinIndex([*words, "张江"]).terms("Zhangjiang") == ["张江"]


def test_pinyin_tables_are_per_segment_and_count_live_words_only() -> None:
    """A word romanised in one segment is found; a segment added later brings its own table,
    built once, and the earlier segments' tables are reused, not rebuilt."""
    from rag.retrieve import lexicon

    segs = segment_set(["张江园区的面积为两平方公里。", "嘉兴港的走廊建设完成。"], per_segment=1)
    first = lexicon._pinyin(segs.entries[0].segment)
    lexicon.warm(segs)
    assert lexicon._pinyin(segs.entries[0].segment) is first  # built once per segment
    question = "How large is the Zhangjiang park near Jiaxing port?"
    assert {"张江", "嘉兴"} <= set(Lexicon(segs).cross_lingual_terms(question))
    gone = segs.with_deleted([1])  # the Zhangjiang chunk's row is tombstoned
    assert "张江" not in Lexicon(gone).cross_lingual_terms(question)


def test_a_plural_glossed_by_a_word_the_collection_lacks_falls_back_to_its_singular() -> None:
    """CC-CEDICT glosses `standards` by 价值标准 alone; a collection without that word still
    gets 标准 from `standard`."""
    doc_freq = {"标准": 12, "团体": 3}
    assert "标准" in dictionary_terms("How many group standards were released?", doc_freq)
    assert "价值标准" in dictionary_terms("What standards?", {"价值标准": 1, "标准": 9})


def test_a_word_the_collection_never_uses_brings_its_dictionary_synonyms() -> None:
    lex = Lexicon(segment_set(["上海港集装箱吞吐量连续十五年位居全球第一。", "嘉兴的走廊建设。"]))
    # 货柜 and 集装箱 are both "container" in CC-CEDICT; the collection only says 集装箱
    assert "集装箱" in lex.synonym_terms(["货柜", "吞吐量"])
    # a word the collection uses is its own evidence: nothing added for it
    assert lex.synonym_terms(["集装箱", "吞吐量"]) == []
    assert synonym_terms(["货柜"], {"集装箱": 3, "容器": 1}) == ["集装箱", "容器"]
    assert synonym_terms(["货柜"], {}) == []


def test_a_latin_script_collection_gets_no_chinese_synonyms() -> None:
    # mostly English, with one Chinese word: 货柜 would find it, but the question's words are not
    # this collection's language and its Chinese is no vocabulary to translate into
    texts = ["The container port grew quickly this year.", "Shipping lines were green.", "集装箱"]
    latin = Lexicon(segment_set(texts))
    assert latin.latin_share >= LATIN_SCRIPT_MIN
    assert latin.synonym_terms(["货柜"]) == []
