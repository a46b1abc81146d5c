"""A real multi-host run: a Ray head and a Ray worker node in two network namespaces of this machine.

    sudo .venv/bin/python bench/multihost.py                 # about 4-6 min on 2 cores
    sudo .venv/bin/python bench/multihost.py --queries 40 --keep

Needs root (``ip netns``) and iproute2. What it does:

1. creates the network namespaces ``ash-head`` (10.77.0.1/24) and ``ash-worker`` (10.77.0.2/24),
   joined by a veth pair, loopback up in each (leftovers of an earlier run are removed first);
2. starts a Ray head node in ``ash-head`` and a Ray worker node in ``ash-worker`` (1 CPU each,
   separate ``--temp-dir``) and waits for the cluster to show 2 alive nodes;
3. builds the amqa corpus with the real encoder twice: plainly (no Ray, unsharded) and, inside
   ``ash-head``, as ``index build --ray 10.77.0.1:6379 --shards 2`` (one encoder worker per node),
   then compares them: same passages in the same order, vectors within 1e-5;
4. serves the sharded index with ``serve --ray 10.77.0.1:6379 --host 10.77.0.1 --no-rerank`` in
   ``ash-head``, records on which node each replica runs (Ray state API), queries it from
   ``ash-worker`` over the veth and compares each answer with the unsharded plain index searched
   in this process (same documents, passages and ranks, scores within 1e-6); latency p50/p95;
5. prints a report and writes it to ``bench/.cache/multihost.json`` (a failed or interrupted run
   writes ``bench/.cache/multihost.failed.json`` instead, with the error).

Both builds use ``--precision fp32`` (``auto`` would be bf16 on a CPU with bf16, and the issue's
"vectors within 1e-5" is stated for fp32).

**Ray authentication.** Ray 2.60 enables token authentication by default for a cluster started with
``ray start`` ("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt
out"). This script keeps it on: it generates a fresh token for each run and gives every Ray process
it starts (head, worker node, the build's and the service's drivers, the checks) the same
``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN=<token>`` in its environment. That is what a real
multi-machine cluster needs (the same token on every node), it does not read or overwrite
``~/.ray/auth_token`` (which other Ray users of this machine share), and it is not weaker than the
default.

**Stopping Ray.** ``ray stop --force`` finds Ray's processes by name in the whole PID namespace,
which the two network namespaces share with the rest of the machine: it would also kill any other
Ray cluster running here (a test run, say). So the script stops exactly what runs in its two
namespaces instead (``ip netns pids``: SIGTERM, then SIGKILL after a grace period), which is every
process of its head and worker nodes, and then deletes the namespaces. This also runs on a failure
and on Ctrl-C / SIGTERM, and again at the start of the next run.

**While it runs**, ``ray.init(address="auto")`` anywhere on this machine (``--ray`` / ``--ray auto`` of
the CLI) finds this cluster's raylets by scanning the shared PID namespace and tries to join
10.77.0.1:6379, which the root namespace cannot reach: do not run Ray tests with ``auto`` at the
same time. Every Ray call of this script names its cluster's address explicitly. Timings are
only meaningful on an otherwise idle machine (the report records the load average and any other
Ray cluster found running).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

VENV_BIN = Path(sys.executable).parent
HEAD_NS, WORKER_NS = "ash-head", "ash-worker"
HEAD_IF, WORKER_IF = "ash-h0", "ash-w0"
HEAD_IP, WORKER_IP = "10.77.0.1", "10.77.0.2"
RAY_PORT = 6379
SERVE_PORT = 8000
WORK = Path(tempfile.gettempdir()) / "ash-multihost"
REPORT = ROOT / "bench" / ".cache" / "multihost.json"
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "amqa" / "corpus.jsonl"
DEFAULT_QUERIES = ROOT.parent / "shared" / "data" / "amqa" / "queries.jsonl"
DEFAULT_ENCODER = ROOT.parent / "shared" / "models" / "me5-small-am"


class Failed(RuntimeError):
    """A step failed; the message says which and why."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sh(*args: str, check: bool = True, timeout: float = 30, env: dict | None = None,
       capture: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(list(args), text=True, capture_output=capture, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or "") if isinstance(exc.stdout, str) else (exc.stdout or b"").decode(errors="replace")
        raise Failed(f"timed out after {timeout:g} s: {' '.join(args)}\n{out[-3000:]}") from None
    if check and proc.returncode != 0:
        raise Failed(f"failed (exit {proc.returncode}): {' '.join(args)}\n{(proc.stdout or '')[-3000:]}{(proc.stderr or '')[-3000:]}")
    return proc


def in_ns(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *args]


# -- namespaces ------------------------------------------------------------------------------------


def ns_pids(ns: str) -> list[int]:
    proc = sh("ip", "netns", "pids", ns, check=False)
    return [int(p) for p in proc.stdout.split()] if proc.returncode == 0 else []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_namespace_processes(ns: str, grace: float = 15) -> int:
    """SIGTERM every process in network namespace ``ns``, SIGKILL what is left after ``grace`` s."""
    pids = [p for p in ns_pids(ns) if p != os.getpid() and _alive(p)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 5)
        while time.monotonic() < deadline:
            pids = [p for p in ns_pids(ns) if _alive(p)]
            if not pids:
                break
            time.sleep(0.3)
        if not pids:
            break
    return len(pids)


def teardown() -> None:
    """Stop everything in the two namespaces and delete them (idempotent)."""
    existing = sh("ip", "netns", "list", check=False).stdout
    for ns in (HEAD_NS, WORKER_NS):
        if re.search(rf"^{ns}\b", existing, re.M):
            left = stop_namespace_processes(ns)
            if left:
                log(f"warning: {left} process(es) in {ns} did not stop")
            sh("ip", "netns", "delete", ns, check=False)
    sh("ip", "link", "delete", HEAD_IF, check=False)  # a veth left in the root namespace by a half-done setup


def setup_namespaces() -> None:
    teardown()
    steps = [
        ("ip", "netns", "add", HEAD_NS),
        ("ip", "netns", "add", WORKER_NS),
        ("ip", "link", "add", HEAD_IF, "type", "veth", "peer", "name", WORKER_IF),
        ("ip", "link", "set", HEAD_IF, "netns", HEAD_NS),
        ("ip", "link", "set", WORKER_IF, "netns", WORKER_NS),
        ("ip", "-n", HEAD_NS, "addr", "add", f"{HEAD_IP}/24", "dev", HEAD_IF),
        ("ip", "-n", WORKER_NS, "addr", "add", f"{WORKER_IP}/24", "dev", WORKER_IF),
        ("ip", "-n", HEAD_NS, "link", "set", "lo", "up"),
        ("ip", "-n", WORKER_NS, "link", "set", "lo", "up"),
        ("ip", "-n", HEAD_NS, "link", "set", HEAD_IF, "up"),
        ("ip", "-n", WORKER_NS, "link", "set", WORKER_IF, "up"),
    ]
    for step in steps:
        sh(*step)


def check_link(env: dict) -> None:
    """A TCP connection from the worker namespace to the head's address (no ping binary needed)."""
    server = subprocess.Popen(in_ns(HEAD_NS, sys.executable, "-c",
                                    "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                                    f"s.bind(('{HEAD_IP}',{RAY_PORT}));s.listen();s.settimeout(20);c,a=s.accept();"
                                    "c.sendall(a[0].encode())"), stdout=subprocess.PIPE, text=True, env=env)
    try:
        code = (f"import socket,time\nfor _ in range(100):\n  try:\n    s=socket.create_connection(('{HEAD_IP}',{RAY_PORT}),timeout=2);break\n"
                "  except OSError: time.sleep(0.1)\nprint(s.recv(64).decode())")
        seen = sh(*in_ns(WORKER_NS, sys.executable, "-c", code), timeout=30, env=env).stdout.strip()
        if seen != WORKER_IP:
            raise Failed(f"the head saw a connection from {seen!r}, expected {WORKER_IP}")
    finally:
        server.wait(timeout=10)


# -- Ray -----------------------------------------------------------------------------------------


def ray_env() -> dict:
    from ray._private.authentication.authentication_token_generator import generate_new_authentication_token

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=generate_new_authentication_token(), RAY_USAGE_STATS_ENABLED="0",
               TQDM_DISABLE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


def start_ray(env: dict) -> None:
    common = ["--num-cpus", "1", "--num-gpus", "0", "--disable-usage-stats", "--object-store-memory", str(300 * 2**20)]
    sh(*in_ns(HEAD_NS, str(VENV_BIN / "ray"), "start", "--head", "--node-ip-address", HEAD_IP, "--port", str(RAY_PORT),
              "--include-dashboard=false", "--temp-dir", str(WORK / "ray-head"), *common), timeout=120, env=env)
    log(f"Ray head started in {HEAD_NS} at {HEAD_IP}:{RAY_PORT}")
    sh(*in_ns(WORKER_NS, str(VENV_BIN / "ray"), "start", "--address", f"{HEAD_IP}:{RAY_PORT}", "--node-ip-address", WORKER_IP,
              "--temp-dir", str(WORK / "ray-worker"), *common), timeout=120, env=env)
    log(f"Ray worker node started in {WORKER_NS} at {WORKER_IP}")


def helper(ns: str, env: dict, *args: str, timeout: float = 60) -> dict:
    """Run ``python bench/multihost.py ARGS`` in namespace ``ns``; its last stdout line as JSON."""
    proc = sh(*in_ns(ns, sys.executable, __file__, *args), timeout=timeout, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wait_for_nodes(env: dict, n: int = 2, timeout: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout
    nodes: list[dict] = []
    while time.monotonic() < deadline:
        try:
            nodes = helper(HEAD_NS, env, "_nodes", timeout=60)["nodes"]
        except Failed as exc:
            log(f"cluster not ready yet: {str(exc).splitlines()[0]}")
            nodes = []
        if sum(1 for node in nodes if node["alive"]) >= n:
            return nodes
        time.sleep(2)
    raise Failed(f"the Ray cluster did not show {n} alive nodes within {timeout:g} s: {nodes}")


# -- builds and comparisons ------------------------------------------------------------------------


def timed_build(cmd: list[str], env: dict, timeout: float) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise Failed(f"build failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-5000:]}")
    return seconds, proc.stdout


def _index_parts(directory: Path) -> tuple[list[str], object]:
    import numpy as np

    from amharic_search.index.dense import DenseIndex
    from amharic_search.index.manifest import read_manifest
    from amharic_search.index.store import Store

    manifest = read_manifest(directory)
    if manifest.get("shards"):
        parts = [_index_parts(directory / s["path"]) for s in manifest["shards"]]
        return [p for ids, _ in parts for p in ids], np.concatenate([v for _, v in parts])
    store = Store(directory / "store.sqlite")
    ids = [p.passage_id for p in store.passages(range(store.num_passages))]
    return ids, DenseIndex.load(directory / "dense.faiss", manifest["dense"]["faiss"]).vectors()


def compare_indexes(plain: Path, sharded: Path) -> dict:
    import numpy as np

    ids_a, vec_a = _index_parts(plain)
    ids_b, vec_b = _index_parts(sharded)
    same_order = ids_a == ids_b
    diff = float(np.abs(vec_a - vec_b).max()) if same_order and vec_a.shape == vec_b.shape else None
    return {"passages": len(ids_a), "passages_sharded": len(ids_b), "same_passages_in_order": same_order,
            "vector_shape": list(vec_a.shape), "max_vector_difference": diff}


def compare_answers(plain: Path, answers: list[dict], top_k: int, threads: int | None = None, tol: float = 1e-6) -> dict:
    """The service's answers against the unsharded plain index searched in this process, with torch on
    ``threads`` threads (None: torch's default here)."""
    import torch

    from amharic_search.search.searcher import Searcher

    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    try:
        searcher = Searcher.load(plain, reranker=None)
        mismatches = []
        max_diff: dict[str, float] = {}
        for answer in answers:
            local = searcher.search(answer["query"], top_k=top_k, rerank=False).to_dict()
            remote = answer["response"]
            problems = []
            ra, rb = local["results"], remote["results"]
            if [r["doc_id"] for r in ra] != [r["doc_id"] for r in rb]:
                problems.append("doc ids differ")
            elif [r["passage_id"] for r in ra] != [r["passage_id"] for r in rb]:
                problems.append("passage ids differ")
            else:
                for x, y in zip(ra, rb):
                    if x["ranks"] != y["ranks"]:
                        problems.append(f"ranks differ for {x['doc_id']}: {x['ranks']} vs {y['ranks']}")
                    for stage, value in x["scores"].items():
                        other = y["scores"].get(stage)
                        if (value is None) != (other is None):
                            problems.append(f"{stage} score present in one answer only ({x['doc_id']})")
                        elif value is not None:
                            max_diff[stage] = max(max_diff.get(stage, 0.0), abs(value - other))
                            if abs(value - other) > tol:
                                problems.append(f"{stage} score of {x['doc_id']}: {value} vs {other}")
            for key in ("stages", "lexical_hits", "query_terms"):
                if local[key] != remote[key]:
                    problems.append(f"{key}: {local[key]!r} vs {remote[key]!r}")
            if problems:
                mismatches.append({"query": answer["query"], "problems": problems[:5]})
    finally:
        torch.set_num_threads(default_threads)
    return {"torch_threads": threads or default_threads, "compared": len(answers), "mismatches": len(mismatches),
            "max_score_difference": max_diff, "mismatch_details": mismatches[:3], "local_warnings": searcher.warnings}


def other_ray_processes() -> list[str]:
    """Ray node processes running outside this script's namespaces (another cluster: its CPU use skews timings)."""
    import psutil

    mine = set(ns_pids(HEAD_NS)) | set(ns_pids(WORKER_NS))
    found = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if p.info["pid"] not in mine and ("raylet" in (p.info["name"] or "") or "gcs_server" in (p.info["name"] or "")
                                          or "ray::" in cmd):
            found.append(f"{p.info['pid']} {cmd[:80]}")
    return found


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# -- the service -----------------------------------------------------------------------------------


def start_service(index_dir: Path, env: dict, log_path: Path) -> subprocess.Popen:
    cmd = in_ns(HEAD_NS, str(VENV_BIN / "amharic-search"), "serve", str(index_dir), "--ray", f"{HEAD_IP}:{RAY_PORT}",
                "--host", HEAD_IP, "--port", str(SERVE_PORT), "--no-rerank", "--reload-interval", "0")
    log("starting: " + " ".join(cmd[4:]))
    return subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_for_service(proc: subprocess.Popen, env: dict, log_path: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failed(f"the service exited (code {proc.returncode}):\n{log_path.read_text()[-5000:]}")
        try:
            state = helper(WORKER_NS, env, "_ready", f"http://{HEAD_IP}:{SERVE_PORT}", timeout=30)
            if state["status"] == 200:
                return
            last = state.get("body", "")
        except Failed as exc:
            last = str(exc).splitlines()[0]
        time.sleep(3)
    raise Failed(f"the service was not ready within {timeout:g} s (last: {last[:500]}):\n{log_path.read_text()[-5000:]}")


def stop_service(proc: subprocess.Popen) -> dict:
    """Ctrl-C to ``serve`` (it deletes the application and leaves the cluster); kill it after 60 s."""
    t = time.perf_counter()
    killed = False
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            killed = True
            proc.kill()
            proc.wait(timeout=10)
    return {"exit_code": proc.returncode, "seconds": round(time.perf_counter() - t, 1), "killed": killed}


# -- the run ---------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


@click.group(invoke_without_command=True)
@click.option("--corpus", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=DEFAULT_CORPUS, show_default=True)
@click.option("--queries-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=DEFAULT_QUERIES, show_default=True)
@click.option("--encoder", type=click.Path(exists=True, file_okay=False, path_type=Path), default=DEFAULT_ENCODER, show_default=True)
@click.option("--queries", "n_queries", default=20, show_default=True, help="Queries sent across the namespaces.")
@click.option("--top-k", default=10, show_default=True)
@click.option("--keep", is_flag=True, help=f"Keep {WORK} (indexes, Ray logs) afterwards.")
@click.option("--build-timeout", default=420, show_default=True, help="Seconds each build may take.")
@click.pass_context
def cli(ctx, corpus: Path, queries_file: Path, encoder: Path, n_queries: int, top_k: int, keep: bool, build_timeout: int) -> None:
    """Run the multi-host benchmark (needs root)."""
    if ctx.invoked_subcommand is not None:
        return
    if os.geteuid() != 0:
        raise click.ClickException("needs root (ip netns)")
    if shutil.which("ip") is None:
        raise click.ClickException("`ip` not found: apt-get install -y iproute2")

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    corpus, queries_file, encoder = corpus.resolve(), queries_file.resolve(), encoder.resolve()
    report: dict = {"corpus": str(corpus), "encoder": str(encoder), "date": time.strftime("%Y-%m-%d"),
                    "machine": f"{os.cpu_count()} cores"}
    service = None
    started = time.perf_counter()
    try:
        teardown()
        others = other_ray_processes()
        if others:
            log(f"warning: {len(others)} Ray process(es) of another cluster run on this machine (timings will be skewed); "
                "not touching them: " + "; ".join(others[:3]))
        report["other_ray_processes_at_start"] = len(others)
        shutil.rmtree(WORK, ignore_errors=True)
        WORK.mkdir(parents=True)
        env = ray_env()
        plain_dir, ray_dir = WORK / "amqa-plain", WORK / "amqa-ray-2"

        # 1. the plain build first, on a quiet machine (no namespaces, no Ray)
        build = [str(VENV_BIN / "amharic-search"), "index", "build", str(corpus), "--dense-model", str(encoder),
                 "--precision", "fp32", "--strict"]
        report["load_average_before_plain_build"] = load_average()
        log("plain build (no Ray, unsharded) ...")
        plain_s, plain_out = timed_build([*build, "--out", str(plain_dir)], env, build_timeout)
        (WORK / "build-plain.log").write_text(plain_out)
        log(f"plain build: {plain_s:.1f} s")

        # 2. two 'hosts'
        setup_namespaces()
        check_link(env)
        log(f"namespaces {HEAD_NS} ({HEAD_IP}) and {WORKER_NS} ({WORKER_IP}) up, TCP across the veth works")
        start_ray(env)
        nodes = wait_for_nodes(env)
        report["nodes"] = [{"ip": n["ip"], "head": n["head"], "cpus": n["cpus"], "alive": n["alive"]} for n in nodes]
        node_ip = {n["node_id"]: n["ip"] for n in nodes}
        log(f"cluster: {len(nodes)} alive nodes: {', '.join(n['ip'] for n in nodes)}")

        # 3. the distributed build, driven from the head namespace
        report["load_average_before_ray_build"] = load_average()
        log("Ray build (--ray, --shards 2) in the head namespace ...")
        ray_s, ray_out = timed_build(in_ns(HEAD_NS, *build, "--out", str(ray_dir), "--ray", f"{HEAD_IP}:{RAY_PORT}",
                                           "--shards", "2"), env, build_timeout)
        (WORK / "build-ray.log").write_text(ray_out)
        m = re.search(r"Embedded on (.+?) by (\d+) encoder worker\(s\) \((\w+)\)", ray_out)
        if not m:
            raise Failed(f"the Ray build did not print 'Embedded on ... by N encoder worker(s)':\n{ray_out[-3000:]}")
        encoder_actors = helper(HEAD_NS, env, "_actors", "EncoderWorker")["actors"]
        comparison = compare_indexes(plain_dir, ray_dir)
        passages = comparison["passages"]
        report["build"] = {
            "plain_s": round(plain_s, 1), "ray_s": round(ray_s, 1), "ray_overhead": round(ray_s / plain_s - 1, 3),
            "plain_passages_per_s": round(passages / plain_s, 1), "ray_passages_per_s": round(passages / ray_s, 1),
            "printed": m.group(0), "encoder_workers": int(m.group(2)), "device": m.group(3),
            "encoder_worker_nodes": sorted(node_ip.get(a["node_id"], a["node_id"]) for a in encoder_actors),
            **comparison,
        }
        log(f"Ray build: {ray_s:.1f} s; {m.group(0)}; workers on {report['build']['encoder_worker_nodes']}; "
            f"{passages} passages, same order: {comparison['same_passages_in_order']}, "
            f"max vector difference {comparison['max_vector_difference']}")

        # 4. the sharded service in the head namespace, queried from the worker namespace
        service_log = WORK / "serve.log"
        service = start_service(ray_dir, env, service_log)
        wait_for_service(service, env, service_log)
        replicas = helper(HEAD_NS, env, "_actors", "ServeReplica")["actors"]
        report["replicas"] = sorted(({"deployment": a["class_name"].split(":")[-1], "node": node_ip.get(a["node_id"], a["node_id"])}
                                     for a in replicas if a["state"] == "ALIVE"), key=lambda r: r["deployment"])
        others = helper(HEAD_NS, env, "_actors", "")["actors"]
        report["serve_system_actors"] = sorted({f"{a['class_name']}@{node_ip.get(a['node_id'], a['node_id'])}"
                                                 for a in others if a["state"] == "ALIVE" and "ServeReplica" not in a["class_name"]})
        log("replicas: " + ", ".join(f"{r['deployment']}@{r['node']}" for r in report["replicas"]))
        queries_path = WORK / "queries.json"
        from bench.common import read_jsonl

        queries = [q["text"] for q in read_jsonl(queries_file)][:n_queries]
        queries_path.write_text(json.dumps(queries, ensure_ascii=False))
        answers_path = WORK / "answers.json"
        sh(*in_ns(WORKER_NS, sys.executable, __file__, "_client", f"http://{HEAD_IP}:{SERVE_PORT}", str(queries_path),
                  str(answers_path), "--top-k", str(top_k)), timeout=300, env=env)
        answers = json.loads(answers_path.read_text())
        latencies = [a["seconds"] * 1000 for a in answers]
        # the Ingress replica (0.2 CPU) encodes queries with torch on 1 thread (Ray sets OMP_NUM_THREADS to 1
        # for it): compared with this process on 1 thread, and (for the record) on torch's default threads
        check = compare_answers(plain_dir, answers, top_k, threads=1)
        check_default = compare_answers(plain_dir, answers, top_k)
        report["search"] = {
            "url": f"http://{HEAD_IP}:{SERVE_PORT}/v1/search", "client": f"{WORKER_NS} ({WORKER_IP})", "top_k": top_k,
            "queries": len(answers), "compared_with": "Searcher.load(plain, reranker=None).search(q, rerank=False)",
            **check, "default_threads": {k: check_default[k] for k in ("torch_threads", "mismatches", "max_score_difference",
                                                                        "mismatch_details")},
            "latency_ms_p50": round(percentile(latencies, 50), 1), "latency_ms_p95": round(percentile(latencies, 95), 1),
            "latency_ms_max": round(max(latencies), 1),
        }
        # Serve starts an HTTP proxy on every node with the same --host: on the worker node 10.77.0.1 is not
        # a local address, so that proxy fails to bind and Serve restarts it again and again
        bind_failures = sum(f.read_text(errors="replace").count("Failed to bind to address")
                            for f in (WORK / "ray-worker").glob("session_*/logs/serve/proxy_*.log"))
        report["worker_proxy_bind_failures"] = bind_failures
        if bind_failures:
            log(f"note: the worker node's Serve proxy failed {bind_failures} times to bind {HEAD_IP}:{SERVE_PORT} "
                "(Serve runs a proxy on every node with serve --host)")
        report["service_stop"] = stop_service(service)
        service = None
        report["total_s"] = round(time.perf_counter() - started, 1)
        report["ok"] = bool(comparison["same_passages_in_order"] and comparison["max_vector_difference"] is not None
                            and comparison["max_vector_difference"] <= 1e-5 and check["mismatches"] == 0
                            and report["build"]["encoder_workers"] == 2)
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        raise SystemExit(130)
    except Failed as exc:
        log(f"FAILED: {exc}")
        report["error"] = str(exc)[:5000]
        raise SystemExit(1)
    finally:
        if service is not None:
            stop_service(service)
        teardown()
        log(f"namespaces {HEAD_NS} and {WORKER_NS} deleted, their Ray nodes stopped")
        if not keep:
            shutil.rmtree(WORK, ignore_errors=True)
        # a failed or interrupted run does not replace the last complete report
        target = REPORT if "total_s" in report else REPORT.with_suffix(".failed.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print_report(report)


def print_report(r: dict) -> None:
    b, s = r["build"], r["search"]
    print(f"""
Multi-host run ({r['total_s']} s): Ray head {HEAD_IP} ({HEAD_NS}) + worker {WORKER_IP} ({WORKER_NS}), 1 CPU each
  nodes:            {', '.join(f"{n['ip']}{' (head)' if n['head'] else ''}" for n in r['nodes'])}
  build, plain:     {b['plain_s']} s ({b['plain_passages_per_s']} passages/s), unsharded, no Ray
  build, Ray:       {b['ray_s']} s ({b['ray_passages_per_s']} passages/s), --shards 2; overhead {b['ray_overhead']:+.1%}
                    "{b['printed']}"; workers on {', '.join(b['encoder_worker_nodes'])}
  output:           {b['passages']} passages, same order: {b['same_passages_in_order']}, max vector difference {b['max_vector_difference']:.2e}
  replicas:         {', '.join(f"{x['deployment']}@{x['node']}" for x in r['replicas'])}
  search:           {s['queries']} queries from {s['client']} to {s['url']}: {s['mismatches']} mismatches against the
                    unsharded plain index in process on {s['torch_threads']} torch thread(s) (max score difference
                    {s['max_score_difference']}); on {s['default_threads']['torch_threads']} threads: {s['default_threads']['mismatches']}
                    mismatches (max {s['default_threads']['max_score_difference']})
  latency:          p50 {s['latency_ms_p50']} ms, p95 {s['latency_ms_p95']} ms (max {s['latency_ms_max']} ms)
  worker's proxy:   failed {r['worker_proxy_bind_failures']} times to bind {HEAD_IP}:{SERVE_PORT} (a proxy per node, same --host)
  load average:     {r['load_average_before_plain_build']} before the plain build, {r['load_average_before_ray_build']} before the Ray build
  all checks pass:  {r['ok']}
Report: {REPORT.relative_to(ROOT)}""")


# -- helpers run inside a namespace ----------------------------------------------------------------


def _connect() -> None:
    import logging

    import ray

    ray.init(address=f"{HEAD_IP}:{RAY_PORT}", log_to_driver=False, logging_level=logging.WARNING, include_dashboard=False)


@cli.command("_nodes")
def nodes_cmd() -> None:
    import ray

    _connect()
    nodes = [{"node_id": n["NodeID"], "ip": n["NodeManagerAddress"], "alive": n["Alive"], "cpus": n["Resources"].get("CPU", 0),
              "head": "node:__internal_head__" in n["Resources"]} for n in ray.nodes()]
    print(json.dumps({"nodes": nodes}))


@cli.command("_actors")
@click.argument("class_contains")
def actors_cmd(class_contains: str) -> None:
    """Actors (also dead ones) whose class name contains CLASS_CONTAINS, with their node. From the GCS actor
    table (``ray._private.state.actors``): ``ray.util.state.list_actors`` needs the dashboard's API server,
    which this cluster runs without."""
    from ray._private.state import actors

    _connect()
    found = [{"class_name": a["ActorClassName"], "state": a["State"], "node_id": a["Address"]["NodeID"],
              "ip": a["Address"]["IPAddress"], "pid": a.get("Pid")}
             for a in actors().values() if class_contains in (a["ActorClassName"] or "")]
    print(json.dumps({"actors": found}))


@cli.command("_ready")
@click.argument("url")
def ready_cmd(url: str) -> None:
    import httpx

    try:
        r = httpx.get(f"{url}/v1/ready", timeout=10)
        print(json.dumps({"status": r.status_code, "body": r.text[:1000]}))
    except httpx.HTTPError as exc:
        print(json.dumps({"status": 0, "body": f"{type(exc).__name__}: {exc}"}))


@cli.command("_client")
@click.argument("url")
@click.argument("queries", type=click.Path(exists=True, path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--top-k", default=10)
def client_cmd(url: str, queries: Path, out: Path, top_k: int) -> None:
    import httpx

    texts = json.loads(queries.read_text())
    answers = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for warm in texts[:2]:  # first requests load lazily (query encoder, shard handles)
            client.post("/v1/search", json={"query": warm, "top_k": top_k, "rerank": False}).raise_for_status()
        for text in texts:
            t = time.perf_counter()
            r = client.post("/v1/search", json={"query": text, "top_k": top_k, "rerank": False})
            seconds = time.perf_counter() - t
            if r.status_code != 200:
                raise SystemExit(f"{r.status_code} for {text!r}: {r.text[:500]}")
            answers.append({"query": text, "seconds": seconds, "response": r.json()})
    out.write_text(json.dumps(answers, ensure_ascii=False))
    print(json.dumps({"answers": len(answers)}))


if __name__ == "__main__":
    cli()
