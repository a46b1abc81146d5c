"""Load test of the search service (`amharic-search serve`) on 127.0.0.1, against the in-process
library and separate `amharic-search query` processes.

    python bench/service_load.py                  # about 12 minutes on 2 cores; writes BENCHMARKS.md "Search service"
    python bench/service_load.py --quick          # fewer requests (a smoke run, no BENCHMARKS.md)

Setup: the enh collection (12,986 articles) indexed lexically, plus random unit vectors as its
dense index; randomly initialised XLM-R models of the medium architecture (bench/speed.py builds
them: 8 layers, hidden 512, a 32k tokenizer trained on enh) as query encoder and cross-encoder,
with the product's defaults (reranker backend auto, 100 candidates, the model's max length).
Speed does not depend on the weights' values.

Clients: a bounded asyncio/httpx client, 1, 4 and 16 concurrent connections, lexical-only,
hybrid, hybrid + rerank. Every request has its own query (enh test headlines), so the reranker's
score cache never answers; every answer is compared with the same query's answer from the
in-process library (`Searcher.search` with the same models, a cold cache): *wrong* counts answers
whose documents or scores differ. Memory: the server's resident set sampled during a mixed run.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import DATA, machine, markdown_table, read_jsonl, today, write_section  # noqa: E402

MODES = {
    "lexical": dict(stages="lexical", rerank=False),
    "hybrid": dict(stages="hybrid", rerank=False),
    "hybrid + rerank": dict(stages="hybrid", rerank=True),
}


def log(*args) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


def pct(values, q) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class OtherLoad:
    """CPU used by processes other than this benchmark and its server (other work on the machine
    skews the figures): cores busy on average between :meth:`start` and :meth:`cores`."""

    def __init__(self, *pids: int) -> None:
        self.pids = [os.getpid(), *pids]
        self.start()

    @staticmethod
    def _busy() -> int:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields) - fields[3] - fields[4]  # all but idle and iowait

    def _ours(self) -> int:
        total = 0
        for pid in self.pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(x) for x in stat[11:15])  # utime, stime, cutime, cstime
            except (OSError, IndexError):
                pass
        return total

    def start(self) -> None:
        self.t, self.busy, self.ours = time.monotonic(), self._busy(), self._ours()

    def cores(self) -> float:
        other = (self._busy() - self.busy) - (self._ours() - self.ours)
        return max(0.0, other / os.sysconf("SC_CLK_TCK") / max(1e-9, time.monotonic() - self.t))


def prepare(tmp: Path) -> tuple[Path, Path]:
    """The enh index (lexical, plus random vectors as its dense index) and the medium models."""
    from bench.speed import build_models
    from amharic_search.index.build import build_index
    from amharic_search.index.layout import DENSE_FILE
    from amharic_search.index.dense import DenseIndex
    from amharic_search.index.manifest import read_manifest, write_manifest

    corpus = read_jsonl(DATA / "enh" / "corpus.jsonl")
    t = time.perf_counter()
    encoder, _, _ = build_models(tmp, "medium", [d["text"] for d in corpus[:3000]])
    encoder.save(str(tmp / "encoder"))
    log(f"medium models built in {time.perf_counter() - t:.0f} s")
    idx = tmp / "enh"
    t = time.perf_counter()
    build_index(DATA / "enh" / "corpus.jsonl", idx, dense_model=None, show_progress=False)
    manifest = read_manifest(idx)
    n = manifest["corpus"]["passages"]
    vecs = np.random.default_rng(1).standard_normal((n, 512)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = DenseIndex.build(vecs)
    index.save(idx / DENSE_FILE)
    manifest["dense"] = {"model": str(tmp / "encoder"), "dim": 512, "normalized": True, "faiss": index.info, "synthetic": True}
    write_manifest(idx, manifest)
    log(f"enh index ({n} passages, random vectors) built in {time.perf_counter() - t:.0f} s")
    return idx, tmp / "ce"


def answer_key(d: dict) -> list:
    """What must not differ between two answers to one query: documents, passages, every score."""
    return [(r["doc_id"], r["passage_id"], r["scores"]["bm25"], r["scores"]["dense"], r["scores"]["fused"],
             r["scores"]["rerank"]) for r in d["results"]]


async def load(url: str, queries: list[str], mode: dict, clients: int, *, seconds: float) -> dict:
    """``clients`` connections take the queries in turn until none is left (or ``seconds`` pass)."""
    import httpx

    todo = list(queries)
    latencies, errors, answers = [], 0, {}
    stop_at = time.monotonic() + seconds

    async def worker(http):
        nonlocal errors
        while todo and time.monotonic() < stop_at:
            q = todo.pop(0)
            t = time.perf_counter()
            try:
                r = await http.post(url + "/v1/search", json={"query": q, "top_k": 10, **mode})
                if r.status_code != 200:
                    errors += 1
                    continue
                answers[q] = r.json()
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - t) * 1000)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=900, limits=limits) as http:
        t = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(clients)))
        wall = time.perf_counter() - t
    return {"latencies": latencies, "errors": errors, "answers": answers, "wall": wall}


def start_server(idx: Path, reranker: Path, log_path: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "amharic_search.search", "-q", "serve", str(idx), "--port", str(port), "--reranker", str(reranker),
           "--reload-interval", "0", *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log_path, "w"),
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(url + "/v1/ready", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.5)


def separate_processes(idx: Path, reranker: Path, queries: list[str], mode: str, clients: int) -> dict:
    """``len(queries)`` `amharic-search query` processes, ``clients`` at a time."""
    args = ["--no-dense", "--no-rerank"] if mode == "lexical" else ["--reranker", str(reranker)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    latencies, errors, answers = [], 0, {}
    t0 = time.perf_counter()
    for start in range(0, len(queries), clients):
        batch = queries[start:start + clients]
        procs = [(q, time.perf_counter(), subprocess.Popen(
            [sys.executable, "-m", "amharic_search.search", "-q", "query", str(idx), q, "--json", *args], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) for q in batch]
        for q, t, p in procs:
            out, _ = p.communicate(timeout=600)
            if p.returncode != 0:
                errors += 1
                continue
            latencies.append((time.perf_counter() - t) * 1000)
            answers[q] = json.loads(out)
    return {"latencies": latencies, "errors": errors, "answers": answers, "wall": time.perf_counter() - t0}


@click.command()
@click.option("--quick", is_flag=True, help="A smoke run with few requests; BENCHMARKS.md is not written.")
@click.option("--memory-seconds", default=300.0, show_default=True, help="Length of the mixed run that samples memory.")
@click.option("--out", default=None, help="Also write the figures as JSON here.")
def main(quick: bool, memory_seconds: float, out: str | None) -> None:
    from amharic_search.search import Searcher

    started = time.perf_counter()
    queries = [q["text"] for q in read_jsonl(DATA / "enh" / "queries.jsonl")]
    light = {1: 40, 4: 80, 16: 160} if quick else {1: 200, 4: 300, 16: 400}  # requests per run, lexical and hybrid
    heavy = {1: 1, 4: 2, 16: 4} if quick else {1: 6, 4: 12, 16: 32}  # requests per run with rerank
    rows, figures = [], {"machine": machine(), "date": today(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        idx, reranker = prepare(tmp)

        # the in-process library: reference answers (a cold cache) and its own latencies
        t = time.perf_counter()
        lib = Searcher.load(idx, reranker=str(reranker))
        log(f"library loaded in {time.perf_counter() - t:.1f} s, reranker backend {lib.reranker.backend}")
        # lexical and hybrid runs share the first headlines (those stages cache nothing); each reranking
        # run has its own, so no answer comes from the reranker's score cache
        plan, offset = {}, max(light.values())
        for mode in MODES:
            for clients in (1, 4, 16):
                if MODES[mode]["rerank"]:
                    plan[mode, clients] = queries[offset:offset + heavy[clients]]
                    offset += heavy[clients]
                else:
                    plan[mode, clients] = queries[:light[clients]]
        reference, lib_ms = {}, {m: [] for m in MODES}
        other = OtherLoad()
        for (mode, clients), qs in plan.items():
            for q in qs:
                if (mode, q) in reference:
                    continue
                t = time.perf_counter()
                reference[mode, q] = lib.search(q, top_k=10, **MODES[mode]).to_dict()
                lib_ms[mode].append((time.perf_counter() - t) * 1000)
        log("reference answers computed: " + ", ".join(f"{m} p50 {pct(v, 50):.1f} ms" for m, v in lib_ms.items()))
        for mode, ms in lib_ms.items():
            rows.append([mode, "in-process library (sequential)", len(ms), 0, 0, f"{1000 / np.mean(ms):.2f}",
                         f"{pct(ms, 50):.1f}", f"{pct(ms, 95):.1f}", f"{other.cores():.2f}"])
        del lib

        # the service
        server, url = start_server(idx, reranker, tmp / "server.log")
        base_rss = rss_mb(server.pid)
        try:
            other = OtherLoad(server.pid)
            for (mode, clients), qs in plan.items():
                other.start()
                result = asyncio.run(load(url, qs, MODES[mode], clients, seconds=600))
                wrong = sum(answer_key(a) != answer_key(reference[mode, q]) for q, a in result["answers"].items())
                ms = result["latencies"]
                throughput = len(ms) / result["wall"]
                rows.append([mode, f"service, {clients} client{'s' if clients > 1 else ''}", len(ms) + result["errors"],
                             result["errors"], wrong, f"{throughput:.2f}", f"{pct(ms, 50):.1f}", f"{pct(ms, 95):.1f}",
                             f"{other.cores():.2f}"])
                figures["runs"].append({"mode": mode, "clients": clients, "requests": len(ms), "errors": result["errors"],
                                        "wrong": wrong, "throughput": throughput, "p50": pct(ms, 50), "p95": pct(ms, 95)})
                log(rows[-1])
            # memory over a mixed run: 4 lexical, 4 hybrid and 2 reranking clients (these on fresh queries)
            rss = [rss_mb(server.pid)]
            fresh, offset = queries[offset + 20:], offset + 20
            light_pool = queries[:max(light.values())]

            async def mixed():
                import httpx

                stop_at = time.monotonic() + memory_seconds
                done = {"n": 0, "errors": 0}

                async def client(http, mode):
                    i = 0
                    while time.monotonic() < stop_at:
                        if MODES[mode]["rerank"]:
                            q = fresh.pop() if fresh else light_pool[i % len(light_pool)]
                        else:
                            q = light_pool[(i * 7 + len(mode)) % len(light_pool)]
                        i += 1
                        r = await http.post(url + "/v1/search", json={"query": q, **MODES[mode]})
                        done["n"] += 1
                        done["errors"] += r.status_code != 200

                async def sampler():
                    while time.monotonic() < stop_at:
                        await asyncio.sleep(5)
                        rss.append(rss_mb(server.pid))

                async with httpx.AsyncClient(timeout=900) as http:
                    await asyncio.gather(sampler(), *(client(http, m) for m in ["lexical"] * 4 + ["hybrid"] * 4
                                                      + ["hybrid + rerank"] * 2))
                return done

            done = asyncio.run(mixed())
            rss.append(rss_mb(server.pid))
            figures["memory"] = {"after_start": base_rss, "samples": rss, "requests": done["n"], "errors": done["errors"],
                                 "seconds": memory_seconds}
            log(f"memory MB: after start {base_rss:.0f}, run {rss[0]:.0f} -> {rss[-1]:.0f} (max {max(rss):.0f}), "
                f"{done['n']} requests, {done['errors']} errors")
            metrics = __import__("httpx").get(url + "/v1/metrics").text
            figures["batches"] = [line for line in metrics.splitlines() if line.startswith("amharic_search_rerank_batch_jobs_")]
        finally:
            server.terminate()
            server.wait(60)
            figures["server_exit"] = server.returncode

        # separate processes, a few
        for mode, clients, n in ([("lexical", 1, 2), ("lexical", 4, 4), ("hybrid + rerank", 1, 1), ("hybrid + rerank", 4, 4)]
                                 if not quick else [("lexical", 1, 1), ("hybrid + rerank", 2, 2)]):
            qs = queries[offset:offset + n]
            offset += n
            other = OtherLoad()
            result = separate_processes(idx, reranker, qs, mode, clients)
            ms = result["latencies"]
            rows.append([mode, f"`amharic-search query` processes, {clients} at a time", len(ms) + result["errors"],
                         result["errors"], "-", f"{len(ms) / result['wall']:.3f}", f"{pct(ms, 50):.0f}", f"{pct(ms, 95):.0f}",
                         f"{other.cores():.2f}"])
            log(rows[-1])

    figures["rows"] = rows
    figures["seconds"] = time.perf_counter() - started
    if out:
        Path(out).write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    if quick:
        return
    mem = figures["memory"]
    order = {"lexical": 0, "hybrid": 1, "hybrid + rerank": 2}
    rows.sort(key=lambda r: (order[r[0]], 0 if r[1].startswith("in-process") else 1 if r[1].startswith("service") else 2))
    body = (
        f"Machine: {machine()} (`lscpu` model name), torch with 2 threads. Date: {today()}. "
        f"Rerun: `python bench/service_load.py` ({figures['seconds'] / 60:.0f} min).\n\n"
        "enh (12,986 articles) indexed lexically plus random unit vectors as its dense index; randomly initialised "
        "medium XLM-R models (8 layers, hidden 512) as query encoder and cross-encoder, the product's defaults "
        "(reranker backend auto = torch-bf16 here, 100 candidates, max length 512, top 10). `amharic-search serve` "
        "on 127.0.0.1 (one process, defaults: `--rerank-batching exact`, `--trim-memory`), a bounded asyncio/httpx "
        "client; each request has its "
        "own enh headline, so no answer comes from the score cache. *wrong* = answers whose documents or scores differ "
        "from the in-process library's answer to the same query. Latency is per request, from the client (which "
        "runs on the same 2 cores). *other CPU* = cores kept busy by other processes on the machine meanwhile "
        "(0 on a quiet machine; above 0.1 the row is skewed).\n\n"
        + markdown_table(["mode", "load", "requests", "errors", "wrong", "queries/s", "p50 ms", "p95 ms", "other CPU"], rows)
        + f"\n\nMemory (server resident set): {mem['after_start']:.0f} MB after start; over a {mem['seconds']:.0f} s "
        f"mixed run (4 lexical, 4 hybrid, 2 reranking clients; {mem['requests']} requests, {mem['errors']} errors) "
        f"{mem['samples'][0]:.0f} → {mem['samples'][-1]:.0f} MB "
        f"(max {max(mem['samples']):.0f}). Server exit status after SIGTERM: {figures['server_exit']}."
    )
    write_section("Search service", body)


if __name__ == "__main__":
    main()
