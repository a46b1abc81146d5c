"""The search service: an HTTP JSON API (FastAPI, served by uvicorn) that holds the index and the models.

    amharic-search serve indexes/sample            # http://127.0.0.1:8000; interactive docs at /docs
    curl -s 'http://127.0.0.1:8000/v1/search?query=የቡና%20ምርት&top_k=3'

One process loads the index (or every index under a folder) and the models once; many clients
search it. Endpoints (answers are JSON; errors are ``{"error": CODE, "message": TEXT}`` with a
4xx/5xx status and never a traceback):

    GET|POST /v1/search            the response of ``amharic-search query --json`` (SearchResponse.to_dict)
    GET|POST /v1/search/stream     JSON lines: the first-stage response at once, then the reranked one
    GET  /v1/documents/{doc_id}    a whole document
    POST /v1/documents             add or replace documents (API key); answers when they are searchable
    DELETE /v1/documents/{doc_id}  delete a document (API key); answers when it is gone from searches
    GET  /v1/indexes[/{name}]      what is served: counts, models, analyzer, missing-model notes
    GET  /v1/health, /v1/ready     liveness; models and indexes loaded
    GET  /v1/metrics               Prometheus text format

Concurrency: first-stage work runs in the server's thread pool, concurrently; the cross-encoder
runs in one worker thread (:class:`RerankBatcher`) that takes the jobs of concurrent requests
together (a short window, a maximum of pairs) and scores them through :meth:`Reranker.score_many`,
by default each job in its own length-sorted batches, so every answer equals the answer to the
same query run alone. A request whose ``deadline_ms`` passes first gets the first-stage list,
marked ``"reranked": false`` with a warning. A rebuilt index (``index build`` swaps the directory
atomically) is picked up by a poller without a restart; requests in flight finish on the old one.

FastAPI, uvicorn and prometheus_client are imported only by this module (the command line imports
it only for ``serve``).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hmac
import itertools
import json
import logging
import os
import time
import typing
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException


from ...index.readers import json_problem

from ..adaptive import AdaptiveDepth
from ..filters import FilterError
from ..schema import MAX_QUERY_CHARS, QueryError, SearchResponse, clean_query
from ..options import TRANSLIT_DOC, SearchOptions, Translit
from ..translit import transliterate_query
from .core import (CONFIG_ENV, LIMITS, MAX_BODY_BYTES, MAX_CANDIDATES, MAX_DEADLINE_MS, MAX_DOCUMENTS,
                   MAX_DOCUMENTS_BYTES, ApiError, SearchService, ServiceConfig)




DOCS_ASSETS = "/static-offline-docs"
"""Where the service serves the assets of /docs and /redoc (from the fastapi-offline package)."""
DOCS_POLICY = (b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               b"img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")
"""The documentation pages load nothing from elsewhere, not even ReDoc's logo (it then leaves it out):
a server without internet waits for no request that cannot be answered."""
DOCS_PAGES = ("/docs", "/redoc")

log = logging.getLogger("amharic_search.service")
access_log = logging.getLogger("amharic_search.access")

class _RequestFields(BaseModel):
    """What a request adds to the search options."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(description=f"The query (at most {MAX_QUERY_CHARS} characters).")
    index: str | None = Field(None, description="Which index (GET /v1/indexes); default: the server's default.")
    deadline_ms: int | None = Field(None, ge=1, le=MAX_DEADLINE_MS,
                                    description="Past this many ms since the request arrived, answer with the first-stage "
                                                "list (\"reranked\": false, with a warning) instead of waiting for the reranker.")
    translit: Translit = Field("auto", description=TRANSLIT_DOC)
    blocks: list[Annotated[int, Field(ge=1, le=MAX_CANDIDATES)]] = Field(
        default_factory=list, max_length=8,
        description="/v1/search/stream only: rerank progressively, e.g. [20]: the first 20 candidates, a line with "
                    "their reranked order (\"rerank_progress\": [20, 100]), then the rest.")

    def options(self) -> SearchOptions:
        """The :class:`~search.options.SearchOptions` this request asks for."""
        values = {name: getattr(self, name) for name in SearchOptions.names() if name in type(self).model_fields}
        values["adaptive"] = AdaptiveDepth() if values.get("adaptive") else None
        return SearchOptions(**values)


def search_params_model() -> type[BaseModel]:
    """The request model of /v1/search, generated from :class:`~search.options.SearchOptions`: each
    option the service offers (``api`` in its metadata), with its default, description and bounds;
    ``adaptive`` is a switch for the default rule."""
    fields_ = {}
    hints = typing.get_type_hints(SearchOptions)
    for f in dataclasses.fields(SearchOptions):
        meta = dict(f.metadata)
        if not meta.pop("api", True):
            continue
        doc = meta.pop("doc")
        annotation = bool if f.name == "adaptive" else hints[f.name]
        default = False if f.name == "adaptive" else f.default
        fields_[f.name] = (annotation, Field(default, description=doc, allow_inf_nan=False if f.name == "rrf_k" else None,
                                             **meta))
    model = create_model("SearchParams", __base__=_RequestFields, __module__=__name__, **fields_)
    model.__doc__ = "A search; the same options as ``amharic-search query`` and :meth:`Searcher.search`."
    return model


SearchParams = search_params_model()


class DocumentIn(BaseModel):
    """A document to add: its id, title and text, and any more fields (kept as its metadata)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=1000, description="The document's id (an existing id is replaced).")
    title: str = Field("", description="Its title.")
    text: str = Field(description="Its text.")


class DocumentsIn(BaseModel):
    """A batch of documents to add to an index."""

    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    index: str | None = Field(None, max_length=200, description="Which index; default: the server's default.")


class StageValuesModel(BaseModel):
    bm25: float | None
    dense: float | None
    fused: float | None
    rerank: float | None


class SearchResultModel(BaseModel):
    rank: int
    doc_id: str
    passage_id: str
    title: str
    text: str
    scores: StageValuesModel
    ranks: StageValuesModel
    fields: dict[str, Any] = Field(description="The document's keyword, number and date fields (dates YYYY-MM-DD "
                                               "in the field's calendar).")


class SearchResponseModel(BaseModel):
    """:meth:`SearchResponse.to_dict` (documentation of the one schema; the service returns that dict as is)."""

    query: str
    results: list[SearchResultModel]
    timings_ms: dict[str, float | None]
    stages: list[str]
    fusion: dict[str, Any] | None
    lexical_hits: int
    warnings: list[str]
    query_terms: list[str]
    reranked: bool
    rerank_progress: list[int] | None
    adaptive: dict[str, Any] | None
    facets: dict[str, list[list[Any]]] = Field(description="Per keyword field [[value, count], ...], per date field "
                                                            "[[year, count], ...], over the documents the first stage "
                                                            "retrieved after the filters.")
    offset: int


class ErrorModel(BaseModel):
    error: str = Field(description="A code: bad_query, bad_filter, invalid_request, unauthorized, unknown_index, unknown_document, "
                                   "not_found, method_not_allowed, too_large, not_ready, internal.")
    message: str


ERRORS = {status: {"model": ErrorModel} for status in (400, 401, 403, 404, 405, 409, 413, 422, 500, 503)}


def _dumps(obj) -> bytes:
    """JSON as UTF-8; text that cannot be encoded (a lone surrogate) is replaced, never an error."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def _error_body(status: int, code: str, message: str) -> bytes:
    return _dumps({"error": code, "message": message})


def _http_code(status: int) -> str:
    return {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
            422: "invalid_request", 503: "not_ready"}.get(status, "http_error" if status < 500 else "internal")


class _BodyTooLarge(Exception):
    pass


class RequestMiddleware:
    """Outermost layer: request size cap, access log (one JSON line per request, with per-stage
    timings), request metrics, and a JSON 500 without traceback for anything unexpected."""

    def __init__(self, app, service: SearchService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.monotonic()
        access: dict = {"t0": t0}
        scope.setdefault("state", {})["access"] = access
        status, started = 500, False
        metrics = self.service.metrics
        metrics.in_flight.inc()

        async def send_json(code: int, error: str, message: str) -> None:
            body = _error_body(code, error, message)
            await send({"type": "http.response.start", "status": code,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        async def sending(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                if scope.get("path") in DOCS_PAGES:
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (b"content-security-policy", DOCS_POLICY)]}
            await send(message)

        # a batch of documents may be larger than a search
        limit = MAX_DOCUMENTS_BYTES if scope.get("path") == "/v1/documents" else MAX_BODY_BYTES
        try:
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                status = 413
                await send_json(413, "too_large", f"the request body is larger than {limit} bytes")
                return
            received = 0

            async def receiving():
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise _BodyTooLarge()
                return message

            await self.app(scope, receiving, sending)
        except _BodyTooLarge:
            if not started:
                status = 413
                await send_json(413, "too_large", f"the request body is larger than {limit} bytes")
        except Exception:  # noqa: BLE001 - logged here with its traceback; the client gets a plain JSON 500
            log.exception("error answering %s %s", scope.get("method"), scope.get("path"))
            if not started:
                status = 500
                await send_json(500, "internal", "internal error (the server log has the details)")
        finally:
            metrics.in_flight.dec()
            seconds = time.monotonic() - t0
            route = getattr(scope.get("route"), "path", None) or "other"
            metrics.requests.labels(route, scope.get("method", ""), str(status)).inc()
            metrics.latency.labels(route).observe(seconds)
            access.pop("t0", None)
            line = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
                    "client": (scope.get("client") or ("", 0))[0], "method": scope.get("method"), "path": scope.get("path"),
                    "status": status, "ms": round(seconds * 1000, 3), **access}
            access_log.info(json.dumps(line, ensure_ascii=False).encode("utf-8", "replace").decode("utf-8"))


def create_app(service: SearchService) -> FastAPI:
    """The FastAPI application of ``service`` (docs at /docs, the OpenAPI schema at /openapi.json)."""
    try:
        app_version = version("amharic-search")
    except PackageNotFoundError:
        app_version = "0"

    @asynccontextmanager
    async def lifespan(_app):
        yield
        service.close()  # after uvicorn has let the requests in flight finish

    # /docs (Swagger UI) and /redoc (ReDoc) load their scripts and styles from the package
    # fastapi-offline (Swagger UI: Apache-2.0, ReDoc: MIT) under /static-offline-docs, never from a CDN,
    # so they work on a server without internet
    app = FastAPIOffline(title="amharic-search", version=app_version, lifespan=lifespan, static_url=DOCS_ASSETS,
                         description="Amharic semantic search: BM25 + dense retrieval, fused, reranked by a cross-encoder. "
                                     "Errors are JSON {\"error\", \"message\"}.")

    def json_response(obj, status: int = 200) -> Response:
        return Response(_dumps(obj), status_code=status, media_type="application/json")

    @app.exception_handler(ApiError)
    async def api_error(_request, exc: ApiError):
        return Response(_error_body(exc.status, exc.code, exc.message), exc.status, media_type="application/json")

    @app.exception_handler(FilterError)
    async def filter_error(_request, exc: FilterError):
        return Response(_error_body(400, "bad_filter", str(exc)), 400, media_type="application/json")

    @app.exception_handler(QueryError)
    async def query_error(_request, exc: QueryError):
        return Response(_error_body(400, "bad_query", str(exc)), 400, media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":  # the body is not JSON: say what and where, as the corpus reader does
                body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body or "")
                problem = json_problem(str((e.get("ctx") or {}).get("error", "invalid")), body, int(e["loc"][-1]), line=True)
                parts.append(f"the request body is {problem}")
                continue
            loc = list(e.get("loc", ()))
            where = ".".join(str(x) for x in (loc[1:] if loc and loc[0] in ("body", "query", "path") else loc))
            parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
        return Response(_error_body(422, "invalid_request", "; ".join(parts) or "invalid request"), 422,
                        media_type="application/json")

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        message = str(exc.detail)
        if isinstance(exc.__cause__, _BodyTooLarge):  # a chunked body over the cap, seen while FastAPI read it
            return Response(_error_body(413, "too_large", f"the request body is larger than {MAX_BODY_BYTES} bytes"), 413,
                            media_type="application/json")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.url.path} (see /docs)"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return Response(_error_body(exc.status_code, _http_code(exc.status_code), message), exc.status_code,
                        media_type="application/json", headers=getattr(exc, "headers", None))

    dependencies = []
    if service.config.api_key:
        expected = service.config.api_key.encode()
        key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The server's API key.")
        bearer = HTTPBearer(auto_error=False, description="The server's API key as a bearer token.")

        def check_key(key: str | None = Security(key_header),
                      token: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
            given = key or (token.credentials if token else "")
            if not given or not hmac.compare_digest(given.encode("utf-8", "replace"), expected):
                raise ApiError(401, "unauthorized", "a valid API key is needed (header X-API-Key: KEY, or "
                                                    "Authorization: Bearer KEY)")

        dependencies = [Depends(check_key)]

    if service.config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(service.config.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(RequestMiddleware, service=service)

    # -- search ------------------------------------------------------------------------------------

    def prepare(params: SearchParams, request: Request):
        if len(params.query) > MAX_QUERY_CHARS:
            raise ApiError(422, "invalid_request", f"the query is too long: {len(params.query)} characters, "
                                                   f"at most {MAX_QUERY_CHARS}")
        entry = service.entry(params.index)
        searcher = entry.searcher  # this request keeps this searcher, even if the index is reloaded meanwhile
        query, notes = clean_query(params.query), []
        converted = transliterate_query(query, params.translit)
        if converted != query:
            notes.append(f"searching for {converted!r} (Latin typing converted; translit=off searches {query!r})")
            query = converted
        access = request.state.access
        access.update(index=entry.name, query_chars=len(query), top_k=params.top_k)
        deadline_ms = params.deadline_ms or service.config.deadline_ms
        deadline = access["t0"] + deadline_ms / 1000 if deadline_ms else None
        stats: dict = {}
        kwargs = dict(score=service.scorer(searcher, deadline, deadline_ms, stats) if searcher.has_reranker else None)
        return searcher, query, notes, kwargs, stats, access

    def observe(response: SearchResponse, access: dict, stats: dict) -> None:
        for stage, ms in response.timings_ms.items():
            if ms is not None and stage != "total":
                service.metrics.stage.labels(stage).observe(ms / 1000)
        # what ran, not what was asked: a missing model or a passed deadline leaves a stage out
        access.update(results=len(response.results), stages=list(response.stages), reranked=response.reranked,
                      stages_ms=response.timings_ms, **stats)

    def search(params: SearchParams, request: Request) -> Response:
        if params.blocks:
            raise ApiError(422, "invalid_request", "blocks (progressive reranking) is for /v1/search/stream")
        searcher, query, notes, kwargs, stats, access = prepare(params, request)
        response = searcher.search(query, params.options(), **kwargs)
        response.warnings[:0] = notes
        observe(response, access, stats)
        return json_response(response.to_dict())

    def search_stream(params: SearchParams, request: Request) -> Response:
        searcher, query, notes, kwargs, stats, access = prepare(params, request)
        steps = searcher.search_stream(query, params.options(), **kwargs, blocks=params.blocks)
        first = next(steps)  # a bad query is a 4xx answer, before the stream starts

        def lines():
            last = first
            try:
                for r in itertools.chain([first], steps):
                    last = r
                    r.warnings[:0] = notes
                    yield _dumps(r.to_dict()) + b"\n"
            except Exception:  # noqa: BLE001 - the status is sent already: the error is the last line
                log.exception("error while streaming a search")
                yield _error_body(500, "internal", "internal error (the server log has the details)") + b"\n"
            finally:
                observe(last, access, stats)

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    search_doc = ("The same JSON as `amharic-search query --json`. With `deadline_ms`, an answer whose reranking "
                  "would end later comes in first-stage order, marked `\"reranked\": false` with a warning.")
    stream_doc = ("JSON lines (application/x-ndjson), each one response in the schema of /v1/search: the first-stage "
                  "list at once, then (rerank on, a reranker loaded) the reranked list (with `blocks`, also the lists "
                  "reranked so far); the stream ends after the final one. An error after the first line arrives as a "
                  "last line {\"error\", \"message\"}.")
    ok = {200: {"model": SearchResponseModel}}

    @app.get("/v1/search", tags=["search"], responses={**ok, **ERRORS}, dependencies=dependencies, description=search_doc)
    def search_get(params: Annotated[SearchParams, Query()], request: Request) -> Response:
        return search(params, request)

    @app.post("/v1/search", tags=["search"], responses={**ok, **ERRORS}, dependencies=dependencies, description=search_doc)
    def search_post(params: SearchParams, request: Request) -> Response:
        return search(params, request)

    stream_ok = {200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}, "description": "JSON lines"}}

    @app.get("/v1/search/stream", tags=["search"], responses={**stream_ok, **ERRORS}, dependencies=dependencies,
             description=stream_doc, response_class=StreamingResponse)
    def stream_get(params: Annotated[SearchParams, Query()], request: Request) -> Response:
        return search_stream(params, request)

    @app.post("/v1/search/stream", tags=["search"], responses={**stream_ok, **ERRORS}, dependencies=dependencies,
              description=stream_doc, response_class=StreamingResponse)
    def stream_post(params: SearchParams, request: Request) -> Response:
        return search_stream(params, request)

    # -- documents and indexes ---------------------------------------------------------------------

    @app.get("/v1/documents/{doc_id:path}", tags=["documents"], responses=ERRORS, dependencies=dependencies)
    def document(doc_id: Annotated[str, PathParam(max_length=1000)], request: Request,
                 index: Annotated[str | None, Query(max_length=200)] = None) -> Response:
        """A whole document: {"id", "title", "text", "metadata"}."""
        entry = service.entry(index)
        request.state.access.update(index=entry.name)
        found = entry.searcher.document(doc_id)
        if found is None:
            raise ApiError(404, "unknown_document", f"no document {doc_id!r} in index {entry.name!r}")
        return json_response(found)

    def check_writes() -> None:
        if not service.config.api_key:
            raise ApiError(403, "read_only", "this server takes no changes: start it with an API key "
                                             "(--api-key, or $AMHARIC_SEARCH_API_KEY) to add or delete documents")

    writers = [*dependencies, Depends(check_writes)]

    def change(work) -> Response:
        from ...index.manifest import IndexFormatError
        from ...index.models import ModelUnavailableError
        from ...index.update import UpdateError

        try:
            return json_response(work())
        except (UpdateError, IndexFormatError, ModelUnavailableError) as exc:
            raise ApiError(422 if isinstance(exc, UpdateError) else 409, "cannot_change", str(exc)) from None

    @app.post("/v1/documents", tags=["documents"], responses=ERRORS, dependencies=writers)
    def add_documents(body: DocumentsIn, request: Request) -> Response:
        """Add documents (a document whose id the index holds replaces it); the answer comes when they are
        searchable: {"index", "added", "replaced", "generation", "documents", "passages", "notes"}."""
        docs = [d.model_dump() for d in body.documents]
        request.state.access.update(documents=len(docs))
        return change(lambda: service.add_documents(body.index, docs))

    @app.delete("/v1/documents/{doc_id:path}", tags=["documents"], responses=ERRORS, dependencies=writers)
    def delete_document(doc_id: Annotated[str, PathParam(max_length=1000)],
                        index: Annotated[str | None, Query(max_length=200)] = None) -> Response:
        """Delete a document; the answer comes when searches no longer return it:
        {"index", "deleted", "generation", "documents", "passages", "notes"}."""
        return change(lambda: service.delete_document(index, doc_id))

    @app.get("/v1/indexes", tags=["indexes"], responses=ERRORS, dependencies=dependencies)
    def indexes() -> Response:
        """What is served: per index its counts, models, analyzer, fusion, the missing-model notes, the manifest."""
        return json_response({"default": service.default, "indexes": [service.index_info(e) for e in list(service.entries.values())],
                              "unavailable": dict(service.unavailable), "limits": LIMITS})

    @app.get("/v1/indexes/{name}", tags=["indexes"], responses=ERRORS, dependencies=dependencies)
    def index(name: Annotated[str, PathParam(max_length=200)]) -> Response:
        """One index, as in /v1/indexes."""
        return json_response(service.index_info(service.entry(name)))

    # -- operations --------------------------------------------------------------------------------

    @app.get("/v1/health", tags=["operations"], responses=ERRORS)
    async def health() -> Response:
        """Liveness: the process answers (no API key needed)."""
        return json_response({"status": "ok"})

    @app.get("/v1/ready", tags=["operations"], responses=ERRORS, dependencies=dependencies)
    def ready() -> Response:
        """Readiness: the indexes and models are loaded and the cross-encoder worker runs (503 if not);
        lists each index's stages and missing-model notes."""
        info = {e.name: {"stages": service.index_info(e)["stages"], "warnings": list(e.searcher.warnings),
                         "reload_error": e.error} for e in list(service.entries.values())}
        problems = [] if service.entries else ["no index is loaded"]
        if not service.batcher.alive:
            problems.append("the cross-encoder worker has stopped")
        if problems:
            return json_response({"error": "not_ready", "message": "; ".join(problems), "ready": False, "indexes": info}, 503)
        return json_response({"ready": True, "indexes": info})

    @app.get("/v1/metrics", tags=["operations"], responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
                                                             **ERRORS}, dependencies=dependencies)
    def metrics() -> Response:
        """Prometheus text format: requests, latencies per endpoint and per stage, rerank queue and batches,
        cache hits, deadline skips, reloads."""
        body, content_type = service.metrics.text()
        return Response(body, media_type=content_type)

    return app


# -- running it ------------------------------------------------------------------------------------


def app_from_env() -> FastAPI:
    """The app of a ``serve --workers N`` worker process: the settings come from $AMHARIC_SEARCH_SERVICE_CONFIG."""
    settings = json.loads(os.environ[CONFIG_ENV])
    configure_logging(settings.pop("quiet", False))  # a spawned process: the parent's logging set-up is not here
    return create_app(SearchService(ServiceConfig(**settings)))


def configure_logging(quiet: bool = False) -> None:
    """Access log lines (JSON) and service messages on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("amharic_search.access", "amharic_search.service"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
        logger.setLevel(logging.WARNING if quiet and name.endswith("service") else logging.INFO)
        logger.propagate = False


def run(app_or_config, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, quiet: bool = False,
        graceful_seconds: float = 30.0) -> None:
    """Serve with uvicorn until SIGINT or SIGTERM, then finish the requests in flight and return.

    ``app_or_config``: the app of a loaded :class:`SearchService`, or (``workers > 1``) the
    :class:`ServiceConfig` each worker process loads for itself.
    """
    import signal

    import uvicorn

    configure_logging(quiet)
    options = dict(host=host, port=port, access_log=False, log_level="warning" if quiet else "info",
                   timeout_graceful_shutdown=graceful_seconds)
    if workers > 1:
        os.environ[CONFIG_ENV] = json.dumps({**dataclasses.asdict(app_or_config), "quiet": quiet})
        uvicorn.run("search.service.app:app_from_env", factory=True, workers=workers, **options)
        return
    server = uvicorn.Server(uvicorn.Config(app_or_config, **options))

    def stop(_signum, _frame):
        raise SystemExit(0)

    # uvicorn handles SIGINT/SIGTERM itself (graceful shutdown), then raises the signal again with the
    # handlers it found: make that a normal exit (SIGINT's default handler raises KeyboardInterrupt)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
