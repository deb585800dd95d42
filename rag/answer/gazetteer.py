"""Which places the collection itself says lie within a question's places.

CC-CEDICT knows counties, cities and provinces (嘉善 is in 浙江), not the parks, towns and
districts documents talk about: nothing here says 张江 is in 浦东, though a document says so
(`张江所在的上海浦东新区`). A question asking about 浦东 whose answer speaks of 张江 was then
refused as if it asked about another place. So the places a question names are looked up in the
collection (and in the question itself: `浙中金华` says 金华 is in 浙中), and two ways of stating
containment are read wherever they occur:

- **address order**: a place followed at once, after an optional administrative suffix, by the
  text that starts with the contained one (`上海浦东新区张江`, `浙江省湖州市`, `浙中金华`): Chinese
  writes the larger unit first;
- **`X所在的…P`**: X lies in P (`张江所在的上海浦东新区`).

The contained name is the proper noun (jieba's `ns`, `nt`, `nr` or `nz`, read with its HMM:
张江 is in no dictionary) that starts the text after the place, or ends the text before
`所在的`; an administrative word alone (新区) is none. Only a bounded number of chunks is read per
place (`CHUNKS_READ`), so a place every chunk names (上海) costs no more than a rare one, and
only the first `PLACES_READ` places a question names are looked up, so a question listing
hundreds costs no more than one naming eight.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rag.index.tokenize import fold_long

# The texts of up to `limit` chunks whose BM25 tokens include `term` (the index's, or none).
TermTexts = Callable[[str, int], Sequence[str]]
# A text's (word, part of speech) pairs, jieba's with its HMM (`constraints._tagged`).
Tagger = Callable[[str], Sequence[tuple[str, str]]]

CHUNKS_READ = 200  # chunks read per asked place: containment is stated early and often, if at all
PLACES_READ = 8  # asked places looked up (the first ones): bounds a question's cost
RUN_CHARS = 8  # characters kept on the far side of a place: longer than the names compared
# What follows a place's name to make it an administrative unit (浦东新区, 浙江省, 嘉定新城): the
# constraint check reads places through the same list.
ADMINISTRATIVE = "特别行政区|自治区|新区|新城|地区|省|市|区|县|镇"
PROPER = frozenset(["ns", "nt", "nr", "nz"])  # jieba's proper-noun tags
_SUFFIX = f"(?:{ADMINISTRATIVE})?"
_HAN_RUN = f"[\u3400-\u9fff]{{1,{RUN_CHARS}}}"
_ADMINISTRATIVE = re.compile(_SUFFIX)


@dataclass(frozen=True)
class Gazetteer:
    """The names the collection states lie within each asked place (see the module docstring)."""

    inside: Mapping[str, frozenset[str]] = field(default_factory=dict)  # 浦东 → {张江}

    def held(self, asked: str, text: str) -> bool:
        """Whether `text` (folded) names a place the collection puts within `asked`."""
        return any(name in text for name in self.inside.get(asked, ()))


NO_GAZETTEER = Gazetteer()


def learn(
    places: Iterable[str], texts: Sequence[str], lookup: TermTexts | None, tag: Tagger
) -> Gazetteer:
    """The names stated to lie within each of `places` (folded, as `extract_places` gives them)
    in `texts` (the question, say) and in the chunks `lookup` returns for it; `tag` gives a
    text's (word, part of speech) pairs."""
    inside: dict[str, frozenset[str]] = {}
    given = [fold_long(t) for t in texts]
    # a question names a few places; a hostile one naming hundreds reads no more than this many
    for place in itertools.islice(dict.fromkeys(places), PLACES_READ):
        read = list(given)
        if lookup is not None:
            read += [fold_long(t) for t in lookup(place, CHUNKS_READ)]
        name = re.escape(place)
        follows = re.compile(f"{name}{_SUFFIX}({_HAN_RUN})")
        within = re.compile(f"({_HAN_RUN})所在的[^，。、；,;]{{0,{RUN_CHARS}}}?{name}")
        # each distinct run tagged once: a place every chunk names is followed by the same words
        after = {m.group(1) for t in read for m in follows.finditer(t)}
        before = {m.group(1) for t in read for m in within.finditer(t)}
        names = {_proper(tag(run), 0) for run in after} | {_proper(tag(run), -1) for run in before}
        inside[place] = frozenset(n for n in names if n and n != place)
    return Gazetteer(inside)


def _proper(pairs: Sequence[tuple[str, str]], at: int) -> str:
    """The word at `at` of a tagged run when it is a proper noun and no bare administrative word."""
    if not pairs:
        return ""
    word, flag = pairs[at]
    if flag not in PROPER or len(word) < 2 or _ADMINISTRATIVE.fullmatch(word):
        return ""
    return word
