"""The search service on Ray Serve: the query side's one module that imports Ray (``amharic-search[scale]``).

``amharic-search serve PATH --ray [ADDRESS] --replicas N`` deploys the HTTP API of :mod:`search.service.app`
(the same FastAPI app, the same answers) as three kinds of Ray Serve deployments:

- ``Ingress`` (CPU, ``replicas`` of it): the HTTP API and the first stage (query analysis, the query
  encoder, fusion), with the service's micro-batching queue for the cross-encoder;
- ``CrossEncoder`` (a GPU each where the cluster has GPUs, else CPU): scores the queue's batches;
- ``Shard-<index>-<k>``, for a sharded index (:mod:`index.shard`): one deployment per shard, answering
  its first-stage lists, passages and documents; the ingress fans out to them and merges.

Ray places the replicas, restarts the ones that die and routes around them; autoscaling bounds are
options. Nothing here is imported unless ``--ray`` is given.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from ...index.manifest import read_manifest

from .core import ServiceConfig, _stamp, served_indexes

APP_NAME = "amharic-search"
INGRESS_CPUS = 0.2
SHARD_CPUS = 0.1
RERANKER_CPUS = 0.5
"""Ray CPUs each replica reserves (for placement only: a CPU cross-encoder uses the node's threads)."""


def _serve():
    from ray import serve

    return serve


# -- the deployments' classes (plain classes; :func:`build_app` makes them deployments) ----------------


class CrossEncoderServer:
    """One cross-encoder: :meth:`score_many` is :meth:`search.rerank.Reranker.score_many` at a max length."""

    def __init__(self, name: str, max_length: int | None, backend: str) -> None:
        from ...index.models import quiet_libraries

        from ..rerank import Reranker

        quiet_libraries()
        self.reranker = Reranker.load(name, max_length=max_length, backend=backend)

    def info(self) -> dict:
        return {"name": self.reranker.name, "backend": self.reranker.backend, "max_length": self.reranker.max_length}

    def score_many(self, jobs: list[tuple[str, list[str]]], max_length: int | None, pack: bool) -> list[np.ndarray]:
        return self.reranker.score_many(jobs, pack=pack, max_length=max_length)

    def cache(self) -> tuple[int, int]:
        return self.reranker.cache_hits, self.reranker.cache_misses


class ShardServer:
    """One shard of a sharded index (:class:`search.shards.LocalShard`), opened again when it is rebuilt."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        self._open()

    def _open(self) -> None:
        from ..shards import LocalShard

        self.stamp = _stamp(self.directory)
        self.shard = LocalShard(self.directory)
        self.checked = time.monotonic()

    def _current(self):
        if time.monotonic() - self.checked > 2.0:
            self.checked = time.monotonic()
            if _stamp(self.directory) != self.stamp:
                self._open()
        return self.shard

    def lexical(self, terms: list[str], depth: int, *, allow: np.ndarray | None = None):
        return self._current().lexical(terms, depth, allow=allow)

    def dense(self, qvec: np.ndarray, depth: int, *, allow: np.ndarray | None = None):
        return self._current().dense(qvec, depth, allow=allow)

    def passages(self, rows: Sequence[int]):
        return self._current().passages(rows)

    def document(self, doc_id: str):
        return self._current().document(doc_id)

    def doc_ids(self) -> list[str]:
        return self._current().doc_ids()


class RemoteShard:
    """A :class:`~search.shards.Shard` answered by a ``ShardServer`` deployment."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def lexical(self, terms, depth, *, allow=None):
        return self.handle.lexical.remote(list(terms), depth, allow=allow).result()

    def dense(self, qvec, depth, *, allow=None):
        return self.handle.dense.remote(qvec, depth, allow=allow).result()

    def passages(self, rows):
        return self.handle.passages.remote(list(rows)).result()

    def document(self, doc_id):
        return self.handle.document.remote(doc_id).result()

    def doc_ids(self):
        return self.handle.doc_ids.remote().result()


class RemoteReranker:
    """The ingress's stand-in for the cross-encoder (what :class:`search.service.RerankBatcher` and the
    searcher use of a :class:`~search.rerank.Reranker`): the tokenizer here, for the focus window;
    the model in the ``CrossEncoder`` deployment."""

    def __init__(self, handle, info: dict) -> None:
        from transformers import AutoTokenizer

        from ...index.models import resolve_model

        self.handle = handle
        self.name = info["name"]
        self.backend = f"ray:{info['backend']}"
        self.max_length = info["max_length"]
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_model(self.name))
        self.cache_hits = self.cache_misses = 0

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def score(self, query: str, passages: Sequence[str], *, max_length: int | None = None) -> np.ndarray:
        return self.score_many([(query, list(passages))], max_length=max_length)[0]

    def score_many(self, jobs, *, pack: bool = False, batch_size: int = 16, max_length: int | None = None) -> list[np.ndarray]:
        jobs = [(q, list(p)) for q, p in jobs]
        return self.handle.score_many.remote(jobs, max_length or self.max_length, pack).result()


class Ingress:
    """The HTTP API (:func:`search.service.create_app`) with remote cross-encoder and shards."""

    def __init__(self, settings: dict, reranker, shards: dict) -> None:
        from concurrent.futures import ThreadPoolExecutor

        # the constructor runs in the replica's event loop, where a handle's blocking result() is refused
        with ThreadPoolExecutor(1) as pool:
            self.service = pool.submit(self._load, settings, reranker, shards).result()

    @staticmethod
    def _load(settings: dict, reranker, shards: dict):
        from ...index.models import quiet_libraries

        from ..searcher import Searcher
        from .core import SearchService, default_load
        from ..shards import LocalShard

        quiet_libraries()
        config = ServiceConfig(**settings)
        info = reranker.info.remote().result() if reranker is not None else None
        remote = RemoteReranker(reranker, info) if info else None

        def client(path: Path, entry: dict):
            handle = shards.get(str(path.resolve()))
            return RemoteShard(handle) if handle is not None else LocalShard(path)

        def load(directory, **options) -> Searcher:
            if remote is None:  # no cross-encoder deployed: loading says why, as the one-process service does
                return default_load(directory, **options, shard_client=client)
            searcher = default_load(directory, **{**options, "no_rerank": True}, shard_client=client)
            searcher.second.reranker = remote
            return searcher

        return SearchService(config, load=load)

    def __serve_build_asgi_app__(self):
        from .app import create_app

        return create_app(self.service)


# -- deploying ---------------------------------------------------------------------------------------


def sharded_indexes(path: str | Path) -> dict[str, list[str]]:
    """The sharded indexes a service of ``path`` serves: name -> absolute shard directories."""
    found = {}
    for name, directory in served_indexes(Path(path)).items():
        try:
            manifest = read_manifest(directory)
        except ValueError:
            continue
        if manifest.get("shards"):
            found[name] = [str((directory / s["path"]).resolve()) for s in manifest["shards"]]
    return found


def _available(model: str) -> bool:
    from ...index.models import ModelUnavailableError, resolve_model

    try:
        resolve_model(model)
        return True
    except ModelUnavailableError:
        return False  # the ingress's loading notes it (or, with --strict, refuses to start)


def _scaling(replicas: int, max_replicas: int | None) -> dict:
    if max_replicas and max_replicas > replicas:
        return {"autoscaling_config": {"min_replicas": replicas, "max_replicas": max_replicas,
                                       "target_ongoing_requests": 2}}
    return {"num_replicas": replicas}


def build_app(config: ServiceConfig, *, replicas: int = 1, max_replicas: int | None = None,
              reranker_replicas: int = 1, max_reranker_replicas: int | None = None, shard_replicas: int = 1):
    """The Ray Serve application of ``config``."""
    import ray

    serve = _serve()
    resources = ray.cluster_resources() if ray.is_initialized() else {}
    gpus = resources.get("GPU", 0)
    # Ray's CPU counts place the replicas (torch still uses the node's threads): the ingress and the
    # shards mostly wait (I/O, numpy), the cross-encoder is the computation
    light, lighter = {"num_cpus": INGRESS_CPUS}, {"num_cpus": SHARD_CPUS}
    needed = replicas * INGRESS_CPUS
    reranker = None
    if config.reranker and _available(config.reranker):
        heavy = {"num_gpus": 1} if gpus else {"num_cpus": RERANKER_CPUS}
        needed += 0 if gpus else reranker_replicas * RERANKER_CPUS
        reranker = (serve.deployment(CrossEncoderServer, name="CrossEncoder", ray_actor_options=heavy,
                                     max_ongoing_requests=64, **_scaling(reranker_replicas, max_reranker_replicas))
                    .bind(config.reranker, config.max_length, config.reranker_backend))
    shards = {}
    for index_name, dirs in sharded_indexes(config.path).items():
        for k, directory in enumerate(dirs):
            needed += shard_replicas * SHARD_CPUS
            shards[directory] = (serve.deployment(ShardServer, name=f"Shard-{index_name}-{k}", ray_actor_options=lighter,
                                                  max_ongoing_requests=256, num_replicas=shard_replicas)
                                 .bind(directory))
    if resources and needed > resources.get("CPU", 0) + 1e-9:
        from ...index.ray_embed import RayUnavailableError

        raise RayUnavailableError(
            f"these replicas need {needed:g} CPUs of the Ray cluster (API {INGRESS_CPUS:g} each, cross-encoder "
            f"{RERANKER_CPUS:g} each without GPUs, shards {SHARD_CPUS:g} each) and it has {resources.get('CPU', 0):g}: "
            "ask for fewer replicas or add nodes")
    ingress = serve.deployment(serve.ingress()(Ingress), name="Ingress", ray_actor_options=light,
                               max_ongoing_requests=64, **_scaling(replicas, max_replicas))
    return ingress.bind(asdict(config), reranker, shards)


def deploy(config: ServiceConfig, *, address: str | None = "auto", host: str = "127.0.0.1", port: int = 8000,
           **scaling) -> str:
    """Start (or join) the Ray cluster at ``address``, deploy the service, return its URL."""
    from ...index.ray_embed import connect

    connect(address)
    serve = _serve()
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    # an address of one node (not 0.0.0.0) can only be bound there: one HTTP proxy, on the head node
    serve.start(proxy_location="EveryNode" if host in ("0.0.0.0", "::") else "HeadOnly",
                http_options={"host": host, "port": port})
    serve.run(build_app(config, **scaling), name=APP_NAME, route_prefix="/", blocking=False)
    return f"http://{host}:{port}"


def shutdown(*, leave_cluster: bool = True) -> None:
    """Remove the service from the cluster (and, with ``leave_cluster``, disconnect this process)."""
    import ray

    serve = _serve()
    try:
        serve.shutdown()  # the applications, the proxies and the controller
    finally:
        if leave_cluster:
            ray.shutdown()
