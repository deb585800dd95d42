"""The matching form of text: stray spaces in numbers and full-width forms match as written,
folded texts keep their length (offsets stay valid), and tokens stored by another tokenizer
version are made again (segments rebuilt, the new tokens stored)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hashing import HashingEmbedder
from hypothesis import given
from hypothesis import strategies as st

from rag.config import Settings
from rag.embed.base import Embedder
from rag.engine import Engine
from rag.index import snapshot as snapshot_module
from rag.index.segments import MANIFEST_FILE
from rag.index.tokenize import fold, tokenize

# OpenCC maps each of these one character to one character
TEXT_CHARS = "项亿元年月共第条約億萬万措施abcXYZ0123456789１２３ＡＢ .,，。\n"


@pytest.mark.parametrize(
    ("noisy", "clean"),
    [
        ("共 12 项措施", "共12项措施"),
        ("共 1 2 项措施", "共12项措施"),  # letter-spaced PDF glyphs
        ("总投资 3 . 5 亿元", "总投资3.5亿元"),
        ("总投资 3. 5亿元", "总投资3.5亿元"),
        ("１２项", "12项"),  # full-width digits
        ("ＡＩ芯片", "ai芯片"),
        ("約 3 . 5 億元", "约3.5亿元"),  # traditional, spaced
    ],
)
def test_stray_spaces_in_numbers_tokenize_as_written(noisy: str, clean: str) -> None:
    assert tokenize(noisy) == tokenize(clean)
    folded = fold(noisy)
    assert all(t in folded for t in tokenize(clean))  # term coverage matches by substring


@pytest.mark.parametrize(
    "text", ["chapter 1 2 and 3", "2023 2024年", "12 3项", "x 1.5 y", "pages 3 . 5"]
)
def test_spaces_that_part_numbers_are_kept(text: str) -> None:
    """Two numbers, or numbers in Latin text: the space means something, so it stays."""
    assert fold(text) == text.lower()


@given(st.text(alphabet=TEXT_CHARS, max_size=60))
def test_folding_keeps_the_length(text: str) -> None:
    """Offsets into a folded text are offsets into the text (sentence slices rely on it)."""
    assert len(fold(text)) == len(text)


def test_tokens_of_another_tokenizer_are_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(index_dir=tmp_path / "idx", parse_sandbox=False)
    engine = Engine(settings, embedder=HashingEmbedder())
    engine.ingest_bytes("a.txt", "共 1 2 项措施，总投资 3 . 5 亿元。".encode())
    engine.close()
    version = snapshot_module.TOKENIZER_VERSION
    monkeypatch.setattr(snapshot_module, "TOKENIZER_VERSION", version + 1)
    engine = Engine(settings, embedder=HashingEmbedder())  # the stored tokens are not trusted
    assert engine.info()["rebuilt_on_load"] == [MANIFEST_FILE]
    with engine.store.read_view() as view:
        assert view.meta("tokenizer_version") == str(version + 1)  # remade and stored
    assert engine.search("总投资3.5亿元", 1).passages
    engine.close()
    engine = Engine(settings, embedder=HashingEmbedder())
    assert engine.info()["rebuilt_on_load"] == []  # once
    engine.close()


def test_a_spaced_number_is_found_and_quoted_as_stored(
    tmp_path: Path, use_embedder: Embedder
) -> None:
    engine = Engine(Settings(index_dir=tmp_path / "idx"), embedder=use_embedder)
    docs = {
        "plan.txt": "本市今年共安排 1 2 项重点改革措施，总投资 3 . 5 亿元，年底前全部开工。",
        "other.txt": "第12条规定了改革项目的申报流程。重点措施包括12个方面，每项资金不超过35亿元。",
        "noise.txt": "全市共有项目储备库一个，今年安排重点工作若干项，资金三亿元。",
    }
    for name, text in docs.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    engine.ingest_paths([tmp_path / name for name in docs])
    for question in ("共安排12项重点改革措施", "总投资3.5亿元"):
        top = engine.search(question, 3).passages[0]
        assert top.source == "plan.txt", question
        assert top.text == engine.store.document_text(top.doc_id)[top.start : top.end]
        assert "1 2 项" in top.text  # the stored words are not rewritten
