"""Check an LLM's cited answer against the passages it was given. The model is never trusted.

For each sentence of the reply (markers moved behind its final punctuation):
- markers that point at no retrieved passage are dropped and counted;
- the remaining markers are renumbered in order of first use (passages are reordered to match, so
  marker `[n]` is always `passages[n-1]`);
- the supporting span is found in the cited passages: the passage sentence that best matches the
  answer sentence (character-bigram containment, and embedding cosine for answers in another
  language); its offsets and exact text become the citation's quote;
- support is measured (0..1); a sentence below `SUPPORT_MIN`, whose numbers do not occur in the
  cited passages, or that cites nothing, is unsupported: dropped (RAG_DROP_UNSUPPORTED, the
  default; it then takes no marker number either) or only flagged.

`CitationChecker` works incrementally (`feed` deltas, get finished sentences back), so a streamed
answer is checked and renumbered sentence by sentence and its deltas equal the final text.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.embed.base import Embedder
from rag.index.tokenize import fold
from rag.ingest.pages import page_at
from rag.ingest.split import sentence_spans
from rag.types import Citation, Passage

SUPPORT_MIN = 0.5
_MARKER = re.compile(r"\[(\d{1,3})\]")
_MARKERS_BEFORE_END = re.compile(r"((?:\s*\[\d{1,3}\])+)\s*([。！？!?；;]|\.(?=\s|$))")
# a sentence ends at terminal punctuation plus any markers right after it
_SENTENCE = re.compile(r"(.+?(?:[。！？!?；;]+|\.(?=\s)|\n)(?:\s*\[\d{1,3}\])*)", re.DOTALL)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CONTENT = re.compile(r"[0-9a-z\u3400-\u9fff]")


@dataclass(frozen=True)
class CheckedSentence:
    """One answer sentence after checking."""

    text: str  # without markers
    markers: tuple[int, ...]  # renumbered (a dropped sentence's: the prompt's, never shown)
    support: float
    supported: bool
    quotes: tuple[Citation, ...]


@dataclass
class CheckedAnswer:
    """The verified answer."""

    text: str
    citations: list[Citation]
    passages: list[Passage]
    sentences: list[CheckedSentence] = field(default_factory=list)
    dropped_citations: int = 0
    unsupported: list[str] = field(default_factory=list)


def _bigrams(text: str) -> set[str]:
    chars = [c for c in fold(text) if _CONTENT.match(c)]
    if len(chars) < 2:
        return set(chars)
    return {a + b for a, b in itertools.pairwise(chars)}


def _containment(sentence: str, source: str) -> float:
    """Share of the sentence's content bigrams found in `source`."""
    grams = _bigrams(sentence)
    if not grams:
        return 0.0
    have = _bigrams(source)
    return len(grams & have) / len(grams)


class CitationChecker:
    """Feed the model's text; get back checked, renumbered sentences."""

    def __init__(
        self, passages: Sequence[Passage], embedder: Embedder | None, *, drop_unsupported: bool
    ) -> None:
        """Check against `passages` (marker n = passages[n-1] in the prompt)."""
        self.passages = list(passages)
        self.embedder = embedder
        self.drop_unsupported = drop_unsupported
        self._buffer = ""
        self._order: dict[int, int] = {}  # prompt marker -> new marker
        self.sentences: list[CheckedSentence] = []
        self.dropped = 0
        self._spans = [sentence_spans(p.text) for p in self.passages]
        self._span_vectors: dict[int, np.ndarray] = {}

    def feed(self, delta: str) -> list[str]:
        """Add model text; return the rendered text of every sentence completed so far."""
        self._buffer += delta
        out: list[str] = []
        while True:
            text = _MARKERS_BEFORE_END.sub(r"\2\1", self._buffer)
            m = _SENTENCE.match(text)
            # A sentence is complete only once something follows its markers (more may come).
            if not m or m.end() >= len(text.rstrip()):
                self._buffer = text
                return out
            self._buffer = text[m.end() :]
            rendered = self._check(m.group(1))
            if rendered:
                out.append(rendered)

    def finish(self) -> tuple[list[str], CheckedAnswer]:
        """Flush the last sentence; return its rendering and the whole checked answer."""
        text = _MARKERS_BEFORE_END.sub(r"\2\1", self._buffer)
        self._buffer = ""
        tail = [r for r in [self._check(text)] if r] if text.strip() else []
        return tail, self.result()

    def result(self) -> CheckedAnswer:
        """The answer as checked so far."""
        cited = sorted(self._order.items(), key=lambda kv: kv[1])
        order = [old for old, _ in cited]
        passages = [self.passages[o - 1] for o in order]
        passages += [p for i, p in enumerate(self.passages, 1) if i not in self._order]
        kept = [s for s in self.sentences if s.supported or not self.drop_unsupported]
        text = "".join(_render(s) for s in kept).strip()
        return CheckedAnswer(
            text=text,
            citations=[c for s in kept for c in s.quotes],
            passages=passages,
            sentences=self.sentences,
            dropped_citations=self.dropped,
            unsupported=[s.text for s in self.sentences if not s.supported],
        )

    # --- one sentence ---------------------------------------------------------------------------
    def _check(self, raw: str) -> str:
        markers = [int(x) for x in _MARKER.findall(raw)]
        body = _MARKER.sub("", raw).strip()
        if not body:
            self.dropped += sum(1 for n in markers if not 1 <= n <= len(self.passages))
            return ""
        valid = []
        for n in markers:
            if 1 <= n <= len(self.passages):
                if n not in valid:
                    valid.append(n)
            else:
                self.dropped += 1
        spans: list[tuple[int, int, int]] = []  # (prompt marker, start, end) in its passage
        support = 0.0
        for n in valid:
            start, end, score = self._best_span(body, n - 1)
            spans.append((n, start, end))
            support = max(support, score)
        cited_text = fold("".join(self.passages[n - 1].text for n in valid))
        numbers_ok = all(num in cited_text for num in _NUMBER.findall(fold(body)))
        supported = bool(valid) and support >= SUPPORT_MIN and numbers_ok
        quotes: list[Citation] = []
        if supported or not self.drop_unsupported:
            # Only a sentence that is shown takes marker numbers: the answer's markers run 1, 2, …
            for n, start, end in spans:
                p = self.passages[n - 1]
                quotes.append(
                    Citation(
                        marker=self._order.setdefault(n, len(self._order) + 1),
                        chunk_id=p.chunk_id,
                        source=p.source,
                        start=p.start + start,
                        end=p.start + end,
                        quote=p.text[start:end],
                        page=page_at(p.page_spans, p.start + start),
                    )
                )
            numbers = tuple(q.marker for q in quotes)
        else:  # dropped: never shown; the prompt's numbers say that it did cite something
            numbers = tuple(valid)
        sentence = CheckedSentence(body, numbers, round(support, 3), supported, tuple(quotes))
        self.sentences.append(sentence)
        if not supported and self.drop_unsupported:
            return ""
        return _render(sentence)

    def _best_span(self, sentence: str, idx: int) -> tuple[int, int, float]:
        """(start, end, support) of the passage sentence that best supports `sentence`."""
        p = self.passages[idx]
        spans = self._spans[idx] or [(0, len(p.text))]
        lexical = [_containment(sentence, p.text[a:b]) for a, b in spans]
        scores = list(lexical)
        if self.embedder is not None and max(lexical) < SUPPORT_MIN:
            # Another language, or a paraphrase: fall back to meaning.
            if idx not in self._span_vectors:
                self._span_vectors[idx] = self.embedder.embed(
                    [p.text[a:b] for a, b in spans], "passage"
                )
            q = self.embedder.embed([sentence], "query")[0]
            cos = self._span_vectors[idx] @ q
            scores = [max(lx, float(c)) for lx, c in zip(lexical, cos, strict=True)]
        best = int(np.argmax(scores))
        # Support also credits facts spread over the passage, not only the best single sentence.
        whole = _containment(sentence, p.text)
        a, b = spans[best]
        return a, b, max(scores[best], whole)


def _render(s: CheckedSentence) -> str:
    marks = "".join(f"[{m}]" for m in s.markers)
    sep = "" if re.search(r"[\u3400-\u9fff。！？；]$", s.text) else " "
    return f"{s.text}{marks}{sep}" if sep == " " else f"{s.text}{marks}"
