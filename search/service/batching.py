"""One worker thread runs the cross-encoder for every request of the service (micro-batching)."""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable

import numpy as np


from ..schema import RerankSkipped
from ..searcher import Searcher


from .metrics import Metrics

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
            reranker = jobs[0].searcher.reranker
            # exact: one job after the other, each answered as soon as it is scored (a repeated
            # query comes from the cache); packed: the group's pairs in shared batches
            for part in [jobs] if self.pack else [[j] for j in jobs]:
                live = [j for j in part if self._start(j)]
                if not live:
                    continue
                try:
                    texts = [j.searcher.reranker_inputs(j.query, j.passages, j.window, max_length) for j in live]
                    results = reranker.score_many([(j.query, t) for j, t in zip(live, texts)], pack=self.pack,
                                                  max_length=max_length)
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
