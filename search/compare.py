"""Compare stages: one query through each stage combination an index can run (the page's
"Compare stages" tab; anything with the Searcher's surface, a service client too)."""

from __future__ import annotations

from dataclasses import replace

from .options import SearchOptions
from .schema import QueryError, SearchResponse

COMBINATIONS = {
    "lexical": dict(stages="lexical", rerank=False),
    "hybrid": dict(stages="hybrid", rerank=False),
    "lexical_rerank": dict(stages="lexical", rerank=True),
    "hybrid_rerank": dict(stages="hybrid", rerank=True),
}


def runnable_combinations(searcher) -> list[str]:
    """The combinations ``searcher`` can run: keyword search always, hybrid with dense retrieval, and
    the fullest first stage it has reranked when it has a reranker."""
    names = ["lexical"] + (["hybrid"] if searcher.has_dense else [])
    if searcher.has_reranker:
        names.append("hybrid_rerank" if searcher.has_dense else "lexical_rerank")
    return names


def compare_stages(searcher, query: str, options: SearchOptions | None = None) -> dict[str, SearchResponse | QueryError]:
    """``query`` searched with each of :func:`runnable_combinations`, the other options as given.

    Example::

        for name, response in compare_stages(searcher, "የቡና ምርት", SearchOptions(top_k=5)).items():
            print(name, [r.doc_id for r in response.results])
    """
    options = options or SearchOptions()
    out: dict[str, SearchResponse | QueryError] = {}
    for name in runnable_combinations(searcher):
        try:
            out[name] = searcher.search(query, replace(options, **COMBINATIONS[name]))
        except QueryError as exc:
            out[name] = exc
    return out
