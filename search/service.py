"""The search service: an HTTP JSON API (FastAPI, served by uvicorn) that holds the index and the models.

    amharic-search serve indexes/sample            # http://127.0.0.1:8000; interactive docs at /docs
    curl -s 'http://127.0.0.1:8000/v1/search?query=የቡና%20ምርት&top_k=3'

One process loads the index (or every index under a folder) and the models once; many clients
search it. Endpoints (answers are JSON; errors are ``{"error": CODE, "message": TEXT}`` with a
4xx/5xx status and never a traceback):

    GET|POST /v1/search            the response of ``amharic-search query --json`` (SearchResponse.to_dict)
    GET|POST /v1/search/stream     JSON lines: the first-stage response at once, then the reranked one
    GET  /v1/documents/{doc_id}    a whole document
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
import queue
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import numpy as np
from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from index.manifest import MANIFEST, IndexFormatError, find_indexes
from index.models import DEFAULT_RERANKER

from .adaptive import AdaptiveDepth
from .searcher import MAX_QUERY_CHARS, QueryError, RerankSkipped, Searcher, SearchResponse, clean_query

log = logging.getLogger("amharic_search.service")
access_log = logging.getLogger("amharic_search.access")

API_KEY_ENV = "AMHARIC_SEARCH_API_KEY"
CONFIG_ENV = "AMHARIC_SEARCH_SERVICE_CONFIG"
"""How ``serve --workers N`` hands its settings to the worker processes (JSON of :class:`ServiceConfig`)."""

MAX_TOP_K = 100
MAX_CANDIDATES = 500
MAX_DEPTH = 2000
MAX_RERANK_LENGTH = 512
MAX_DEADLINE_MS = 600_000
MAX_BODY_BYTES = 64 * 1024
LIMITS = {"top_k": MAX_TOP_K, "candidates": MAX_CANDIDATES, "depth": MAX_DEPTH, "max_length": MAX_RERANK_LENGTH,
          "query_chars": MAX_QUERY_CHARS, "body_bytes": MAX_BODY_BYTES, "deadline_ms": MAX_DEADLINE_MS}
"""The caps on one request (a larger value is a 422 error; a larger body a 413)."""


@dataclass
class ServiceConfig:
    """What ``amharic-search serve`` is told: what to serve, which models, and how."""

    path: str
    """An index directory, or a folder of index directories (each served under its folder name)."""
    dense_model: str = "index"
    use_dense: bool = True
    reranker: str | None = DEFAULT_RERANKER
    max_length: int | None = None
    reranker_backend: str = "auto"
    allow_other_encoder: bool = False
    strict: bool = False
    api_key: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    batch_window_ms: float = 5.0
    max_batch_pairs: int = 512
    batching: Literal["exact", "packed"] = "exact"
    reload_interval: float = 2.0
    """Seconds between checks for a rebuilt (or, under a folder, a new or removed) index; 0: never."""
    deadline_ms: int | None = None
    """The deadline of a request that sets none (None: no deadline)."""
    trim_memory: bool = True
    """After each cross-encoder batch, give freed memory back to the system (see :func:`_free_memory_releaser`)."""

    def load_options(self) -> dict:
        """Keyword arguments of :func:`search.cli.load_searcher`."""
        return dict(dense_model=self.dense_model, no_dense=not self.use_dense, reranker=self.reranker or DEFAULT_RERANKER,
                    no_rerank=not self.reranker, max_length=self.max_length, reranker_backend=self.reranker_backend,
                    allow_other_encoder=self.allow_other_encoder, strict=self.strict)


def default_load(directory, *, dense_model="index", no_dense=False, reranker=DEFAULT_RERANKER, no_rerank=False,
                 max_length=None, reranker_backend="auto", allow_other_encoder=False, strict=False,
                 shard_client=None) -> Searcher:
    """:func:`search.cli.load_searcher` without printing: the notes stay in ``searcher.warnings``."""
    return Searcher.load(directory, dense_model=dense_model, use_dense=not no_dense, reranker=None if no_rerank else reranker,
                         max_length=max_length, reranker_backend=reranker_backend,
                         allow_other_encoder=allow_other_encoder, strict=strict, shard_client=shard_client)


# -- metrics ---------------------------------------------------------------------------------------


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (several services can share a process)."""

    def __init__(self, rerankers: Callable[[], list]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client.core import CounterMetricFamily

        self.registry = r = CollectorRegistry()
        seconds = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
        self.requests = Counter("amharic_search_requests", "HTTP requests answered", ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("amharic_search_request_seconds", "Time to the last byte of the answer", ["endpoint"],
                                 buckets=seconds, registry=r)
        self.in_flight = Gauge("amharic_search_requests_in_flight", "Requests being answered", registry=r)
        self.stage = Histogram("amharic_search_stage_seconds", "Time per search stage (rerank includes its queue wait)",
                               ["stage"], buckets=seconds, registry=r)
        self.queue_jobs = Gauge("amharic_search_rerank_queue_jobs", "Rerank jobs waiting for the cross-encoder", registry=r)
        self.queue_wait = Histogram("amharic_search_rerank_queue_seconds", "Time a rerank job waited for its batch",
                                    buckets=seconds, registry=r)
        self.batch_jobs = Histogram("amharic_search_rerank_batch_jobs", "Queries per cross-encoder batch",
                                    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64), registry=r)
        self.batch_pairs = Histogram("amharic_search_rerank_batch_pairs", "(query, passage) pairs per cross-encoder batch",
                                     buckets=(1, 10, 30, 100, 200, 500, 1000, 2000, 5000), registry=r)
        self.deadline_skips = Counter("amharic_search_rerank_deadline_skips",
                                      "Answers sent in first-stage order because their deadline passed", registry=r)
        self.reloads = Counter("amharic_search_index_reloads", "Index (re)loads after a change on disk",
                               ["index", "outcome"], registry=r)

        class CacheCollector:
            def collect(self):
                hits = CounterMetricFamily("amharic_search_rerank_cache_hits", "Pairs answered from the score cache")
                misses = CounterMetricFamily("amharic_search_rerank_cache_misses", "Pairs scored by the cross-encoder")
                models = rerankers()
                hits.add_metric([], sum(m.cache_hits for m in models))
                misses.add_metric([], sum(m.cache_misses for m in models))
                yield hits
                yield misses

        r.register(CacheCollector())

    def text(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


# -- the cross-encoder queue -----------------------------------------------------------------------


class DeadlinePassed(Exception):
    pass


def _free_memory_releaser() -> Callable[[], object]:
    """glibc's ``malloc_trim(0)``: give freed heap pages back to the system. The cross-encoder's
    activations differ in size from batch to batch; without it a long-running server's resident
    memory keeps creeping up (medium model, 2-core CPU: 2.87 -> 3.25 GB over a 5-minute load run,
    and in process 0.9 -> 1.5 GB over 30 reranked queries, against 0.9 -> 1.07 GB with it; it costs
    about 7-10 % of reranking speed). A no-op where there is no glibc."""
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


_release_free_memory = _free_memory_releaser()


class _Job:
    def __init__(self, searcher: Searcher, query: str, passages: list, window: str, max_length: int | None) -> None:
        self.searcher, self.query, self.passages, self.window, self.max_length = searcher, query, passages, window, max_length
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.cancelled = False
        self.scores: np.ndarray | None = None
        self.error: BaseException | None = None
        self.queued = time.monotonic()
        self.started: float | None = None
        self.batch = (0, 0)  # queries and pairs of the batch it was scored in


class RerankBatcher:
    """One worker thread runs the cross-encoder for every request (micro-batching).

    It takes the first waiting job, then every job that arrives within ``window_ms`` (up to
    ``max_pairs`` pairs), and scores them through :meth:`Reranker.score_many`, per (reranker, max
    length). ``pack=False`` (``exact``, the default) scores each job in the batches it would have
    alone and answers it at once, so a job's scores equal those of the same query run alone and a
    query repeated by concurrent clients is scored once; ``pack=True`` scores a group's jobs in
    shared, fuller batches (less padding: 2-4 % faster with the medium model on a 2-core CPU, more
    on a GPU; scores differ from a query alone in the last float bits).
    """

    def __init__(self, *, window_ms: float = 5.0, max_pairs: int = 512, pack: bool = False,
                 metrics: Metrics | None = None, trim_memory: bool = True) -> None:
        self.window = max(0.0, window_ms) / 1000
        self.trim_memory = trim_memory
        self.max_pairs = max(1, max_pairs)
        self.pack = pack
        self.metrics = metrics
        self.batches = 0
        self.largest_batch = 0
        """Most queries scored together so far (tests and benchmarks read it)."""
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="rerank-batcher", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def score(self, searcher: Searcher, query: str, passages: list, *, window: str = "best", max_length: int | None = None,
              deadline: float | None = None, stats: dict | None = None) -> np.ndarray:
        """The scores of ``passages`` for ``query``, once the worker has them; raises
        :class:`DeadlinePassed` when ``deadline`` (a ``time.monotonic()`` value) comes first."""
        if self._closed:
            raise RerankSkipped("reranking skipped: the service is shutting down; the results are in first-stage order")
        if deadline is not None and time.monotonic() >= deadline:
            raise DeadlinePassed()
        job = _Job(searcher, query, passages, window, max_length)
        self._queue.put(job)
        if self.metrics:
            self.metrics.queue_jobs.inc()
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not job.done.wait(timeout):
            with job.lock:
                job.cancelled = True  # the worker skips it if it has not started (if it has, the cache keeps the scores)
            if not job.done.is_set():
                raise DeadlinePassed()
        if stats is not None and job.started is not None:
            stats.update(rerank_queue_ms=round((job.started - job.queued) * 1000, 3), batch_queries=job.batch[0],
                         batch_pairs=job.batch[1])
        if job.error is not None:
            raise job.error
        return job.scores

    def close(self, timeout: float = 30.0) -> None:
        """Finish the jobs queued so far, then stop the worker."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            job = self._queue.get()
            if job is None:
                break
            batch, pairs = [job], len(job.passages)
            end = time.monotonic() + self.window
            while pairs < self.max_pairs:
                try:
                    nxt = self._queue.get(timeout=max(0.0, end - time.monotonic())) if self.window else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
                pairs += len(nxt.passages)
            try:
                self._score(batch)
            except BaseException as exc:  # noqa: BLE001 - never leave a request waiting
                for j in batch:
                    if not j.done.is_set():
                        j.error = exc
                        j.done.set()
            if self.trim_memory:
                _release_free_memory()
        while True:  # after close(): nothing more runs
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.error = RerankSkipped("reranking skipped: the service is shutting down; the results are in first-stage order")
                job.done.set()

    def _score(self, batch: list[_Job]) -> None:
        if self.metrics:
            self.metrics.queue_jobs.dec(len(batch))
            self.metrics.batch_jobs.observe(len(batch))
            self.metrics.batch_pairs.observe(sum(len(j.passages) for j in batch))
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        size = (len(batch), sum(len(j.passages) for j in batch))
        groups: dict[tuple, list[_Job]] = {}
        for job in batch:
            reranker = job.searcher.reranker
            groups.setdefault((id(reranker), job.max_length or reranker.max_length), []).append(job)
        for (_, max_length), jobs in groups.items():
            with jobs[0].searcher.reranker_at(max_length) as reranker:
                # exact: one job after the other, each answered as soon as it is scored (a repeated
                # query comes from the cache); packed: the group's pairs in shared batches
                for part in [jobs] if self.pack else [[j] for j in jobs]:
                    live = [j for j in part if self._start(j)]
                    if not live:
                        continue
                    try:
                        texts = [j.searcher.reranker_inputs(j.query, j.passages, j.window) for j in live]
                        results = reranker.score_many([(j.query, t) for j, t in zip(live, texts)], pack=self.pack)
                    except Exception as exc:  # noqa: BLE001 - the requests answer with an error
                        for j in live:
                            j.error = exc
                            j.done.set()
                        continue
                    for j, scores in zip(live, results):
                        j.scores, j.batch = scores, size
                        j.done.set()

    def _start(self, job: _Job) -> bool:
        """Mark ``job`` started, unless its request gave up (deadline) meanwhile."""
        with job.lock:
            if job.cancelled:
                return False
            job.started = time.monotonic()
        if self.metrics:
            self.metrics.queue_wait.observe(job.started - job.queued)
        return True


# -- the indexes -----------------------------------------------------------------------------------


def _stamp(directory: Path) -> tuple | None:
    """What changes when an index is rebuilt (a new directory) or its manifest rewritten (tune)."""
    try:
        d, m = directory.stat(), (directory / MANIFEST).stat()
    except OSError:
        return None
    return (d.st_dev, d.st_ino, m.st_ino, m.st_mtime_ns, m.st_size)


def _index_dirs(root: Path) -> dict[str, Path]:
    return {p.name: p for p in find_indexes(root)}


def served_indexes(path: Path) -> dict[str, Path]:
    """What a service of ``path`` serves: the index at ``path``, or the indexes directly under it (by name)."""
    return {path.name: path} if (path / MANIFEST).is_file() else _index_dirs(path)


@dataclass
class IndexEntry:
    name: str
    directory: Path
    searcher: Searcher
    stamp: tuple | None
    loaded: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    error: str | None = None
    """Why the index on disk could not be (re)loaded; the entry keeps serving what it loaded before."""


class SearchService:
    """The indexes and models of one server, the cross-encoder queue, the reload poller, the metrics.

    ``load(directory, **config.load_options())`` loads the first index (:func:`search.cli.load_searcher`
    prints the missing-model notes; the default keeps them in ``searcher.warnings``); the other
    indexes under a folder, and rebuilt ones, reuse its models (:meth:`Searcher.reopen`).
    """

    def __init__(self, config: ServiceConfig, *, load: Callable[..., Searcher] = default_load,
                 on_note: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.path = Path(config.path)
        self._load = load
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self.entries: dict[str, IndexEntry] = {}
        self.unavailable: dict[str, str] = {}
        """Indexes under the folder that could not be loaded (damaged, another format version), and why."""
        self._failed: dict[str, tuple | None] = {}
        self.folder = not (self.path / MANIFEST).is_file() and bool(_index_dirs(self.path))
        if self.folder:
            for name, directory in _index_dirs(self.path).items():
                try:
                    self.entries[name] = self._open(name, directory)
                except IndexFormatError as exc:
                    self.unavailable[name], self._failed[name] = str(exc), _stamp(directory)
                    if on_note:
                        on_note(f"{name} is not served: {exc}")
            if not self.entries:
                raise IndexFormatError(f"{self.path}: no index here can be loaded ({'; '.join(self.unavailable.values())})")
        else:
            if not self.path.is_dir() or not (self.path / MANIFEST).is_file():
                from index.manifest import read_manifest

                read_manifest(self.path)  # its message: no such directory, or not an index
            self.entries[self.path.name or "index"] = self._open(self.path.name or "index", self.path)
        self.default = next(iter(self.entries))
        self.metrics = Metrics(self.rerankers)
        self.batcher = RerankBatcher(window_ms=config.batch_window_ms, max_pairs=config.max_batch_pairs,
                                     pack=config.batching == "packed", metrics=self.metrics, trim_memory=config.trim_memory)
        self._stop = threading.Event()
        self._poller = None
        if config.reload_interval > 0:
            self._poller = threading.Thread(target=self._poll, name="index-reload", daemon=True)
            self._poller.start()

    # -- loading and reloading ---------------------------------------------------------------------

    def _open(self, name: str, directory: Path) -> IndexEntry:
        for _ in range(5):  # a rebuild that lands while this loads: load again
            stamp = _stamp(directory)
            donor = next((e.searcher for e in self.entries.values()), None)
            searcher = donor.reopen(directory) if donor else self._load(directory, **self.config.load_options())
            if _stamp(directory) == stamp:
                return IndexEntry(name, directory, searcher, stamp)
        raise IndexFormatError(f"{directory}: the index kept changing while it was loaded; try again")

    def rerankers(self) -> list:
        seen = {id(e.searcher.reranker): e.searcher.reranker for e in self.entries.values() if e.searcher.reranker}
        return list(seen.values())

    def check_reload(self) -> list[str]:
        """Pick up rebuilt indexes (and, under a folder, new and removed ones); returns the names (re)loaded."""
        with self._reload_lock:
            return self._check_reload()

    def _check_reload(self) -> list[str]:
        changed = []
        wanted = _index_dirs(self.path) if self.folder else {n: e.directory for n, e in self.entries.items()}
        for name, directory in wanted.items():
            entry = self.entries.get(name)
            stamp = _stamp(directory)
            if (entry is not None and stamp == entry.stamp) or (entry is None and self._failed.get(name) == stamp):
                continue
            if stamp is None:
                if entry is not None and entry.error is None:
                    entry.error = f"{directory}: the index is gone; serving the copy loaded at {entry.loaded}"
                    log.warning(entry.error)
                continue
            try:
                if entry is None:
                    fresh = self._open(name, directory)
                    self.unavailable.pop(name, None)
                else:
                    fresh = None
                    for _ in range(5):
                        searcher = entry.searcher.reopen(directory)
                        if _stamp(directory) == stamp:
                            fresh = IndexEntry(name, directory, searcher, stamp)
                            break
                        stamp = _stamp(directory)
                    if fresh is None:
                        raise IndexFormatError(f"{directory}: the index kept changing while it was loaded")
            except Exception as exc:  # noqa: BLE001 - keep serving the index loaded before
                message = f"{directory}: could not load the index on disk ({exc}); serving the copy loaded before"
                if entry is not None:
                    if entry.error != message:
                        log.warning(message)
                    entry.error, entry.stamp = message, stamp
                else:
                    self._failed[name] = stamp
                    self.unavailable[name] = str(exc)
                    log.warning("%s is not served: %s", name, exc)
                self.metrics.reloads.labels(name, "failed").inc()
                continue
            with self._lock:
                self.entries[name] = fresh  # requests in flight keep the searcher they hold
            self.metrics.reloads.labels(name, "ok").inc()
            log.info("index %s %s from %s", name, "reloaded" if entry else "loaded", directory)
            changed.append(name)
        if self.folder:
            for name in [n for n in self.entries if n not in wanted]:
                if len(self.entries) > 1:
                    with self._lock:
                        del self.entries[name]
                        if self.default == name:
                            self.default = next(iter(self.entries))
                    log.info("index %s removed", name)
                    changed.append(name)
                else:
                    entry = self.entries[name]
                    entry.error = entry.error or f"{entry.directory}: the index is gone; serving the copy loaded at {entry.loaded}"
        return changed

    def _poll(self) -> None:
        while not self._stop.wait(self.config.reload_interval):
            try:
                self.check_reload()
            except Exception:  # noqa: BLE001 - the poller must not die
                log.exception("index reload check failed")

    def close(self) -> None:
        self._stop.set()
        self.batcher.close()
        if self._poller:
            self._poller.join(5)

    # -- requests ----------------------------------------------------------------------------------

    def entry(self, name: str | None) -> IndexEntry:
        entry = self.entries.get(name or self.default)
        if entry is None:
            raise ApiError(404, "unknown_index", f"no index {name!r} is served here (GET /v1/indexes lists them)")
        return entry

    def scorer(self, searcher: Searcher, deadline: float | None, deadline_ms: int | None, stats: dict):
        """The ``score`` hook of one request: its passages go through the queue; past its deadline, RerankSkipped."""

        def score(query, passages, *, window="best", max_length=None):
            try:
                return self.batcher.score(searcher, query, passages, window=window, max_length=max_length,
                                          deadline=deadline, stats=stats)
            except DeadlinePassed:
                self.metrics.deadline_skips.inc()
                stats["deadline_passed"] = True
                raise RerankSkipped(f"reranking skipped: the deadline of {deadline_ms} ms passed before the cross-encoder "
                                    "finished; the results are in first-stage order") from None

        return score

    def index_info(self, entry: IndexEntry) -> dict:
        s = entry.searcher
        manifest = {k: v for k, v in s.manifest.items() if k != "files"}
        if isinstance(manifest.get("corpus"), dict) and manifest["corpus"].get("path"):
            manifest["corpus"] = {**manifest["corpus"], "path": Path(str(manifest["corpus"]["path"])).name}  # no server paths
        reranker = s.reranker
        return {
            "name": entry.name,
            "title": s.manifest.get("name") or entry.name,
            "created": s.manifest.get("created"),
            "documents": s.store.num_docs,
            "passages": s.store.num_passages,
            "stages": ["bm25"] + (["dense"] if s.has_dense else []) + (["rerank"] if s.has_reranker else []),
            "has_dense": s.has_dense,
            "has_reranker": s.has_reranker,
            "dense_model": (s.manifest.get("dense") or {}).get("model") if s.has_dense else None,
            "reranker": {"name": reranker.name, "backend": reranker.backend} if reranker else None,
            "fusion": s.fusion.to_dict(),
            "analyzer": s.manifest.get("analyzer"),
            "warnings": list(s.warnings),
            "loaded": entry.loaded,
            "reload_error": entry.error,
            "manifest": manifest,
        }


# -- the HTTP API ----------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class SearchParams(BaseModel):
    """A search; the same parameters as ``amharic-search query`` and :meth:`Searcher.search`."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(description=f"The query (at most {MAX_QUERY_CHARS} characters).")
    index: str | None = Field(None, description="Which index (GET /v1/indexes); default: the server's default.")
    top_k: int = Field(10, ge=1, le=MAX_TOP_K, description="Documents to return.")
    stages: Literal["lexical", "dense", "hybrid"] = Field("hybrid", description="First-stage retrievers.")
    rerank: bool = Field(True, description="Rerank the candidates with the cross-encoder (when the server has one).")
    fusion: Literal["rrf", "weighted"] | None = Field(None, description="Fusion method (default: the index's).")
    rrf_k: float | None = Field(None, gt=0, le=1e6, allow_inf_nan=False, description="RRF k (default: the index's).")
    depth: int | None = Field(None, ge=1, le=MAX_DEPTH, description="Documents per retriever (default: the index's).")
    candidates: int = Field(100, ge=1, le=MAX_CANDIDATES, description="Fused documents kept (and reranked).")
    rerank_depth: int | None = Field(None, ge=1, le=MAX_CANDIDATES, description="How many candidates to rerank (default: all).")
    max_length: int | None = Field(None, ge=16, le=MAX_RERANK_LENGTH, description="Reranker max tokens (default: the model's).")
    window: Literal["best", "head"] = Field("best", description="What the reranker reads of a long passage.")
    deadline_ms: int | None = Field(None, ge=1, le=MAX_DEADLINE_MS,
                                    description="Past this many ms since the request arrived, answer with the first-stage "
                                                "list (\"reranked\": false, with a warning) instead of waiting for the reranker.")
    translit: Literal["auto", "on", "off"] = Field("auto", description="Latin typing to Ethiopic (selam -> ሰላም); auto: "
                                                                      "when the query has no Ethiopic letters.")
    adaptive: bool = Field(False, description="Adaptive rerank depth: stop scoring candidates once the rest are unlikely "
                                              "to reach the top 10 (the rule and where it stopped: \"adaptive\").")
    blocks: list[Annotated[int, Field(ge=1, le=MAX_CANDIDATES)]] = Field(
        default_factory=list, max_length=8,
        description="/v1/search/stream only: rerank progressively, e.g. [20]: the first 20 candidates, a line with "
                    "their reranked order (\"rerank_progress\": [20, 100]), then the rest.")


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


class ErrorModel(BaseModel):
    error: str = Field(description="A code: bad_query, invalid_request, unauthorized, unknown_index, unknown_document, "
                                   "not_found, method_not_allowed, too_large, not_ready, internal.")
    message: str


ERRORS = {status: {"model": ErrorModel} for status in (400, 401, 404, 405, 413, 422, 500, 503)}


def _dumps(obj) -> bytes:
    """JSON as UTF-8; text that cannot be encoded (a lone surrogate) is replaced, never an error."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def _error_body(status: int, code: str, message: str) -> bytes:
    return _dumps({"error": code, "message": message})


def _http_code(status: int) -> str:
    return {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
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
            await send(message)

        try:
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                status = 413
                await send_json(413, "too_large", f"the request body is larger than {MAX_BODY_BYTES} bytes")
                return
            received = 0

            async def receiving():
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > MAX_BODY_BYTES:
                        raise _BodyTooLarge()
                return message

            await self.app(scope, receiving, sending)
        except _BodyTooLarge:
            if not started:
                status = 413
                await send_json(413, "too_large", f"the request body is larger than {MAX_BODY_BYTES} bytes")
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

    app = FastAPI(title="amharic-search", version=app_version, lifespan=lifespan,
                  description="Amharic semantic search: BM25 + dense retrieval, fused, reranked by a cross-encoder. "
                              "Errors are JSON {\"error\", \"message\"}.")

    def json_response(obj, status: int = 200) -> Response:
        return Response(_dumps(obj), status_code=status, media_type="application/json")

    @app.exception_handler(ApiError)
    async def api_error(_request, exc: ApiError):
        return Response(_error_body(exc.status, exc.code, exc.message), exc.status, media_type="application/json")

    @app.exception_handler(QueryError)
    async def query_error(_request, exc: QueryError):
        return Response(_error_body(400, "bad_query", str(exc)), 400, media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
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

        app.add_middleware(CORSMiddleware, allow_origins=list(service.config.cors_origins), allow_methods=["GET", "POST"],
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
        if params.translit != "off":
            from .translit import looks_transliterated, to_ethiopic

            if params.translit == "on" or looks_transliterated(query):
                converted = to_ethiopic(query)
                if converted != query:
                    notes.append(f"searching for {converted!r} (Latin typing converted; translit=off searches {query!r})")
                query = converted
        access = request.state.access
        access.update(index=entry.name, query_chars=len(query), top_k=params.top_k, stages=params.stages,
                      rerank=params.rerank)
        deadline_ms = params.deadline_ms or service.config.deadline_ms
        deadline = access["t0"] + deadline_ms / 1000 if deadline_ms else None
        stats: dict = {}
        kwargs = dict(top_k=params.top_k, stages=params.stages, rerank=params.rerank, fusion=params.fusion,
                      rrf_k=params.rrf_k, depth=params.depth, candidates=params.candidates,
                      rerank_depth=params.rerank_depth, max_length=params.max_length, window=params.window,
                      adaptive=AdaptiveDepth() if params.adaptive else None,
                      score=service.scorer(searcher, deadline, deadline_ms, stats) if searcher.has_reranker else None)
        return searcher, query, notes, kwargs, stats, access

    def observe(response: SearchResponse, access: dict, stats: dict) -> None:
        for stage, ms in response.timings_ms.items():
            if ms is not None and stage != "total":
                service.metrics.stage.labels(stage).observe(ms / 1000)
        access.update(results=len(response.results), reranked=response.reranked, stages_ms=response.timings_ms, **stats)

    def search(params: SearchParams, request: Request) -> Response:
        if params.blocks:
            raise ApiError(422, "invalid_request", "blocks (progressive reranking) is for /v1/search/stream")
        searcher, query, notes, kwargs, stats, access = prepare(params, request)
        response = searcher.search(query, **kwargs)
        response.warnings[:0] = notes
        observe(response, access, stats)
        return json_response(response.to_dict())

    def search_stream(params: SearchParams, request: Request) -> Response:
        searcher, query, notes, kwargs, stats, access = prepare(params, request)
        steps = searcher.search_stream(query, **kwargs, blocks=params.blocks)
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
        uvicorn.run("search.service:app_from_env", factory=True, workers=workers, **options)
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
