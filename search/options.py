"""The options of one search, defined once.

:class:`SearchOptions` is what :meth:`Searcher.search <search.searcher.Searcher.search>` and
:meth:`~search.searcher.Searcher.search_stream` take (as the dataclass or as keywords), what the
command line's ``query``/``eval`` build, and what the search service's request model is generated
from (:func:`search.service.app.search_params_model`): each field's metadata holds its description
and the bounds a request may ask for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal

from .adaptive import AdaptiveDepth
from .fusion import FusionMethod, Normalization
from .rerank import Window
from .schema import Stages

Sort = Literal["relevance", "date_desc", "date_asc"]


def _opt(default, doc: str, *, api: bool = True, **bounds):
    """A field with its description and the bounds the service enforces (``ge``, ``gt``, ``le``)."""
    return field(default=default, metadata={"doc": doc, "api": api, **bounds})


@dataclass(frozen=True)
class SearchOptions:
    """How to search: stages, fusion, candidates and reranking.

    Example::

        options = SearchOptions(top_k=5, stages="lexical", rerank=False)
        searcher.search("የቡና ምርት", options)
        searcher.search("የቡና ምርት", top_k=5, stages="lexical", rerank=False)   # the same
    """

    top_k: int = _opt(10, "Documents to return.", ge=1, le=100)
    stages: Stages = _opt("hybrid", "First-stage retrievers.")
    rerank: bool = _opt(True, "Rerank the candidates with the cross-encoder (when one is loaded).")
    fusion: FusionMethod | None = _opt(None, "Fusion method (default: the index's, see `amharic-search tune`; else the "
                                             "z-score weighted sum).")
    rrf_k: float | None = _opt(None, "RRF k (default: the index's; else 60).", gt=0, le=1e6)
    weights: dict[str, float] | None = _opt(None, "Weight per retriever of the weighted fusion (default: the index's).",
                                            api=False)
    normalization: Normalization | None = _opt(None, "Score normalization of the weighted fusion (default: the index's).",
                                               api=False)
    depth: int | None = _opt(None, "Documents per retriever (default: the index's; else 300).", ge=1, le=2000)
    candidates: int = _opt(100, "Fused documents kept (each with one passage, the one the reranker reads).",
                           ge=1, le=500)
    rerank_depth: int | None = _opt(None, "How many candidates to rerank (default: all).", ge=1, le=500)
    max_length: int | None = _opt(None, "Reranker max tokens (default: the model's).", ge=16, le=512)
    window: Window = _opt("best", "What the reranker reads of a long passage: the sentences that match the query "
                                  "most (best) or its beginning (head).")
    """Bounds (``ge``, ``gt``, ``le``) are the search service's caps; the command line, local, allows more."""
    filters: tuple[str, ...] = _opt((), "Filters on the index's fields, all applied: FIELD=VALUE (several: "
                                        "FIELD=A,B), FIELD!=VALUE, and for numbers and dates >=, <=, >, < "
                                        "(e.g. source=ሪፖርተር, date>=1995). Dates are YYYY, YYYY-MM or YYYY-MM-DD "
                                        "in the field's calendar; `date` names the index's date field.", max_length=20)
    sort: Sort = _opt("relevance", "Order of the results: relevance, or the relevant candidates by date "
                                   "(date_desc: newest first; undated last).")
    offset: int = _opt(0, "Results to skip, for the next pages (page n: offset = (n - 1) * top_k; within the "
                          "candidates).", ge=0, le=499)
    adaptive: AdaptiveDepth | None = _opt(None, "Adaptive rerank depth: stop scoring candidates once the rest are "
                                                "unlikely to reach the top 10 (the rule and where it stopped: "
                                                "\"adaptive\").")

    def __post_init__(self) -> None:
        filters = self.filters
        if isinstance(filters, str):
            filters = (filters,)
        # a blank filter (an empty form field, `filters=` in a query string) is no filter
        object.__setattr__(self, "filters", tuple(str(f) for f in (filters or ()) if str(f).strip()))

    @classmethod
    def of(cls, options: "SearchOptions | None" = None, **overrides) -> "SearchOptions":
        """``options`` (default: the defaults) with ``overrides``; an unknown keyword is a TypeError."""
        unknown = set(overrides) - set(cls.names())
        if unknown:
            raise TypeError(f"unknown search option(s): {', '.join(sorted(unknown))}")
        return replace(options or cls(), **overrides)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["adaptive"] = self.adaptive.to_dict() if self.adaptive else None
        return d


Translit = Literal["auto", "on", "off"]
TRANSLIT_DOC = "Latin typing to Ethiopic (selam -> ሰላም); auto: when the query has no Ethiopic letters."
"""What ``translit`` does (the command line's ``--translit``, the service's ``translit``)."""


def option_field(name: str):
    """The dataclass field of a search option (its default, and its description and bounds in ``metadata``)."""
    return next(f for f in fields(SearchOptions) if f.name == name)


def option_bound(name: str, bound: str):
    """A bound (``ge``, ``gt``, ``le``) of a search option, as the service enforces it."""
    return option_field(name).metadata[bound]
