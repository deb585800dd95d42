"""Lexical retrieval: BM25 (bm25s) over folded jieba tokens."""

from __future__ import annotations

import pickle
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np

from rag.index.persist import StaleOrCorrupt, read_header, read_stamped, write_stamped
from rag.index.tokenize import TOKENIZER_VERSION, tokenize
from rag.retrieve.crosslingual import PinyinIndex, dictionary_terms

LATIN_SCRIPT_MIN = 0.2
_LATIN_WORD = re.compile(r"[a-z]+")
_ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")


def _format() -> dict[str, object]:
    """What every lexical file's header says of its format (read at call time: the tokenizer's
    version is what makes an older file stale)."""
    return {"kind": "lexical", "tokenizer": TOKENIZER_VERSION}


class LexicalIndex:
    """BM25 scores for every chunk (row order as in the store)."""

    def __init__(self, bm25: bm25s.BM25 | None, vocab: dict[str, int], n: int) -> None:
        """Wrap a built bm25s model and its vocabulary."""
        self.bm25 = bm25
        self.vocab = vocab
        self.n = n
        self.doc_freq = _doc_freq(bm25, vocab)
        mass = sum(self.doc_freq.values()) or 1
        # Share of the corpus's token occurrences that are Latin words: below LATIN_SCRIPT_MIN,
        # a Latin query word's absence says nothing (an English question over Chinese text).
        self.latin_share = (
            sum(n for t, n in self.doc_freq.items() if _LATIN_WORD.fullmatch(t)) / mass
        )
        self._pinyin: PinyinIndex | None = None  # built once: by `warm_pinyin` or the first reader
        self._pinyin_lock = threading.Lock()

    def cross_lingual_terms(self, question: str) -> list[str]:
        """The collection's Chinese words an English question names (dictionary and pinyin),
        when the collection is mostly Chinese and the question has English words; else none."""
        if self.latin_share >= LATIN_SCRIPT_MIN or len(_ENGLISH_WORD.findall(question)) < 3:
            return []
        found = dictionary_terms(question, self.doc_freq) + self.pinyin().terms(question)
        return list(dict.fromkeys(found))

    def pinyin(self) -> PinyinIndex:
        """The romanised vocabulary, built once per index: concurrent readers wait for the one
        build instead of each doing it (before, every English reader of a fresh snapshot built
        its own, and English searches took seconds while a writer made new snapshots)."""
        if self._pinyin is None:
            with self._pinyin_lock:
                if self._pinyin is None:
                    self._pinyin = PinyinIndex(self.doc_freq)
        return self._pinyin

    def warm_pinyin(self) -> None:
        """Build the romanised vocabulary now if English questions can use it (off the request
        path: the engine calls this in the background when it swaps a snapshot in)."""
        if self.latin_share < LATIN_SCRIPT_MIN:
            self.pinyin()

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        """Tokenise and index `texts`."""
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(t, len(vocab)) for t in tokenize(text)] for text in texts]
        if not texts:
            return cls(None, vocab, 0)
        bm25 = bm25s.BM25()
        bm25.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        return cls(bm25, vocab, len(texts))

    def save(self, path: Path, stamp: dict[str, object]) -> None:
        """Write atomically with the given stamp."""
        payload = pickle.dumps((self.bm25, self.vocab, self.n), protocol=pickle.HIGHEST_PROTOCOL)
        write_stamped(path, payload, dict(stamp, **_format()))

    @staticmethod
    def is_current(path: Path, stamp: dict[str, object]) -> bool:
        """Whether the file at `path` carries `stamp` (its header only is read; `StaleOrCorrupt`
        when it is missing or damaged)."""
        head = read_header(path)
        return all(head.get(k) == v for k, v in dict(stamp, **_format()).items())

    @classmethod
    def load(cls, path: Path, stamp: dict[str, object]) -> LexicalIndex:
        """Load if the file matches `stamp` and is intact; else `StaleOrCorrupt`."""
        payload = read_stamped(path, dict(stamp, **_format()))
        try:
            # The file is our own (checksummed, in our index dir), not untrusted input.
            bm25, vocab, n = pickle.loads(payload)
        except Exception as exc:
            raise StaleOrCorrupt(f"{path.name}: cannot unpickle ({exc})") from exc
        return cls(bm25, vocab, n)

    def __len__(self) -> int:
        """Number of indexed chunks."""
        return self.n

    def evidence_tokens(self, tokens: Sequence[str]) -> list[str]:
        """The query tokens whose presence or absence in a chunk is evidence for this corpus.

        Digits and CJK always count; Latin words only when the corpus is written partly in Latin
        script (else an English question over Chinese text would look off-topic by vocabulary alone).
        """
        latin_counts = self.latin_share >= LATIN_SCRIPT_MIN
        return [
            t for t in tokens if latin_counts or t in self.doc_freq or not _LATIN_WORD.fullmatch(t)
        ]

    def idf(self, tokens: Sequence[str]) -> dict[str, float]:
        """BM25-style IDF of each distinct query token; tokens the corpus lacks get the maximum."""
        out: dict[str, float] = {}
        df = self.doc_freq
        for t in dict.fromkeys(tokens):
            n_t = df.get(t, 0)
            out[t] = float(np.log(1.0 + (self.n - n_t + 0.5) / (n_t + 0.5)))
        return out

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every chunk for the query `tokens` (unknown tokens ignored)."""
        known = [self.vocab[t] for t in tokens if t in self.vocab]
        if self.bm25 is None or not known:
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(self.bm25.get_scores(known), dtype=np.float32)


def _doc_freq(bm25: bm25s.BM25 | None, vocab: dict[str, int]) -> dict[str, int]:
    """Document frequency of each vocabulary token, read off bm25s's CSC score matrix."""
    if bm25 is None:
        return {}
    indptr = np.asarray(bm25.scores["indptr"])
    counts = np.diff(indptr)
    return {t: int(counts[i]) for t, i in vocab.items() if i < len(counts)}
