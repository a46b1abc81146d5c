"""The one response schema: what a search returns (library, ``query --json``, the service, the page).

:meth:`SearchResponse.to_dict` is the JSON every interface gives; the service's response models are
checked against these dataclasses (tests/test_service.py).
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Literal

Stages = Literal["lexical", "dense", "hybrid"]
STAGES = ("bm25", "dense", "fused", "rerank")
MAX_QUERY_CHARS = 2000


NO_SEARCHABLE_WORDS = "the query has no searchable words (only punctuation or symbols?)"


class QueryError(ValueError):
    """A query that cannot be searched (empty, nothing searchable); the message says why."""


class RerankSkipped(Exception):
    """Raised by a ``score`` hook of :meth:`Searcher.search` when this query cannot be reranked (the
    search service's deadline passed): the response keeps the first-stage order, with the message
    as a warning, and is not marked reranked."""


@dataclass
class StageValues:
    bm25: float | None = None
    dense: float | None = None
    fused: float | None = None
    rerank: float | None = None


@dataclass
class SearchResult:
    """One document: its best passage, with the score and rank that passage had at every stage."""

    rank: int
    doc_id: str
    passage_id: str
    title: str
    text: str
    scores: StageValues
    ranks: StageValues
    fields: dict = field(default_factory=dict)
    """The document's keyword, number and date fields (dates as ``YYYY-MM-DD`` in their calendar)."""

    def to_dict(self) -> dict:
        d = asdict(self)
        return {
            "rank": d["rank"], "doc_id": d["doc_id"], "passage_id": d["passage_id"], "title": d["title"],
            "text": d["text"], "scores": d["scores"], "ranks": d["ranks"], "fields": d["fields"],
        }


@dataclass
class SearchResponse:
    query: str
    results: list[SearchResult]
    timings_ms: dict[str, float | None]
    stages: list[str]
    fusion: dict | None = None
    lexical_hits: int = 0
    query_terms: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rerank_progress: list[int] | None = None
    """``[scored, of]``: candidates the cross-encoder has scored so far, of those it reranks (None
    before reranking). A progressive answer (:meth:`Searcher.search_stream` ``blocks``) with
    ``scored < of`` shows the reranked order of the first ``scored`` candidates, the rest after them."""
    adaptive: dict | None = None
    """The adaptive-depth rule that shaped the reranking (:class:`search.adaptive.AdaptiveDepth` as a
    dict, with ``scored`` and ``stopped``: whether it stopped before the last candidate), else None."""
    facets: dict[str, list[list]] = field(default_factory=dict)
    """Per keyword field ``[[value, count], ...]`` (most frequent first), per date field ``[[year, count], ...]``,
    over the documents the first stage retrieved after the filters (:mod:`search.filters`)."""
    offset: int = 0
    """Results skipped before these (the options' ``offset``); ``rank`` counts from the first page."""

    @property
    def reranked(self) -> bool:
        """Whether the results are in the cross-encoder's order (False: first-stage order)."""
        return "rerank" in self.stages

    def to_dict(self) -> dict:
        """The response as JSON: ``query --json``, the search service and its client share this schema."""
        return {
            "query": self.query,
            "results": [r.to_dict() for r in self.results],
            "timings_ms": self.timings_ms,
            "stages": self.stages,
            "fusion": self.fusion,
            "lexical_hits": self.lexical_hits,
            "warnings": self.warnings,
            "query_terms": self.query_terms,
            "reranked": self.reranked,
            "rerank_progress": self.rerank_progress,
            "adaptive": self.adaptive,
            "facets": self.facets,
            "offset": self.offset,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SearchResponse":
        """The inverse of :meth:`to_dict` (the search service's client reads its answers with it)."""
        results = [
            SearchResult(r["rank"], r["doc_id"], r["passage_id"], r.get("title", ""), r["text"],
                         StageValues(**r["scores"]), StageValues(**r["ranks"]), dict(r.get("fields") or {}))
            for r in d.get("results", [])
        ]
        return cls(d["query"], results, dict(d.get("timings_ms") or {}), list(d.get("stages") or []), d.get("fusion"),
                   int(d.get("lexical_hits") or 0), list(d.get("query_terms") or []), list(d.get("warnings") or []),
                   d.get("rerank_progress"), d.get("adaptive"), dict(d.get("facets") or {}), int(d.get("offset") or 0))


def clean_query(query: str) -> str:
    """NFC, control characters and lone surrogates removed, whitespace collapsed, length capped."""
    if not isinstance(query, str):
        raise QueryError("the query must be text")
    query = query.encode("utf-8", "replace").decode("utf-8")
    query = unicodedata.normalize("NFC", query)
    query = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in query)
    query = " ".join(query.split())
    return query[:MAX_QUERY_CHARS]
