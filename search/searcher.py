"""Query time: the :class:`Searcher`, one index and its models behind ``search`` and ``search_stream``.

It is assembled from parts that change for their own reasons: opening the index
(:mod:`search.collection`), loading and checking the models (:mod:`search.loading`), the first stage
(:mod:`search.firststage`) and the reranking orchestration (:mod:`search.reranking`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from dataclasses import asdict, replace
from typing import Callable, Iterator, Sequence

from ..index.analyzer import Analyzer
from ..index.manifest import read_manifest
from ..index.models import Stage, skipped_note

from .collection import open_collection
from .firststage import Candidate, FirstStage, set_total
from .fusion import FusionConfig
from .loading import LoadOptions, load_models
from .options import SearchOptions
from .rerank import Reranker
from .reranking import PassageScorer, SecondStage
from .schema import SearchResponse, SearchResult


class Searcher:
    """Hybrid search over an index directory.

    Example::

        searcher = Searcher.load("indexes/sample")
        response = searcher.search("የቡና ምርት", top_k=5)
        for r in response.results:
            print(r.rank, r.doc_id, r.scores.rerank)
    """

    def __init__(self, directory: Path, manifest: dict, analyzer: Analyzer, collection, encoder,
                 reranker: Reranker | None, warnings: list[str]) -> None:
        self.directory = directory
        self.manifest = manifest
        self.analyzer = analyzer
        self.collection = collection
        """The opened index: a :class:`~search.local.LocalIndex` or :class:`~search.shards.ShardedIndex`."""
        self.warnings = warnings
        self.fusion = FusionConfig.from_dict(manifest.get("fusion"))
        """The index's fusion settings (``amharic-search tune`` writes them); per-query options override."""
        self.first = FirstStage(collection, analyzer, encoder, self.fusion, warnings)
        self.second = SecondStage(collection, analyzer, reranker)
        self.load_options = LoadOptions()
        """How the models were chosen (:meth:`reopen` chooses the same)."""
        self.shard_client = None

    # -- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = False,
             shard_client: Callable[[Path, dict], object] | None = None, **options) -> "Searcher":
        """Load an index and the models its stages need (``options``: :class:`~search.loading.LoadOptions`).

        ``dense_model="index"`` uses the encoder the index was built with; ``reranker=None``
        or ``use_dense=False`` skip those stages; ``reranker_backend``: see :mod:`search.rerank`.
        A model that cannot be had skips its stage with one note in :attr:`warnings` (the
        missing-model policy, :meth:`ModelUnavailableError.note`); ``strict=True`` raises instead.
        An encoder other than the one the index was embedded with (another fingerprint of weights,
        tokenizer, pooling and prompts) is refused with :class:`~search.loading.EncoderMismatchError`,
        unless ``allow_other_encoder=True``. A sharded index (:mod:`index.shard`) fans each query out
        to its shards, in this process or through ``shard_client(directory, entry)`` (the Ray
        deployment's shard servers).

        Example::

            searcher = Searcher.load("indexes/sample", reranker=None)
            print(searcher.warnings)   # e.g. ['dense retrieval skipped: model ... is not available ...']
        """
        directory = Path(directory)
        chosen = LoadOptions(**options)
        manifest = read_manifest(directory, verify=verify)
        analyzer = Analyzer.from_dict(manifest["analyzer"])
        collection = open_collection(directory, manifest, shard_client=shard_client)
        models = load_models(directory, manifest, chosen)
        if models.encoder is not None:
            collection.load_vectors()
        searcher = cls(directory, manifest, analyzer, collection, models.encoder, models.reranker, models.notes)
        searcher.load_options, searcher.shard_client = chosen, shard_client
        return searcher

    def reopen(self, directory: str | Path | None = None) -> "Searcher":
        """The index now at ``directory`` (default: this searcher's, e.g. after a rebuild swapped it)
        with this searcher's models: the encoder is kept when that index was embedded with the same
        one (model, fingerprint, dimension), else loaded as :meth:`load` would; the reranker is kept.
        Loading options and missing-model notes carry over. This searcher keeps working meanwhile.
        """
        directory = Path(directory or self.directory)
        options = self.load_options
        manifest = read_manifest(directory)
        built, mine = manifest.get("dense") or {}, self.manifest.get("dense") or {}
        keep_encoder = self.has_dense and all(built.get(k) == mine.get(k) for k in ("model", "fingerprint", "dim"))
        new = Searcher.load(directory, shard_client=self.shard_client,
                            **asdict(replace(options, reranker=None, use_dense=options.use_dense and not keep_encoder)))
        rerank_note = self.skipped_note("rerank")
        if keep_encoder:
            new.adopt_encoder(self)
            new.warnings[:] = self.warnings
        elif rerank_note:
            new.warnings.append(rerank_note)
        new.second.reranker = self.reranker
        new.load_options = options
        return new

    def adopt_encoder(self, other: "Searcher") -> None:
        """Use ``other``'s loaded query encoder with this index's vectors (same encoder: :meth:`reopen`)."""
        self.collection.load_vectors()
        self.first.encoder, self.first.encode_lock = other.first.encoder, other.first.encode_lock

    def close(self) -> None:
        """Let go of what this searcher holds beyond memory (a sharded index's threads)."""
        self.collection.close()

    # -- what it has -----------------------------------------------------------------------------

    @property
    def encoder(self):
        """The query encoder (None: no dense retrieval)."""
        return self.first.encoder

    @property
    def reranker(self) -> Reranker | None:
        return self.second.reranker

    @property
    def has_dense(self) -> bool:
        return self.first.has_dense

    @property
    def has_reranker(self) -> bool:
        return self.reranker is not None

    def skipped_note(self, stage: Stage) -> str | None:
        """The load note of a stage skipped because its model could not be had (None if it was not)."""
        return skipped_note(self.warnings, stage)

    # -- search ----------------------------------------------------------------------------------

    def search(self, query: str, options: SearchOptions | None = None, /, *, score: PassageScorer | None = None,
               **overrides) -> SearchResponse:
        """Search: first stage (BM25 and/or dense, fused), then the cross-encoder on the top candidates.

        ``options`` (:class:`~search.options.SearchOptions`, or its fields as keywords): ``depth`` is
        how many documents each retriever returns, ``candidates`` how many fused documents are kept,
        ``rerank_depth`` how many of them go to the reranker (default: all), ``window`` which part of
        a passage longer than the reranker's max length it reads. Fusion options left ``None`` take the
        index's settings (:attr:`fusion`). ``score``: see :data:`~search.reranking.PassageScorer`.

        Example::

            searcher.search("የቡና ምርት", top_k=5, stages="lexical", rerank=False)
        """
        *_, response = self.search_stream(query, options, score=score, **overrides)
        return response

    def search_stream(self, query: str, options: SearchOptions | None = None, /, *, score: PassageScorer | None = None,
                      blocks: Sequence[int] = (), **overrides) -> Iterator[SearchResponse]:
        """:meth:`search` in steps, for a UI: the first-stage response at once, then, when ``rerank``
        is on, a reranker is loaded and there are candidates, the reranked one. The last response
        equals :meth:`search`'s; a bad query raises :class:`~search.schema.QueryError` at the first step.

        ``blocks`` reranks progressively: with ``blocks=(20,)`` the first 20 candidates (in
        first-stage order) are scored and a response is given (their reranked order, then the other
        candidates in first-stage order, ``rerank_progress`` ``[20, 100]``), then the rest, and the
        final response. The final order is :meth:`search`'s (scores within float rounding: the
        cross-encoder sees other batches).

        Example::

            for response in searcher.search_stream("የቡና ምርት", top_k=5):
                show(response.results, final=response.reranked)
        """
        options = SearchOptions.of(options, **overrides)
        response, cands = self.first_stage(query, options)
        if options.rerank and self.reranker is None:
            response.warnings.append(self.skipped_note("rerank") or "reranking skipped: no reranker is loaded")
        response.results = self.documents(cands, options.top_k, offset=options.offset, sort=options.sort)
        if not (options.rerank and self.reranker is not None and cands):
            yield response
            return
        yield copy.deepcopy(response)  # the reranking below completes this response in place
        yield from self.second.progressively(response, cands, options, blocks=blocks, score=score)

    def first_stage(self, query: str, options: SearchOptions | None = None, /,
                    **overrides) -> tuple[SearchResponse, list[Candidate]]:
        """The first-stage response (results not built yet) and its candidates, best first."""
        return self.first.run(query, SearchOptions.of(options, **overrides))

    def rerank_candidates(self, response: SearchResponse, cands: list[Candidate], options: SearchOptions | None = None,
                          /, *, score: PassageScorer | None = None, **overrides) -> SearchResponse:
        """Second stage for a :meth:`first_stage` result (lets a UI show the first stage at once).

        A ``score`` hook that raises :class:`~search.schema.RerankSkipped` leaves the first-stage
        order, with a warning.
        """
        options = SearchOptions.of(options, **overrides)
        if self.reranker is None or not cands:
            response.results = self.documents(cands, options.top_k, offset=options.offset, sort=options.sort)
            set_total(response.timings_ms)
            return response
        *_, response = self.second.progressively(response, cands, options, score=score)
        return response

    def reranker_inputs(self, query: str, passages, window="best", max_length: int | None = None) -> list[str]:
        """What the cross-encoder reads of each passage at ``max_length`` tokens (None: the model's)."""
        return self.second.inputs(query, passages, window, max_length)

    def score_passages(self, query: str, passages, *, window="best", max_length: int | None = None):
        """The cross-encoder's score of each passage for ``query`` (the default scorer)."""
        return self.second.score(query, passages, window=window, max_length=max_length)

    def documents(self, cands: list[Candidate], top_k: int, *, offset: int = 0, sort: str = "relevance") -> list[SearchResult]:
        """Best passage per document, in candidate order (or by date: ``sort``), ``offset`` skipped."""
        return self.second.documents(cands, top_k, offset=offset, sort=sort)

    def document(self, doc_id: str) -> dict | None:
        return self.collection.document(doc_id)
