"""Two copies of one article and another document, over HTTP (real engine, embedder, SQLite):
the second copy is stored and reported as a duplicate; a search returns their text once, naming
the other copy in `also_in`, and still fills `top_k`; an answer cites the text once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.ingest.dedup import fold_text
from rag.retrieve.collapse import repeats, shingles
from rag.store.sqlite import doc_id_for

STATION = (
    "紫藤湖实验站位于江南丘陵地带，始建于1987年，是省农业科学院下属的综合性农业试验站。"
    "2031年，该站培育了七百二十种耐盐水稻品种，其中“紫藤一号”在含盐量千分之四的滩涂上亩产"
    "达到五百六十公斤。研究人员计划在沿海滩涂推广这些品种，首批示范田设在东台和如东两地，"
    "面积共计一万二千亩。实验站站长陈明远介绍，耐盐水稻的根系能把多余的盐分排出体外，"
    "这是多年杂交筛选的结果。下一步，实验站将与沿海农场合作，建设耐盐种子繁育基地，"
    "并培训当地农技人员掌握配套的灌溉和施肥技术。\n"
)
# The same article as another site saved it: a byline header, reflowed lines, ASCII punctuation.
REPRINT = "本文转载自《沿海农业》第12期\n作者：本刊记者\n" + STATION.replace("，", ",\n").replace(
    "“", '"'
).replace("”", '"')
ORCHARD = (
    "青石镇的杨梅种植已有三百多年历史，全镇杨梅园面积八千亩，年产鲜果九千吨。"
    "今年镇里新建了冷链物流中心，鲜果采摘后六小时内可送达上海和杭州的超市。"
    "镇政府还举办了首届杨梅文化节，吸引游客十二万人次，带动农家乐收入三千万元。\n"
)
QUESTION = "紫藤一号在滩涂上的亩产是多少？"


@pytest.fixture(scope="module")
def client(client: TestClient) -> TestClient:
    """The module's client, after uploading a document, its reprint and an unrelated one."""
    for source, text in (
        ("station.txt", STATION),
        ("reprints/station.txt", REPRINT),
        ("orchard.txt", ORCHARD),
    ):
        r = client.post("/v1/documents", json={"source": source, "text": text})
        assert r.status_code == 201, r.text
    return client


def test_the_second_copy_is_stored_and_marked(client: TestClient, engine: Engine) -> None:
    docs = {d["source"]: d for d in client.get("/v1/documents").json()["documents"]}
    assert set(docs) == {"station.txt", "reprints/station.txt", "orchard.txt"}
    assert docs["reprints/station.txt"]["metadata"] == {"duplicate_of": "station.txt"}
    assert docs["station.txt"]["metadata"] == {} == docs["orchard.txt"]["metadata"]
    # the upload response says so too (sending the copy again under a new name)
    r = client.post("/v1/documents", json={"source": "third.txt", "text": REPRINT + "（完）"})
    assert r.status_code == 201 and r.json()["duplicate_of"] == "station.txt"
    engine.delete(r.json()["doc_id"])


def test_search_returns_the_text_once_naming_the_other_copy(client: TestClient) -> None:
    r = client.post("/v1/search", json={"query": QUESTION, "top_k": 5})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    top = results[0]
    assert "五百六十公斤" in top["text"]
    copies = {"station.txt", "reprints/station.txt"}
    assert top["source"] in copies and top["also_in"] == sorted(copies - {top["source"]})
    assert all(p["source"] not in copies for p in results[1:])
    for i, a in enumerate(results):
        for b in results[i + 1 :]:
            assert not repeats(shingles(a["text"]), shingles(b["text"]))


def test_collapsing_keeps_top_k_filled(client: TestClient, engine: Engine) -> None:
    """Ranked, the two copies are the first two passages; collapsed into one, the search digs
    deeper so that two passages still come back."""
    assert len(engine.snapshot) == 3  # one chunk per document
    passages = engine.search(QUESTION, 2).passages
    assert [p.source for p in passages][1:] == ["orchard.txt"]
    assert len(passages) == 2 and passages[0].also_in


def test_ask_cites_the_text_once(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": QUESTION, "mode": "extractive"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["answerable"] is True and "五百六十公斤" in answer["answer"]
    quotes = [fold_text(c["quote"]) for c in answer["citations"]]
    assert len(quotes) == len(set(quotes))
    assert sum("五百六十公斤" in q for q in quotes) == 1
    assert answer["answer"].count("五百六十公斤") == 1
    sources = [p["source"] for p in answer["passages"]]
    assert len([s for s in sources if "station" in s]) == 1


def test_deleting_the_original_re_points_its_copies(tmp_path: Path, use_embedder: Embedder) -> None:
    engine = Engine(Settings(index_dir=tmp_path / "idx"), embedder=use_embedder)
    second = REPRINT.replace("本刊记者", "特约记者")
    for source, text in (("a.txt", STATION), ("b.txt", REPRINT), ("c.txt", second)):
        engine.ingest_bytes(source, text.encode())

    def marks() -> dict[str, str | None]:
        return {d.source: d.metadata.get("duplicate_of") for d in engine.documents()}

    assert marks() == {"a.txt": None, "b.txt": "a.txt", "c.txt": "a.txt"}
    engine.delete(doc_id_for("a.txt"))
    assert marks() == {"b.txt": None, "c.txt": "b.txt"}  # the oldest copy is the original now
    # and the engine knows it: a copy closest to c.txt is reported as a copy of the original
    engine.ingest_bytes("d.txt", second.replace("作者", "撰稿").encode())
    assert marks()["d.txt"] == "b.txt"
    engine.close()
