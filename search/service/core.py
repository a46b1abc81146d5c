"""The search service without HTTP: its configuration, the indexes it serves (reloaded when rebuilt),
their searchers and the reranking queue they share."""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal


from ...index.manifest import MANIFEST, IndexFormatError, find_indexes
from ...index.models import DEFAULT_RERANKER

from ..schema import MAX_QUERY_CHARS, RerankSkipped
from ..options import option_bound
from ..searcher import Searcher


from .batching import DeadlinePassed, RerankBatcher
from .metrics import Metrics

log = logging.getLogger("amharic_search.service")

API_KEY_ENV = "AMHARIC_SEARCH_API_KEY"
CONFIG_ENV = "AMHARIC_SEARCH_SERVICE_CONFIG"
"""How ``serve --workers N`` hands its settings to the worker processes (JSON of :class:`ServiceConfig`)."""

MAX_TOP_K = option_bound("top_k", "le")
MAX_CANDIDATES = option_bound("candidates", "le")
MAX_DEPTH = option_bound("depth", "le")
MAX_RERANK_LENGTH = option_bound("max_length", "le")
MAX_DEADLINE_MS = 600_000
MAX_BODY_BYTES = 64 * 1024
MAX_DOCUMENTS_BYTES = 32 * 1024 * 1024
"""The cap on a POST /v1/documents body (a batch of documents)."""
MAX_DOCUMENTS = 10_000
"""Most documents in one POST /v1/documents."""
LIMITS = {"top_k": MAX_TOP_K, "candidates": MAX_CANDIDATES, "depth": MAX_DEPTH, "max_length": MAX_RERANK_LENGTH,
          "query_chars": MAX_QUERY_CHARS, "body_bytes": MAX_BODY_BYTES, "deadline_ms": MAX_DEADLINE_MS,
          "documents_body_bytes": MAX_DOCUMENTS_BYTES, "documents": MAX_DOCUMENTS}
"""The caps on one request (a larger value is a 422 error; a larger body a 413)."""


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


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
        self._write_lock = threading.Lock()
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
                from ...index.manifest import read_manifest

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
        if _stamp(entry.directory) != entry.stamp and self._reload_lock.acquire(blocking=False):
            # changed on disk (another process added or deleted documents): picked up now, not at the next poll;
            # while another request reloads, this one answers from the generation it has
            try:
                self._check_reload()
            finally:
                self._reload_lock.release()
            entry = self.entries.get(name or self.default, entry)
        return entry

    # -- changes -----------------------------------------------------------------------------------

    def add_documents(self, name: str | None, documents: list[dict]) -> dict:
        """Add (or replace) documents in a served index; returns when the change is searchable here."""
        from ...index.update import add_documents

        entry = self.entry(name)
        searcher = entry.searcher
        reuse = searcher.has_dense and self.config.dense_model == "index"  # the index's own encoder, loaded
        with self._write_lock:
            if reuse:
                with searcher.first.encode_lock:
                    report = add_documents(entry.directory, documents, encoder=searcher.encoder, strict=self.config.strict)
            else:
                report = add_documents(entry.directory, documents, strict=self.config.strict)
            self.check_reload()
        return {"index": entry.name, "added": report.added, "replaced": report.replaced, **self._counts(report)}

    def delete_document(self, name: str | None, doc_id: str) -> dict:
        """Delete a document of a served index; returns when the change is searchable here."""
        from ...index.update import delete_documents

        entry = self.entry(name)
        with self._write_lock:
            report = delete_documents(entry.directory, [doc_id])
            if not report.deleted:
                raise ApiError(404, "unknown_document", f"no document {doc_id!r} in index {entry.name!r}")
            self.check_reload()
        return {"index": entry.name, "deleted": report.deleted, **self._counts(report)}

    @staticmethod
    def _counts(report) -> dict:
        return {"generation": report.generation, "documents": report.documents, "passages": report.passages,
                "notes": list(report.notes)}

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
            "documents": s.collection.num_docs,
            "passages": s.collection.num_passages,
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
