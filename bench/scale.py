"""Scale: build and search a synthetic Amharic-like corpus of 1,000,000 passages.

    python bench/scale.py                       # 1,000,000 passages (about 25 min on 2 cores)
    python bench/scale.py --passages 100000     # quicker

The corpus: passages of 30-90 words drawn from the word frequencies of the enh articles (so posting
lists are as long as in real Amharic news), written as JSONL and indexed by the product
(`build_index`, lexical part: analysis, BM25, SQLite store). Embedding a million passages with the
real encoder would take days on this CPU, so the dense part uses synthetic clustered unit vectors
of the medium encoder's 512 dimensions, indexed by the product's `DenseIndex` (IVF above 100,000
passages) and searched with a randomly initialised medium encoder for the query (real encoding
time). Queries: enh test headlines. Each phase runs in its own process, whose peak memory is reported.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import DATA, machine, markdown_table, read_jsonl, today, write_section  # noqa: E402

DIM = 512


def write_corpus(path: Path, n: int, seed: int = 0) -> None:
    counts = Counter(w for d in read_jsonl(DATA / "enh" / "corpus.jsonl") for w in re.findall(r"\S+", d["text"]))
    words = np.array(list(counts))
    p = np.array(list(counts.values()), dtype=np.float64)
    p /= p.sum()
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, n, 10_000):
            m = min(10_000, n - start)
            lengths = rng.integers(30, 91, m)
            picks = words[rng.choice(len(words), size=int(lengths.sum()), p=p)]
            offsets = np.r_[0, np.cumsum(lengths)]
            for i in range(m):
                text = " ".join(picks[offsets[i] : offsets[i + 1]]) + "።"
                f.write(json.dumps({"id": f"s{start + i}", "title": "", "text": text}, ensure_ascii=False) + "\n")


def vectors(n: int, seed: int = 1) -> np.ndarray:
    """Clustered unit vectors (2,048 topics), so an IVF index has the structure real embeddings have."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((2048, DIM)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x = centers[rng.integers(0, 2048, m)] + 0.6 * rng.standard_normal((m, DIM)).astype(np.float32)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def child(*args: str) -> tuple[dict, float]:
    """Run ``python bench/scale.py _phase ...``; its JSON result and peak resident memory (MB)."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TQDM_DISABLE": "1"})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"phase {args[0]} failed:\n{out}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


@click.group()
def cli() -> None:
    pass


@cli.command("_build_lexical")
@click.argument("corpus")
@click.argument("out")
def build_lexical(corpus: str, out: str) -> None:
    from amharic_search.index.build import build_index

    t = time.perf_counter()
    report = build_index(corpus, out, dense_model=None, show_progress=False)
    print(json.dumps({"seconds": time.perf_counter() - t, "passages": report.passages}))


@cli.command("_build_dense")
@click.argument("out")
@click.argument("encoder")
def build_dense(out: str, encoder: str) -> None:
    from amharic_search.index.layout import DENSE_FILE
    from amharic_search.index.dense import DenseIndex
    from amharic_search.index.manifest import read_manifest, write_manifest

    manifest = read_manifest(out)
    n = manifest["corpus"]["passages"]
    t = time.perf_counter()
    x = vectors(n)
    gen = time.perf_counter() - t
    t = time.perf_counter()
    index = DenseIndex.build(x)
    index.save(Path(out) / DENSE_FILE)
    build = time.perf_counter() - t
    np.save(Path(out).parent / "vectors.npy", x)
    manifest["dense"] = {"model": encoder, "dim": DIM, "normalized": True, "faiss": index.info, "synthetic": True}
    write_manifest(Path(out), manifest)
    print(json.dumps({"generate_s": gen, "faiss_build_s": build, "faiss": index.info}))


def memory_mb() -> dict[str, float]:
    """This process's peak resident memory and what is resident now: anonymous (its own) and
    file-backed (pages of memory-mapped files, which the kernel can drop and read again)."""
    fields = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) / 1024
    return {"peak": fields["VmHWM"], "anon": fields["RssAnon"], "file": fields["RssFile"]}


@cli.command("_search")
@click.argument("out")
@click.option("--queries", "n", default=200)
@click.option("--reranker", default=None, help="Cross-encoder for the end-to-end queries.")
@click.option("--reranked", default=10, help="Queries searched end to end (with reranking of 100 candidates).")
def search_phase(out: str, n: int, reranker: str | None, reranked: int) -> None:
    from amharic_search.search import Searcher

    queries = [q["text"] for q in read_jsonl(DATA / "enh" / "queries.jsonl")][:n]
    t = time.perf_counter()
    s = Searcher.load(out, reranker=reranker)
    load_s = time.perf_counter() - t
    mem_loaded = memory_mb()
    lex, dense, first = [], [], []
    for q in queries:
        t = time.perf_counter()
        s.collection.lexical(s.analyzer.tokens(q), 300)
        lex.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        s.first.dense_retrieve(q, 300)
        dense.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        s.first_stage(q, candidates=100)
        first.append((time.perf_counter() - t) * 1000)
    mem_first = memory_mb()
    e2e = []
    for q in queries[:reranked] if reranker else []:
        t = time.perf_counter()
        s.search(q, candidates=100)
        e2e.append(time.perf_counter() - t)
    mem_all = memory_mb()
    pct = lambda v, p: float(np.percentile(v, p))  # noqa: E731
    print(json.dumps({"load_s": load_s, "mem_loaded": mem_loaded, "mem_first": mem_first, "mem_all": mem_all,
                      "e2e_p50": pct(e2e, 50) if e2e else None, "reranked": len(e2e),
                      "lexical_p50": pct(lex, 50), "lexical_p95": pct(lex, 95), "dense_p50": pct(dense, 50),
                      "dense_p95": pct(dense, 95), "first_p50": pct(first, 50), "first_p95": pct(first, 95),
                      "info": s.collection.vectors.info}))


@cli.command("_recall")
@click.argument("out")
def recall_phase(out: str) -> None:
    """Recall@100 of the index's FAISS search against exact search over the same vectors."""
    from amharic_search.index.layout import DENSE_FILE
    from amharic_search.index.dense import DenseIndex
    from amharic_search.index.manifest import read_manifest

    index = DenseIndex.load(Path(out) / DENSE_FILE, read_manifest(out)["dense"]["faiss"])
    x = np.load(Path(out).parent / "vectors.npy", mmap_mode="r")
    rng = np.random.default_rng(2)
    hits = []
    for i in range(50):  # probes near corpus vectors, as real queries land near documents
        probe = np.asarray(x[rng.integers(0, x.shape[0])]) + 0.5 * rng.standard_normal(DIM).astype(np.float32) / np.sqrt(DIM)
        probe = (probe / np.linalg.norm(probe)).astype(np.float32)
        approx, _ = index.search(probe, 100)
        scores = np.concatenate([np.asarray(x[j : j + 100_000]) @ probe for j in range(0, x.shape[0], 100_000)])
        exact = np.argpartition(-scores, 100)[:100]
        hits.append(len(set(approx.tolist()) & set(exact.tolist())) / 100)
    print(json.dumps({"recall100": float(np.mean(hits)), "worst": float(np.min(hits))}))


@cli.command("ivf-storage")
@click.option("--vectors", "n", default=1_000_000, show_default=True)
@click.option("--probes", default=100, show_default=True)
def ivf_storage(n: int, probes: int) -> None:
    """IVF lists stored as float32, float16 or 8-bit: size, latency, recall@100; writes BENCHMARKS.md."""
    import faiss

    from amharic_search.index.dense import ivf_settings

    x = vectors(n)
    settings = ivf_settings(n)
    rng = np.random.default_rng(2)
    queries = x[rng.integers(0, n, probes)] + 0.5 * rng.standard_normal((probes, DIM)).astype(np.float32) / np.sqrt(DIM)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    exact = [set(np.argpartition(-(x @ q), 100)[:100].tolist()) for q in queries]
    sample = x[np.sort(np.random.default_rng(0).choice(n, size=min(n, 64 * settings["nlist"]), replace=False))]
    rows = []
    for name, kind in (("float32 (IVF-Flat)", None), ("float16 (default)", faiss.ScalarQuantizer.QT_fp16),
                       ("8-bit", faiss.ScalarQuantizer.QT_8bit)):
        quantizer = faiss.IndexFlatIP(DIM)
        if kind is None:
            index = faiss.IndexIVFFlat(quantizer, DIM, settings["nlist"], faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFScalarQuantizer(quantizer, DIM, settings["nlist"], kind, faiss.METRIC_INNER_PRODUCT)
        t = time.perf_counter()
        index.train(sample)
        index.add(x)
        build_s = time.perf_counter() - t
        index.nprobe = settings["nprobe"]
        latency, recall = [], []
        for q, truth in zip(queries, exact):
            t = time.perf_counter()
            _, ids = index.search(q[None], 300)
            latency.append((time.perf_counter() - t) * 1000)
            recall.append(len(set(ids[0][:100].tolist()) & truth) / 100)
        size_mb = faiss.serialize_index(index).nbytes / 1e6
        rows.append([name, f"{size_mb:.0f} MB", f"{build_s:.0f} s", f"{np.percentile(latency, 50):.1f} / {np.percentile(latency, 95):.1f} ms",
                     f"{np.mean(recall):.4f} (worst {np.min(recall):.2f})"])
        print(rows[-1], flush=True)
        del index
    body = (
        f"Machine: {machine()}. Date: {today()}. Rerun: `python bench/scale.py ivf-storage --vectors {n}`.\n\n"
        f"{n:,} synthetic clustered unit vectors of 512 dimensions (as in \"Scale\"), IVF with {settings['nlist']} lists, "
        f"{settings['nprobe']} probed; {probes} queries near corpus vectors; recall@100 against exact search; "
        "search time for the top 300 on FAISS's own threads.\n\n"
        + markdown_table(["vectors stored as", "index size", "build", "search p50 / p95", "recall@100"], rows)
    )
    write_section(f"Dense index storage: {n:,} vectors", body)
    print(body)


@cli.command("run")
@click.option("--passages", "n", default=1_000_000, show_default=True)
@click.option("--queries", default=200, show_default=True)
def run(n: int, queries: int) -> None:
    """Generate, build and search; writes BENCHMARKS.md "Scale"."""
    from bench.speed import build_models

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        write_corpus(tmp / "corpus.jsonl", n)
        gen_s = time.perf_counter() - t
        size_mb = (tmp / "corpus.jsonl").stat().st_size / 1e6
        print(f"corpus: {n} passages, {size_mb:.0f} MB in {gen_s:.0f} s", flush=True)
        lexical, lexical_mb = child("_build_lexical", str(tmp / "corpus.jsonl"), str(tmp / "idx"))
        print("lexical build", lexical, lexical_mb, flush=True)
        encoder, _, _ = build_models(tmp / "models", "medium", [d["text"] for d in read_jsonl(DATA / "enh" / "corpus.jsonl")[:3000]])
        encoder.save(str(tmp / "encoder"))
        dense, dense_mb = child("_build_dense", str(tmp / "idx"), str(tmp / "encoder"))
        print("dense build", dense, dense_mb, flush=True)
        found, _ = child("_search", str(tmp / "idx"), "--queries", str(queries),
                                 "--reranker", str(tmp / "models" / "ce"))
        print("search", found, flush=True)
        recall, _ = child("_recall", str(tmp / "idx"))
        print("recall", recall, flush=True)
        files = {(f.stat().st_dev, f.stat().st_ino): f.stat().st_size for f in (tmp / "idx").rglob("*") if f.is_file()}
        disk = sum(files.values()) / 1e6  # hard-linked files once
    resident = lambda m: f"{m['peak']:.0f} MB (then resident: {m['anon']:.0f} own + {m['file']:.0f} mapped files)"  # noqa: E731
    rows = [
        ["build: lexical (analysis, BM25, store)", f"{lexical['seconds']:.0f} s", f"{lexical_mb:.0f} MB"],
        [f"build: dense ({dense['faiss']['type']}, {DIM}-d synthetic vectors)", f"{dense['faiss_build_s']:.0f} s", f"{dense_mb:.0f} MB"],
        ["search process: load the index and both models", f"{found['load_s']:.1f} s", resident(found["mem_loaded"])],
        ["lexical stage (analysis + BM25 top 300) p50 / p95", f"{found['lexical_p50']:.1f} / {found['lexical_p95']:.1f} ms", ""],
        ["query encoding + FAISS (top 300 documents) p50 / p95", f"{found['dense_p50']:.1f} / {found['dense_p95']:.1f} ms", ""],
        ["first stage (both + fusion + 100 candidates) p50 / p95", f"{found['first_p50']:.1f} / {found['first_p95']:.1f} ms", ""],
        [f"search process: peak after the {queries} first-stage queries", "", resident(found["mem_first"])],
        [f"end to end with reranking of 100 candidates ({found['reranked']} queries) p50",
         f"{found['e2e_p50']:.1f} s", ""],
        ["search process: peak memory (load + all the queries)", "", resident(found["mem_all"])],
    ]
    body = (
        f"Machine: {machine()}. Date: {today()}. Rerun: `python bench/scale.py run --passages {n}`.\n\n"
        f"{n:,} synthetic passages (30-90 words drawn from the enh word frequencies; {size_mb:.0f} MB of JSONL, "
        f"index directory {disk:.0f} MB); dense vectors synthetic (clustered, {DIM}-d), query encoder a randomly "
        f"initialised medium encoder; {queries} enh test headlines as queries. FAISS: {dense['faiss']}; its recall@100 "
        f"against exact search: {recall['recall100']:.3f} (worst {recall['worst']:.2f}; 50 probes near corpus vectors, "
        "measured in a separate process). The search process memory-maps "
        "the BM25 arrays and the document offsets and reads passages from SQLite: it never loads the corpus text. "
        "Its models are randomly initialised medium encoder and reranker. Memory: peak resident set; "
        "\"own\" is the process's anonymous memory (models, FAISS lists, vocabulary), \"mapped files\" the pages "
        "of memory-mapped files: the BM25 arrays the queries touched and the models' weight files (shared page "
        "cache, which the kernel drops under memory pressure). Each synthetic document is one passage, so the document-level BM25 index is the "
        "passage index (hard links, built once); with longer documents it is a second index of about the same "
        "size, and the queries still scan only that one: the passage index is read by binary search for the top "
        "documents' passages.\n\n"
        + markdown_table(["phase", "time", "peak memory"], rows)
    )
    write_section(f"Scale: {n:,} passages", body)
    print(body)


if __name__ == "__main__":
    cli()
