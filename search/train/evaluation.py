"""Before and after: a trained model evaluated on held-out pairs or judged queries (ir-measures)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .common import TrainError
from .pairs import Pair

# -- evaluation ------------------------------------------------------------------------------------


@dataclass
class EvalSet:
    """Queries, a passage pool, the relevant passages of each query, and optionally each query's
    candidates (the passages the reranker orders; default: the 30 best by BM25 plus the relevant)."""

    queries: list[str]
    passages: list[str]
    relevant: list[set[int]]
    candidates: list[list[int]] | None = None
    source: str = "held-out pairs"

    def to_dict(self) -> dict:
        return {"queries": self.queries, "passages": self.passages, "relevant": [sorted(r) for r in self.relevant],
                "candidates": self.candidates, "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> "EvalSet":
        return cls(d["queries"], d["passages"], [set(r) for r in d["relevant"]], d.get("candidates"), d.get("source", ""))


def eval_from_pairs(pairs: list[Pair]) -> EvalSet:
    """Each held-out query's positive ranked among all held-out passages (positives and negatives)."""
    passages: list[str] = []
    row: dict[str, int] = {}

    def add(text: str) -> int:
        if text not in row:
            row[text] = len(passages)
            passages.append(text)
        return row[text]

    relevant: dict[str, set[int]] = {}
    for p in pairs:
        relevant.setdefault(p.query, set()).add(add(p.positive))
    for p in pairs:
        for n in p.negatives:
            add(n)
    return EvalSet(list(relevant), passages, list(relevant.values()))


def eval_from_qrels(queries: str | Path, qrels: str | Path, index: str | Path, *, depth: int = 30) -> EvalSet:
    """Judged queries against the documents of ``index``: each query's candidates are its judged
    documents and its BM25 top ``depth``; the pool is all of them."""
    from ..evaluate import load_qrels, load_queries
    from ..schema import QueryError
    from ..searcher import Searcher

    qs, judgments = load_queries(queries), load_qrels(qrels)
    searcher = Searcher.load(index, reranker=None, use_dense=False)
    passages: list[str] = []
    row: dict[str, int] = {}

    def add(doc_id: str) -> int | None:
        if doc_id not in row:
            doc = searcher.document(doc_id)
            if doc is None:
                return None
            row[doc_id] = len(passages)
            passages.append(doc["text"])
        return row[doc_id]

    out = EvalSet([], passages, [], [], source=f"{Path(queries).name} + {Path(qrels).name} on {index}")
    for qid, text in qs.items():
        rel = {r for d, grade in judgments.get(qid, {}).items() if grade > 0 and (r := add(d)) is not None}
        if not rel:
            continue
        try:
            _, cands = searcher.first_stage(text, stages="lexical", candidates=depth)
            ids = [r.doc_id for r in searcher.documents(cands, depth)]
        except QueryError:
            ids = []
        out.queries.append(text)
        out.relevant.append(rel)
        out.candidates.append(sorted(rel | {r for d in ids if (r := add(d)) is not None}))
    if not out.queries:
        raise TrainError(f"no query of {queries} has a judged document in {index} (check the qrels' document ids)")
    return out


def _metrics(rankings: list[list[int]], relevant: list[set[int]]) -> dict[str, float]:
    """MRR@10, Recall@1 and Recall@10 of passage rankings (ir-measures, as every figure of the project)."""
    from ..evaluate import evaluate, ranking_run

    run = ranking_run({str(i): [str(r) for r in ranked] for i, ranked in enumerate(rankings)})
    qrels = {str(i): {str(r): 1 for r in rel} for i, rel in enumerate(relevant)}
    return {k: round(v, 4) for k, v in evaluate(run, qrels, ("MRR@10", "Recall@1", "Recall@10")).items()}


def _lexical_candidates(ev: EvalSet, n: int = 30) -> list[list[int]]:
    from ...index.analyzer import Analyzer
    from ...index.bm25 import BM25Index

    analyzer = Analyzer()
    bm25 = BM25Index.build([analyzer.tokens(p) for p in ev.passages])
    out = []
    for q, rel in zip(ev.queries, ev.relevant):
        rows, _ = bm25.top_k(analyzer.tokens(q), n)
        out.append(sorted(set(rows.tolist()[:n]) | rel))
    return out


def evaluate_encoder(model, ev: EvalSet, *, batch_size: int = 32, precision: Literal["fp32", "bf16"] = "fp32") -> dict[str, float]:
    """MRR@10, Recall@1, Recall@10 of ranking the pool (or each query's candidates) by the encoder
    (``precision="bf16"``: computed under bf16 autocast, as the training run was)."""
    import numpy as np

    from ...index.dense import encode

    q = encode(model, ev.queries, kind="query", batch_size=batch_size, precision=precision)
    p = encode(model, ev.passages, kind="document", batch_size=batch_size, precision=precision)
    sims = q @ p.T
    rankings = []
    for i in range(len(ev.queries)):
        if ev.candidates:
            cands = np.asarray(ev.candidates[i])
            rankings.append(cands[np.argsort(-sims[i, cands], kind="stable")].tolist())
        else:
            rankings.append(np.argsort(-sims[i], kind="stable").tolist())
    return _metrics(rankings, ev.relevant)


def evaluate_reranker(model, ev: EvalSet, *, batch_size: int = 32, precision: Literal["fp32", "bf16"] = "fp32") -> dict[str, float]:
    """MRR@10, Recall@1, Recall@10 of ordering each query's candidates by the cross-encoder
    (``precision="bf16"``: computed under bf16 autocast)."""
    from ...index.engines import bf16_autocast

    cands = ev.candidates or _lexical_candidates(ev)
    flat = [(ev.queries[i], ev.passages[r]) for i, c in enumerate(cands) for r in c]
    with bf16_autocast(precision == "bf16"):
        scores = model.predict(flat, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True).tolist() if flat else []
    rankings, at = [], 0
    for c in cands:
        s = scores[at:at + len(c)]
        at += len(c)
        rankings.append([r for _, r in sorted(zip(s, c), key=lambda x: -x[0])])
    return _metrics(rankings, ev.relevant)
