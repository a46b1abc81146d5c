"""Past one machine, measured on one: Ray embedding, sharded indexes, the service on Ray Serve.

    python bench/scale_out.py                       # all three parts, about 15 minutes on 2 cores; BENCHMARKS.md "Scaling out"
    python bench/scale_out.py --part shards         # one part (build, shards, serve); --no-write: print only

- build: the amqa corpus embedded with the stand-in encoder (../shared/models/me5-small-am), fp32,
  by a plain local build and by ``build_index(ray="local")`` (a local Ray cluster of this machine's
  cores, one encoder worker); wall time with and without starting Ray, passages/s, identical output.
- shards: the amqa index (dense) and the enh index (lexical), split into 2 and 4 shards; every test
  query's top 100 compared with the unsharded index (documents, passages, scores), first-stage
  latency p50/p95 in one process, resident memory of one process holding one shard.
- serve: ``serve --ray`` (library :func:`search.service.ray_serve.deploy`) of the enh index in 2 shards with
  the medium cross-encoder architecture (random weights: speed does not depend on the values;
  30 candidates at 256 tokens), 16 concurrent clients, 1 and 2 cross-encoder replicas; then an API
  replica killed while clients query: requests lost.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser import processes  # noqa: E402
from bench.common import DATA, machine, markdown_table, read_jsonl, today, write_section  # noqa: E402

STAND_IN = ROOT.parent / "shared" / "models" / "me5-small-am"
CACHE = ROOT / "bench" / ".cache" / "scale"


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def vectors(directory: Path) -> np.ndarray:
    from amharic_search.index.dense import DenseIndex
    from amharic_search.index.manifest import read_manifest

    m = read_manifest(directory)
    if m.get("shards"):
        return np.concatenate([vectors(directory / s["path"]) for s in m["shards"]])
    return DenseIndex.load(directory / "dense.faiss", m["dense"]["faiss"]).vectors()


# -- build -------------------------------------------------------------------------------------------


def part_build(tmp: Path) -> dict:
    import ray

    from amharic_search.index.build import build_index
    from amharic_search.index.ray_embed import connect
    from amharic_search.index.store import Store

    corpus = DATA / "amqa" / "corpus.jsonl"
    shutil.rmtree(CACHE / "amqa", ignore_errors=True)  # a full build, not a rebuild that reuses its vectors
    t = time.perf_counter()
    local = build_index(corpus, CACHE / "amqa", dense_model=str(STAND_IN), dense_precision="fp32", name="amqa",
                        show_progress=False)
    local_s = time.perf_counter() - t
    log(f"local build: {local_s:.1f} s ({local.passages} passages)")
    t = time.perf_counter()
    connect("local")
    start_s = time.perf_counter() - t
    t = time.perf_counter()
    remote = build_index(corpus, tmp / "amqa-ray", dense_model=str(STAND_IN), dense_precision="fp32", name="amqa",
                         ray="auto", show_progress=False)
    ray_s = time.perf_counter() - t
    ray.shutdown()
    log(f"ray build: {ray_s:.1f} s after {start_s:.1f} s to start Ray")
    a, b = Store(CACHE / "amqa" / "store.sqlite"), Store(tmp / "amqa-ray" / "store.sqlite")
    same_order = ([p.passage_id for p in a.passages(range(a.num_passages))]
                  == [p.passage_id for p in b.passages(range(b.num_passages))])
    diff = float(np.abs(vectors(CACHE / "amqa") - vectors(tmp / "amqa-ray")).max())
    ignore = {"created", "build", "files"}
    same_manifest = ({k: v for k, v in local.manifest.items() if k not in ignore}
                     == {k: v for k, v in remote.manifest.items() if k not in ignore})
    return {"passages": local.passages, "local_s": local_s, "ray_start_s": start_s, "ray_s": ray_s,
            "embed_local_s": local.seconds.get("dense"), "embed_ray_s": remote.seconds.get("dense"),
            "same_order": same_order, "max_vector_diff": diff, "same_manifest": same_manifest,
            "workers": remote.manifest["build"]["encoder_workers"]}


# -- shards ------------------------------------------------------------------------------------------


def enh_lexical() -> Path:
    from amharic_search.index.build import build_index

    out = CACHE / "enh-lexical"
    if not (out / "manifest.json").is_file():
        build_index(DATA / "enh" / "corpus.jsonl", out, dense_model=None, name="enh", show_progress=False)
    return out


def _shard_rss(directory: Path) -> tuple[float, float]:
    """Resident MB of a fresh process that opened one shard and answered 20 queries: in all, and
    above the same process before it opened the shard (the shard's own share)."""
    code = ("import sys; from search.shards import LocalShard\n"
            "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
            "base = rss(); s = LocalShard(sys.argv[1])\n"
            "for q in ['ኢትዮጵያ', 'መንግሥት', 'ቡና', 'ምርጫ', 'ጤና'] * 4: s.collection.lexical(s.index.analyzer.tokens(q), 100)\n"
            "print(rss(), rss() - base)")
    out = subprocess.run([sys.executable, "-c", code, str(directory)], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=True)
    total, own = out.stdout.strip().splitlines()[-1].split()
    return float(total), float(own)


def part_shards(tmp: Path) -> list[dict]:
    from amharic_search.index.shard import split_index
    from amharic_search.search.evaluate import load_queries
    from amharic_search.search.searcher import Searcher

    if not (CACHE / "amqa" / "manifest.json").is_file():
        raise click.UsageError("run --part build first (it writes the amqa index this part splits)")
    rows = []
    for name, whole, stages in (("amqa", CACHE / "amqa", "hybrid"), ("enh", enh_lexical(), "lexical")):
        queries = list(load_queries(DATA / name / "queries.jsonl").values())
        one = Searcher.load(whole, reranker=None)
        for q in queries[:20]:  # warm: the first queries load pages and the encoder's kernels
            one.search(q, top_k=100, stages=stages, rerank=False)
        base_ms = []
        answers = []
        for q in queries:
            t = time.perf_counter()
            answers.append(one.search(q, top_k=100, stages=stages, rerank=False))
            base_ms.append((time.perf_counter() - t) * 1000)
        rows.append({"collection": name, "stages": stages, "shards": 1, "queries": len(queries),
                     "p50": pct(base_ms, 50), "p95": pct(base_ms, 95), "mismatches": 0, "max_diff": 0.0,
                     "rss_mb": _shard_rss(whole)})
        for k in (2, 4):
            out = tmp / f"{name}-{k}"
            split_index(whole, out, shards=k)
            many = Searcher.load(out, reranker=None)
            for q in queries[:20]:
                many.search(q, top_k=100, stages=stages, rerank=False)
            ms, mismatches, max_diff = [], 0, 0.0
            for q, a in zip(queries, answers):
                t = time.perf_counter()
                b = many.search(q, top_k=100, stages=stages, rerank=False)
                ms.append((time.perf_counter() - t) * 1000)
                if [r.passage_id for r in a.results] != [r.passage_id for r in b.results]:
                    mismatches += 1
                    continue
                for ra, rb in zip(a.results, b.results):
                    for stage in ("bm25", "dense", "fused"):
                        x, y = getattr(ra.scores, stage), getattr(rb.scores, stage)
                        if (x is None) != (y is None):
                            mismatches += 1
                        elif x is not None:
                            max_diff = max(max_diff, abs(x - y))
            many.close()
            rss = max(_shard_rss(out / f"shard-{i:03d}") for i in range(k))  # the largest shard
            rows.append({"collection": name, "stages": stages, "shards": k, "queries": len(queries), "p50": pct(ms, 50),
                         "p95": pct(ms, 95), "mismatches": mismatches, "max_diff": max_diff, "rss_mb": rss})
            log(rows[-1])
    return rows


# -- serve -------------------------------------------------------------------------------------------


def _load(url: str, queries: list[str], clients: int, params: dict) -> dict:
    from amharic_search.search.service.client import ServiceClient

    latencies, failures = [], []
    lock = threading.Lock()
    todo = list(queries)

    def client_loop():
        c = ServiceClient(url, timeout=600)
        while True:
            with lock:
                if not todo:
                    return
                q = todo.pop()
            t = time.perf_counter()
            try:
                c.search(q, **params)
                with lock:
                    latencies.append(time.perf_counter() - t)
            except Exception as exc:  # noqa: BLE001 - counted
                failures.append(repr(exc))

    t = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    return {"requests": len(latencies), "failed": len(failures), "qps": len(latencies) / wall,
            "p50_s": pct(latencies, 50), "p95_s": pct(latencies, 95)}


def part_serve(tmp: Path, requests: int) -> dict:
    import ray

    from bench.speed import build_models
    from amharic_search.index.ray_embed import connect
    from amharic_search.index.shard import split_index
    from amharic_search.search.service import ray_serve
    from amharic_search.search.service.client import ServiceClient
    from amharic_search.search.evaluate import load_queries
    from amharic_search.search.service import ServiceConfig

    corpus = read_jsonl(DATA / "enh" / "corpus.jsonl")
    build_models(tmp, "medium", [d["text"] for d in corpus[:3000]])
    served = tmp / "enh-2"
    split_index(enh_lexical(), served, shards=2)
    queries = list(load_queries(DATA / "enh" / "queries.jsonl").values())
    params = dict(top_k=10, candidates=30, max_length=256)
    result: dict = {"runs": []}
    connect("local")
    try:
        for replicas in (1, 2):
            config = ServiceConfig(path=str(served), reranker=str(tmp / "ce"), reload_interval=0)
            t = time.perf_counter()
            url = ray_serve.deploy(config, address="auto", port=8790 + replicas, reranker_replicas=replicas)
            deploy_s = time.perf_counter() - t
            ServiceClient(url).search(queries[0], **params)  # warm
            offset = 1 + (replicas - 1) * requests
            run = _load(url, queries[offset : offset + requests], 16, params)
            run.update(replicas=replicas, deploy_s=deploy_s)
            result["runs"].append(run)
            log(run)
            ray_serve.shutdown(leave_cluster=False)
        # an API replica killed while 8 clients query (first stage only: many requests in flight)
        config = ServiceConfig(path=str(served), reranker=None, reload_interval=0)
        url = ray_serve.deploy(config, address="auto", port=8795, replicas=2)
        stop, answered, failed = threading.Event(), [], []
        retried = []

        def loop(n: int) -> None:
            c = ServiceClient(url, timeout=60)
            i = n
            while not stop.is_set():
                try:
                    c.search(queries[i % len(queries)], top_k=10, rerank=False)
                    answered.append(time.monotonic())
                except Exception as exc:  # noqa: BLE001 - counted
                    failed.append(repr(exc))
                i += 8
            retried.append(c.retried)

        threads = [threading.Thread(target=loop, args=(n,)) for n in range(8)]
        for th in threads:
            th.start()
        time.sleep(5)
        victim = processes("ServeReplica:amharic-search:Ingress")[0]
        killed_at = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        time.sleep(20)
        stop.set()
        for th in threads:
            th.join(60)
        after = [t for t in answered if t > killed_at]
        gaps = np.diff([killed_at, *after]) if after else np.array([float("nan")])
        result["kill"] = {"answered": len(answered), "answered_after_kill": len(after), "lost": len(failed),
                          "retried": sum(retried), "longest_gap_s": float(gaps.max())}
        log(result["kill"])
        ray_serve.shutdown(leave_cluster=False)
    finally:
        ray.shutdown()
    return result


def report(build: dict | None, shards: list[dict] | None, serve: dict | None) -> str:
    parts = [f"`bench/scale_out.py`, measured {today()} on {machine()} (one machine: a local Ray cluster of its "
             "2 cores; the two-host run is `bench/multihost.py`)."]
    if build:
        overhead = build["ray_s"] / build["local_s"] - 1
        overhead_all = (build["ray_s"] + build["ray_start_s"]) / build["local_s"] - 1
        parts.append(
            f"**Distributed build** (amqa, {build['passages']} passages, stand-in encoder, fp32):\n\n" + markdown_table(
                ["build", "wall time", "of which embedding", "passages/s", "overhead"],
                [["plain local", f"{build['local_s']:.1f} s", f"{build['embed_local_s']:.1f} s",
                  f"{build['passages'] / build['local_s']:.1f}", "-"],
                 [f"--ray local ({build['workers']} encoder worker)", f"{build['ray_s']:.1f} s",
                  f"{build['embed_ray_s']:.1f} s", f"{build['passages'] / build['ray_s']:.1f}", f"{overhead:+.1%}"],
                 ["the same, with starting Ray", f"{build['ray_s'] + build['ray_start_s']:.1f} s", "", "",
                  f"{overhead_all:+.1%}"]])
            + f"\n\nOutput identical: passages in the same order {build['same_order']}, largest vector difference "
              f"{build['max_vector_diff']:.1e}, manifest equal apart from its build record {build['same_manifest']}.")
    if shards:
        parts.append("**Sharded vs unsharded** (every test query, top 100 compared; latency of the first stage in one "
                     "process, shards searched by threads; memory: one process that opened one shard):\n\n" + markdown_table(
            ["collection", "stages", "shards", "queries", "rankings differing", "largest score difference",
             "p50 ms", "p95 ms", "memory of a shard process (largest shard)"],
            [[r["collection"], r["stages"], r["shards"], r["queries"], r["mismatches"], f"{r['max_diff']:.1e}",
              f"{r['p50']:.1f}", f"{r['p95']:.1f}", f"{r['rss_mb'][0]:.0f} MB ({r['rss_mb'][1]:.0f} MB its own)"]
             for r in shards])
            + "\n\nOn one 2-core machine shards cost latency (their threads share the same two cores, and the "
              "query is answered K times); they are for collections that outgrow one machine, each shard on its own. "
              "A shard's own memory shrinks less than 1/K: most of it is the vocabulary, and a quarter of the "
              "articles still uses most of the collection's words.")
    if serve:
        parts.append("**Replicated service on Ray Serve** (enh in 2 shard deployments, medium cross-encoder "
                     "architecture, 30 candidates at 256 tokens, 16 concurrent clients, one query each request):\n\n"
                     + markdown_table(["cross-encoder replicas", "requests", "failed", "queries/s", "p50", "p95",
                                       "deploy time"],
                                      [[r["replicas"], r["requests"], r["failed"], f"{r['qps']:.2f}", f"{r['p50_s']:.1f} s",
                                        f"{r['p95_s']:.1f} s", f"{r['deploy_s']:.0f} s"] for r in serve["runs"]])
                     + "\n\nThe 2 cores bound it: a second cross-encoder replica on the same two cores adds no "
                       f"computation, only contention (queries/s {serve['runs'][-1]['qps'] / serve['runs'][0]['qps'] - 1:+.0%} "
                       "with 2 replicas); replicas pay off with a core set or a GPU each (docs/SCALING.md).")
        k = serve["kill"]
        parts.append(f"An API replica (of 2) killed with SIGKILL while 8 clients searched (first stage): "
                     f"{k['answered']} requests answered, {k['answered_after_kill']} after the kill, **{k['lost']} lost**; "
                     f"{k['retried']} were sent again by the client after the Ray proxy's 500 for the requests "
                     f"that were on the killed replica; longest gap between answers after the kill "
                     f"{k['longest_gap_s']:.2f} s.")
    return "\n\n".join(parts)


@click.command()
@click.option("--part", "parts", multiple=True, type=click.Choice(["build", "shards", "serve"]))
@click.option("--requests", default=32, show_default=True, help="Requests per serve run.")
@click.option("--write/--no-write", default=True, show_default=True, help="Write BENCHMARKS.md 'Scaling out'.")
@click.option("--report-only", is_flag=True, help="Rewrite the section from the saved results; run nothing.")
def main(parts, requests, write, report_only):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parts = () if report_only else parts or ("build", "shards", "serve")
    CACHE.mkdir(parents=True, exist_ok=True)
    saved = CACHE / "results.json"
    results = json.loads(saved.read_text()) if saved.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "build" in parts:
            results["build"] = part_build(tmp)
        if "shards" in parts:
            results["shards"] = part_shards(tmp)
        if "serve" in parts:
            results["serve"] = part_serve(tmp, requests)
    saved.write_text(json.dumps(results, indent=2))
    text = report(results.get("build"), results.get("shards"), results.get("serve"))
    print(text)
    if write:
        write_section("Scaling out", text)


if __name__ == "__main__":
    main()
