"""The first stage: the query analyzed and encoded, BM25 and dense retrieval over the index, the two
lists fused by document into the candidates that the second stage reranks."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..index.analyzer import Analyzer
from ..index.dense import encode
from ..index.models import skipped_note

from .filters import document_mask, facets, passage_mask
from .fusion import FusionConfig, ranked
from .options import SearchOptions
from .schema import NO_SEARCHABLE_WORDS, QueryError, SearchResponse, StageValues, clean_query


@dataclass
class Candidate:
    """A fused document: the passage row that represents it and its values at every stage so far."""

    row: int
    scores: StageValues = field(default_factory=StageValues)
    ranks: StageValues = field(default_factory=StageValues)


class FirstStage:
    """BM25 and dense retrieval over ``collection`` (:func:`search.collection.open_collection`),
    fused per ``fusion`` (the index's settings; a search's options override them).

    ``notes``: the searcher's load notes, quoted when a stage was skipped for a missing model.
    """

    def __init__(self, collection, analyzer: Analyzer, encoder, fusion: FusionConfig, notes: list[str]) -> None:
        self.collection = collection
        self.analyzer = analyzer
        self.encoder = encoder
        self.fusion = fusion
        self.notes = notes
        self.encode_lock = threading.Lock()
        self._masks: dict[tuple[str, ...], np.ndarray | None] = {}  # filters -> passage mask (the last few)

    @property
    def has_dense(self) -> bool:
        return self.encoder is not None and self.collection.has_vectors

    def encode(self, query: str) -> np.ndarray:
        """The query's vector (one encoder call at a time)."""
        with self.encode_lock:
            return encode(self.encoder, [query], kind="query")[0]

    def dense_retrieve(self, query: str, depth: int, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``depth`` documents nearest to the query: passage rows and cosine scores, best first."""
        if allow is None:
            return self.collection.dense(self.encode(query), depth)
        return self.collection.dense(self.encode(query), depth, allow=allow)

    @property
    def fields(self):
        """The collection's fields (:class:`~index.fields.FieldSet`; empty for an index without)."""
        from ..index.fields import FieldSet

        return getattr(self.collection, "fields", None) or FieldSet(None, {})

    def allow(self, filters: tuple[str, ...]) -> np.ndarray | None:
        """The passage rows that ``filters`` allow (None: no filters); a bad filter is a FilterError."""
        if not filters:
            return None
        if filters not in self._masks:
            rows = len(self.collection.doc_offsets) - 1  # document rows (a changed index's deleted ones too: masked apart)
            docs = document_mask(self.fields, filters, rows)
            if len(self._masks) >= 16:
                self._masks.pop(next(iter(self._masks)))
            self._masks[filters] = passage_mask(docs, self.collection.doc_offsets)
        return self._masks[filters]

    def config(self, options: SearchOptions) -> FusionConfig:
        base = self.fusion
        return FusionConfig(
            method=options.fusion or base.method,
            k=base.k if options.rrf_k is None else options.rrf_k,
            weights=options.weights or base.weights,
            normalization=options.normalization or base.normalization,
            depth=options.depth or base.depth,
        )

    def run(self, query: str, options: SearchOptions) -> tuple[SearchResponse, list[Candidate]]:
        """The first-stage response (no results yet) and the fused candidates, best first."""
        query = clean_query(query)
        if not query:
            raise QueryError("the query is empty: type a word or a question")
        config = self.config(options)
        depth = config.depth
        timings: dict[str, float | None] = {"bm25": None, "dense": None, "fusion": None, "rerank": None}
        warnings: list[str] = []
        stages = options.stages
        run_lexical = stages in ("lexical", "hybrid")
        run_dense = stages in ("dense", "hybrid")
        if run_dense and not self.has_dense:
            if stages == "dense":
                raise QueryError("dense retrieval is not available for this index (no encoder or no embeddings)")
            warnings.append(skipped_note(self.notes, "dense") or "dense retrieval skipped: no dense retrieval for this index")
            run_dense = False

        lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        terms: list[str] = []
        allow = self.allow(options.filters)  # (its time and the facets' are measured in bench/filters.py)
        masked = {} if allow is None else {"allow": allow}
        if run_lexical:
            t0 = time.perf_counter()
            terms = self.analyzer.tokens(query)
            lists["bm25"] = self.collection.lexical(terms, depth, **masked)
            timings["bm25"] = ms_since(t0)
        if run_dense:
            t0 = time.perf_counter()
            lists["dense"] = self.dense_retrieve(query, depth, **masked)
            timings["dense"] = ms_since(t0)
        if not terms and run_lexical and not run_dense:
            raise QueryError(NO_SEARCHABLE_WORDS)

        t0 = time.perf_counter()
        stage_of: dict[int, dict[str, tuple[float, int]]] = {}  # document -> stage -> (score, rank)
        for stage, (rows, scores) in lists.items():
            for rank, (doc, score) in enumerate(zip(self.collection.document_of(rows).tolist(), scores.tolist()), start=1):
                stage_of.setdefault(doc, {})[stage] = (float(score), rank)
        fusion_info = config.to_dict() if len(lists) == 2 else None
        cands = []
        for rank, (doc, score, row) in enumerate(self.fuse(lists, config)[: options.candidates], start=1):
            cand = Candidate(row)
            for stage, (stage_score, stage_rank) in stage_of[doc].items():
                setattr(cand.scores, stage, stage_score)
                setattr(cand.ranks, stage, stage_rank)
            cand.scores.fused, cand.ranks.fused = float(score), rank
            cands.append(cand)
        timings["fusion"] = ms_since(t0)

        lexical_hits = int(lists["bm25"][0].size) if "bm25" in lists else 0
        if run_lexical and lexical_hits == 0:
            warnings.append("no passage contains a word of the query" + (" (dense retrieval still answers)" if run_dense else ""))
        response = SearchResponse(query, [], timings, list(lists), fusion_info, lexical_hits, terms, warnings,
                                  offset=options.offset)
        if self.fields:
            retrieved = np.unique(np.concatenate([self.collection.document_of(rows) for rows, _ in lists.values()]
                                                 or [np.zeros(0, np.int64)]))
            response.facets = facets(self.fields, retrieved.tolist())
        set_total(response.timings_ms)
        return response, cands

    def fuse(self, lists: dict[str, tuple[np.ndarray, np.ndarray]], config: FusionConfig) -> list[tuple[int, float, int]]:
        """Fuse per-retriever lists of (passage rows, scores) by document.

        Returns (document, fused score, passage row) best first; a document's passage is the one
        chosen by the retriever that ranked the document higher.
        """
        by_doc: dict[str, tuple[list[int], list[float]]] = {}
        passage: dict[int, tuple[int, int]] = {}  # document -> (best rank, row)
        for stage, (rows, scores) in lists.items():
            docs = self.collection.document_of(rows).tolist()
            by_doc[stage] = (docs, scores.tolist())
            for rank, (doc, row) in enumerate(zip(docs, rows.tolist())):
                if doc not in passage or rank < passage[doc][0]:
                    passage[doc] = (rank, row)
        if len(by_doc) == 2:
            fused = config.fuse(by_doc)
        elif by_doc:
            ((docs, scores),) = by_doc.values()
            fused = dict(zip(docs, scores))
        else:
            fused = {}
        return [(doc, score, passage[doc][1]) for doc, score in ranked(fused)]


def set_total(timings: dict[str, float | None]) -> None:
    timings["total"] = round(sum(v for k, v in timings.items() if v and k != "total"), 3)


def ms_since(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)
