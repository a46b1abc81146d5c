"""Reranker speed-ups on this CPU: fidelity, quality and latency of each backend, max length and window.

    python bench/train_reranker.py          # once: a small trained Amharic cross-encoder (see there)
    python bench/rerank.py                  # all parts, writes BENCHMARKS.md "Reranker backends ..."
    python bench/rerank.py --part latency --queries 5

* fidelity: the trained cross-encoder (bench/.cache/reranker-me5-6l) scores each enh test headline's
  100 BM25 candidates (the product's passages) with fp32 PyTorch and with each faster backend at
  the same max length and window; Spearman correlation of the 100 scores and overlap of the top 10.
* quality: MRR@10 on enh of BM25 + rerank with that model, for each max length, window (head of
  the passage or the sentences matching the query most) and rerank depth (the rest keep BM25 order).
* latency: randomly initialised cross-encoder of the real medium architecture (speed does not
  depend on the weights), ms per query for each max length x rerank depth x backend.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import DATA, load_collection, machine, markdown_table, today, write_section  # noqa: E402

TRAINED = ROOT / "bench" / ".cache" / "reranker-me5-6l"
BACKENDS = ("torch", "torch-bf16", "onnx-int8", "onnx")


def candidates(searcher, queries: dict[str, str], n: int):
    out = {}
    for qid, text in list(queries.items())[:n]:
        _, cands = searcher.first_stage(text, stages="lexical", candidates=100)
        out[qid] = (text, searcher.collection.passages([c.row for c in cands]))
    return out


def rerankers(path: str, backends, max_length: int):
    from amharic_search.search.rerank import Reranker

    return {b: Reranker.load(path, backend=b, max_length=max_length) for b in backends}


def texts_for(searcher, reranker, query, passages, window):
    searcher.second.reranker = reranker
    return searcher.reranker_inputs(query, passages, window)


def mrr_at_depth(cands, scores, qrels, depth) -> float:
    total = 0.0
    for qid, (_, passages) in cands.items():
        docs = [p.doc_id for p in passages]
        head = sorted(range(min(depth, len(docs))), key=lambda i: -scores[qid][i])
        order = [docs[i] for i in head] + docs[depth:]
        rel = qrels.get(qid, {})
        total += next((1 / (r + 1) for r, d in enumerate(order[:10]) if rel.get(d, 0) > 0), 0.0)
    return total / len(cands)


def fidelity_and_quality(searcher, queries, qrels, n_fid: int, n_quality: int):
    from scipy.stats import spearmanr

    settings = [(128, "best"), (256, "best"), (256, "head"), (512, "head")]
    fid_rows, quality_rows = [], []
    cands = candidates(searcher, queries, max(n_fid, n_quality))
    fid_cands = dict(list(cands.items())[:n_fid])
    for max_length, window in settings:
        rr = rerankers(str(TRAINED), ("torch", "torch-bf16", "onnx-int8"), max_length)
        ref = {}
        for qid, (q, ps) in fid_cands.items():
            ref[qid] = rr["torch"].score(q, texts_for(searcher, rr["torch"], q, ps, window))
        for backend in ("torch-bf16", "onnx-int8"):
            rho, overlap = [], []
            for qid, (q, ps) in fid_cands.items():
                got = rr[backend].score(q, texts_for(searcher, rr[backend], q, ps, window))
                rho.append(spearmanr(ref[qid], got)[0])
                overlap.append(len(set(np.argsort(-ref[qid])[:10]) & set(np.argsort(-got)[:10])))
            fid_rows.append([max_length, window, backend, float(np.median(rho)), float(np.min(rho)),
                             float(np.mean(overlap)), int(np.min(overlap))])
            print(fid_rows[-1], flush=True)
        # quality with the bf16 backend (its fidelity is in the table above) on more queries
        scores = {qid: rr["torch-bf16"].score(q, texts_for(searcher, rr["torch-bf16"], q, ps, window))
                  for qid, (q, ps) in cands.items()}
        for depth in (20, 30, 50, 100):
            quality_rows.append([max_length, window, depth, mrr_at_depth(cands, scores, qrels, depth)])
            print(quality_rows[-1], flush=True)
    first = mrr_at_depth(cands, {q: -np.arange(100.0) for q in cands}, qrels, 100)
    return fid_rows, quality_rows, first, len(cands)


def latency(searcher, queries, n: int, size: str):
    from bench.speed import build_models

    rows = []
    corpus, _, _ = load_collection("enh")
    with tempfile.TemporaryDirectory() as tmp:
        build_models(Path(tmp), size, [d["text"] for d in corpus[:3000]])  # writes tmp/ce
        cands = candidates(searcher, queries, n)
        for max_length in (128, 256, 512):
            for backend in BACKENDS:
                rr = rerankers(str(Path(tmp) / "ce"), (backend,), max_length)[backend]
                for depth in (30, 100):
                    times = []
                    for q, ps in cands.values():
                        texts = texts_for(searcher, rr, q, ps[:depth], "best")
                        rr._cache.clear()
                        t = time.perf_counter()
                        rr.score(q, texts)
                        times.append((time.perf_counter() - t) * 1000)
                    rows.append([max_length, depth, backend, float(np.percentile(times, 50)), float(np.percentile(times, 95))])
                    print(rows[-1], flush=True)
    return rows


@click.command()
@click.option("--part", type=click.Choice(["all", "fidelity", "latency"]), default="all")
@click.option("--fidelity-queries", default=20, show_default=True)
@click.option("--quality-queries", default=60, show_default=True)
@click.option("--queries", "n_latency", default=5, show_default=True, help="Queries timed per latency setting.")
@click.option("--size", default="medium", show_default=True)
def main(part, fidelity_queries, quality_queries, n_latency, size) -> None:
    import torch

    from amharic_search.index.build import build_index
    from amharic_search.search import Searcher

    _, queries, qrels = load_collection("enh")
    with tempfile.TemporaryDirectory() as tmp:
        build_index(DATA / "enh" / "corpus.jsonl", Path(tmp) / "idx", dense_model=None, show_progress=False)
        searcher = Searcher.load(Path(tmp) / "idx", reranker=None)
        head = (f"Machine: {machine()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
                f"onnxruntime with one thread per core. Date: {today()}.\n")
        if part in ("all", "fidelity"):
            if not TRAINED.exists():
                raise SystemExit(f"{TRAINED} is missing: run python bench/train_reranker.py first")
            fid, quality, first, n = fidelity_and_quality(searcher, queries, qrels, fidelity_queries, quality_queries)
            body = (head + "Rerun: `python bench/train_reranker.py; python bench/rerank.py --part fidelity`.\n\n"
                    "Trained cross-encoder: bench/train_reranker.py (me5-small-am, 6 layers, fine-tuned on the 11,277 enh "
                    "train pairs with BM25 hard negatives for 2 epochs on a GPU). Candidates: the BM25 top 100 passages "
                    f"of the first {fidelity_queries} enh test headlines. Each faster backend against fp32 PyTorch at the "
                    "same max length and window.\n\n"
                    + markdown_table(["max length", "window", "backend", "Spearman (median)", "Spearman (worst)",
                                      "top-10 overlap (mean)", "top-10 overlap (worst)"], fid)
                    + f"\n\nQuality of the rerank (bf16) on the first {n} enh test headlines, MRR@10 (BM25 alone on them: "
                    f"{first:.3f}); depth = candidates reranked, the rest keep the BM25 order:\n\n"
                    + markdown_table(["max length", "window", "rerank depth", "MRR@10"], quality))
            write_section("Reranker backends: fidelity and quality", body)
        if part in ("all", "latency"):
            rows = latency(searcher, queries, n_latency, size)
            body = (head + f"Rerun: `python bench/rerank.py --part latency`.\n\nRandomly initialised cross-encoder "
                    f"of the {size} architecture, ms to score one query's candidates (BM25 top passages of {n_latency} "
                    "enh test headlines, window `best`), length-sorted batches of 16.\n\n"
                    + markdown_table(["max length", "rerank depth", "backend", "p50 ms", "p95 ms"], rows))
            write_section(f"Reranker backends: latency ({size})", body)


if __name__ == "__main__":
    main()
