"""What the collection says lies within a place (`rag.answer.gazetteer`): read from text, used by
the answerability signals and the place check, and through the engine over a real index."""

from __future__ import annotations

import pytest
from small_engines import RAIL, engine_over

from rag.answer.constraints import Evidence, mismatches, question_places, unstated
from rag.answer.gazetteer import NO_GAZETTEER, PLACES_READ, TermTexts, learn
from rag.embed.base import Embedder
from rag.engine import Engine

ROBOTS = "去年国内发布了12款人形机器人，其中4款出自张江所在的上海浦东新区。"
DRUGS = "在张江药谷，4款国产1类新药已经在欧美日等海外市场获批上市。"
ADDRESS = "项目落户浙江省湖州市南浔区，毗邻上海市长三角一体化示范区。"


def over(*texts: str) -> TermTexts:
    """The texts holding a term, as the index returns them (`Snapshot.texts_with`)."""
    return lambda term, limit: [t for t in texts if term in t][:limit]


def test_a_place_said_to_lie_within_another_is_learned() -> None:
    assert "张江" in question_places("浦东有几款新药？", over(ROBOTS, DRUGS)).inside["浦东"]
    # address order: the larger unit first, an administrative suffix between
    inside = question_places("湖州的项目在哪里？", over(ADDRESS)).inside["湖州"]
    assert inside == {"南浔"}


def test_the_question_itself_says_where_a_place_lies() -> None:
    assert question_places("浙中金华的副市长说了什么？", None).inside["浙中"] == {"金华"}


def test_common_words_and_contradicted_places_are_not_learned() -> None:
    # 上海市长三角…: CC-CEDICT puts neither 长三角 in 上海; 一体化 is no name
    assert question_places("上海的示范区有多大？", over(ADDRESS)).inside["上海"] == frozenset()
    # nothing read, nothing learned: no text names 浦东
    assert question_places("浦东有几款新药？", over(DRUGS)).inside["浦东"] == frozenset()


def test_a_learned_place_holds_the_asked_one() -> None:
    places = question_places("浦东有几款新药获批上市？", over(ROBOTS, DRUGS))
    question = "浦东有几款新药获批上市？"
    assert unstated(question, DRUGS, DRUGS)["name_unstated"] == 1.0
    assert unstated(question, DRUGS, DRUGS, places)["name_unstated"] == 0.0
    # and the place check: 浦东 asked, a quote naming 张江 and 欧美 no longer gives another
    # place's figure
    evidence = [Evidence(quote=DRUGS, passage_text=DRUGS, preceding="", title="药谷")]
    assert "place" in [m.kind for m in mismatches(question, evidence, NO_GAZETTEER)]
    assert "place" not in [m.kind for m in mismatches(question, evidence, places)]


def test_another_place_is_still_missing() -> None:
    places = question_places("苏州有几款新药获批上市？", over(ROBOTS, DRUGS))
    assert unstated("苏州有几款新药获批上市？", DRUGS, DRUGS, places)["name_unstated"] == 1.0


@pytest.fixture
def engine(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Engine:
    docs = {"robots.txt": ROBOTS, "drugs.txt": DRUGS, "rail.txt": RAIL}
    return engine_over(tmp_path_factory.mktemp("gazetteer"), use_embedder, docs)


def test_the_engine_learns_from_the_whole_collection(engine: Engine) -> None:
    question = "浦东的药谷有几款国产新药在海外获批？"
    assert "张江" in engine.places(question).inside["浦东"]  # from robots.txt, not a passage
    answer = engine.ask(question)
    assert answer.answerable and "4款" in answer.answer
    # a deleted document's statement is forgotten
    robots = next(d.doc_id for d in engine.documents() if d.source == "robots.txt")
    engine.delete(robots)
    assert "张江" not in engine.places(question).inside["浦东"]
    engine.close()


def test_only_the_first_places_are_looked_up() -> None:
    # a hostile question listing hundreds of places costs what one naming PLACES_READ does
    asked: list[str] = []

    def lookup(term: str, limit: int) -> list[str]:
        asked.append(term)
        return []

    places = [f"地{i:03d}" for i in range(300)]
    gazetteer = learn(places, [], lookup, lambda text: [])
    assert asked == places[:PLACES_READ]
    assert len(gazetteer.inside) == PLACES_READ
