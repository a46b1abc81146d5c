"""Adaptive rerank depth: stop scoring candidates once the ones left are unlikely to reach the top k.

The cross-encoder scores the fused candidates in first-stage order, ``min_depth`` first, then
``block`` at a time; after ``patience`` blocks in a row of which no candidate entered the reranked
top k, the rest are not scored (they follow the reranked ones in first-stage order). The rule is
chosen on tuning queries (``bench/adaptive.py``) and recorded in each response it shaped
(``SearchResponse.adaptive``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class AdaptiveDepth:
    """A stopping rule for reranking.

    Example::

        searcher.search("የቡና ምርት", adaptive=AdaptiveDepth(min_depth=30, block=10, patience=1))
    """

    min_depth: int = 30
    block: int = 10
    patience: int = 1

    def __post_init__(self) -> None:
        if self.min_depth < 1 or self.block < 1 or self.patience < 1:
            raise ValueError(f"min_depth, block and patience must be at least 1: {self}")

    def cuts(self, n: int, blocks: Sequence[int] = ()) -> list[int]:
        """Where scoring pauses for a decision (and for a progressive answer at ``blocks``), up to ``n``."""
        return block_cuts(n, (*blocks, *range(self.min_depth, n, self.block)))

    def decides_at(self, done: int) -> bool:
        """Whether ``done`` scored candidates end one of the rule's blocks (after ``min_depth``)."""
        return done > self.min_depth and (done - self.min_depth) % self.block == 0

    def step(self, scores: Sequence[float], misses: int, top_k: int) -> tuple[int, bool]:
        """After a block: (blocks in a row without an entry into the top ``top_k``, whether to stop).
        ``scores``: those of the candidates scored so far, in first-stage order."""
        done = len(scores)
        misses = 0 if top_entries(scores, done - self.block, done, top_k) else misses + 1
        return misses, misses >= self.patience

    def to_dict(self) -> dict:
        return asdict(self)


def block_cuts(n: int, blocks: Sequence[int]) -> list[int]:
    """Where scoring ``n`` candidates in blocks pauses: each of ``blocks`` inside ``(0, n)``, in order, then ``n``."""
    return sorted({int(b) for b in blocks if 0 < int(b) < n}) + [n]


def top_entries(scores: Sequence[float], start: int, end: int, top_k: int) -> bool:
    """Whether a candidate at positions ``start:end`` of the scored ones (first-stage order) is in
    their top ``top_k`` by score (ties: first-stage order)."""
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores, dtype=np.float64)))[:top_k]
    return bool(((order >= start) & (order < end)).any())


def simulate(scores: Sequence[float], rule: AdaptiveDepth | None, top_k: int = 10) -> int:
    """How many of the candidates (their cross-encoder ``scores`` in first-stage order) ``rule``
    scores: what :meth:`search.searcher.Searcher.rerank_progressively` would do, for choosing a rule offline."""
    n = len(scores)
    if rule is None:
        return n
    misses = 0
    for done in rule.cuts(n):
        if done < n and rule.decides_at(done):
            misses, stop = rule.step(scores[:done], misses, top_k)
            if stop:
                return done
    return n
