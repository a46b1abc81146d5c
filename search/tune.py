"""Choose the fusion settings for an index on judged queries (``amharic-search tune``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from .evaluate import evaluate
from .fusion import FusionConfig, ranked
from .searcher import QueryError, Searcher, clean_query

MAX_DEPTH = 300


def candidate_configs() -> list[FusionConfig]:
    """The grid: RRF (k, dense weight) and normalized weighted sums (dense weight), two depths."""
    configs = []
    for depth in (100, 200):
        for k in (10, 30, 60, 100):
            for w in (0.25, 0.5, 1.0):
                configs.append(FusionConfig("rrf", k=k, weights={"bm25": 1.0, "dense": w}, depth=depth))
        for norm in ("minmax", "zscore"):
            for w in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
                configs.append(FusionConfig("weighted", weights={"bm25": round(1 - w, 2), "dense": w},
                                            normalization=norm, depth=depth))
    return configs


@dataclass
class TuneResult:
    config: FusionConfig | None
    """None for a single retriever (the rows for lexical and dense alone)."""
    label: str
    metrics: dict[str, float]


def tune(
    searcher: Searcher,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    configs: list[FusionConfig] | None = None,
    candidates: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> list[TuneResult]:
    """Evaluate each fusion setting (and each retriever alone) on ``queries``; best MRR@10 first.

    Each query is retrieved once per retriever at the largest depth; the settings are then
    applied to those lists, so the 52 settings of :func:`candidate_configs` cost little more than one.
    """
    if not searcher.has_dense:
        raise QueryError("tuning fusion needs an index with dense embeddings and its encoder")
    doc_ids = searcher.store.doc_ids()
    offsets = np.asarray(searcher.doc_offsets)

    def to_docs(rows) -> dict[str, float]:
        out: dict[str, float] = {}
        for row in rows:
            doc = doc_ids[int(np.searchsorted(offsets, row, side="right")) - 1]
            if doc not in out:
                out[doc] = float(candidates - len(out))
        return out

    lists = {}
    for i, (qid, text) in enumerate(queries.items()):
        query = clean_query(text)
        if query:
            lists[qid] = {"bm25": searcher.lexical(searcher.analyzer.tokens(query), MAX_DEPTH),
                          "dense": searcher.dense_retrieve(query, MAX_DEPTH)}
        else:
            lists[qid] = {"bm25": (np.empty(0, int), np.empty(0)), "dense": (np.empty(0, int), np.empty(0))}
        if progress:
            progress(i + 1, len(queries))
    judged = {q: qrels[q] for q in queries if q in qrels}
    results = []
    for stage in ("bm25", "dense"):
        run = {q: to_docs(l[stage][0][:candidates]) for q, l in lists.items()}
        results.append(TuneResult(None, "lexical alone" if stage == "bm25" else "dense alone", evaluate(run, judged)))
    for config in configs or candidate_configs():
        run = {}
        for q, l in lists.items():
            cut = {s: (rows[: config.depth].tolist(), scores[: config.depth].tolist()) for s, (rows, scores) in l.items()}
            run[q] = to_docs([row for row, _ in ranked(config.fuse(cut))][:candidates])
        results.append(TuneResult(config, describe(config), evaluate(run, judged)))
    results.sort(key=lambda r: (-r.metrics["MRR@10"], -r.metrics["Recall@100"]))
    return results


def describe(config: FusionConfig) -> str:
    w = config.weights
    if config.method == "rrf":
        return f"rrf k={config.k:g} w=({w['bm25']:g}, {w['dense']:g}) depth={config.depth}"
    return f"{config.normalization} w=({w['bm25']:g}, {w['dense']:g}) depth={config.depth}"
