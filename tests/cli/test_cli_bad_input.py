"""The real `rag` CLI in a subprocess: bad input is refused clearly and leaves the index as it was;
a good run ingests, searches, answers with exact citations, reports and evaluates.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli.helpers import cli_env, index_state, rag

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.errors import DocumentError
from rag.ingest.decode import decode_bytes

SUZHOU = (
    "苏州工业园区位于江苏省苏州市东部，成立于1994年，是中国和新加坡两国政府间的重要合作项目。"
    "园区总面积278平方公里，其中中新合作区80平方公里。2023年，园区实现地区生产总值3686亿元，"
    "同比增长5.8%。园区重点发展新一代信息技术、高端装备制造、生物医药和纳米技术应用等产业。\n"
)
DEMO = (
    "长三角生态绿色一体化发展示范区于2019年11月1日正式揭牌，范围包括上海市青浦区、江苏省苏州市"
    "吴江区和浙江省嘉兴市嘉善县，面积约2413平方公里。示范区的先行启动区面积约660平方公里。"
    "示范区坚持生态优先、绿色发展，探索跨行政区域共建共享的新机制。\n"
)
NEW_DOCS = {
    "rail.txt": (
        "沪苏湖高铁全长约164公里，设计时速350公里，于2024年12月26日开通运营。"
        "线路自上海虹桥站引出，经江苏苏州，终至浙江湖州，沿途设七座车站。"
        "开通后，上海至湖州最快约50分钟可达。\n"
    ),
    "delta_en.txt": (
        "The Yangtze River Delta covers Shanghai, Jiangsu, Zhejiang and Anhui. The region produces "
        "nearly a quarter of China's economic output. Officials plan shared data standards for "
        "customs, health insurance and business registration across the provinces.\n"
    ),
    "notes/hefei.md": (
        "# 合肥科学中心\n\n合肥综合性国家科学中心建有全超导托卡马克核聚变实验装置。"
        "该装置在2023年实现了403秒稳态长脉冲高约束模等离子体运行。\n"
    ),
}

PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"
    b"\x1f\xf3\xffa\x00\x00\x00\x19tEXtSoftware\x00Adobe ImageReady" + bytes(range(256)) * 4
)
# Byte strings with no NUL and no BOM that are neither UTF-8 nor plausibly GB18030/Big5/UTF-16.
UNDECODABLE_CANDIDATES = [
    b"\x80\x81\x82\xfe\xff" * 20,
    b"\xff\xfe\xfd" * 30,
    bytes(range(128, 256)) * 2,
    b"\xc3\x28\xa0\xa1\xe2\x28\xa1" * 30,
    b"\xfe\xfe\xfe\xfe\x81\x30" * 30,
]


def undecodable_bytes() -> bytes:
    """The first candidate `decode_bytes` refuses as undecodable (not as binary or empty)."""
    for data in UNDECODABLE_CANDIDATES:
        try:
            decode_bytes(data, "x.txt")
        except DocumentError as exc:
            if "decode" in str(exc):
                return data
    pytest.fail("decode_bytes accepted (or refused for another reason) every undecodable candidate")


@pytest.fixture(scope="module")
def base_index(tmp_path_factory: pytest.TempPathFactory, use_embedder: Embedder) -> Path:
    """An index holding two documents (built in-process with the real default embedder)."""
    root = tmp_path_factory.mktemp("base")
    src = root / "src"
    src.mkdir()
    (src / "suzhou.txt").write_text(SUZHOU, encoding="utf-8")
    (src / "demo.txt").write_text(DEMO, encoding="utf-8")
    engine = Engine(Settings(index_dir=root / "idx"), embedder=use_embedder)
    assert [r.status for r in engine.ingest_paths([src])] == ["added", "added"]
    engine.close()
    return root / "idx"


@pytest.fixture
def index_dir(base_index: Path, tmp_path: Path) -> Path:
    """A private copy of the two-document index."""
    dst = tmp_path / "idx"
    shutil.copytree(base_index, dst)
    return dst


# --- bad input ---------------------------------------------------------------------------------

TEXT_2000_BYTES = ("长三角一体化。" * 200).encode()[:1998] + b"\n\n"  # valid UTF-8 text
PDF_BYTES = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\ntrailer\n<< >>\n%%EOF\n"
BAD = {
    # case: (file name, bytes or None for "do not create", extra env, words the message must hold)
    "missing": ("nope.txt", None, {}, ["no such file"]),
    "empty": ("empty.txt", b"", {}, ["empty"]),
    "whitespace": ("blank.txt", " \n\t \r\n\u3000\u3000\n   \n".encode(), {}, ["whitespace"]),
    "binary": ("image.txt", PNG_BYTES, {}, ["binary"]),
    "undecodable": ("garbled.txt", b"", {}, ["decode"]),  # bytes chosen at run time
    "too-large": ("big.txt", TEXT_2000_BYTES, {"RAG_MAX_FILE_BYTES": "1000"}, ["limit", "1000"]),
    "pdf": ("report.pdf", PDF_BYTES, {}, ["pdf", "damaged"]),
    "pptx": ("slides.pptx", b"PK\x03\x04" + bytes(60), {}, ["unsupported", ".pptx"]),
    "exe": ("setup.exe", b"MZ\x90\x00\x03" + bytes(200), {}, ["unsupported", ".exe"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_and_index_untouched(
    case: str, index_dir: Path, tmp_path: Path
) -> None:
    name, data, extra, words = BAD[case]
    path = tmp_path / "in" / name
    path.parent.mkdir()
    if case == "undecodable":
        data = undecodable_bytes()
    if data is not None:
        path.write_bytes(data)
    if case == "too-large":
        assert len(TEXT_2000_BYTES) == 2000 and decode_bytes(TEXT_2000_BYTES)  # valid, too big
    before = index_state(index_dir)
    assert before["documents"] == 2

    proc = rag(["ingest", str(path)], cli_env(index_dir, **extra))

    assert proc.returncode != 0, proc.stdout
    err = proc.stderr.lower()
    assert "traceback" not in err, proc.stderr
    for word in words:
        assert word.lower() in err, proc.stderr
    if case != "missing":
        assert name in proc.stderr  # names the file
        assert "failed" in err
    else:
        assert proc.stderr.startswith("error: ")
    assert index_state(index_dir) == before


def test_bad_file_in_a_folder_fails_alone(index_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text(NEW_DOCS["rail.txt"], encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "image.txt").write_bytes(PNG_BYTES)
    before = index_state(index_dir)

    proc = rag(["ingest", str(folder), "--json"], cli_env(index_dir))

    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    status = {r["source"]: r["status"] for r in report["results"]}
    assert status == {"good.txt": "added", "empty.txt": "failed", "image.txt": "failed"}
    reasons = {r["source"]: r["reason"] for r in report["results"]}
    assert "empty" in reasons["empty.txt"] and "binary" in reasons["image.txt"]
    after = index_state(index_dir)
    assert after["documents"] == before["documents"] + 1
    assert int(after["generation"]) == int(before["generation"]) + 1


def test_folder_of_pdfs_and_word_files_reports_each_bad_one(
    index_dir: Path, tmp_path: Path
) -> None:
    from ingest import samples

    folder = tmp_path / "office"
    folder.mkdir()
    (folder / "gazette.pdf").write_bytes(samples.gazette_pdf())
    (folder / "report.docx").write_bytes(samples.docx_bytes())
    (folder / "secret.pdf").write_bytes(samples.encrypted_pdf())
    (folder / "scan.pdf").write_bytes(samples.image_only_pdf())
    (folder / "archive.docx").write_bytes(samples.plain_zip())
    before = index_state(index_dir)

    proc = rag(["ingest", str(folder)], cli_env(index_dir))

    assert proc.returncode == 1
    assert "2 added, 0 updated, 0 unchanged, 0 duplicate, 3 failed" in proc.stdout
    failures = [ln for ln in proc.stderr.splitlines() if ln.startswith("failed: ")]
    assert len(failures) == 3, proc.stderr
    reasons = {ln.split(": ")[1]: ln for ln in failures}
    assert "encrypted" in reasons["secret.pdf"] and "decrypt it first" in reasons["secret.pdf"]
    assert "no text layer (scanned?)" in reasons["scan.pdf"] and "OCR" in reasons["scan.pdf"]
    assert "not a valid .docx" in reasons["archive.docx"]
    after = index_state(index_dir)
    assert after["documents"] == before["documents"] + 2
    assert int(after["generation"]) == int(before["generation"]) + 2

    proc = rag(["ask", "洋山港四期自动化码头的年设计吞吐能力是多少？"], cli_env(index_dir))
    assert proc.returncode == 0, proc.stderr
    cited = [ln for ln in proc.stdout.splitlines() if "六百三十万标准箱" in ln and "]" in ln[:4]]
    assert cited and all(ln.split()[1:3] == ["gazette.pdf", "p.3"] for ln in cited), proc.stdout


# --- a good run --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ingested(base_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-document index plus a folder of three more, ingested by `rag ingest DIR`."""
    root = tmp_path_factory.mktemp("good")
    index = root / "idx"
    shutil.copytree(base_index, index)
    folder = root / "new"
    for rel, text in NEW_DOCS.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")

    proc = rag(["ingest", str(folder)], cli_env(index))

    assert proc.returncode == 0, proc.stderr
    assert "3 added" in proc.stdout
    assert "5 documents" in proc.stdout
    state = index_state(index)
    assert state["documents"] == 5
    assert {s for s, _ in state["hashes"]} == {"suzhou.txt", "demo.txt", *NEW_DOCS}
    return index


def test_ingest_again_is_unchanged(ingested: Path, tmp_path: Path) -> None:
    index = tmp_path / "idx"
    shutil.copytree(ingested, index)
    before = index_state(index)
    folder = tmp_path / "new"
    for rel, text in NEW_DOCS.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    proc = rag(["ingest", str(folder), "--json"], cli_env(index))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"] == {"unchanged": 3}
    assert index_state(index) == before


def test_search_json(ingested: Path) -> None:
    query = "沪苏湖高铁的设计时速是多少？"
    proc = rag(["search", query, "--json", "--top-k", "3"], cli_env(ingested))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["query"] == query
    assert 1 <= len(data["results"]) <= 3
    keys = {"chunk_id", "doc_id", "source", "title", "text", "score", "start", "end"}
    assert all(keys <= set(r) for r in data["results"])
    assert data["results"][0]["source"] == "rail.txt"
    assert "350公里" in data["results"][0]["text"]


def test_ask_json_citations_quote_the_passages(ingested: Path) -> None:
    proc = rag(["ask", "示范区的面积是多少？", "--json"], cli_env(ingested))
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["answerable"] is True
    assert "2413" in answer["answer"]
    assert answer["citations"]
    passages = answer["passages"]
    for c in answer["citations"]:
        p = passages[c["marker"] - 1]
        assert p["chunk_id"] == c["chunk_id"] and p["source"] == c["source"]
        assert p["start"] <= c["start"] < c["end"] <= p["end"]
        assert c["quote"] == p["text"][c["start"] - p["start"] : c["end"] - p["start"]]
        assert c["quote"] and f"[{c['marker']}]" in answer["answer"]


def test_ask_unanswerable(ingested: Path) -> None:
    proc = rag(["ask", "火星上有没有液态水？", "--json"], cli_env(ingested))
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["answerable"] is False
    assert answer["citations"] == []


def test_info_json(ingested: Path) -> None:
    proc = rag(["info", "--json"], cli_env(ingested))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    state = index_state(ingested)
    assert info["documents"] == 5 == state["documents"]
    assert info["chunks"] == state["chunks"]
    assert info["generation"] == int(state["generation"])
    assert info["embedder"] == "use-multilingual" and info["dim"] == 512
    assert info["derived_files"] == {"segments.manifest": "current"}
    assert sorted(d["source"] for d in info["documents_list"]) == sorted(
        ["suzhou.txt", "demo.txt", *NEW_DOCS]
    )


METRICS = ["hit@1", "hit@5", "mrr@10", "answer_contains", "abstention", "false_abstention"]


def test_eval_json(ingested: Path, tmp_path: Path) -> None:
    questions = [
        {
            "id": "q1",
            "question": "示范区的面积是多少？",
            "answers": ["2413平方公里"],
            "doc": "demo.txt",
            "answerable": True,
            "kind": "fact",
        },
        {
            "id": "q2",
            "question": "沪苏湖高铁的设计时速是多少？",
            "answers": ["350公里"],
            "doc": "rail.txt",
            "answerable": True,
            "kind": "number",
        },
        {
            "id": "q3",
            "question": "火星上有没有液态水？",
            "answers": [],
            "doc": None,
            "answerable": False,
            "kind": "fact",
        },
    ]
    qa = tmp_path / "qa.jsonl"
    lines = [json.dumps(q, ensure_ascii=False) + "\n" for q in questions]
    qa.write_text("".join(lines), encoding="utf-8")

    proc = rag(["eval", str(qa), "--json"], cli_env(ingested))

    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    overall = report["overall"]
    assert overall["n"] == 3
    for key in METRICS:
        assert 0.0 <= overall[key] <= 1.0, key
    assert overall["hit@5"] == 1.0  # five small documents: the gold passage is always in the top 5
    assert set(report["by_kind"]) == {"fact", "number"}
    assert all(key in report["by_kind"]["fact"] for key in METRICS)  # answerable + unanswerable
    answerable_only = [k for k in METRICS if k != "abstention"]
    assert all(key in report["by_kind"]["number"] for key in answerable_only)
    assert [q["id"] for q in report["questions"]] == ["q1", "q2", "q3"]


def test_eval_bad_file_is_a_clear_error(ingested: Path, tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id": "q1", "question": "示范区？"}\nnot json\n', encoding="utf-8")
    proc = rag(["eval", str(qa), "--json"], cli_env(ingested))
    assert proc.returncode != 0
    assert proc.stderr.startswith("error: ") and "qa.jsonl:2" in proc.stderr
    assert "traceback" not in proc.stderr.lower()


def test_invalid_setting_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "i")
    bad_flag = rag(["serve", "--port", "0"], env)
    assert bad_flag.returncode == 1
    assert "Traceback" not in bad_flag.stderr
    assert "error: invalid settings: port" in bad_flag.stderr
    bad_env = rag(["info"], cli_env(tmp_path / "i", RAG_TOP_K="abc"))
    assert bad_env.returncode == 1
    assert "Traceback" not in bad_env.stderr
    assert "top_k" in bad_env.stderr and "'abc'" in bad_env.stderr
