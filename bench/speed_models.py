"""Model stages on any device (CPU or GPU): rerank 100 candidates, query encoding, passage encoding
throughput, with randomly initialised models of the real architectures (bench/speed.py builds them).

    python bench/speed_models.py --device cuda                  # GPU figures (fp32 and fp16)
    python bench/speed_models.py --device cpu --sizes medium

Candidates are each enh test headline's BM25 top-100 documents (cut at the max length), computed
with the index's analyzer, or read from --candidates (a JSON {query: [document ids]}).
Prints JSON and writes it to --out.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import DATA, markdown_table, read_jsonl, today, write_section  # noqa: E402


def write_report(results: dict, n_queries: int) -> None:
    rows = []
    for r in results["rows"]:
        what = r["stage"] + (f", max length {r['max_length']}" if "max_length" in r else "")
        value = f"{r['passages_per_s']:.0f} passages/s" if "passages_per_s" in r else f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f} ms"
        rows.append([r["size"], r["dtype"], what, value])
    body = (f"Device: {results['device']}, torch {results['torch']}. Date: {today()} (measured on a lent GPU machine). "
            "Rerun on a GPU: `python bench/speed_models.py --device cuda --out result.json`, then "
            "`python bench/speed_models.py --report result.json`.\n\nRandomly initialised models of the real architectures; "
            f"rerank = one enh headline's 100 BM25 candidate articles in one batch (p50 / p95 over {n_queries} headlines); "
            "passage encoding = 2,048 enh articles, batch 128, one timed run without warm-up (the fp16 figure at 512 includes kernel selection).\n\n"
            + markdown_table(["size", "dtype", "stage", "p50 / p95 or throughput"], rows))
    write_section("Speed on a GPU", body)


def bm25_candidates(corpus: list[dict], queries: list[str], depth: int = 100) -> dict[str, list[str]]:
    from amharic_search.index.analyzer import Analyzer
    from amharic_search.index.bm25 import BM25Index

    a = Analyzer()
    bm25 = BM25Index.build([a.tokens(d["text"]) for d in corpus])
    return {q: [corpus[r]["id"] for r in bm25.top_k(a.tokens(q), depth)[0].tolist()] for q in queries}


def timed(fn, sync) -> float:
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return (time.perf_counter() - t) * 1000


@click.command()
@click.option("--device", default="cpu")
@click.option("--sizes", default="medium,base")
@click.option("--queries", "n_queries", default=20, show_default=True)
@click.option("--candidates", "cand_path", default=None)
@click.option("--save-candidates", default=None)
@click.option("--out", default=None)
@click.option("--report", default=None, help="Write the BENCHMARKS.md section from a result JSON and stop.")
def main(device, sizes, n_queries, cand_path, save_candidates, out, report) -> None:
    if report:
        write_report(json.loads(Path(report).read_text()), n_queries)
        return
    corpus = read_jsonl(DATA / "enh" / "corpus.jsonl")
    text_of = {d["id"]: d["text"] for d in corpus}
    queries = [q["text"] for q in read_jsonl(DATA / "enh" / "queries.jsonl")][:n_queries]
    cands = json.loads(Path(cand_path).read_text()) if cand_path else bm25_candidates(corpus, queries)
    if save_candidates:
        Path(save_candidates).write_text(json.dumps(cands, ensure_ascii=False))
        return
    import torch

    from bench.speed import build_models
    from amharic_search.index.dense import encode

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    dtypes = ["float32", "float16"] if device.startswith("cuda") else ["float32"]
    results = {"device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu", "torch": torch.__version__,
               "threads": torch.get_num_threads(), "rows": []}
    passages = [d["text"] for d in corpus[:2048]]
    for size in sizes.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            encoder, reranker, params = build_models(Path(tmp), size, [d["text"] for d in corpus[:3000]])
            for dtype in dtypes:
                encoder.to(device=device, dtype=getattr(torch, dtype))
                reranker.model.to(device=device, dtype=getattr(torch, dtype))
                for max_length in (512, 256, 128):
                    reranker.max_seq_length = max_length  # a CrossEncoder, not the product's Reranker
                    times = []
                    for q in queries:
                        pairs = [(q, text_of[i]) for i in cands[q]]
                        pairs.sort(key=lambda p: -len(p[1]))
                        times.append(timed(lambda: reranker.predict(pairs, batch_size=100 if device != "cpu" else 16, show_progress_bar=False), sync))
                    results["rows"].append({"stage": "rerank 100", "size": size, "dtype": dtype, "max_length": max_length,
                                            "p50_ms": float(np.percentile(times[2:], 50)), "p95_ms": float(np.percentile(times[2:], 95))})
                    print(results["rows"][-1], flush=True)
                    if out:
                        Path(out).write_text(json.dumps(results, indent=1))
                times = [timed(lambda: encode(encoder, [q], kind="query"), sync) for q in queries * 3]
                results["rows"].append({"stage": "query encoding", "size": size, "dtype": dtype,
                                        "p50_ms": float(np.percentile(times[5:], 50)), "p95_ms": float(np.percentile(times[5:], 95))})
                for max_length in (512, 256):
                    encoder.max_seq_length = max_length
                    n = len(passages) if device != "cpu" else 128
                    ms = timed(lambda: encode(encoder, passages[:n], kind="document", batch_size=128 if device != "cpu" else 32), sync)
                    results["rows"].append({"stage": "passage encoding", "size": size, "dtype": dtype, "max_length": max_length,
                                            "passages_per_s": n / ms * 1000})
                    print(results["rows"][-1], flush=True)
    if out:
        Path(out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
