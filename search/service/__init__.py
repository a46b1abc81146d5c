"""The search service (``amharic-search serve``): the HTTP API over the library, its client, and
its form on Ray Serve.

- :mod:`~search.service.core`: configuration, the served indexes (reloaded when rebuilt), searchers;
- :mod:`~search.service.batching`: the one cross-encoder queue shared by all requests;
- :mod:`~search.service.app`: the FastAPI application (routes, request and response models);
- :mod:`~search.service.metrics`: Prometheus metrics;
- :mod:`~search.service.client`: :class:`ServiceClient`, the Searcher's surface over HTTP;
- :mod:`~search.service.ray_serve`: the same application on Ray Serve (imported only for ``--ray``).

Names are imported lazily: FastAPI and uvicorn load only where the service runs.
"""

from __future__ import annotations

import importlib

_LAZY = {"SearchService": ".core", "ServiceConfig": ".core", "served_indexes": ".core", "create_app": ".app",
         "run": ".app", "ServiceClient": ".client"}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
