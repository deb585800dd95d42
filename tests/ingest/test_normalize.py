"""Concrete cases for `normalize_text`: line repair, headings, list items, width, script."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.ingest.normalize import display_width, line_measure, normalize_text
from rag.ingest.split import split_sentences

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def _corpus(prefix: str) -> str:
    (path,) = CORPUS.glob(f"{prefix}_*.txt")
    return path.read_text(encoding="utf-8")


def _sentences(text: str) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text)]


def _visible(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace())


# --- the sample corpus --------------------------------------------------------------------------


def test_paragraph_broken_by_a_blank_line_is_joined_into_one_sentence() -> None:
    raw = _corpus("000")
    assert "区域\n\n物流科技创新联合攻关行动" in raw  # the PDF break this test is about
    text = normalize_text(raw)
    assert "区域物流科技创新联合攻关行动" in text
    assert "推动运输结构优化调整；区域物流科技创新联合攻关行动，推动发展物流新质生产力；" in text
    assert "区域物流科技创新联合攻关行动，推动发展物流新质生产力；" in _sentences(text)


def test_other_broken_lines_of_000_are_joined() -> None:
    text = normalize_text(_corpus("000"))
    assert "物流具有外部性，空间尺度越大，成本降低的效果越明显。" in text
    assert "为了协同破除多式联运“中梗阻”，" in text


def test_short_headings_keep_their_own_lines() -> None:
    lines = normalize_text(_corpus("000")).split("\n")
    assert lines[0] == "长三角出台全国首个跨省域物流降本增效方案"
    assert lines[1] == "畅通“包邮区”物流“经脉”"
    assert lines[2].startswith("本报综合消息 长三角区域合作办公室")
    sentences = _sentences("\n".join(lines[:3]))
    assert sentences[:2] == [lines[0], lines[1]]


def test_heading_after_an_author_note_stays_on_its_own_line() -> None:
    lines = normalize_text(_corpus("001")).split("\n")
    assert any(line.endswith("技术主动权。（作者：戚姚维 全晨琦）") for line in lines)
    assert "“场景+协同”驱动长三角消费升级" in lines
    assert "构建更具活力的人工智能创新生态系统" in lines
    assert "主 办：上海创新发展研究所" in lines


def test_traditional_chinese_stays_traditional() -> None:
    raw = _corpus("003")
    text = normalize_text(raw)
    # Only whitespace may change: every other character is kept, in order.
    assert _visible(text) == _visible(raw)
    assert "推動長三角更高質量一體化發展|滬蘇浙皖將一起做許多大項目" in text
    assert "推动长三角" not in text


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.txt")), ids=lambda p: p.name[:3])
def test_corpus_normalisation_is_idempotent_and_keeps_the_words(path: Path) -> None:
    raw = path.read_text(encoding="utf-8")
    text = normalize_text(raw)
    assert normalize_text(text) == text
    assert _visible(text) == _visible(raw)  # the corpus holds no full-width letters/digits


# --- widths, whitespace, control characters ---------------------------------------------------


def test_full_width_letters_and_digits_become_half_width_punctuation_stays() -> None:
    text = normalize_text(
        "２０２５年ＧＤＰ增长，ａｂｃＸＹＺ０９。真的吗？是的！（注：见附件；完）"
    )
    assert text == "2025年GDP增长，abcXYZ09。真的吗？是的！（注：见附件；完）"


def test_line_endings_spaces_and_control_characters() -> None:
    assert normalize_text("第一行。\r\n第二行。\r第三行。") == "第一行。\n第二行。\n第三行。"
    assert normalize_text("a\u3000\u3000b\xa0 c\t\td") == "a b c d"
    assert normalize_text("  去掉首尾空白。  \n\n\n  下一段。 ") == "去掉首尾空白。\n下一段。"
    assert normalize_text("零\x00宽\u200b字\ufeff符\x07。") == "零宽字符。"
    assert normalize_text("") == ""
    assert normalize_text(" \n\t\u3000\n") == ""


# --- joining wrapped lines, keeping structure -----------------------------------------------------


def test_english_lines_wrapped_mid_sentence_are_joined_with_a_space() -> None:
    raw = "The service answers questions\nabout Chinese documents\nand cites its sources.\n"
    assert (
        normalize_text(raw)
        == "The service answers questions about Chinese documents and cites its sources."
    )


def test_english_new_sentence_or_capitalised_line_is_not_joined() -> None:
    assert (
        normalize_text("Overview\nThe index is rebuilt nightly.")
        == "Overview\nThe index is rebuilt nightly."
    )
    assert normalize_text("It works.\nthen more") == "It works.\nthen more"


def test_chinese_line_continuing_after_a_comma_is_joined() -> None:
    assert (
        normalize_text("物流具有外部性，\n空间尺度越大，成本越低。")
        == "物流具有外部性，空间尺度越大，成本越低。"
    )
    assert normalize_text("发展迅速\n，成效显著。") == "发展迅速，成效显著。"


def test_short_line_leaving_a_title_mark_open_is_joined() -> None:
    raw = _corpus("002")
    assert "《上海市松江区人民政府 上\n\n海外国语大学共建" in raw  # a PDF break inside a title
    text = normalize_text(raw)
    assert "达成《上海市松江区人民政府 上海外国语大学共建中阿改革发展研究中心合作协议》。" in text
    # a heading closes what it opens, and keeps its line
    assert normalize_text("《行动方案》解读\n全文如下。") == "《行动方案》解读\n全文如下。"


def test_line_followed_by_the_last_word_of_its_sentence_is_joined() -> None:
    raw = _corpus("001")
    assert "是党中央交给上海的重大战略任\n\n务。" in raw
    assert "是党中央交给上海的重大战略任务。" in normalize_text(raw)
    # a heading without a clause mark before a short sentence keeps its line
    assert normalize_text("没有标题的说明\n正文。") == "没有标题的说明\n正文。"


def test_long_wrapped_chinese_line_is_joined_but_decimal_is_not_a_list_item() -> None:
    long_line = "这是一段很长的文字，它被换行打断了，所以这里没有标点符号结尾，这种情况下继续写到了"
    assert len(long_line) >= 40
    assert normalize_text(long_line + "\n1.5亿元。") == long_line + "1.5亿元。"


@pytest.mark.parametrize(
    "item",
    [
        "（一）加快建设。",
        "(2)完善机制。",
        "一、总体要求",
        "二．主要任务",
        "1、推进互联互通",
        "3. 强化保障",
        "第一章 总则",
        "第三条 适用范围",
        "- 一项",
        "• 另一项",
    ],
    ids=[
        "paren-cn",
        "paren-digit",
        "cn-dun",
        "cn-dot",
        "digit-dun",
        "digit-dot",
        "chapter",
        "article",
        "dash",
        "bullet",
    ],
)
def test_list_items_and_sections_start_a_new_line(item: str) -> None:
    long_prose = (
        "为此，行动方案提出以下几方面的主要任务和具体举措，并明确了各地区各有关部门的职责分工"
    )
    assert len(long_prose) >= 40
    for prev in ("主要任务包括：", "主要任务包括，", long_prose):
        assert normalize_text(f"{prev}\n{item}") == f"{prev}\n{item}"


def test_list_items_each_keep_their_own_line() -> None:
    raw = "主要任务\n一、推进互联互通\n二、推动运输结构优化调整\n（一）加快建设\n（二）完善\n"
    assert normalize_text(raw).split("\n") == [
        "主要任务",
        "一、推进互联互通",
        "二、推动运输结构优化调整",
        "（一）加快建设",
        "（二）完善",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "在1994年，汤玛斯·霍尔兹（Thomas R. Holtz）正式建立该名称。后来被广泛采用。",
            ["在1994年，汤玛斯·霍尔兹（Thomas R. Holtz）正式建立该名称。", "后来被广泛采用。"],
        ),
        ("变种（Blumea riparia var. Megacephala）分布于云南。", None),
        (
            "Ask Dr. Smith, e.g. Monday. He will come.",
            ["Ask Dr. Smith, e.g. Monday.", "He will come."],
        ),
        ("Prices rose 2.4 percent. Then fell.", ["Prices rose 2.4 percent.", "Then fell."]),
    ],
)
def test_initials_and_abbreviations_do_not_end_a_sentence(
    text: str, expected: list[str] | None
) -> None:
    assert _sentences(text) == (expected if expected is not None else [text])


# --- wrapped lines at a known measure (PDF pages) -------------------------------------------------

A4_PAGE = [  # 三号 type on A4: 28 characters a line, the common government layout
    "关于做好二〇二五年春耕备耕工作的通知",
    "各区农业农村委，市各有关单位：",
    "为切实做好今年春耕备耕各项工作，确保粮食播种面积",
    "稳定在一百二十万亩以上，现将有关事项通知如下，请各",
    "单位结合实际认真抓好落实。",
    "一、加强农资供应保障",
    "各区要组织农资企业提前储备化肥和种子，确保供应充足",
    "。",
]


def test_lines_that_fill_the_measure_are_joined_even_when_short() -> None:
    width = line_measure(A4_PAGE)
    assert width is not None and 24 <= width <= 26
    text = normalize_text("\n".join(A4_PAGE), line_width=width)
    paragraphs = text.split("\n")
    assert "确保粮食播种面积稳定在一百二十万亩以上" in text  # was broken after 面积
    assert "请各单位结合实际" in text
    assert paragraphs[0] == A4_PAGE[0] and paragraphs[1] == A4_PAGE[1]  # title, salutation kept
    assert "一、加强农资供应保障" in paragraphs  # a heading keeps its own line
    assert paragraphs[-1] == "各区要组织农资企业提前储备化肥和种子，确保供应充足。"
    # without the measure these short lines stay apart (no sentence finished on them yet)
    assert "面积\n稳定" in normalize_text("\n".join(A4_PAGE))


def test_no_measure_without_two_full_lines() -> None:
    assert line_measure(["一行很长很长很长很长很长很长很长的文字，只有这一行", "短行"]) is None
    assert line_measure(["表格", "单元", "12"]) is None
    assert display_width("ab中文") == 3.0
