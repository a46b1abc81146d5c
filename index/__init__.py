"""Build time of amharic-search: read a corpus, analyze, chunk, embed and persist an index.

Names are imported lazily, so light modules (``index.chunking``, ``index.embcache``) load without
the heavy dependencies of the build (bm25s, FAISS).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {"Analyzer": ".analyzer", "AnalyzerConfig": ".analyzer", "build_index": ".build"}

__all__ = ["Analyzer", "AnalyzerConfig", "build_index", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
