"""Query time: load an index, retrieve with BM25 and dense, fuse, rerank, return documents."""

from __future__ import annotations

import contextlib
import copy
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal, Sequence

import numpy as np

from index.analyzer import Analyzer
from index.bm25 import BM25Index
from index.build import BM25_DIR, BM25_DOCS_DIR, DENSE_FILE, DOC_OFFSETS_FILE, STORE_FILE, searchable_text
from index.dense import DenseIndex, embedding_dim, encode
from index.manifest import IndexFormatError, read_manifest
from index.models import DEFAULT_RERANKER, ModelUnavailableError, Stage, load_encoder, resolve_model
from index.store import Store

from .adaptive import AdaptiveDepth, block_cuts
from .fusion import FusionConfig, FusionMethod, Normalization, ranked
from .rerank import Backend, Reranker, Window, focus_window

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


PassageScorer = Callable[..., np.ndarray]
"""``score(query, passages, *, window, max_length) -> scores``: how :meth:`Searcher.search` gets the
cross-encoder's scores (default :meth:`Searcher.score_passages`; the search service queues them)."""


class EncoderMismatchError(IndexFormatError):
    """The query encoder is not the one the index was embedded with: its vectors would be noise."""


def check_encoder(built: dict, name: str, *, allow_other: bool = False, notes: list[str] | None = None) -> str | None:
    """Refuse an encoder whose fingerprint differs from the one recorded in the index (``built``:
    the manifest's ``dense`` entry). A model that cannot be had raises ModelUnavailableError; an
    index built before fingerprints were recorded is accepted (only its dimension is checked).
    Returns the encoder's fingerprint."""
    from index.models import model_fingerprint

    fingerprint = model_fingerprint(resolve_model(name))
    expected = built.get("fingerprint")
    if expected and fingerprint != expected:
        message = (f"the index was embedded with {built.get('model')!r} (fingerprint {expected[:19]}) but the encoder "
                   f"{name!r} has fingerprint {fingerprint[:19]}: its query vectors would not match the passages'. "
                   "Query with the index's encoder, or rebuild the index with this one")
        if not allow_other:
            raise EncoderMismatchError(message + " (--allow-other-encoder to use it anyway)")
        if notes is not None:
            notes.append(message.replace(". Query with", "; used anyway (--allow-other-encoder). Query with"))
    return fingerprint


def lexical_only_note(manifest: dict, directory: Path, dense_model: str | None = None) -> str:
    """The note for an index built without embeddings: how to add them (the same build, with an encoder)."""
    corpus = (manifest.get("corpus") or {}).get("path") or "CORPUS"
    model = dense_model if dense_model not in ("index", None) else "MODEL"
    shards = f" --shards {len(manifest['shards'])}" if manifest.get("shards") else ""
    return (f"dense retrieval skipped: the index was built without embeddings (lexical only). To add them, "
            f"build it again with an encoder: `amharic-search index build {corpus} --out {directory} "
            f"--dense-model {model}{shards}` (only the embeddings are new work); --no-dense leaves dense "
            "retrieval out without this note")


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

    def to_dict(self) -> dict:
        d = asdict(self)
        return {
            "rank": d["rank"], "doc_id": d["doc_id"], "passage_id": d["passage_id"], "title": d["title"],
            "text": d["text"], "scores": d["scores"], "ranks": d["ranks"],
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
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SearchResponse":
        """The inverse of :meth:`to_dict` (the search service's client reads its answers with it)."""
        results = [
            SearchResult(r["rank"], r["doc_id"], r["passage_id"], r.get("title", ""), r["text"],
                         StageValues(**r["scores"]), StageValues(**r["ranks"]))
            for r in d.get("results", [])
        ]
        return cls(d["query"], results, dict(d.get("timings_ms") or {}), list(d.get("stages") or []), d.get("fusion"),
                   int(d.get("lexical_hits") or 0), list(d.get("query_terms") or []), list(d.get("warnings") or []),
                   d.get("rerank_progress"), d.get("adaptive"))


PASSAGES_PER_DOCUMENT = 3
"""Dense search asks FAISS for this many passages per wanted document (more if documents repeat)."""


@dataclass
class _Candidate:
    row: int
    scores: StageValues = field(default_factory=StageValues)
    ranks: StageValues = field(default_factory=StageValues)


def clean_query(query: str) -> str:
    """NFC, control characters and lone surrogates removed, whitespace collapsed, length capped."""
    if not isinstance(query, str):
        raise QueryError("the query must be text")
    query = query.encode("utf-8", "replace").decode("utf-8")
    query = unicodedata.normalize("NFC", query)
    query = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in query)
    query = " ".join(query.split())
    return query[:MAX_QUERY_CHARS]


class Searcher:
    """Hybrid search over an index directory.

    Example::

        searcher = Searcher.load("indexes/sample")
        response = searcher.search("የቡና ምርት", top_k=5)
        for r in response.results:
            print(r.rank, r.doc_id, r.scores.rerank)
    """

    def __init__(
        self,
        directory: Path,
        manifest: dict,
        analyzer: Analyzer,
        bm25: BM25Index,
        bm25_docs: BM25Index,
        doc_offsets: np.ndarray,
        store: Store,
        dense: DenseIndex | None,
        encoder,
        reranker: Reranker | None,
        warnings: list[str],
    ) -> None:
        self.directory = directory
        self.manifest = manifest
        self.analyzer = analyzer
        self.bm25 = bm25
        self.bm25_docs = bm25_docs
        self.doc_offsets = doc_offsets
        self.store = store
        self.dense = dense
        self.encoder = encoder
        self.reranker = reranker
        self.warnings = warnings
        self.fusion = FusionConfig.from_dict(manifest.get("fusion"))
        """The index's fusion settings (``amharic-search tune`` writes them); per-query arguments override."""
        self._encode_lock = threading.Lock()
        self._rerank_lock = threading.Lock()

    # -- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        dense_model: str | None | Literal["index"] = "index",
        reranker: str | None = DEFAULT_RERANKER,
        max_length: int | None = None,
        reranker_backend: Backend = "auto",
        use_dense: bool = True,
        strict: bool = False,
        allow_other_encoder: bool = False,
        verify: bool = False,
        shard_client: Callable[[Path, dict], object] | None = None,
    ) -> "Searcher":
        """Load an index and the models its stages need.

        ``dense_model="index"`` uses the encoder the index was built with; ``reranker=None``
        or ``use_dense=False`` skip those stages; ``reranker_backend``: see :mod:`search.rerank`.
        A model that cannot be had skips its stage with one note in :attr:`warnings` (the
        missing-model policy, :meth:`ModelUnavailableError.note`); ``strict=True`` raises instead.
        An encoder other than the one the index was embedded with (another fingerprint of weights,
        tokenizer, pooling and prompts) is refused with :class:`EncoderMismatchError`, unless
        ``allow_other_encoder=True``. A sharded index (:mod:`index.shard`) gives a
        :class:`~search.shards.ShardedSearcher` that fans each query out to its shards, in this
        process or through ``shard_client(directory, entry)`` (the Ray deployment's shard servers).

        Example::

            searcher = Searcher.load("indexes/sample", reranker=None)
            print(searcher.warnings)   # e.g. ['dense retrieval skipped: model ... is not available ...']
        """
        directory = Path(directory)
        manifest = read_manifest(directory, verify=verify)
        analyzer = Analyzer.from_dict(manifest["analyzer"])
        if manifest.get("shards"):
            from .shards import ShardedSearcher, open_shards

            parts = open_shards(directory, manifest, client=shard_client)
        else:
            parts = _open_parts(directory)
        notes: list[str] = []

        def missing(exc: ModelUnavailableError, stage: Stage) -> None:
            if strict:
                exc.stage = stage
                raise exc
            notes.append(exc.note(stage))

        # every model is found (a path, the cache) and checked before any is loaded: mistakes are reported at once
        built = manifest.get("dense") or {}
        dense_name = None
        if use_dense and built.get("model"):
            dense_name = built["model"] if dense_model in ("index", None) else dense_model
            try:
                check_encoder(built, dense_name, allow_other=allow_other_encoder, notes=notes)
            except ModelUnavailableError as exc:
                missing(exc, "dense")
                dense_name = None
        elif use_dense:
            notes.append(lexical_only_note(manifest, directory, dense_model))
        if reranker:
            try:
                resolve_model(reranker)
            except ModelUnavailableError as exc:
                missing(exc, "rerank")
                reranker = None

        dense = encoder = None
        if dense_name:
            try:
                encoder = load_encoder(dense_name)
                dim = embedding_dim(encoder)
                if dim != built["dim"]:
                    raise EncoderMismatchError(
                        f"the index was embedded with {built['model']!r} ({built['dim']} dimensions) but "
                        f"{dense_name!r} makes {dim}-dimensional embeddings; query with the index's model or rebuild"
                    )
                if not manifest.get("shards"):  # a sharded index's vectors are in its shards
                    dense = load_vectors(directory, manifest)
            except ModelUnavailableError as exc:
                missing(exc, "dense")
                encoder = None
        rr = None
        if reranker:
            try:
                rr = Reranker.load(reranker, max_length=max_length, backend=reranker_backend)
            except ModelUnavailableError as exc:
                missing(exc, "rerank")
        if manifest.get("shards"):
            searcher = ShardedSearcher(directory, manifest, analyzer, parts, encoder, rr, notes)
        else:
            searcher = cls(directory, manifest, analyzer, *parts, dense, encoder, rr, notes)
        searcher.load_options = dict(dense_model=dense_model, reranker=reranker, max_length=max_length,
                                     reranker_backend=reranker_backend, use_dense=use_dense, strict=strict,
                                     allow_other_encoder=allow_other_encoder, shard_client=shard_client)
        return searcher

    def reopen(self, directory: str | Path | None = None) -> "Searcher":
        """The index now at ``directory`` (default: this searcher's, e.g. after a rebuild swapped it)
        with this searcher's models: the encoder is kept when that index was embedded with the same
        one (model, fingerprint, dimension), else loaded as :meth:`load` would; the reranker is kept.
        Loading options and missing-model notes carry over. This searcher keeps working meanwhile.
        """
        directory = Path(directory or self.directory)
        options = dict(getattr(self, "load_options", {}))
        manifest = read_manifest(directory)
        built, mine = manifest.get("dense") or {}, self.manifest.get("dense") or {}
        keep_encoder = self.has_dense and all(built.get(k) == mine.get(k) for k in ("model", "fingerprint", "dim"))
        new = Searcher.load(directory, **{**options, "reranker": None,
                                          "use_dense": options.get("use_dense", True) and not keep_encoder})
        rerank_note = self.skipped_note("rerank")
        if keep_encoder:
            new.adopt_encoder(self)
            new.warnings = list(self.warnings)
        else:
            new.warnings += [rerank_note] if rerank_note else []
        new.reranker, new._rerank_lock = self.reranker, self._rerank_lock
        new.load_options = options
        return new

    def adopt_encoder(self, other: "Searcher") -> None:
        """Use ``other``'s loaded query encoder with this index's vectors (same encoder: :meth:`reopen`)."""
        self.dense = load_vectors(self.directory, self.manifest)
        self.encoder, self._encode_lock = other.encoder, other._encode_lock

    def close(self) -> None:
        """Let go of what this searcher holds beyond memory (a sharded index's threads)."""

    # -- properties ----------------------------------------------------------------------------

    @property
    def has_dense(self) -> bool:
        return self.dense is not None and self.encoder is not None

    @property
    def has_reranker(self) -> bool:
        return self.reranker is not None

    def skipped_note(self, stage: Stage) -> str | None:
        """The load note of a stage skipped because its model could not be had (None if it was not)."""
        from index.models import skipped_note

        return skipped_note(self.warnings, stage)

    # -- search ----------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        stages: Stages = "hybrid",
        rerank: bool = True,
        fusion: FusionMethod | None = None,
        rrf_k: float | None = None,
        weights: dict[str, float] | None = None,
        normalization: Normalization | None = None,
        depth: int | None = None,
        candidates: int = 100,
        rerank_depth: int | None = None,
        max_length: int | None = None,
        window: Window = "best",
        score: PassageScorer | None = None,
        adaptive: AdaptiveDepth | None = None,
    ) -> SearchResponse:
        """Search: first stage (BM25 and/or dense, fused), then the cross-encoder on the top candidates.

        ``depth`` is how many documents each retriever returns, ``candidates`` how many fused
        documents are kept, ``rerank_depth`` how many of them go to the reranker (default: all),
        ``window`` which part of a passage longer than the reranker's max length it reads (``best``:
        the sentences that match the query most, ``head``: the beginning). Fusion arguments left
        ``None`` take the index's settings (:attr:`fusion`). ``score``: see :data:`PassageScorer`.
        ``adaptive``: stop reranking early by that rule (:mod:`search.adaptive`; default: all candidates).
        """
        response, cands = self.first_stage(
            query, stages=stages, fusion=fusion, rrf_k=rrf_k, weights=weights, normalization=normalization,
            depth=depth, candidates=candidates,
        )
        if rerank:
            if self.reranker is None:
                response.warnings.append(self.skipped_note("rerank") or "reranking skipped: no reranker is loaded")
            return self.rerank_candidates(response, cands, top_k=top_k, rerank_depth=rerank_depth, max_length=max_length,
                                          window=window, score=score, adaptive=adaptive)
        response.results = self.documents(cands, top_k)
        return response

    def search_stream(
        self,
        query: str,
        *,
        top_k: int = 10,
        stages: Stages = "hybrid",
        rerank: bool = True,
        fusion: FusionMethod | None = None,
        rrf_k: float | None = None,
        weights: dict[str, float] | None = None,
        normalization: Normalization | None = None,
        depth: int | None = None,
        candidates: int = 100,
        rerank_depth: int | None = None,
        max_length: int | None = None,
        window: Window = "best",
        score: PassageScorer | None = None,
        adaptive: AdaptiveDepth | None = None,
        blocks: Sequence[int] = (),
    ) -> Iterator[SearchResponse]:
        """:meth:`search` in steps, for a UI: the first-stage response at once, then, when ``rerank``
        is on, a reranker is loaded and there are candidates, the reranked one. The last response
        equals :meth:`search`'s; a bad query raises :class:`QueryError` at the first step.

        ``blocks`` reranks progressively: with ``blocks=(20,)`` the first 20 candidates (in
        first-stage order) are scored and a response is given (their reranked order, then the other
        candidates in first-stage order, ``rerank_progress`` ``[20, 100]``), then the rest, and the
        final response. The final order is :meth:`search`'s (scores within float rounding: the
        cross-encoder sees other batches).

        Example::

            for response in searcher.search_stream("የቡና ምርት", top_k=5):
                show(response.results, final=response.reranked)
        """
        response, cands = self.first_stage(
            query, stages=stages, fusion=fusion, rrf_k=rrf_k, weights=weights, normalization=normalization,
            depth=depth, candidates=candidates,
        )
        if rerank and self.reranker is None:
            response.warnings.append(self.skipped_note("rerank") or "reranking skipped: no reranker is loaded")
        response.results = self.documents(cands, top_k)
        if not (rerank and self.reranker is not None and cands):
            yield response
            return
        yield copy.deepcopy(response)  # the reranking below completes this response in place
        yield from self.rerank_progressively(response, cands, blocks=blocks, top_k=top_k, rerank_depth=rerank_depth,
                                             max_length=max_length, window=window, score=score, adaptive=adaptive)

    def first_stage(
        self,
        query: str,
        *,
        stages: Stages = "hybrid",
        fusion: FusionMethod | None = None,
        rrf_k: float | None = None,
        weights: dict[str, float] | None = None,
        normalization: Normalization | None = None,
        depth: int | None = None,
        candidates: int = 100,
    ) -> tuple[SearchResponse, list[_Candidate]]:
        query = clean_query(query)
        if not query:
            raise QueryError("the query is empty: type a word or a question")
        base = self.fusion
        config = FusionConfig(
            method=fusion or base.method,
            k=base.k if rrf_k is None else rrf_k,
            weights=weights or base.weights,
            normalization=normalization or base.normalization,
            depth=depth or base.depth,
        )
        depth = config.depth
        timings: dict[str, float | None] = {"bm25": None, "dense": None, "fusion": None, "rerank": None}
        warnings: list[str] = []
        run_lexical = stages in ("lexical", "hybrid")
        run_dense = stages in ("dense", "hybrid")
        if run_dense and not self.has_dense:
            if stages == "dense":
                raise QueryError("dense retrieval is not available for this index (no encoder or no embeddings)")
            warnings.append(self.skipped_note("dense") or "dense retrieval skipped: no dense retrieval for this index")
            run_dense = False

        lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        terms: list[str] = []
        if run_lexical:
            t0 = time.perf_counter()
            terms = self.analyzer.tokens(query)
            lists["bm25"] = self.lexical(terms, depth)
            timings["bm25"] = _ms(t0)
        if run_dense:
            t0 = time.perf_counter()
            lists["dense"] = self.dense_retrieve(query, depth)
            timings["dense"] = _ms(t0)
        if not terms and run_lexical and not run_dense:
            raise QueryError(NO_SEARCHABLE_WORDS)

        t0 = time.perf_counter()
        stage_of: dict[int, dict[str, tuple[float, int]]] = {}  # document -> stage -> (score, rank)
        for stage, (rows, scores) in lists.items():
            for rank, (doc, score) in enumerate(zip(self.document_of(rows).tolist(), scores.tolist()), start=1):
                stage_of.setdefault(doc, {})[stage] = (float(score), rank)
        fusion_info = config.to_dict() if len(lists) == 2 else None
        cands = []
        for rank, (doc, score, row) in enumerate(self.fuse(lists, config)[:candidates], start=1):
            cand = _Candidate(row)
            for stage, (stage_score, stage_rank) in stage_of[doc].items():
                setattr(cand.scores, stage, stage_score)
                setattr(cand.ranks, stage, stage_rank)
            cand.scores.fused, cand.ranks.fused = float(score), rank
            cands.append(cand)
        timings["fusion"] = _ms(t0)

        stages_run = list(lists)
        lexical_hits = int(lists["bm25"][0].size) if "bm25" in lists else 0
        if run_lexical and lexical_hits == 0:
            warnings.append("no passage contains a word of the query" + (" (dense retrieval still answers)" if run_dense else ""))
        response = SearchResponse(query, [], timings, stages_run, fusion_info, lexical_hits, terms, warnings)
        _set_total(response.timings_ms)
        return response, cands

    def dense_retrieve(self, query: str, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``depth`` documents nearest to the encoded query, each represented by its best passage.

        Returns passage rows and cosine scores, best document first (document score = best passage,
        the choice measured in BENCHMARKS.md "First stage: dense and fusion").
        """
        with self._encode_lock:
            qvec = encode(self.encoder, [query], kind="query")[0]
        return self.dense_search(qvec, depth)

    def dense_search(self, qvec: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`dense_retrieve` for an encoded query."""
        k = depth * PASSAGES_PER_DOCUMENT
        while True:
            rows, scores = self.dense.search(qvec, k)
            _, first = np.unique(self.document_of(rows), return_index=True)
            if first.size >= depth or k >= self.dense.size:
                keep = np.sort(first)[:depth]  # the first (best) passage of each document, in score order
                return rows[keep], scores[keep]
            k *= 4

    def document_of(self, rows: np.ndarray) -> np.ndarray:
        """Document index of each passage row."""
        return np.searchsorted(self.doc_offsets, np.asarray(rows), side="right") - 1

    def fuse(self, lists: dict[str, tuple[np.ndarray, np.ndarray]], config: FusionConfig) -> list[tuple[int, float, int]]:
        """Fuse per-retriever lists of (passage rows, scores) by document.

        Returns (document, fused score, passage row) best first; a document's passage is the one
        chosen by the retriever that ranked the document higher.
        """
        by_doc: dict[str, tuple[list[int], list[float]]] = {}
        passage: dict[int, tuple[int, int]] = {}  # document -> (best rank, row)
        for stage, (rows, scores) in lists.items():
            docs = self.document_of(rows).tolist()
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

    def lexical(self, terms: list[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
        """BM25 over whole documents; each document is represented by its best passage.

        Returns passage rows and their documents' scores, best document first.
        """
        doc_rows, doc_scores = self.bm25_docs.top_k(terms, depth)
        if doc_rows.size == 0:
            return doc_rows, doc_scores
        starts = np.asarray(self.doc_offsets[doc_rows], dtype=np.int64)
        lengths = np.asarray(self.doc_offsets[doc_rows + 1], dtype=np.int64) - starts
        if np.all(lengths == 1):
            return starts, doc_scores
        # score only the passages of these documents (not the whole passage index), then take each
        # document's best one (the first on ties)
        group = np.repeat(np.arange(doc_rows.size), lengths)
        group_start = np.cumsum(lengths) - lengths  # where each document's passages begin in ``rows``
        rows = starts[group] + (np.arange(group.size) - group_start[group])
        scores = self.bm25.scores_of(terms, rows)
        order = np.lexsort((-scores, group))
        return rows[order[group_start]], doc_scores

    def rerank_candidates(self, response: SearchResponse, cands: list[_Candidate], *, top_k: int = 10, **kwargs) -> SearchResponse:
        """Second stage for a :meth:`first_stage` result (lets a UI show the first stage at once):
        :meth:`rerank_progressively` in one block.

        A ``score`` hook that raises :class:`RerankSkipped` leaves the first-stage order, with a warning.
        """
        if self.reranker is None or not cands:
            response.results = self.documents(cands, top_k)
            _set_total(response.timings_ms)
            return response
        *_, response = self.rerank_progressively(response, cands, blocks=(), top_k=top_k, **kwargs)
        return response

    def rerank_progressively(self, response: SearchResponse, cands: list[_Candidate], *, blocks: Sequence[int],
                             top_k: int = 10, rerank_depth: int | None = None, max_length: int | None = None,
                             window: Window = "best", score: PassageScorer | None = None,
                             adaptive: AdaptiveDepth | None = None) -> Iterator[SearchResponse]:
        """The second stage of a :meth:`first_stage` result in blocks (see :meth:`search_stream`):
        one response after each block, the last one final. With ``adaptive`` the rule decides after
        each of its blocks whether to go on (:mod:`search.adaptive`)."""
        head = cands[: rerank_depth or len(cands)]  # first-stage order
        tail = cands[len(head):]
        cuts = adaptive.cuts(len(head), blocks) if adaptive else block_cuts(len(head), blocks)
        t0 = time.perf_counter()
        done, step, misses = 0, None, 0
        for cut in cuts:
            block = head[done:cut]
            try:
                passages = self.store.passages([c.row for c in block])
                values = (score or self.score_passages)(response.query, passages, window=window, max_length=max_length)
            except RerankSkipped as exc:
                if step is None:  # nothing scored: the first-stage order
                    response.warnings.append(str(exc))
                    response.results = self.documents(cands, top_k)
                    _set_total(response.timings_ms)
                    yield response
                    return
                # the last complete step is the answer, with the reason it stopped there
                step = copy.deepcopy(step)
                step.warnings.append(str(exc).replace("the results are in first-stage order",
                                                      f"only the first {done} candidates are reranked"))
                yield step
                return
            for cand, value in zip(block, values.tolist()):
                cand.scores.rerank = float(value)
            done = cut
            stop = False
            if adaptive and done < len(head) and adaptive.decides_at(done):
                misses, stop = adaptive.step([c.scores.rerank for c in head[:done]], misses, top_k)
            scored = sorted(head[:done], key=lambda c: (-c.scores.rerank, c.ranks.fused))
            for rank, cand in enumerate(scored, start=1):
                cand.ranks.rerank = rank
            final = stop or done == len(head)
            step = response if final else copy.deepcopy(response)  # the final step completes ``response``
            step.timings_ms["rerank"] = _ms(t0)
            step.stages = [*step.stages, "rerank"]
            step.rerank_progress = [done, len(head)]
            if adaptive:
                step.adaptive = {**adaptive.to_dict(), "scored": done, "stopped": stop}
            step.results = self.documents(scored + head[done:] + tail, top_k)
            _set_total(step.timings_ms)
            yield step
            if final:
                return

    def _reranker_texts(self, query: str, passages, window: Window) -> list[str]:
        """What the cross-encoder reads of each passage: title + text, or title + the best-matching window."""
        if window == "head" or not self.reranker.max_length:
            return [searchable_text(p.title, p.text) for p in passages]
        terms = set(self.analyzer.tokens(query))
        count = self.reranker.count_tokens
        room = self.reranker.max_length - count(query) - 4  # special tokens of a pair
        out = []
        for p in passages:
            budget = room - (count(p.title) + 1 if p.title else 0)
            out.append(searchable_text(p.title, focus_window(p.text, terms, budget, analyze=self.analyzer.tokens, count=count)))
        return out

    def reranker_inputs(self, query: str, passages, window: Window = "best") -> list[str]:
        """What the cross-encoder reads of each passage at its current max length (see :meth:`reranker_at`)."""
        return self._reranker_texts(query, passages, window)

    @contextlib.contextmanager
    def reranker_at(self, max_length: int | None = None) -> Iterator[Reranker]:
        """The reranker for this thread alone, reading ``max_length`` tokens (None: its own) until the block ends."""
        with self._rerank_lock:
            previous = self.reranker.max_length
            if max_length:
                self.reranker.max_length = max_length
            try:
                yield self.reranker
            finally:
                self.reranker.max_length = previous

    def score_passages(self, query: str, passages, *, window: Window = "best", max_length: int | None = None) -> np.ndarray:
        """The cross-encoder's score of each passage for ``query`` (the default :data:`PassageScorer`)."""
        with self.reranker_at(max_length) as reranker:
            return reranker.score(query, self._reranker_texts(query, passages, window))

    def documents(self, cands: list[_Candidate], top_k: int) -> list[SearchResult]:
        """Best passage per document, in candidate order."""
        if not cands:
            return []
        passages = {p.row: p for p in self.store.passages([c.row for c in cands])}
        seen: set[str] = set()
        results: list[SearchResult] = []
        for cand in cands:
            p = passages[cand.row]
            if p.doc_id in seen:
                continue
            seen.add(p.doc_id)
            # a snapshot: later reranking steps go on changing the candidate's values
            results.append(SearchResult(len(results) + 1, p.doc_id, p.passage_id, p.title, p.text, copy.copy(cand.scores),
                                        copy.copy(cand.ranks)))
            if len(results) >= top_k:
                break
        return results

    def document(self, doc_id: str) -> dict | None:
        return self.store.document(doc_id)


def _open_parts(directory: Path) -> tuple[BM25Index, BM25Index, np.ndarray, Store]:
    """The lexical parts and the store of an (unsharded) index directory."""
    try:
        return (BM25Index.load(directory / BM25_DIR), BM25Index.load(directory / BM25_DOCS_DIR),
                np.load(directory / DOC_OFFSETS_FILE, mmap_mode="r"), Store(directory / STORE_FILE))
    except Exception as exc:  # noqa: BLE001 - damaged files become one clear message
        raise damaged(directory, exc) from None


def damaged(directory: Path, exc: Exception) -> IndexFormatError:
    """The one message for an index whose files cannot be read."""
    return IndexFormatError(f"{directory}: damaged index ({type(exc).__name__}: {exc}); rebuild it")


def load_vectors(directory: Path, manifest: dict) -> DenseIndex:
    """The FAISS index of an (unsharded) index directory, as its manifest describes it."""
    return DenseIndex.load(directory / DENSE_FILE, (manifest.get("dense") or {}).get("faiss"))


def _set_total(timings: dict[str, float | None]) -> None:
    timings["total"] = round(sum(v for k, v in timings.items() if v and k != "total"), 3)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)
