"""Policy metadata read from document text: title, date, issuer, 文号; and how ingestion merges it
under the user's own metadata. The texts are shaped like real notices and news pages, and pass
through `normalize_text` first, as ingestion does (it joins some header lines)."""

from __future__ import annotations

import pytest

from rag.errors import InputError
from rag.ingest.metadata import (
    Extracted,
    check_user_metadata,
    extract_metadata,
    normalize_date,
)
from rag.ingest.normalize import normalize_text
from rag.ingest.pipeline import prepare

NOTICE = """上海市人民政府文件

沪府发〔2024〕12号

上海市人民政府关于印发《上海市促进人工智能产业高质量发展若干措施（2024—2026年）》的通知

各区人民政府，市政府各委、办、局：
现将《上海市促进人工智能产业高质量发展若干措施（2024—2026年）》印发给你们，请认真按照执行。
根据《国务院关于印发新一代人工智能发展规划的通知》（国发〔2017〕35号）要求，本措施自2024年11月1日起施行，有效期至2026年12月31日。

特此通知。

上海市人民政府
2024年10月15日

（此件公开发布）

抄送：市委各部门，市人大常委会办公厅，市政协办公厅。
上海市人民政府办公厅　　　　2024年10月16日印发
"""

NEWS = """长三角生态绿色一体化发展示范区再添一批共建项目
2024-03-08 10:21:05 来源：新华网
新华社上海3月8日电 记者从示范区执委会获悉，2024年3月1日起，首批12个共建项目陆续开工。
项目涉及水环境治理、跨省公交和数据共享等领域。
"""

PLAIN = """青石镇的竹编产业在去年实现产值三亿四千万元。当地共有竹编合作社十二家。
2019年，镇上建成了竹编博物馆；2023年5月1日，第二届竹编节开幕。
合作社计划明年把产品销往更多城市。
"""

TRADITIONAL = """國務院辦公廳關於進一步優化營商環境降低市場主體制度性交易成本的意見
國辦發〔2022〕30號
各省、自治區、直轄市人民政府，國務院各部委、各直屬機構：
優化營商環境是培育和激發市場主體活力的重要舉措。自2022年10月1日起，各地區要全面清理不合理收費。
國務院辦公廳
二〇二二年九月七日
"""


def extract(text: str, title: str = "") -> dict[str, str]:
    return extract_metadata(normalize_text(text), title).as_dict()


def test_notice_with_title_doc_number_and_signature() -> None:
    assert extract(NOTICE) == {
        "title": "上海市人民政府关于印发《上海市促进人工智能产业高质量发展若干措施（2024—2026年）》的通知",
        "doc_number": "沪府发〔2024〕12号",  # not the 国发〔2017〕35号 the body cites
        "issuer": "上海市人民政府",
        "date": "2024-10-15",  # the 落款, not the 印发 date nor the dates in the body
    }


def test_news_article_date_line() -> None:
    assert extract(NEWS) == {"date": "2024-03-08"}  # no kind word: the headline is left alone


def test_text_without_metadata_gives_nothing() -> None:
    assert extract(PLAIN) == {}
    assert extract_metadata(normalize_text(PLAIN)) == Extracted()
    assert extract("") == {}


def test_body_dates_are_not_the_publication_date() -> None:
    body_only = "关于开展2024年度安全检查的说明\n检查于2024年6月1日开始，2024年6月30日结束。\n请各单位做好准备。\n"
    assert "date" not in extract(body_only)
    signed = body_only + "市安全生产委员会\n2024年5月20日\n"
    assert extract(signed)["date"] == "2024-05-20"
    assert extract(signed)["issuer"] == "市安全生产委员会"


def test_traditional_chinese_notice_and_chinese_numeral_date() -> None:
    assert extract(TRADITIONAL) == {
        "title": "國務院辦公廳關於進一步優化營商環境降低市場主體制度性交易成本的意見",
        "doc_number": "國辦發〔2022〕30號",
        "issuer": "國務院辦公廳",
        "date": "2022-09-07",
    }


@pytest.mark.parametrize(
    "number", ["国办发[2023]5号", "国办发(2023)5号", "国办发【2023】5号", "国办发〔2023〕 5 号"]
)
def test_doc_number_brackets_are_unified(number: str) -> None:
    text = (
        f"国务院办公厅关于加强数字政府建设的指导意见\n{number}\n各省人民政府：\n现提出如下意见。\n"
    )
    assert extract(text)["doc_number"] == "国办发〔2023〕5号"
    assert extract(text)["issuer"] == "国务院办公厅"  # from the title, before 关于


def test_labelled_fields_of_a_government_site_page() -> None:
    text = (
        "索引号：000014349/2024-00012\n发文机关：上海市人民政府\n发文字号：沪府规〔2024〕3号\n"
        "成文日期：2024年01月08日\n发布日期：2024-01-12\n"
        "上海市人民政府关于印发《上海市加快推进绿色低碳转型行动方案》的通知\n"
        "各区人民政府：\n现将方案印发给你们，请认真贯彻执行。\n"
    )
    assert extract(text) == {
        "title": "上海市人民政府关于印发《上海市加快推进绿色低碳转型行动方案》的通知",
        "doc_number": "沪府规〔2024〕3号",
        "issuer": "上海市人民政府",
        "date": "2024-01-12",  # 发布日期 is the publication date; 成文日期 comes second
    }


def test_signature_before_an_attachment_is_still_found() -> None:
    text = NOTICE.split("（此件公开发布）")[0] + (
        "附件：上海市促进人工智能产业高质量发展若干措施\n"
        "一、总体要求\n到2026年，全市人工智能产业规模突破4500亿元。\n"
        "二、保障措施\n本措施由市经济信息化委负责解释。\n2025年3月1日\n"
    )
    got = extract(text)
    assert (got["date"], got["issuer"]) == ("2024-10-15", "上海市人民政府")


def test_cited_doc_numbers_and_joint_issuers_are_not_taken() -> None:
    text = (
        "关于做好2024年春耕工作的通知\n各区农业农村委：\n"
        "按照《农业农村部关于做好春耕备耕的通知》（农农发〔2024〕1号）要求，现通知如下。\n"
        "上海市农业农村委员会 上海市财政局\n2024年2月20日\n"
    )
    got = extract(text)
    assert "doc_number" not in got and "issuer" not in got  # the 落款 names two bodies
    assert got["date"] == "2024-02-20"
    assert got["title"] == "关于做好2024年春耕工作的通知"
    # A 转发 notice names the forwarded document's 文号 in its title: that is not its own.
    forwarded = (
        "上海市人民政府办公厅关于转发《国务院关于推动大规模设备更新的通知》（国发〔2024〕7号）的通知\n"
        "沪府办发〔2024〕20号\n各区人民政府：\n现将通知转发给你们，请认真执行。\n"
    )
    got = extract(forwarded)
    assert got["doc_number"] == "沪府办发〔2024〕20号" and got["issuer"] == "上海市人民政府办公厅"
    assert extract(forwarded.replace("沪府办发〔2024〕20号\n", "")).get("doc_number") is None


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024年10月15日", "2024-10-15"),
        ("2024年1月5日", "2024-01-05"),
        ("二〇二四年十月十五日", "2024-10-15"),
        ("二○二三年十二月三十一日", "2023-12-31"),
        ("二〇二四年二月二十九日", "2024-02-29"),
        ("2024-10-15", "2024-10-15"),
        ("2024/10/15", "2024-10-15"),
        ("2024.10.15", "2024-10-15"),
        ("2023年2月29日", None),  # no such day
        ("2024年10月", None),  # no day: not a full date
        ("10月15日", None),
        ("2024-10-15 起施行", None),
    ],
)
def test_normalize_date(text: str, iso: str | None) -> None:
    assert normalize_date(text) == iso


def prep(text: str, source: str = "doc.txt", metadata: dict[str, object] | None = None) -> object:
    return prepare(
        source,
        text.encode("utf-8"),
        chunk_size=400,
        chunk_overlap=1,
        max_bytes=1_000_000,
        metadata=metadata,
    )


def test_ingestion_merges_user_metadata_over_extracted() -> None:
    p = prep(NOTICE, metadata={"issuer": "市政府", "date": "2024/10/20", "tags": ["AI"]})
    doc = p.document  # type: ignore[attr-defined]
    assert doc.metadata == {
        "title": "上海市人民政府关于印发《上海市促进人工智能产业高质量发展若干措施（2024—2026年）》的通知",
        "doc_number": "沪府发〔2024〕12号",
        "issuer": "市政府",  # the user's value wins
        "date": "2024-10-20",  # the user's, normalised to ISO
        "tags": ["AI"],
    }
    # The loader's title was the first line (the 红头); the policy title replaces it.
    assert doc.title == doc.metadata["title"]


def test_ingestion_title_rules() -> None:
    assert prep(NOTICE, metadata={"title": "人工智能措施"}).document.title == "人工智能措施"  # type: ignore[attr-defined]
    # A markdown heading is a real title: it stays even when the text names a policy title.
    md = "# 人工智能政策汇编\n\n" + NOTICE
    assert prep(md, source="a.md").document.title == "人工智能政策汇编"  # type: ignore[attr-defined]
    plain = prep(PLAIN).document  # type: ignore[attr-defined]
    assert plain.metadata == {} and plain.title == ""  # it opens with a sentence: no title


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": i for i in range(65)},
        {"big": "长" * 6000},
        {"": 1},
        {"k" * 129: 1},
        {"x": float("nan")},
    ],
)
def test_unusable_user_metadata_is_refused(metadata: dict[str, object]) -> None:
    with pytest.raises(InputError):
        check_user_metadata(metadata)
    with pytest.raises(InputError):
        prep(PLAIN, metadata=metadata)


def test_nested_user_metadata_is_accepted() -> None:
    meta = {"series": {"name": "政策汇编", "volume": 3}, "tags": ["AI", "产业"], "draft": False}
    check_user_metadata(meta)
    assert prep(PLAIN, metadata=meta).document.metadata == meta  # type: ignore[attr-defined]
