"""A client of the search service (``amharic-search serve``) with the surface of an in-process Searcher.

    client = ServiceClient("http://127.0.0.1:8000")
    response = client.search("የቡና ምርት", top_k=5)          # a SearchResponse, as Searcher.search returns
    for response in client.search_stream("የቡና ምርት"):     # first-stage list, then the reranked one
        ...
    client.document("hist-001")                              # a dict, or None

What the page reads of a Searcher is here too: ``manifest``, ``analyzer`` (for highlighting),
``fusion``, ``has_dense``, ``has_reranker``, ``reranker`` (``name``, ``backend``) and ``warnings``
(the service's missing-model notes). A query the service refuses raises :class:`QueryError` with
the command line's message; other refusals raise :class:`ServiceError` (its ``status``, ``code``).
"""

from __future__ import annotations

import json
from dataclasses import fields
import os
import time
from types import SimpleNamespace
from typing import Iterator
from urllib.parse import quote

import httpx

from ...index.analyzer import Analyzer

from ..adaptive import AdaptiveDepth
from ..fusion import FusionConfig
from ..options import SearchOptions
from ..schema import QueryError, SearchResponse

API_ENV = "AMHARIC_SEARCH_API"
REQUEST_ARGS = ("deadline_ms", "blocks")
"""What a request takes beyond the search options (:class:`~search.options.SearchOptions`)."""


def _on_the_way(r: httpx.Response) -> bool:
    """A failure between the client and the service (a proxy's or gateway's, not the service's own JSON
    error): worth sending again."""
    return r.status_code in (500, 502, 503, 504) and not r.headers.get("content-type", "").startswith("application/json")


class ServiceError(RuntimeError):
    """The service refused a request, or cannot be reached (``status`` 0)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ServiceClient:
    """Search through a running service; ``index`` picks one of the indexes it serves (default: its default).

    ``http``: an ``httpx.Client`` to use (e.g. FastAPI's TestClient); ``api_key``: the server's key
    (default: $AMHARIC_SEARCH_API_KEY).
    """

    def __init__(self, url: str | None = None, *, api_key: str | None = None, timeout: float = 120.0,
                 index: str | None = None, http: httpx.Client | None = None, retries: int = 2) -> None:
        self.url = (url or os.environ.get(API_ENV) or "http://127.0.0.1:8000").rstrip("/")
        key = api_key if api_key is not None else os.environ.get("AMHARIC_SEARCH_API_KEY")
        self._headers = {"X-API-Key": key} if key else {}
        self._own = http is None
        self.http = http or httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self.index = index
        self.retries = retries
        """Times a request is sent again after a failure on the way (connection lost, a gateway's 502/503/504,
        a proxy's plain-text 500: a replica of a replicated service died): every request here only reads."""
        self.retried = 0
        self._info: dict | None = None

    # -- what is served ----------------------------------------------------------------------------

    def refresh(self) -> dict:
        """Read the index description again (after the service reloaded a rebuilt index)."""
        served = self._get("/v1/indexes")
        name = self.index or served["default"]
        info = next((i for i in served["indexes"] if i["name"] == name), None)
        if info is None:
            raise ServiceError(404, "unknown_index", f"the service at {self.url} serves no index {name!r}")
        self._info = info
        return info

    def indexes(self) -> list[str]:
        """The names of the indexes the service serves, its default first."""
        served = self._get("/v1/indexes")
        names = [i["name"] for i in served["indexes"]]
        return sorted(names, key=lambda n: n != served["default"])

    @property
    def info(self) -> dict:
        """The service's description of the index (GET /v1/indexes)."""
        return self._info if self._info is not None else self.refresh()

    @property
    def manifest(self) -> dict:
        return self.info["manifest"]

    @property
    def analyzer(self) -> Analyzer:
        return Analyzer.from_dict(self.info["analyzer"])

    @property
    def fusion(self) -> FusionConfig:
        return FusionConfig.from_dict(self.info.get("fusion"))

    @property
    def has_dense(self) -> bool:
        return bool(self.info["has_dense"])

    @property
    def has_reranker(self) -> bool:
        return bool(self.info["has_reranker"])

    @property
    def reranker(self):
        """``name`` and ``backend`` of the service's cross-encoder (None without one)."""
        r = self.info.get("reranker")
        return SimpleNamespace(**r) if r else None

    @property
    def warnings(self) -> list[str]:
        return list(self.info["warnings"])

    # -- searching ---------------------------------------------------------------------------------

    def _params(self, query: str, options: SearchOptions | None, kwargs: dict) -> dict:
        request = {k: kwargs.pop(k) for k in REQUEST_ARGS if k in kwargs}
        if isinstance(kwargs.get("adaptive"), bool):  # the service applies its rule (AdaptiveDepth())
            kwargs["adaptive"] = AdaptiveDepth() if kwargs["adaptive"] else None
        chosen = SearchOptions.of(options, **kwargs).to_dict()
        if chosen["adaptive"] not in (None, AdaptiveDepth().to_dict()):
            raise TypeError("the search service applies its own adaptive rule: pass adaptive=True")
        local_only = [f.name for f in fields(SearchOptions) if not f.metadata.get("api", True) and chosen[f.name] is not None]
        if local_only:
            raise TypeError(f"the search service does not take {', '.join(local_only)}")
        body = {"query": query, "translit": "off",
                **{k: v for k, v in {**chosen, **request}.items() if v is not None and k not in local_only}}
        if "blocks" in body:
            body["blocks"] = list(body["blocks"])
        if "adaptive" in body:
            body["adaptive"] = True
        if self.index:
            body["index"] = self.index
        return body

    def search(self, query: str, options: SearchOptions | None = None, /, **kwargs) -> SearchResponse:
        """As :meth:`Searcher.search` (the options as :class:`~search.options.SearchOptions` or keywords),
        plus ``deadline_ms``."""
        return SearchResponse.from_dict(self._send("POST", "/v1/search", json=self._params(query, options, kwargs)))

    def search_stream(self, query: str, options: SearchOptions | None = None, /, **kwargs) -> Iterator[SearchResponse]:
        """As :meth:`Searcher.search_stream`: the first-stage response, then (when reranking) the reranked one."""
        try:
            with self.http.stream("POST", self.url + "/v1/search/stream", json=self._params(query, options, kwargs),
                                  headers=self._headers) as r:
                if r.status_code != 200:
                    r.read()
                    self._raise(r)
                for line in r.iter_lines():
                    if not line.strip():
                        continue
                    d = json.loads(line)
                    if "error" in d and "results" not in d:
                        raise ServiceError(500, d["error"], d.get("message", ""))
                    yield SearchResponse.from_dict(d)
        except httpx.HTTPError as exc:
            raise ServiceError(0, "unreachable", f"the search service at {self.url} cannot be reached ({exc})") from None

    def document(self, doc_id: str) -> dict | None:
        """A whole document ({"id", "title", "text", "metadata"}), or None when the index has none of that id."""
        params = {"index": self.index} if self.index else None
        try:
            return self._send("GET", "/v1/documents/" + quote(doc_id, safe=""), params=params)
        except ServiceError as exc:
            if exc.code == "unknown_document":
                return None
            raise

    def health(self) -> bool:
        try:
            return self._get("/v1/health").get("status") == "ok"
        except ServiceError:
            return False

    def ready(self) -> dict:
        return self._get("/v1/ready")

    # -- plumbing ----------------------------------------------------------------------------------

    def _get(self, path: str) -> dict:
        return self._send("GET", path)

    def _send(self, method: str, path: str, **kwargs) -> dict:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                r = self.http.request(method, self.url + path, headers=self._headers, **kwargs)
            except httpx.HTTPError as exc:
                if last:
                    raise ServiceError(0, "unreachable", f"the search service at {self.url} cannot be reached ({exc})") from None
            else:
                if r.status_code == 200:
                    return r.json()
                if last or not _on_the_way(r):
                    self._raise(r)
            self.retried += 1
            time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def _raise(self, r: httpx.Response):
        try:
            d = r.json()
            code, message = d.get("error", "error"), d.get("message", r.text)
        except ValueError:
            code, message = "error", r.text or r.reason_phrase
        if r.status_code == 400 and code == "bad_query":
            raise QueryError(message)
        raise ServiceError(r.status_code, code, message)

    def close(self) -> None:
        if self._own:
            self.http.close()

    def __enter__(self) -> "ServiceClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
