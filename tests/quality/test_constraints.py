"""Constraint extraction and comparison (`rag.answer.constraints`), without an index."""

from __future__ import annotations

import pytest

from rag.answer.constraints import (
    CODE,
    OPEN_END,
    Evidence,
    asked_unit,
    asks_author,
    asks_photographer,
    asks_rank,
    check_answer,
    credit_after,
    english_names,
    extract,
    extract_places,
    extract_quantities,
    extract_years,
    holds_unit,
    message,
    mismatches,
    names_author,
    names_person,
    states_rank,
    unstated,
    wanted_unit,
)
from rag.answer.credits import closing_credit, with_closing_credit
from rag.answer.implied import implied_unit
from rag.retrieve.crosslingual import abbreviates_organisation, name_kind, place_names, within
from rag.types import Answer, ChunkSpan, Citation, Passage


@pytest.mark.parametrize(
    ("text", "years"),
    [
        ("2023年的税收", [(2023, 2023)]),
        ("2025 年一季度", [(2025, 2025)]),  # PDF letter spacing
        ("二〇二三年", [(2023, 2023)]),
        ("in 2023, the park", [(2023, 2023)]),
        ("from '23 on", [(2023, 2023)]),
        ("2024-05-01发布", [(2024, 2024)]),
        ("2021—2023年", [(2021, 2023)]),
        ("2018年以来", [(2018, OPEN_END)]),
        ("2023.5亿元", []),  # a quantity, not a year
        ("2023项标准", []),
        ("2000多家企业", []),
        ("2024上海与全国城市区域联动指数", [(2024, 2024)]),  # a title's year without 年
        ("in 2023 the park", [(2023, 2023)]),
        ("1500家企业", []),
        ("80年代", []),
        ("浙江“1851”全民健身赛事体系", []),  # a number quoted on its own is a name
        ("“1851”体系2024年的产值", [(2024, 2024)]),
    ],
)
def test_years(text: str, years: list[tuple[int, int]]) -> None:
    assert list(extract_years(text)[0]) == years


def test_relative_years_are_noted() -> None:
    assert extract_years("今年以来，九城市")[1] is True
    assert extract_years("this year the city")[1] is True
    assert extract_years("2023年")[1] is False


def test_quantities() -> None:
    found = {
        (q.text, q.dimension, q.value)
        for q in extract_quantities(
            "产值300亿元、税收43.58亿元，企业1500家，占比28.3%，面积2.4平方公里，超百亿元，1.29万亿元"
        )
    }
    assert ("300亿元", "money", 3e10) in found
    assert ("1500家", "count:家", 1500.0) in found
    assert ("28.3%", "percent", 28.3) in found
    assert ("2.4平方公里", "area", 2.4e6) in found
    assert ("百亿元", "money", 1e10) in found
    assert ("1.29万亿元", "money", 1.29e12) in found
    assert extract_quantities("这是一个重要项目") == ()  # 一个 is an article
    # approximations between the number and its unit
    assert [(q.value, q.dimension) for q in extract_quantities("集聚了 90 余家企业，5万余人")] == [
        (90.0, "count:家"),
        (5e4, "count:人"),
    ]
    assert [q.dimension for q in extract_quantities("缩短24小时，3个月")] == ["duration"] * 2
    assert extract_quantities("开往哪两个邻国") == ()  # asked, not stated
    assert extract_quantities("多少千米") == ()  # the unit word, no number
    # how loosely a number is given: 五十多 is 50 to 60, 超过 up to half again, 近 or 约 ±15%
    loose = extract_quantities("五十多个园区，2300余家，超过50家，近110亿元，3万平方米左右")
    assert [q.approx for q in loose] == ["more", "more", "over", "about", "about"]
    assert [q.bounds() for q in loose[:3]] == [(50, 60), (2300, 2400), (50, 75)]
    assert extract_quantities("more than 200 km")[0].approx == "over"
    assert extract_quantities("共55个")[0].bounds() == (55, 55)
    assert [q.value for q in extract_quantities("全长5千米，高200米")] == [5000.0, 200.0]
    assert [q.dimension for q in extract_quantities("1.5 billion yuan")] == ["money"]


@pytest.mark.parametrize(
    ("question", "unit"),
    [
        ("张江发布了多少项标准？", "count:项"),
        ("营收突破了多少亿元？", "money"),
        ("金山园有多少平方公里？", "area"),
        ("How many square kilometres is the park?", "area"),
        ("通关时间能缩短多少小时？", "duration"),
        ("How many hours does a test take?", "duration"),
        ("碳谷的税收是多少？", None),
        ("How many TEUs of cargo did the first train carry?", "count:标箱"),
        ("上海港一年吞吐多少标箱？", "count:标箱"),
        ("有几位院士入驻？", "count:位"),
        ("南通在全国排到第几位？", None),  # a rank, not a head count
        ("这款产品排名第几名？", None),
        ("平台上线以来被预约了多少次？", "count:次"),
        ("接待游客多少人次？", "count:人次"),
    ],
)
def test_asked_unit(question: str, unit: str | None) -> None:
    assert asked_unit(question) == unit


def test_places_and_superlatives() -> None:
    c = extract("上海市人民政府和浙江省合作建设长三角最大的港口")
    assert "上海" in "".join(c.places) and "浙江" in c.places
    assert c.superlatives == {"max"}
    assert extract("第二大港口").later_rank


def test_places_follow_the_dictionary_over_the_tagger() -> None:
    # jieba tags 东西 and 大都市 as places, 嘉兴 as a person and 珠三角 as another proper noun;
    # CC-CEDICT glosses the first two as common words and the others as places
    assert extract("做出来的东西在顶级大都市卖").places == ()
    assert extract("嘉兴与上海两地").places == ("嘉兴", "上海")
    assert extract("珠三角的企业").places == ("珠三角",)
    # a dictionary place read as an adjective is none: 新兴 "emerging" (and Xinxing county)
    assert extract("新兴产业与新兴市场").places == ()
    assert extract("存量资源被盘活").places == ()  # 资源, a noun (and Ziyuan county)


def test_companies_and_organisations_are_named() -> None:
    # a company CC-CEDICT glosses as a name counts; a place followed by an organisation word is
    # the organisation (张江集团 is not 张江), and a generic 公司 or a festival names nothing
    assert extract_places("湖州“上合区”和张江集团签的协议是什么？") == ("张江集团", "湖州")
    assert extract_places("华为在哪一年成立？") == ("华为",)
    assert extract_places("上海大学的校长是谁") == ("上海大学",)
    assert extract_places("哪家科技公司春节期间营收最高？") == ()
    # 腾讯 (jieba: nz) and 上汽 (an abbreviation, j) are names the dictionary points at; 党委,
    # an abbreviation glossed "Party committee", names no one on its own
    assert extract_places("腾讯作为技术支持方负责哪些工作？") == ("腾讯",)
    assert extract_places("上汽集团签订了哪些采购协议？") == ("上汽集团",)
    assert extract_places("合肥市党委一把手叫什么？") == ("合肥",)
    # an abbreviation the dictionary gives for an organisation's full name is one (中石化:
    # abbr. for 中国石油化工股份有限公司), whatever jieba's tag (j, like 党委's)
    assert extract_places("来自中石化的哪家工厂？") == ("中石化",)
    assert abbreviates_organisation("民盟") and not abbreviates_organisation("党委")
    # and a different company in the evidence does not hold the asked one
    assert (
        unstated("比亚迪2023年的销量是多少？", "华为2023年销量302万辆。", "")["name_unstated"]
        == 1.0
    )
    assert (
        unstated("比亚迪2023年的销量是多少？", "比亚迪2023年销量302万辆。", "")["name_unstated"]
        == 0.0
    )


def test_a_stated_count_is_held_without_its_classifier() -> None:
    # 九个城市 asked, 九城市 written
    assert (
        unstated("九个城市的外资涨了多少？", "九城市利用外资增长54.5%。", "")["quantity_unstated"]
        == 0.0
    )
    assert (
        unstated("八个城市的外资涨了多少？", "九城市利用外资增长54.5%。", "")["quantity_unstated"]
        == 1.0
    )


def ev(quote: str, before: str = "", title: str = "") -> Evidence:
    return Evidence(quote, before + quote, title, before)


def kinds(question: str, *evidence: Evidence) -> list[str]:
    return [m.kind for m in mismatches(question, list(evidence))]


def test_year_mismatch_and_match() -> None:
    quote = "碳谷一路增长到2023年的产值300亿元、税收43.58亿元。"
    assert kinds("碳谷2024年的税收是多少？", ev(quote)) == ["year"]
    assert kinds("碳谷2023年的税收是多少？", ev(quote)) == []
    assert kinds("How much tax did the park collect in 2024?", ev(quote)) == ["year"]
    assert kinds("碳谷的税收是多少？", ev(quote)) == []  # no year asked


def test_a_year_stated_before_the_quote_governs_it() -> None:
    # the quote states no year; the heading does
    assert kinds("2024年税收是多少？", ev("税收43.58亿元。", before="2023年经营情况\n")) == ["year"]
    assert kinds("2023年税收是多少？", ev("税收43.58亿元。", before="2023年经营情况\n")) == []
    # the nearest earlier statement wins over an older one
    before = "2022年园区更名。2023年经营情况如下。"
    assert kinds("2022年税收是多少？", ev("税收43.58亿元。", before=before)) == ["year"]
    # a relative year makes the quote neutral: its year depends on the document's date
    assert kinds("2024年税收是多少？", ev("今年以来税收43.58亿元。", before="2023年")) == []
    # nothing anywhere: nothing to contradict
    assert kinds("2024年税收是多少？", ev("税收43.58亿元。")) == []


def test_ranges_and_open_ranges_cover_the_asked_year() -> None:
    # a closed period speaks of its ends, and of any year of an asked period; its inside is not
    # what it gives a figure for (从2019年到2023年，收入从846亿元增长至1629亿元)
    assert kinds("2023年增幅是多少？", ev("2021—2023年年均增长9%。")) == []
    assert kinds("2020至2022年间增幅是多少？", ev("2021—2023年年均增长9%。")) == []
    assert kinds("2022年收入是多少？", ev("从2019年到2023年，收入从846亿元增长至1629亿元。")) == [
        "year"
    ]
    assert kinds("1965年的产量有什么变化？", ev("1960年代产量翻番。")) == []
    assert kinds("2024年增幅是多少？", ev("2018年以来年均增幅9.26%。")) == []
    assert kinds("2017年增幅是多少？", ev("2018年以来年均增幅9.26%。")) == ["year"]


def test_one_supporting_quote_is_enough() -> None:
    assert kinds("2024年的税收？", ev("2023年税收43亿元。"), ev("2024年税收50亿元。")) == []


def test_place_mismatch_when_absent_near_the_quote() -> None:
    quote = "杭州的人形机器人企业有200家。"
    assert kinds("南京的人形机器人企业有多少家？", ev(quote)) == ["place"]
    assert kinds("南京的人形机器人企业有多少家？", ev(quote, before="南京、杭州两地。")) == []
    assert kinds("南京的人形机器人企业有多少家？", ev(quote, title="南京观察")) == []
    # named in the passage, but not in the sentence before the quote: the quote is 杭州's figure
    before = "南京的企业很多。两地各有特色。"
    assert kinds("南京的人形机器人企业有多少家？", ev(quote, before=before)) == ["place"]
    # a place within the asked one is not another place
    assert kinds("张江科学城有多少家企业？", ev("张江的企业有200家。")) == []
    assert kinds("杭州市的人形机器人企业有多少家？", ev(quote)) == []  # 市 ignored
    # an English question's places are the names the dictionary spells a Chinese place for
    assert kinds("How many robot companies does Nanjing have?", ev(quote)) == ["place"]
    assert kinds("How many robot companies does Hangzhou have?", ev(quote)) == []
    # spelled anywhere near the quote, even by a name no dictionary tags (洋山港)
    assert kinds("How much do ports linked with Yangshan save?", ev("与上海洋山港视同一港。")) == []
    assert kinds("What did Pudong set up?", ev("上海浦东设立了基金。")) == []
    # a quote inside a speaker's words gives the speaker's place's figure
    said = ev("先后引进和培育了56家新型研发机构。", before="湖州市委书记陈浩说：")
    assert kinds("杭州先后引进和培育了多少家新型研发机构？", said) == ["place"]
    assert kinds("湖州先后引进和培育了多少家新型研发机构？", said) == []
    # capitalised words that spell no place (a person, a plan) are not places
    assert kinds("How much did Chen Jia raise?", ev("正序生物在上海融资3亿元。")) == []


def test_a_place_within_the_asked_one_answers_for_it() -> None:
    # CC-CEDICT: 嘉善 "Jiashan county in Jiaxing, Zhejiang"; 青浦 "suburban district of Shanghai"
    quote = "嘉善的改革经验有38项。"
    assert kinds("浙江的改革经验有多少项？", ev(quote)) == []
    assert kinds("江苏的改革经验有多少项？", ev(quote)) == ["place"]
    assert kinds("How many reform measures has Zhejiang tried?", ev(quote)) == []
    assert kinds("How many reform measures has Jiangsu tried?", ev(quote)) == ["place"]
    assert unstated("上海的园区有多少家？", "青浦园区有50家。", "")["name_unstated"] == 0.0
    assert unstated("江苏的园区有多少家？", "青浦园区有50家。", "")["name_unstated"] == 1.0


def test_a_foreign_place_is_held_by_its_english_names() -> None:
    # 荷兰 "Holland/the Netherlands"; 鹿特丹 "Rotterdam, port city in the Netherlands"
    quote = "鹿特丹港对低碳燃料船舶最多减免50万欧元。"
    assert kinds("荷兰的港口最多减免多少欧元？", ev(quote)) == []
    assert kinds("比利时的港口最多减免多少欧元？", ev(quote)) == ["place"]


def test_an_english_name_the_passages_never_name() -> None:
    names = english_names("Which Huawei projects did the Shanghai office fold in last September?")
    assert names == {"huawei": ("华为",), "shanghai": ("上海",)}  # not September, not Which
    assert english_names("How much did Chen Jia raise for Robot Valley?") == {}  # runs: no
    quote = "合作办公室把上汽集团、阿里巴巴的项目纳入行动计划。"
    assert kinds("Which Huawei projects did the office fold into the plan?", ev(quote)) == ["place"]
    assert kinds("Which Alibaba projects did the office fold into the plan?", ev(quote)) == []
    assert kinds("Which Huawei projects did the office fold in?", ev("华为的项目纳入计划。")) == []
    # in the passage, though not near the quote, and no other place quoted: not flagged
    unnamed = "合作办公室把这些企业的项目纳入行动计划。"
    before = "华为也参加了调研。其他企业很多。"
    passage = Evidence(unnamed, before + unnamed, "", before)
    assert kinds("Which Huawei projects did the office fold into the plan?", passage) == []
    # but a quote naming other companies (上汽集团) gives theirs, wherever the passage names it
    passage = Evidence(quote, before + quote, "", before)
    assert kinds("Which Huawei projects did the office fold into the plan?", passage) == ["place"]


def test_an_english_organisation_of_several_words() -> None:
    # CC-CEDICT glosses 复旦大学 "Fudan University, Shanghai": a run of capitalised words
    asked = "What role did Fudan University play in setting up the research centre?"
    assert english_names(asked) == {"fudan university": ("复旦大学",)}
    assert english_names("Which Peking University professor spoke?") == {
        "peking university": ("北京大学",)
    }
    # never a part of a longer name: this is no 上海大学
    assert "shanghai university" not in english_names(
        "What post does he hold at Shanghai University of Finance and Economics?"
    )
    other = "松江区与上海外国语大学共建中阿改革发展研究中心。"
    assert kinds(asked, ev(other)) == ["place"]
    assert kinds(asked, ev("松江区与复旦大学共建研究中心。")) == []


def test_a_region_of_a_province_holds_its_cities() -> None:
    # 苏南 "southern Jiangsu" is in no dictionary: named by 苏 (abbr. for Jiangsu) and a
    # direction, it is a part of 江苏, so a quote on 江苏常州 may answer a question on it
    assert "jiangsu" in place_names("苏南")
    assert "anhui" in place_names("皖北")
    assert "china" not in place_names("华东")  # 华 abbreviates China, no province
    asked = "苏南哪座城市专攻动力电池技术？"
    assert unstated(asked, "江苏常州专注于动力电池技术。", "")["name_unstated"] == 0.0
    assert unstated(asked, "浙江宁波专注于动力电池技术。", "")["name_unstated"] == 1.0


def test_a_count_asked_in_english_is_any_classifier_or_a_bare_number() -> None:
    asked = "How many green ETF products does the exchange have?"
    assert kinds(asked, ev("绿色ETF产品达45只。")) == []
    assert kinds(asked, ev("吸引 5 亿注册用户。")) == []  # a bare number counts too
    assert kinds(asked, ev("绿色ETF规模达到401.4亿元。")) == ["unit"]  # money is no count
    assert holds_unit("count:个", "吸引 5 亿注册用户。", strict=True)
    assert not holds_unit("count:家", "吸引 5 亿注册用户。", strict=True)


def test_an_ordinal_is_no_stated_quantity() -> None:
    assert extract("按第十四个五年规划，要壮大哪些产业？").quantities == ()
    assert len(extract("十四个城市签了协议。").quantities) == 1


def test_a_generic_country_before_an_organisation_word_names_none() -> None:
    assert extract_places("咱们中国公司在海外有多少个合作区？") == ()


def test_a_time_frame_is_no_stated_quantity() -> None:
    # 头三个月 frames the question (the passage says 一季度); 超过3个月的项目 states a figure
    assert extract("今年头三个月，营业收入增长了多少？").quantities == ()
    assert extract("过去五年里上海新增了多少家企业？").quantities == ()
    assert len(extract("工期超过3个月的项目有多少个？").quantities) == 1


def test_an_administrative_word_alone_is_no_place() -> None:
    assert extract_places("临港那块新区出台了多少条举措？") == ("临港",)
    # an island is named by its core, as a city is without 市
    assert extract_places("长兴岛那家机构造出了什么装备？") == ("长兴",)


def test_a_new_town_alone_is_no_place() -> None:
    # 新城 ("new town") is an administrative word: 嘉定新城 is 嘉定's, 科技新城 names nothing
    assert extract_places("跨界科技新城在哪里签约？") == ()
    assert extract_places("嘉定新城提供了多少就业岗位？") == ("嘉定",)


def test_a_name_cut_out_of_a_longer_one_is_none() -> None:
    # jieba reads 中东阿语 as 中 + 东阿 (a county) + 语: 中东 is the name, 东阿 is not meant
    assert extract_places("和中东阿语国家合作的机构叫什么？") == ()
    # two names side by side are no such cut
    assert extract_places("江苏南京和浙江杭州签了协议。") == ("江苏", "南京", "浙江", "杭州")


def test_which_ones_asked_is_no_count() -> None:
    # 哪几个城市, 哪几个月 ask which ones: names or months, not a number of them
    assert wanted_unit("哪几个城市入选了名单？") is None
    assert wanted_unit("毕业生一般集中在一年中的哪几个月来上海？") is None
    assert wanted_unit("有几个城市入选了名单？") == "count:个"
    assert kinds("哪几个城市入选了名单？", ev("南京、苏州入选了名单。")) == []


def test_within_reads_the_dictionary_up_the_levels() -> None:
    assert {"jiaxing", "zhejiang"} <= within("嘉善")  # county → city → province
    assert "hangzhou" not in within("浙江")  # "…, capital Hangzhou" is not containment
    assert within("张江") == frozenset()  # not in the dictionary
    assert "gansu" not in within("昆山")  # suzhou spells 苏州 and 肃州: not followed


@pytest.mark.parametrize(
    ("question", "unit"),
    [
        ("张江长三角科技城一期启动区计划总投资多少？", "money"),
        ("平台的建设总投入是多少？", "money"),
        ("营收每年平均增速是多少？", "percent"),  # the nearest attribute: 增速, not 营收
        ("园区的规划面积有多大？", "area"),
        ("园区有多少员工？", "count:人"),
        ("三年行动计划安排了多少专项资金？", "money"),  # a one-word modifier before it
        ("有多少城市参加了联盟？", None),
        ("第4轮每场平均来了多少球迷进场看球？", "count:人"),  # the persons counted
        ("外来人口占比是多少？", "percent"),  # the nearest attribute
        ("How many tourists visited the town?", "count:人"),
        ("境外资金比上年涨了多少？", None),  # a change: a percentage or an amount
        ("哪个产业投资最多？", None),  # asks for a name
        ("What was the total investment of the projects?", "money"),
        ("首发班列所载货物总价值是多少？", "money"),
        ("What was the total value of the goods carried?", "money"),
        ("What share of the companies are in the delta?", "percent"),
        ("How many people are employed by the companies?", "count:人"),
        # a count of the things named (English has no classifiers), not the plan's cost
        ("How many major actions does the cost-cutting plan lay out?", "count:个"),
        ("How many years in a row has the port ranked first?", None),  # 连续十五年: no count
        ("Which sector receives the largest share of funding?", None),
        ("By how much did revenue grow?", None),
    ],
)
def test_implied_unit(question: str, unit: str | None) -> None:
    assert implied_unit(question) == unit


def test_an_implied_unit_is_checked_as_an_asked_one() -> None:
    quote = "启动区已确定为沪浙沿界河两岸7.1平方公里区域。"
    assert "unit" in kinds("启动区计划总投资多少？", ev(quote))
    assert kinds("启动区计划总投资多少？", ev("启动区总投资120亿元。")) == []
    assert kinds("启动区的面积是多少？", ev(quote)) == []
    staff = "平台吸引超5000名专家与200余家企业入驻。"
    assert "unit" in kinds("平台的建设总投入是多少？", ev(staff))
    assert kinds("How many people work on the platform?", ev(staff)) == []  # 名 counts people


def test_classifiers_of_one_class_are_compatible() -> None:
    assert kinds("方案列出了多少条做法？", ev("方案提出了37项具体举措。")) == []
    assert kinds("引进了多少人？", ev("引进了8位院士。")) == []
    assert kinds("引进了多少人？", ev("引进了8家企业。")) == ["unit"]


def test_unit_mismatch() -> None:
    assert kinds("相关企业有多少家？", ev("相关企业数量占全国的28.3%。")) == ["unit"]
    assert kinds("相关企业有多少家？", ev("相关企业超过200家，占全国28.3%。")) == []
    assert kinds("相关企业有多少个？", ev("相关企业超过200家。")) == []  # 个 counts anything
    assert kinds("园区有多少平方公里？", ev("园区占地3000亩。")) == []  # both areas
    # a shipping route is measured in nautical miles: a length, which a date does not give
    assert "absent" in kinds("走廊全程有多少海里？", ev("走廊于2022年1月正式启动。"))
    assert kinds("走廊全程有多少海里？", ev("走廊全程约5800海里。")) == []
    assert kinds("How many nautical miles long is the corridor?", ev("全程约5800公里。")) == []
    # no quantity at all: the asked one is absent
    assert kinds("相关企业有多少家？", ev("相关企业正在集聚。")) == ["absent"]


def test_a_figure_or_rank_asked_and_none_quoted() -> None:
    assert "absent" in kinds("联盟有多少成员？", ev("零售商在 2023 年成立了买家联盟。"))
    assert kinds("联盟有多少成员？", ev("联盟已有30多个成员。")) == []
    assert kinds("联盟叫什么？", ev("零售商在 2023 年成立了买家联盟。")) == []  # no figure asked
    assert "absent" in kinds("企业数量在全国排第几？", ev("上海226家企业中有84家在奉贤。"))
    assert kinds("企业数量在全国排第几？", ev("企业数量居全国第二位。")) == []


def test_stated_quantity_mismatch() -> None:
    q = "营收超过100亿元的企业有多少家？"
    assert kinds(q, ev("营收超过50亿元的企业有35家。")) == ["quantity"]
    assert kinds(q, ev("营收超百亿元的企业有35家。")) == []  # 百亿 is 100亿


def test_which_came_first_needs_a_quote_saying_what_did() -> None:
    asked = "这些示范区中，哪个最早挂牌？"
    assert kinds(asked, ev("黄浦区街区年接待客流突破2亿人次。")) == ["absent"]
    assert kinds(asked, ev("南京路示范区率先挂牌。")) == []
    assert kinds("园区是哪一年最早建成的？", ev("园区1992年建成。")) == []  # a date answers


def test_superlative_mismatch() -> None:
    assert kinds("长三角最大的港口是哪个？", ev("宁波舟山港是长三角第二大港口。")) == [
        "superlative"
    ]
    assert kinds("长三角最大的港口是哪个？", ev("上海港是长三角最大的港口。")) == []
    assert kinds("吞吐量最低的是哪个港口？", ev("上海港吞吐量最高。")) == ["superlative"]
    # which one is largest, and the quote singles none out: an aggregate is no answer
    q = "55个园区中哪一个土地产出最高？"
    assert kinds(q, ev("55个园区每平方公里土地产出近110亿元。")) == ["absent"]
    assert kinds(q, ev("张江园区土地产出居首位。")) == []
    # the earliest of a batch singles nothing out by size
    assert "absent" in kinds(q, ev("西岸智塔是全国最早一批人工智能产业地标。"))
    # fastest is a largest (of a growth)
    assert kinds("哪个城市利用外资增长最快？", ev("九城市利用外资增长54.5%。")) == ["absent"]
    assert kinds("哪个城市利用外资增长最快？", ev("其中嘉兴增长最快，达80%。")) == []
    # a superlative that only describes the subject asks nothing
    assert kinds("园区最大的企业营收是多少？", ev("该企业营收50亿元。")) == []


def _answer(question: str, quote: str) -> Answer:
    p = Passage("d:0", "d", "a.txt", "", quote, 1.0, 10, 10 + len(quote))
    c = Citation(1, "d:0", "a.txt", 10, 10 + len(quote), quote)
    return Answer(question, f"{quote}[1]", True, "extractive", (c,), (p,))


def test_check_answer_adds_one_warning_in_the_question_language() -> None:
    a = check_answer(_answer("碳谷2024年的税收是多少？", "2023年税收43.58亿元。"))
    assert [w.code for w in a.warnings] == [CODE]
    assert a.warnings[0].message == "问题问的是2024年，文档只给出2023年的数据。"
    assert a.answer == "2023年税收43.58亿元。[1]"  # the cited answer itself is unchanged
    en = check_answer(_answer("What was the tax in 2024?", "2023年税收43.58亿元。"))
    assert "asks about 2024" in en.warnings[0].message and "2023" in en.warnings[0].message
    assert check_answer(en) == en  # never warned twice
    fine = _answer("碳谷2023年的税收是多少？", "2023年税收43.58亿元。")
    assert check_answer(fine) == fine


def test_decades_centuries_and_periods() -> None:
    assert extract_years("the 1960s")[0] == ((1960, 1969),)
    assert extract_years("19世纪")[0] == ((1800, 1899),)
    assert extract_years("1987年以后")[0] == ((1987, OPEN_END),)
    # several asked years are one period: a year within it is no mismatch
    assert kinds("2019年和2023年相比增长了多少？", ev("2021年增长9%。")) == []


def test_a_later_rank_counts_only_against_the_same_ranked_thing() -> None:
    assert kinds("第一届比赛在哪里举行？", ev("第三场半决赛在新加坡举行。")) == []
    assert kinds("第一届比赛在哪里举行？", ev("第二届比赛在新加坡举行。")) == ["superlative"]
    # an English question does not say what it ranks
    assert kinds("Where was the first season held?", ev("第三场半决赛在新加坡举行。")) == []


def test_an_asked_attribute_the_quote_never_mentions() -> None:
    # 女性 asked; the quote gives all young renters
    quote = "2024年20-30岁沪上租房青年为7.6万人。"
    assert "attribute" in kinds("2024年沪上租房青年中女性有多少人？", ev(quote))
    assert "attribute" not in kinds("2024年沪上租房青年有多少人？", ev(quote))
    # the attribute named by the sentence before the quote, or one of its characters
    assert kinds("联合体有多少家成员？", ev("共有30家。", before="联合体的成员如下。")) == []
    assert "attribute" not in kinds("联盟的成员单位有多少家？", ev("联盟成员达30家。"))
    # words that only say what kind of answer is wanted (什么时候, 面积) are no attribute
    assert kinds("协议是在什么时候签署的？", ev("协议于2017年7月签署。")) == []
    assert kinds("平湖园面积是多少？", ev("平湖园4.7平方公里。")) == []
    # a measure's own character is not what it measures: 召回率 (jieba: 召回 率) is not held by
    # 准确率, though 增长率 is by 增长
    accuracy = ev("系统的准确率达到85%。")
    assert "attribute" in kinds("评级系统的召回率是多少？", accuracy)
    assert "attribute" not in kinds("评级系统的准确率是多少？", accuracy)
    assert "attribute" not in kinds("营收的增长率是多少？", ev("营收同比增长15.3%。"))
    # English questions are not compared word by word
    assert "attribute" not in kinds("How many women rent in Shanghai?", ev(quote))


def test_name_kinds_come_from_the_dictionary() -> None:
    assert name_kind("嘉兴") == "place"
    assert name_kind("中国") == "name"
    assert name_kind("东西") == "common"
    assert name_kind("张江集团") is None
    # a first sense that points at another word: an abbreviation glossed as a name, or a `see`
    # whose word is one, names too; one pointing at a common word does not
    assert name_kind("上汽") == "name"  # abbr. for 上海汽车工业集团, Shanghai Automotive…
    assert name_kind("腾讯") == "name"  # see 腾讯控股有限公司
    assert name_kind("研发") == "common"


def test_a_generic_classifier_is_no_evidence_for_a_head_count() -> None:
    # the constraint check stays lenient (个 may count anything), the selector's evidence does not
    assert holds_unit("count:人", "5 个主场城市外地游客量较上周增长")
    assert not holds_unit("count:人", "5 个主场城市外地游客量较上周增长", strict=True)
    assert holds_unit("count:人", "场均观众人数达到了 25802 人", strict=True)
    assert holds_unit("count:个", "5 个主场城市", strict=True)
    # an asked 个 is generic: any count holds it (多少个站点, 187座)
    assert holds_unit("count:个", "上海建成187座换电站", strict=True)


def test_ranks_asked_and_stated() -> None:
    assert asks_rank("南通同上海的联动在全国排到第几位？") and asks_rank("What rank does it hold?")
    assert not asks_rank("南通有多少家企业？")
    assert asks_rank("Which place did Shanghai take in the ranking?")
    assert not asks_rank("It compares its belt with which places on the northward belt?")
    assert states_rank("全国排名第八。") and states_rank("位居全国首位")
    assert not states_rank("南通与上海联动发展成果丰硕。")


def test_a_person_asked_is_named() -> None:
    byline = ev("湖州市政协经济界委员 费震夏")
    assert kinds("那篇文章的作者叫什么名字？", byline) == []
    assert kinds("中心的主任是谁？", ev("科技部副部长吴朝晖出席会议。")) == []  # 吴 + 朝晖
    unnamed = ev("中阿G60合作发展促进中心正式揭牌，推进与阿拉伯国家企业的产业协同。")
    assert kinds("中阿G60合作发展促进中心的主任是谁？", unnamed) == ["absent"]
    # a name the question itself states is not the answer (张江 is tagged as a person)
    assert kinds("张江机器人谷的负责人叫什么名字？", ev("张江机器人谷相关负责人介绍。")) == [
        "absent"
    ]
    assert kinds("Who wrote the proposal on the Huzhou hub?", byline) == []
    q = "What was the name of the provincial Party secretary who received the delegation?"
    assert kinds(q, ev("上海市党政代表团在浙江考察，两地签署合作协议。")) == ["absent"]
    # a bare 谁 may be answered by an organisation: not checked
    assert kinds("谁牵头编制了三年行动计划？", ev("上海市发展改革委牵头编制。")) == []
    assert names_person("浙江省湖州市委书记陈浩说") and not names_person("嘉兴与上海两地合作")


def test_authors_asked_and_bylines() -> None:
    assert asks_author("那篇文章的作者叫什么名字？")
    assert asks_author("这份建议是哪个党派组织提出的？")
    assert asks_author("Which organisation proposed the pilot zone?")
    assert asks_author("Who wrote the proposal on the Huzhou hub?")
    assert not asks_author("谁牵头编制了三年行动计划？") and not asks_author("Who attended?")
    assert names_author("湖州市政协经济界委员 费震夏")
    assert names_author("民进杭州市委会")
    # a sentence is no byline, nor a line naming only what the question names
    assert not names_author("浙江省湖州市委书记陈浩说，湖州已参与共建两个产业联盟。")
    assert not names_author("民进杭州市委会", besides="民进杭州市委会提出了什么建议？")


def test_credit_lines_and_photographers_asked() -> None:
    assert asks_photographer("Who took photo ③, showing a production line in Wuhu?")
    assert asks_photographer("Who photographed the campus?") and asks_photographer("图②是谁拍的？")
    assert not asks_photographer("Who wrote the article?") and not asks_photographer("谁拍板的？")
    assert credit_after("肖本祥摄(人民视觉)") == "photo"
    assert credit_after("新华社记者 王某 摄") == "photo"
    assert credit_after("松江区委宣传部供图") == "photo"
    assert credit_after("（作者：彭羽，上海社会科学院世界经济研究所研究员）") == "text"
    # a line about photography, a caption or a byline above its article credits nothing before it
    assert credit_after("浙江摄制组来访") is None and credit_after("他喜欢摄影") is None
    assert credit_after("图③:安徽省芜湖市一家企业的智能化生产线。") is None
    assert credit_after("湖州市政协经济界委员 费震夏") is None
    # a photo's credit is no byline of the caption under it
    assert not names_author("龙巍摄(人民视觉)")
    assert asks_photographer("Which body provided the photo of the cloud corridor?")
    assert asks_photographer("图④的照片是由谁提供的？") or asks_photographer("图④由哪个单位供图？")


def test_an_english_question_names_its_words_in_pinyin() -> None:
    # jieba tags 张江 a person; an English question naming Zhangjiang names it
    text = "本文将以张江为样本，试图厘清都市工业是什么。"
    assert names_person(text)
    assert not names_person(text, besides="Who wrote the article on Zhangjiang Science City?")
    # a place CC-CEDICT knows is no person, though jieba tags it `nr` and it starts with a
    # surname (张家港, 吴江)
    assert not names_person("张家港的企业很多。") and not names_person("吴江的企业很多。")
    assert names_person("张明华的企业很多。")


def test_the_closing_credit_below_an_article() -> None:
    text = "标题\n\n正文第一段。\n\n  （作者：彭羽，研究员）  \n\n下一篇\n\n（作者：权衡）\n"
    start, end = closing_credit(text, text.index("正文"))  # type: ignore[misc]
    assert text[start:end] == "（作者：彭羽，研究员）"
    # read from below the first credit, the next article's
    start, end = closing_credit(text, text.index("下一篇"))  # type: ignore[misc]
    assert text[start:end] == "（作者：权衡）"
    assert closing_credit(text, text.index("（作者：权衡）") + 3) is None


def test_traditional_script_is_read_as_simplified() -> None:
    # 億 is 亿: a traditional question asks in 亿元, a traditional quote states money
    assert wanted_unit("長三角產業合作基金規模為多少億元？") == "money"
    assert [(q.dimension, q.value) for q in extract_quantities("投資達3.87億元")] == [
        ("money", 3.87e8)
    ]
    assert "absent" in kinds("基金規模為多少億元？", ev("該計劃提出要加強長三角產業合作。"))
    assert asks_rank("上海排名第幾？") and asks_author("這篇文章的作者是誰？")


def test_floors_are_counted_not_measured() -> None:
    heights = "西岸智塔东塔楼建筑高度为235米。"
    assert kinds("西岸智塔的东塔楼一共有多少层？", ev(heights)) == ["unit"]
    assert kinds("西岸智塔的东塔楼一共有多少层？", ev("东塔楼共45层。")) == []


def test_the_kind_of_place_asked_is_no_place_named() -> None:
    # 哪个湾区 asks which bay area: the question names none
    assert extract_places("这条长廊是哪个湾区经济板块的产业阵地？") == ()
    assert extract_places("上海哪个区的面积最大？") == ("上海",)


def test_a_place_told_relative_to_another_names_none() -> None:
    assert extract_places("接进供应链系统的外省市公司一共有几家？") == ()
    assert extract_places("上海南郊那个区") == ("上海",)
    assert extract_places("本市和外地企业") == ()
    assert extract_places("南京和西安") == ("南京", "西安")


def test_an_age_is_counted_in_years() -> None:
    shares = "30.29%的沪上租房青年通过互联网平台租房。"
    assert kinds("沪上租房青年的平均年龄是多少岁？", ev(shares)) == ["unit"]
    assert kinds("沪上租房青年的平均年龄是多少岁？", ev("租房青年平均年龄为28岁。")) == []


def test_another_financing_round_than_asked() -> None:
    raised = "正序生物拿到了4000万元A轮融资。"
    asked = "How much did Zhengxu raise in its Series B financing round?"
    assert kinds(asked, ev(raised)) == ["ordinal"]
    assert kinds("正序生物B轮融资拿到了多少钱？", ev(raised)) == ["ordinal"]
    assert kinds("正序生物A轮融资拿到了多少钱？", ev(raised)) == []
    assert kinds("How much did Zhengxu raise?", ev(raised)) == []  # no round asked
    assert kinds(asked, ev("正序生物完成B轮融资1亿元。")) == []


def test_n_in_one_counts_nobody() -> None:
    assert extract_quantities("构建起三位一体的协同体系，推进五位一体总体布局") == ()
    assert [q.value for q in extract_quantities("三位专家出席")] == [3.0]


def test_containers_are_counted_in_teu() -> None:
    assert [
        (q.dimension, q.value) for q in extract_quantities("满载39个标箱，吞吐量5000万标箱")
    ] == [
        ("count:标箱", 39.0),
        ("count:标箱", 5e7),
    ]
    assert kinds("How many TEUs did the first train carry?", ev("满载39个标箱家用电器。")) == []
    assert kinds("How many TEUs did the first train carry?", ev("货值达1.2亿元。")) == ["unit"]
    assert asked_unit("How many standard containers was the train loaded with?") == "count:标箱"


def test_a_date_asked_is_given() -> None:
    """哪一年 / 什么时候 / when: some quote must date something (a year, a month, 今年)."""
    undated = ev("加快沪平盐城际、沪乍杭铁路等项目建设。")
    assert "absent" in kinds("沪乍杭铁路预计哪一年建成通车？", undated)
    assert kinds("When will the railway open?", undated) == ["absent"]
    assert kinds("沪乍杭铁路预计哪一年建成通车？", ev("沪乍杭铁路预计2027年建成。")) == []
    assert kinds("平台什么时候上线的？", ev("今年10月，平台正式上线。")) == []


def test_a_figure_quoted_of_another_subject() -> None:
    # the quote naming the park gives no 家; the one giving 家 is about other companies
    asked = "碳谷绿湾产业园目前有多少家入驻企业？"
    park = "金山第二工业区更名为“碳谷绿湾产业园”，体量8.58平方公里。"
    other = "上海226家化妆品生产企业中，有84家在奉贤。"
    assert kinds(asked, ev(other), ev(park)) == ["subject"]
    # the figure's own sentence names the park, or the sentence before it does: no caveat
    assert kinds(asked, ev("碳谷绿湾产业园已入驻企业120家。"), ev(park)) == []
    assert kinds(asked, ev("园区已入驻企业120家。", before=park), ev(park)) == []
    # a quote sharing only a common word (企业) with the question says nothing of the subject
    assert kinds(asked, ev(other), ev("这些企业正在集聚。")) == []
    # what is asked of the subject (建筑面积) names no subject: a figure quote on another
    # building's 建筑面积 does not outdo the quote naming the tower
    tower = "西岸智塔是全国最早一批人工智能产业地标。"
    floors = "12万平方米的建筑面积中，集聚了一批企业。"
    assert kinds("西岸智塔的总建筑面积是多少平方米？", ev(floors), ev(tower)) == ["subject"]
    assert kinds("西岸智塔的总建筑面积是多少平方米？", ev("西岸智塔建筑面积12万平方米。")) == []
    # the thing counted after the question word (多少个平台) may be part of the subject's name
    linked = "在信息化方面有工业互联网平台集群联动。"
    others = "G60科创走廊推动31个工业互联网平台实现互联互通。"
    assert kinds("工业互联网平台集群联动首批接入了多少个平台？", ev(others), ev(linked)) == [
        "subject"
    ]
    # a rank asked wants no unit: 排第几 of 人口流动 is no head count
    assert (
        kinds(
            "南通在外来人口流动中排第几？",
            ev("12月8日，50人参加论坛。"),
            ev("南通在外来人口流动中位列第四。"),
        )
        == []
    )


def test_an_english_figure_quoted_of_another_subject() -> None:
    asked = "How many employees does Zhengxu Biotech, the startup in Zhangjiang, have?"
    figure = "目前，张江生物医药企业数量超过2300家，从业人员超过9万人。"
    named = "正序生物落户张江“药谷”，三年就做出了产品。"  # 正序 spells Zhengxu
    assert kinds(asked, ev(figure), ev(named)) == ["subject"]
    assert "Zhengxu" in message(mismatches(asked, [ev(figure), ev(named)]), zh=False)
    # the figure's own sentence names it: no caveat
    assert kinds(asked, ev("正序生物在张江有员工120人。"), ev(named)) == []
    # one name shared (张江) is no subject of its own
    assert kinds(asked, ev(figure), ev("张江药谷的企业很多。")) == []


def test_another_round_or_session_than_asked() -> None:
    quote = "第四轮六场比赛场均观众人数达到了 25802 人。"
    assert kinds("苏超第五轮的场均观众人数是多少？", ev(quote)) == ["ordinal"]
    assert kinds("苏超第四轮的场均观众人数是多少？", ev(quote)) == []
    assert kinds("苏超第4轮的场均观众人数是多少？", ev(quote)) == []  # digits or numerals
    # the session stated in the sentence before the quote governs it
    signed = "三省一市共同签署《合作协议》。"
    assert kinds("第六届论坛上签署了哪份协议？", ev(signed, before="第七届论坛举行。")) == [
        "ordinal"
    ]
    assert kinds("第七届论坛上签署了哪份协议？", ev(signed, before="第七届论坛举行。")) == []
    # a session of something else says nothing of the asked one
    forum = "第六届长三角一体化发展高层论坛上签署了哪份协议？"
    other = ev("他在第六届上证最佳分析师评选颁奖典礼上演讲。")
    assert kinds(
        forum, ev("在第七届长三角一体化发展高层论坛上，三省一市签署《协议》。"), other
    ) == ["ordinal"]
    # nothing counted the same way: no verdict (第十四个五年规划 counts no round)
    assert kinds("第五轮有多少观众？", ev("场均观众人数达到了 25802 人。")) == []


def test_a_title_naming_a_place_does_not_stop_the_closing_credit() -> None:
    # the quote is the article's title (张江, which jieba reads as a person): no credit yet
    doc = "从张江科学城剖析上海都市工业实践\n本文以张江为样本。\n（作者：宋某某，研究员）\n"
    title_end = doc.index("\n")
    passage = Passage("d:0", "d", "a.txt", "", doc[:title_end], 1.0, 0, title_end)
    cited = Citation(1, "d:0", "a.txt", 0, title_end, doc[:title_end])
    answer = Answer(
        "Who wrote the article on Zhangjiang?", "…[1]", True, "extractive", (cited,), (passage,)
    )
    whole = ChunkSpan("d", 1, title_end, len(doc), doc[title_end:])
    out = with_closing_credit(answer, lambda _: doc, lambda _d, _o: whole)
    assert out.citations[-1].quote == "（作者：宋某某，研究员）"
    assert out.passages[-1].chunk_id == "d:1" and out.answer.endswith("（作者：宋某某，研究员）[2]")
    # a credit already quoted: nothing added
    assert with_closing_credit(out, lambda _: doc, lambda _d, _o: whole) == out
