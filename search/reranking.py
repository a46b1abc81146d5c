"""The second stage's orchestration: the fused candidates scored by the cross-encoder in blocks
(progressive answers, adaptive depth, a scorer that may give up), and the results built from them."""

from __future__ import annotations

import copy
import time
from typing import Callable, Iterator, Sequence

import numpy as np

from ..index.layout import searchable_text

from .adaptive import block_cuts
from .filters import sort_key
from .firststage import Candidate, ms_since, set_total
from .options import SearchOptions
from .rerank import Reranker, Window, focus_window
from .schema import RerankSkipped, SearchResponse, SearchResult

PassageScorer = Callable[..., np.ndarray]
"""``score(query, passages, *, window, max_length) -> scores``: how the searcher gets the
cross-encoder's scores (default :meth:`SecondStage.score`; the search service queues them)."""


class SecondStage:
    """The cross-encoder over the candidates of :class:`~search.firststage.FirstStage`, and the
    results (best passage per document) of either stage."""

    def __init__(self, collection, analyzer, reranker: Reranker | None) -> None:
        self.collection = collection
        self.analyzer = analyzer
        self.reranker = reranker

    def inputs(self, query: str, passages, window: Window = "best", max_length: int | None = None) -> list[str]:
        """What the cross-encoder reads of each passage at ``max_length`` tokens (None: the model's):
        title + text, or title + the window of sentences that best match the query."""
        length = max_length or self.reranker.max_length
        if window == "head" or not length:
            return [searchable_text(p.title, p.text) for p in passages]
        terms = set(self.analyzer.tokens(query))
        count = self.reranker.count_tokens
        room = length - count(query) - 4  # special tokens of a pair
        out = []
        for p in passages:
            budget = room - (count(p.title) + 1 if p.title else 0)
            out.append(searchable_text(p.title, focus_window(p.text, terms, budget, analyze=self.analyzer.tokens, count=count)))
        return out

    def score(self, query: str, passages, *, window: Window = "best", max_length: int | None = None) -> np.ndarray:
        """The cross-encoder's score of each passage for ``query`` (the default :data:`PassageScorer`)."""
        return self.reranker.score(query, self.inputs(query, passages, window, max_length), max_length=max_length)

    def documents(self, cands: list[Candidate], top_k: int, *, offset: int = 0,
                  sort: str = "relevance") -> list[SearchResult]:
        """Best passage per document, in candidate order (``sort`` ``date_desc``/``date_asc``: the
        candidates by date, undated last, ties in candidate order); ``offset`` results skipped."""
        if not cands:
            return []
        fields = getattr(self.collection, "fields", None)
        seen: set[int] = set()
        unique: list[tuple[Candidate, int]] = []
        for cand, doc in zip(cands, self.collection.document_of(np.array([c.row for c in cands])).tolist()):
            if doc not in seen:
                seen.add(doc)
                unique.append((cand, doc))
        key = sort_key(fields, sort) if fields is not None and sort != "relevance" else None
        if key is not None:
            unique.sort(key=lambda pair: key(pair[1]))
        page = unique[offset : offset + top_k]
        passages = self.collection.passages([c.row for c, _ in page])
        # a snapshot: later reranking steps go on changing the candidate's values
        return [SearchResult(offset + i + 1, p.doc_id, p.passage_id, p.title, p.text, copy.copy(cand.scores),
                             copy.copy(cand.ranks), fields.display(doc) if fields else {})
                for i, ((cand, doc), p) in enumerate(zip(page, passages))]

    def progressively(self, response: SearchResponse, cands: list[Candidate], options: SearchOptions, *,
                      blocks: Sequence[int] = (), score: PassageScorer | None = None) -> Iterator[SearchResponse]:
        """Rerank a first-stage result in blocks: one response after each block, the last one final
        (``response`` itself, completed). With ``options.adaptive`` the rule decides after each of its
        blocks whether to go on (:mod:`search.adaptive`). A ``score`` that raises
        :class:`~search.schema.RerankSkipped` ends with the last complete step, or the first-stage
        order with a warning."""
        top_k, adaptive = options.top_k, options.adaptive
        head = cands[: options.rerank_depth or len(cands)]  # first-stage order
        tail = cands[len(head):]
        cuts = adaptive.cuts(len(head), blocks) if adaptive else block_cuts(len(head), blocks)
        t0 = time.perf_counter()
        done, step, misses = 0, None, 0
        for cut in cuts:
            block = head[done:cut]
            try:
                passages = self.collection.passages([c.row for c in block])
                values = (score or self.score)(response.query, passages, window=options.window, max_length=options.max_length)
            except RerankSkipped as exc:
                if step is None:  # nothing scored: the first-stage order
                    response.warnings.append(str(exc))
                    response.results = self.documents(cands, top_k, offset=options.offset, sort=options.sort)
                    set_total(response.timings_ms)
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
            step.timings_ms["rerank"] = ms_since(t0)
            step.stages = [*step.stages, "rerank"]
            step.rerank_progress = [done, len(head)]
            if adaptive:
                step.adaptive = {**adaptive.to_dict(), "scored": done, "stopped": stop}
            step.results = self.documents(scored + head[done:] + tail, top_k, offset=options.offset, sort=options.sort)
            set_total(step.timings_ms)
            yield step
            if final:
                return
