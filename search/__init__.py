"""Query time of amharic-search: load an index, retrieve, fuse, rerank, evaluate.

The retrieval library is this package's top level (:mod:`search.searcher` and its parts); the
search service lives in :mod:`search.service`, training in :mod:`search.train`, the page's helpers
in :mod:`search.ui`, the command line in :mod:`search.cli` (docs/ARCHITECTURE.md).

Names are imported lazily, so light modules (``search.fusion``) load without the whole engine.
"""

from __future__ import annotations

import importlib

_LAZY = {"Searcher": ".searcher", "SearchOptions": ".options", "SearchResponse": ".schema", "SearchResult": ".schema",
         "QueryError": ".schema"}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
