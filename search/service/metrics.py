"""The service's Prometheus metrics."""

from __future__ import annotations

from typing import Callable






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
