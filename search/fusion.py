"""Fusing ranked lists: reciprocal rank fusion and a normalized weighted sum."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, Mapping, Sequence

import numpy as np

FusionMethod = Literal["rrf", "weighted"]
Normalization = Literal["minmax", "zscore"]


def rrf(rankings: Mapping[str, Sequence[int]], *, k: float = 60.0, weights: Mapping[str, float] | None = None) -> dict[int, float]:
    """Reciprocal rank fusion: ``sum_s w_s / (k + rank_s(d))`` with ranks from 1.

    >>> rrf({"bm25": [7, 3], "dense": [3]}, k=60)[3] == 1 / 62 + 1 / 61
    True
    """
    fused: dict[int, float] = {}
    for stage, ranked in rankings.items():
        w = 1.0 if weights is None else weights.get(stage, 1.0)
        for rank, item in enumerate(ranked, start=1):
            fused[item] = fused.get(item, 0.0) + w / (k + rank)
    return fused


def normalize(scores: np.ndarray, method: Normalization = "minmax") -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    if method == "minmax":
        lo, hi = scores.min(), scores.max()
        return np.ones_like(scores) if hi == lo else (scores - lo) / (hi - lo)
    std = scores.std()
    return np.zeros_like(scores) if std == 0 else (scores - scores.mean()) / std


def weighted_sum(
    scored: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    *,
    weights: Mapping[str, float] | None = None,
    normalization: Normalization = "minmax",
) -> dict[int, float]:
    """Sum of per-stage normalized scores; an item missing from a stage gets that stage's minimum.

    >>> weighted_sum({"bm25": ([1, 2], [10.0, 5.0]), "dense": ([2, 1], [0.9, 0.1])})
    {1: 1.0, 2: 1.0}
    """
    items: dict[int, float] = {}
    per_stage = {}
    for stage, (ids, scores) in scored.items():
        norm = normalize(np.asarray(scores, dtype=np.float64), normalization)
        per_stage[stage] = (dict(zip((int(i) for i in ids), norm)), float(norm.min()) if norm.size else 0.0)
        for i in ids:
            items[int(i)] = 0.0
    for item in items:
        total = 0.0
        for stage, (values, floor) in per_stage.items():
            w = 1.0 if weights is None else weights.get(stage, 1.0)
            total += w * values.get(item, floor)
        items[item] = total
    return items


def ranked(fused: Mapping[int, float]) -> list[tuple[int, float]]:
    """Items by descending score, ties by item id (deterministic)."""
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class FusionConfig:
    """How the two first-stage lists are fused (stored in the manifest by ``amharic-search tune``).

    The default, a z-score normalized sum weighting BM25 0.7 and dense 0.3 over 300 documents per
    retriever, was measured on the held-out queries of enh and amqa+enh with the stand-in encoder
    (BENCHMARKS.md, "First stage: dense and fusion"): it beats the better input on both (and when
    the lexical stage is made the weaker one), while plain RRF k=60 loses 0.09 MRR@10 to BM25 on
    enh; depth 300 keeps the MRR@10 of depth 200 and adds recall. ``amharic-search tune`` picks
    per corpus.

    Example::

        FusionConfig(method="rrf", k=60, weights={"bm25": 1.0, "dense": 0.5}).fuse(lists)
    """

    method: FusionMethod = "weighted"
    k: float = 60.0
    weights: dict[str, float] = field(default_factory=lambda: {"bm25": 0.7, "dense": 0.3})
    normalization: Normalization = "zscore"
    depth: int = 300
    """Documents taken from each retriever."""

    def fuse(self, lists: Mapping[str, tuple[Sequence[int], Sequence[float]]]) -> dict[int, float]:
        if self.method == "rrf":
            return rrf({s: list(rows) for s, (rows, _) in lists.items()}, k=self.k, weights=self.weights)
        return weighted_sum(lists, weights=self.weights, normalization=self.normalization)

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.method == "rrf":
            d.pop("normalization")
        else:
            d.pop("k")
        return d

    @classmethod
    def from_dict(cls, data: Mapping | None) -> "FusionConfig":
        if not data:
            return cls()
        known = {"method", "k", "weights", "normalization", "depth"}
        return cls(**{k: v for k, v in data.items() if k in known})
