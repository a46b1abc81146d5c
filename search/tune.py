"""Choose the fusion settings for an index on judged queries (``amharic-search tune``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from .evaluate import evaluate
from .fusion import FusionConfig
from .schema import QueryError, clean_query
from .searcher import Searcher

MAX_DEPTH = 300


def candidate_configs() -> list[FusionConfig]:
    """The grid: RRF (k, dense weight) and normalized weighted sums (dense weight), two depths."""
    configs = []
    for depth in (100, 200, 300):
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
    applied to those lists, so the 78 settings of :func:`candidate_configs` cost little more than one.
    """
    if not searcher.has_dense:
        raise QueryError("tuning fusion needs an index with dense embeddings and its encoder")
    doc_ids = searcher.collection.doc_ids()

    def to_run(docs) -> dict[str, float]:
        return {doc_ids[d]: float(candidates - i) for i, d in enumerate(docs)}

    lists = {}
    for i, (qid, text) in enumerate(queries.items()):
        query = clean_query(text)
        if query:
            lists[qid] = {"bm25": searcher.collection.lexical(searcher.analyzer.tokens(query), MAX_DEPTH),
                          "dense": searcher.first.dense_retrieve(query, MAX_DEPTH)}
        else:
            lists[qid] = {"bm25": (np.empty(0, int), np.empty(0)), "dense": (np.empty(0, int), np.empty(0))}
        if progress:
            progress(i + 1, len(queries))
    judged = {q: qrels[q] for q in queries if q in qrels}
    results = []
    for stage in ("bm25", "dense"):
        run = {q: to_run(searcher.collection.document_of(l[stage][0][:candidates]).tolist()) for q, l in lists.items()}
        results.append(TuneResult(None, "lexical alone" if stage == "bm25" else "dense alone", evaluate(run, judged)))
    for config in configs or candidate_configs():
        run = {}
        for q, l in lists.items():
            cut = {s: (rows[: config.depth], scores[: config.depth]) for s, (rows, scores) in l.items()}
            run[q] = to_run([doc for doc, _, _ in searcher.first.fuse(cut, config)[:candidates]])
        results.append(TuneResult(config, describe(config), evaluate(run, judged)))
    results.sort(key=lambda r: (-r.metrics["MRR@10"], -r.metrics["Recall@100"]))
    return results


def describe(config: FusionConfig) -> str:
    w = config.weights
    if config.method == "rrf":
        return f"rrf k={config.k:g} w=({w['bm25']:g}, {w['dense']:g}) depth={config.depth}"
    return f"{config.normalization} w=({w['bm25']:g}, {w['dense']:g}) depth={config.depth}"
