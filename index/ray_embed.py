"""Embedding on a Ray cluster: the build side's one module that imports Ray (``pip install amharic-search[scale]``).

:func:`index.build.build_index` with ``ray=ADDRESS`` reads, chunks and builds BM25 where it runs, and
hands the embedding steps (the same steps a local build encodes, in the same order) to a pool of
encoder actors: one per GPU when the cluster has GPUs, else one per node using that node's CPUs.
Each actor loads the encoder once. Ray restarts an actor that dies and runs its step again, so a
build survives a lost worker and gives the same vectors.

Example::

    with RayEncoderPool("auto", "rasyosef/embedding-amharic-medium", precision="fp32") as pool:
        for vectors in pool.map([["ሰላም"], ["ቡና"]]):
            ...
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Iterable, Iterator

import numpy as np

IN_FLIGHT_PER_WORKER = 2
"""Steps queued on each actor: the next step is there when one finishes."""


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached; the message says what to do."""


def connect(address: str | None) -> str:
    """Join (or start) a Ray cluster: ``auto`` = the running cluster if there is one, else a new local
    one; ``local`` = a new local cluster for this process; else a cluster address (``HOST:PORT``,
    ``ray://HOST:PORT``). Returns a description for messages and the manifest."""
    try:
        import ray
    except ImportError:
        raise RayUnavailableError("Ray is not installed: pip install 'ray[serve]' (in a clone of amharic-search: "
                                  "pip install -e '.[scale]')") from None
    logging.getLogger("ray").setLevel(logging.WARNING)
    # "token authentication is enabled" is Ray's default and safe: not worth a warning on every start
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if ray.is_initialized():
        return "this process's Ray cluster"
    options = dict(include_dashboard=False, log_to_driver=False, configure_logging=True, logging_level=logging.WARNING)
    if address in (None, "", "local"):
        ray.init(**options)
        return "a local Ray cluster"
    if address == "auto":
        try:
            ray.init(address="auto", **options)
            return "the running Ray cluster"
        except ConnectionError:
            ray.init(**options)
            return "a local Ray cluster (no running cluster was found)"
    try:
        ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise RayUnavailableError(f"cannot join the Ray cluster at {address}: {exc}") from None
    return f"the Ray cluster at {address}"


def _worker_class():
    import ray

    @ray.remote(max_restarts=-1, max_task_retries=-1)
    class EncoderWorker:
        """One encoder in one Ray worker process."""

        def __init__(self, model: str, precision: str, engine: str, batch_size: int, threads: int | None,
                     device: str | None) -> None:
            if threads:
                import torch

                torch.set_num_threads(threads)
            from ..index.models import load_encoder, quiet_libraries

            quiet_libraries()
            self.model = load_encoder(model, device=device)
            self.precision, self.batch_size = precision, batch_size
            self.engine = engine if device == "cpu" else "torch"  # OpenVINO is a CPU engine

        def encode(self, texts: list[str]) -> np.ndarray:
            from ..index.dense import encode

            return encode(self.model, texts, kind="document", batch_size=self.batch_size, precision=self.precision,
                          engine=self.engine)

        def pid(self) -> int:
            return os.getpid()

    return EncoderWorker


class RayEncoderPool:
    """Encoder actors over the cluster; :meth:`map` encodes steps of texts, results in order."""

    def __init__(self, address: str | None, model: str, *, precision: str = "fp32", engine: str = "torch",
                 batch_size: int = 32, workers: int | None = None) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.cluster = connect(address)
        worker = _worker_class()
        gpus = int(ray.cluster_resources().get("GPU", 0))
        self.actors = []
        if gpus:
            for _ in range(min(workers or gpus, gpus)):
                self.actors.append(worker.options(num_gpus=1).remote(model, precision, engine, batch_size, None, "cuda"))
            self.kind = "gpu"
        else:
            nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
            for node in nodes[: workers or len(nodes)]:
                cpus = int(node["Resources"]["CPU"])
                strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=True)  # a restart may go elsewhere
                self.actors.append(worker.options(num_cpus=cpus, scheduling_strategy=strategy)
                                   .remote(model, precision, engine, batch_size, cpus, "cpu"))
            self.kind = "cpu"
        if not self.actors:
            raise RayUnavailableError(f"{self.cluster} has no node with a free CPU or GPU for an encoder")
        # the encoders are loaded now: a model that fails to load fails here, not in the middle
        ray.get([a.pid.remote() for a in self.actors])

    @property
    def description(self) -> dict:
        return {"engine": "ray", "cluster": self.cluster, "encoder_workers": len(self.actors), "device": self.kind}

    def pids(self) -> list[int]:
        import ray

        return ray.get([a.pid.remote() for a in self.actors])

    def map(self, steps: Iterable[list[str]]) -> Iterator[np.ndarray]:
        """The vectors of each step, in the order of ``steps``, each step on whichever actor is free."""
        import ray

        pending = iter(enumerate(steps))
        free = deque(a for a in self.actors for _ in range(IN_FLIGHT_PER_WORKER))
        running: dict = {}  # future -> (step number, actor)
        done: dict[int, np.ndarray] = {}
        next_out = 0
        exhausted = False
        while True:
            while free and not exhausted:
                item = next(pending, None)
                if item is None:
                    exhausted = True
                    break
                actor = free.popleft()
                running[actor.encode.remote(item[1])] = (item[0], actor)
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
            if not running:
                if exhausted:
                    return
                continue
            ready, _ = ray.wait(list(running), num_returns=1)
            number, actor = running.pop(ready[0])
            done[number] = ray.get(ready[0])
            free.append(actor)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []

    def __enter__(self) -> "RayEncoderPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
