"""Query time of amharic-search: load an index, retrieve, fuse, rerank, evaluate."""

from .searcher import QueryError, SearchResponse, SearchResult, Searcher  # noqa: F401

__all__ = ["Searcher", "SearchResponse", "SearchResult", "QueryError"]
