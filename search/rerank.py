"""Cross-encoder reranking of (query, passage) pairs."""

from __future__ import annotations

import threading
from collections import OrderedDict
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

    def __init__(self, model, name: str, *, cache_size: int = 20_000) -> None:
        self.model = model
        self.name = name
        self._cache: OrderedDict[tuple, float] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

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
        """One relevance score per passage (higher is more relevant), in the order given.

        Scores of (query, passage) pairs seen before at the same max length come from a cache.
        """
        scores = np.zeros(len(passages), dtype=np.float32)
        keys = [(self.max_length, query, p) for p in passages]
        with self._lock:
            todo = []
            for i, key in enumerate(keys):
                if key in self._cache:
                    scores[i] = self._cache[key]
                    self._cache.move_to_end(key)
                else:
                    todo.append(i)
        if todo:
            order = sorted(todo, key=lambda i: -len(passages[i]))
            raw = self.model.predict([(query, passages[i]) for i in order], batch_size=batch_size,
                                     show_progress_bar=False, convert_to_numpy=True)
            raw = np.asarray(raw, dtype=np.float32)
            if raw.ndim == 2:  # a two-class head: use the "relevant" logit
                raw = raw[:, -1]
            with self._lock:
                for i, value in zip(order, raw.tolist()):
                    scores[i] = value
                    self._cache[keys[i]] = value
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return scores
