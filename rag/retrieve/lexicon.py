"""What retrieval derives from the collection's vocabulary: IDF, evidence tokens, the Latin-script
share, and the cross-lingual terms an English question names.

Everything is computed from the live BM25 statistics of a `SegmentSet` (collection-wide
document frequencies, tombstones subtracted) plus helpers built once per *segment*, never per
query nor per snapshot: a segment's Latin-word term ids and its romanised vocabulary
(`PinyinIndex`). A write adds one small segment, so after a write only that segment's helpers are
new; the engine builds them before it swaps the snapshot in (`warm`), and English questions never
wait for the whole vocabulary to be romanised again.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Sequence

import numpy as np

from rag.index.segment import Segment
from rag.index.segments import SegmentSet
from rag.retrieve.crosslingual import PinyinIndex, dictionary_terms, glossary, synonym_terms

LATIN_SCRIPT_MIN = 0.2
_LATIN_WORD = re.compile(r"[a-z]+")
_ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")
_HAN_WORD = re.compile(r"[\u3400-\u9fff]+")


class _SegmentHelpers:
    """Per-segment vocabulary helpers (built once per segment; the pinyin table lazily)."""

    def __init__(self, latin: np.ndarray) -> None:
        self.latin = latin  # int64 local term ids that are Latin words
        self.pinyin: PinyinIndex | None = None
        self.lock = threading.Lock()


_HELPERS: weakref.WeakKeyDictionary[Segment, _SegmentHelpers] = weakref.WeakKeyDictionary()
_HELPERS_LOCK = threading.Lock()
_LEXICONS: weakref.WeakKeyDictionary[SegmentSet, Lexicon] = weakref.WeakKeyDictionary()


def _helpers(segment: Segment) -> _SegmentHelpers:
    """The helpers of `segment`, made on first use (cheap: one pass over its terms)."""
    with _HELPERS_LOCK:
        h = _HELPERS.get(segment)
        if h is None:
            latin = [i for i, t in enumerate(segment.postings.terms) if _LATIN_WORD.fullmatch(t)]
            h = _HELPERS[segment] = _SegmentHelpers(np.array(latin, dtype=np.int64))
        return h


def _pinyin(segment: Segment) -> PinyinIndex:
    """The romanised vocabulary of `segment`, built once (concurrent callers wait for it)."""
    h = _helpers(segment)
    if h.pinyin is None:
        with h.lock:
            if h.pinyin is None:
                h.pinyin = PinyinIndex(segment.postings.terms)
    return h.pinyin


def lexicon(segments: SegmentSet) -> Lexicon:
    """The `Lexicon` of a segment set (one per set, kept while the set lives)."""
    with _HELPERS_LOCK:
        lex = _LEXICONS.get(segments)
    if lex is None:
        lex = Lexicon(segments)
        with _HELPERS_LOCK:
            lex = _LEXICONS.setdefault(segments, lex)
    return lex


def warm(segments: SegmentSet, only: Sequence[Segment] | None = None) -> None:
    """Build the helpers of the segments of `segments` (or of `only`, e.g. the one a write
    adds, or a merged one not yet swapped in) that lack them: off the request path, before or
    right after a snapshot is swapped in."""
    lex = lexicon(segments)
    if lex.latin_share < LATIN_SCRIPT_MIN:
        if only is None:  # the process's first load: the English→Chinese glossary too (~1.5 s)
            glossary()
        for seg in only if only is not None else [e.segment for e in segments.entries]:
            _pinyin(seg)


class _LiveDocFreq:
    """Live document frequencies, looked up term by term (what `dictionary_terms` asks of a
    few headwords): no whole table is built, and a database's statistics have none."""

    def __init__(self, segments: SegmentSet) -> None:
        self._segments = segments

    def __getitem__(self, term: str) -> int:
        df = int(self._segments.stats.doc_freq([term])[0])
        if df <= 0:
            raise KeyError(term)
        return df

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and int(self._segments.stats.doc_freq([term])[0]) > 0


class Lexicon:
    """Vocabulary-derived signals over one segment set (see the module docstring)."""

    def __init__(self, segments: SegmentSet) -> None:
        """Sum the per-segment Latin-word mass (live rows only)."""
        self.segments = segments
        self.doc_freq = _LiveDocFreq(segments)
        latin = 0
        mass = 0
        for e in segments.entries:
            p = e.segment.postings
            ids = _helpers(e.segment).latin
            df = p.term_df if e.dead_df is None else p.term_df - e.dead_df
            mass += int(df.sum(dtype=np.int64))
            latin += int(df[ids].sum(dtype=np.int64)) if len(ids) else 0
        # Share of the corpus's token occurrences that are Latin words: below LATIN_SCRIPT_MIN,
        # a Latin query word's absence says nothing (an English question over Chinese text).
        self.latin_share = latin / (mass or 1)

    def evidence_tokens(self, tokens: Sequence[str]) -> list[str]:
        """The query tokens whose presence or absence in a chunk is evidence for this corpus.

        Digits and CJK always count; Latin words only when the corpus is written partly in Latin
        script (else an English question over Chinese text would look off-topic by vocabulary
        alone) or when the corpus has them.
        """
        if self.latin_share >= LATIN_SCRIPT_MIN:
            return list(tokens)
        latin = [t for t in tokens if _LATIN_WORD.fullmatch(t)]
        df = dict(zip(latin, self.segments.stats.doc_freq(latin).tolist(), strict=True))
        return [t for t in tokens if not _LATIN_WORD.fullmatch(t) or df[t] > 0]

    def idf(self, tokens: Sequence[str]) -> dict[str, float]:
        """BM25 IDF of each distinct token; tokens the corpus lacks get the maximum."""
        uniq = list(dict.fromkeys(tokens))
        return dict(zip(uniq, self.segments.stats.idf(uniq).tolist(), strict=True))

    def pinyin_terms(self, question: str) -> list[str]:
        """The vocabulary's Chinese words that the question's romanised words read as."""
        found: list[str] = []
        for e in self.segments.entries:
            found += _pinyin(e.segment).terms(question)
        return found

    def synonym_terms(self, tokens: Sequence[str]) -> list[str]:
        """The collection's words sharing a dictionary gloss with the question's Chinese words
        it never uses (`crosslingual.synonym_terms`), when the collection is mostly Chinese (a
        Latin-script one holds no headword to find, and would load the dictionary for nothing)."""
        han = [t for t in tokens if len(t) >= 2 and _HAN_WORD.fullmatch(t)]
        if self.latin_share >= LATIN_SCRIPT_MIN or not han:
            return []
        live = self.segments.stats.doc_freq(han).tolist()
        unused = [t for t, df in zip(han, live, strict=True) if df == 0]
        return sorted(synonym_terms(unused, self.doc_freq)) if unused else []

    def cross_lingual_terms(self, question: str) -> list[str]:
        """The collection's Chinese words an English question names (dictionary and pinyin),
        when the collection is mostly Chinese and the question has English words; else none."""
        if self.latin_share >= LATIN_SCRIPT_MIN or len(_ENGLISH_WORD.findall(question)) < 3:
            return []
        found = dictionary_terms(question, self.doc_freq) + self.pinyin_terms(question)
        found = list(dict.fromkeys(found))
        live = self.segments.stats.doc_freq(found) if found else np.zeros(0)
        # sorted: the same terms in the same order whatever segments hold them
        return sorted(t for t, df in zip(found, live.tolist(), strict=True) if df > 0)
