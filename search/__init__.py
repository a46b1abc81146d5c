"""Query time of amharic-search: load an index, retrieve, fuse, rerank, evaluate.

Names are imported lazily, so light modules (``search.fusion``) load without the whole engine.
"""

from __future__ import annotations

import importlib

__all__ = ["Searcher", "SearchResponse", "SearchResult", "QueryError"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(".searcher", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
