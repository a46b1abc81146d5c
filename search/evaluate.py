"""Retrieval evaluation with ir-measures: MRR@10, nDCG@10, Recall@10, Recall@100, MAP."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Mapping, Sequence

import ir_measures
from ir_measures import AP, R, RR, nDCG

MEASURES = {"MRR@10": RR @ 10, "nDCG@10": nDCG @ 10, "Recall@10": R @ 10, "Recall@100": R @ 100, "MAP": AP}
KNOWN = {**MEASURES, "Recall@1": R @ 1}
"""Every measure by the name the tables use (``evaluate(..., measures=...)`` picks from them)."""

Run = Mapping[str, Mapping[str, float]]
"""query id -> {doc id: score}; higher is better."""


class EvalInputError(ValueError):
    """A queries or qrels file that cannot be read."""


def load_queries(path: str | Path) -> dict[str, str]:
    """Queries as ``{id: text}`` from a JSONL file of ``{"id", "text"}`` objects."""
    queries: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                queries[str(obj["id"])] = str(obj["text"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise EvalInputError(f"{path}, line {lineno}: expected {{\"id\", \"text\"}} ({exc})") from None
    return queries


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Judgments as ``{query id: {doc id: relevance}}`` from a TSV file (header optional).

    Accepts ``query_id doc_id relevance`` and the TREC form ``query_id 0 doc_id relevance``.
    """
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if len(row) == 1:
                row = row[0].split()
            if not row or (lineno == 1 and not row[-1].lstrip("-").isdigit()):
                continue  # blank line or header
            if len(row) == 4:
                row = [row[0], row[2], row[3]]
            if len(row) != 3:
                raise EvalInputError(f"{path}, line {lineno}: expected query_id, doc_id, relevance")
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
            except ValueError:
                raise EvalInputError(f"{path}, line {lineno}: relevance {row[2]!r} is not an integer") from None
    return qrels


def evaluate(run: Run, qrels: Mapping[str, Mapping[str, int]], measures: Sequence[str] | None = None) -> dict[str, float]:
    """Mean of each measure (default: :data:`MEASURES`; names from :data:`KNOWN`) over the judged
    queries (a query with no results counts zero). The one place where figures are computed.

    >>> evaluate({"q": {"d1": 2.0, "d2": 1.0}}, {"q": {"d2": 1}})["MRR@10"]
    0.5
    """
    chosen = {name: KNOWN[name] for name in measures} if measures else MEASURES
    judged = {q: dict(d) for q, d in qrels.items() if any(r > 0 for r in d.values())}
    full_run = {q: {d: float(s) for d, s in run.get(q, {}).items()} for q in judged}
    totals = {measure: 0.0 for measure in chosen.values()}
    for metric in ir_measures.iter_calc(list(chosen.values()), judged, {q: r for q, r in full_run.items() if r}):
        totals[metric.measure] += metric.value
    n = max(len(judged), 1)
    return {name: totals[measure] / n for name, measure in chosen.items()}


def ranking_run(rankings: Mapping[str, Sequence[str]]) -> dict[str, dict[str, float]]:
    """Ranked lists (best first) as a run: the first of ``n`` scores ``n``, the last 1."""
    return {q: {d: float(len(ids) - i) for i, d in enumerate(ids)} for q, ids in rankings.items()}


def run_queries(searcher, queries: Mapping[str, str], options=None, *, desc: str | None = None,
                progress: bool = False) -> dict[str, dict[str, float]]:
    """Each query searched (``options``: :class:`~search.options.SearchOptions`), as a run of its
    ranked documents; a query the searcher refuses (nothing searchable) has an empty list. The one
    evaluation loop (``amharic-search eval``, the benchmarks).

    Example::

        run = run_queries(searcher, load_queries("queries.jsonl"), SearchOptions(top_k=100, rerank=False))
        print(evaluate(run, load_qrels("qrels.tsv"))["MRR@10"])
    """
    from tqdm.auto import tqdm

    from .schema import QueryError

    rankings: dict[str, list[str]] = {}
    for qid, text in tqdm(queries.items(), desc=desc, unit=" queries", disable=not progress):
        try:
            rankings[qid] = [r.doc_id for r in searcher.search(text, options).results]
        except QueryError:
            rankings[qid] = []
    return ranking_run(rankings)
