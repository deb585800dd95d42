"""The answer-sentence selector: focus terms over the topic, nothing that only repeats the question."""

from __future__ import annotations

import pytest
from small_engines import RAIL, engine_over

from rag.answer.select import FEATURES, load_selector
from rag.embed.base import Embedder
from rag.engine import Engine

ARTICLE = (
    "蓝线裸顶鲷\n"
    "蓝线裸顶鲷，又称蓝线白鲷，俗名龙尖，为辐鳍鱼纲鲈形目龙占鱼科的其中一个种。"
    "本鱼分布于印度洋及太平洋区，包括红海、东非至日本等海域。"
    "体长可达80公分。"
    "栖息在珊瑚礁区，以底栖无脊椎动物为食。"
    "蓝线裸顶鲷为高经济价值的食用鱼，多以钓获为主。\n"
)


PROPOSAL = (
    "尽快启动建设沪杭未来智造协同发展试验区\n\n"
    "民进杭州市委会\n\n"
    "深度融入长三角一体化发展，积极承接上海产业创新资源溢出，谋划打造沪杭未来智造协同发展试验区"
    "是杭州市谋划的重点工作之一。建议杭州依托临平经开区等制造业先发优势区域开发建设先行启动区，"
    "并建立省、市、区三级协调工作机制。\n"
)


PHOTOS = (
    "长三角科创走廊建设提速\n\n"
    "图①:长三角科创走廊高质量发展要素对接大会现场。\n\n张明华摄(人民视觉)\n\n"
    "图②:浙江省杭州市湖畔实验室南湖园区。\n\n李海涛摄(人民视觉)\n\n"
    "图③:安徽省芜湖市一家企业的智能化生产线。\n\n王建国摄\n"
)

ESSAY = (
    "把握新型离岸贸易发展新机遇\n\n"
    "新型离岸贸易是货物流、资金流和订单流分离的贸易形态，是跨国公司配置全球资源的重要方式。"
    "上海应当借鉴香港离岸贸易的统计经验，开展离岸贸易统计创新试点。\n\n"
    # paragraphs enough that the closing credit lies chunks below the title's
    + "".join(
        f"第{n}点，{topic}要对标国际高标准规则，推动制度型开放，完善配套政策和服务体系，"
        "加强部门协同和数据共享，优化营商环境，吸引更多市场主体集聚，形成可复制可推广的经验。\n\n"
        for n, topic in enumerate(
            [
                "港口建设",
                "航运物流",
                "金融服务",
                "人才引进",
                "数字经济",
                "绿色低碳",
                "科技创新",
                "园区开发",
                "城市更新",
                "文化旅游",
            ]
            * 4,
            start=1,
        )
    )
    + "（作者：周立群，上海某研究所研究员）\n"
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Engine:
    return engine_over(
        tmp_path_factory.mktemp("select"),
        use_embedder,
        {
            "fish.txt": ARTICLE,
            "rail.txt": RAIL,
            "proposal.txt": PROPOSAL,
            "photos.txt": PHOTOS,
            "essay.txt": ESSAY,
        },
    )


@pytest.mark.parametrize(
    "question",
    [
        "哪个组织提出了建设沪杭未来智造协同发展试验区的建议？",
        "Which organisation proposed the Shanghai-Hangzhou future smart manufacturing pilot zone?",
    ],
)
def test_a_question_asking_who_proposed_quotes_the_byline(engine: Engine, question: str) -> None:
    # the byline shares no word with the question: the selector alone never picks it
    answer = engine.ask(question, mode="extractive")
    assert answer.answerable
    assert any("民进杭州市委会" in c.quote for c in answer.citations)


@pytest.mark.parametrize(
    ("question", "credit", "other"),
    [
        # the credit under the caption, not the one above it (that is the previous photo's)
        ("芜湖那家企业智能化生产线的照片是谁拍的？", "王建国", "李海涛"),
        ("Who took the photo of the Nanhu campus of the Hupan Laboratory?", "李海涛", "张明华"),
        # an article's closing credit
        (
            "Who wrote the article on seizing the opportunities of new-type offshore trade?",
            "周立群",
            None,
        ),
    ],
)
def test_a_question_asking_who_took_or_wrote_quotes_the_credit_under_it(
    engine: Engine, question: str, credit: str, other: str | None
) -> None:
    answer = engine.ask(question, mode="extractive")
    assert answer.answerable
    assert any(credit in c.quote for c in answer.citations)
    assert other is None or other not in answer.answer


def test_a_byline_is_not_quoted_unasked(engine: Engine) -> None:
    answer = engine.ask("杭州建议依托哪些区域开发建设先行启动区？", mode="extractive")
    assert answer.answerable and "临平经开区" in answer.answer
    assert "民进杭州市委会" not in answer.answer


def test_the_fitted_weights_match_the_features() -> None:
    assert tuple(load_selector().weights) == FEATURES


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("蓝线裸顶鲷的体长可达多少公分？", "体长可达80公分。"),
        ("蓝线裸顶鲷栖息在什么地方？", "栖息在珊瑚礁区"),
        ("蓝线裸顶鲷分布在哪些海域？", "红海、东非至日本"),
    ],
)
def test_the_answer_is_the_sentence_with_the_focus_terms(
    engine: Engine, question: str, expected: str
) -> None:
    answer = engine.ask(question)
    assert answer.answerable
    assert expected in answer.answer
    assert not answer.answer.startswith("蓝线裸顶鲷[")  # the title line only repeats the topic


def test_sentence_probabilities_sum_to_one(engine: Engine) -> None:
    r = engine.search("蓝线裸顶鲷的体长可达多少公分？")
    scored = load_selector().score(r.analysed, r.passages, r.hits, r.idf)
    assert scored and abs(sum(s.score for s in scored) - 1.0) < 1e-6
    assert scored == sorted(scored, key=lambda s: -s.score)
