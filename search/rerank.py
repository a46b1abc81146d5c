"""Cross-encoder reranking of (query, passage) pairs."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from index.models import DEFAULT_RERANKER, load_cross_encoder


class Reranker:
    """Scores (query, passage) pairs with a sentence-transformers CrossEncoder.

    Pairs are sorted by length and scored in batches (no padding to the longest of all).

    Example::

        reranker = Reranker.load("rasyosef/reranker-amharic-medium")
        scores = reranker.score("የቡና ምርት", ["passage one", "passage two"])
    """

    def __init__(self, model, name: str) -> None:
        self.model = model
        self.name = name

    @classmethod
    def load(cls, name: str = DEFAULT_RERANKER, *, max_length: int | None = None, device: str | None = None) -> "Reranker":
        model = load_cross_encoder(name, max_length=max_length, device=device)
        return cls(model, name)

    @property
    def max_length(self) -> int | None:
        return getattr(self.model, "max_length", None)

    @max_length.setter
    def max_length(self, value: int) -> None:
        self.model.max_length = value

    def score(self, query: str, passages: Sequence[str], *, batch_size: int = 16) -> np.ndarray:
        """One relevance score per passage (higher is more relevant), in the order given."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        order = np.argsort([-len(p) for p in passages], kind="stable")
        pairs = [(query, passages[i]) for i in order]
        raw = self.model.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
        raw = np.asarray(raw, dtype=np.float32)
        if raw.ndim == 2:  # a two-class head: use the "relevant" logit
            raw = raw[:, -1]
        scores = np.empty_like(raw)
        scores[order] = raw
        return scores
