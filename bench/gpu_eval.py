"""Sanity figures for the models trained by bench/gpu_train.py, on the enh test side (CPU).

    .venv/bin/python bench/gpu_eval.py dense  --model ../shared/models/me5-small-am --tag base
    .venv/bin/python bench/gpu_eval.py dense  --model /work/models/enh-encoder-gpu --tag ft
    .venv/bin/python bench/gpu_eval.py rerank --model /work/models/enh-reranker-gpu --queries 200

``dense``: the 1,000 enh test headlines against all 12,986 articles of corpus.jsonl, each article cut
to 256 tokens (prompt included, as in training), queries with the "query: " prompt; exact cosine
search; MRR@10 (RR@10) and Recall@100 with ir_measures. Article vectors are cached in
``--cache`` (by tag). bf16 autocast on the CPU (AMX) unless ``--fp32``.
``rerank``: BM25 top 100 (bm25s defaults, whitespace + Ethiopic/ASCII punctuation tokens, the
tokenizer of gpu_train.py) for the first ``--queries`` test headlines, reranked by the cross-encoder
at ``--max-length`` 512 tokens; MRR@10 of BM25 and of the reranked lists (and Recall@100 of BM25,
the reranker's ceiling). Results go to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_train import SHARED, simple_tokens

ENH = SHARED / "data" / "enh"


def load():
    corpus = [json.loads(l) for l in (ENH / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    queries = [json.loads(l) for l in (ENH / "queries.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    qrels = {}
    for line in (ENH / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        q, d, r = line.rstrip("\n").split("\t")
        qrels.setdefault(q, {})[d] = int(r)
    return corpus, queries, qrels


def measure(run: dict, qrels: dict, measures=("RR@10", "R@100", "nDCG@10")) -> dict:
    import ir_measures

    ms = [ir_measures.parse_measure(m) for m in measures]
    qrels = {q: qrels[q] for q in run}
    agg = ir_measures.calc_aggregate(ms, qrels, run)
    return {str(m): round(float(agg[m]), 4) for m in ms}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cmd_dense(a):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(a.threads)
    corpus, queries, qrels = load()
    m = SentenceTransformer(a.model, device="cpu")
    m.max_seq_length = 256
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    vec_path = cache / f"docs-{a.tag}.npy"
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if not a.fp32 else torch.no_grad()
    t0 = time.time()
    with ctx:
        if vec_path.exists():
            D = np.load(vec_path)
            log(f"article vectors from {vec_path}")
        else:
            D = m.encode_document([d["text"] for d in corpus], batch_size=32, convert_to_numpy=True,
                                  normalize_embeddings=True, show_progress_bar=a.progress).astype(np.float32)
            np.save(vec_path, D)
        td = time.time() - t0
        Q = m.encode_query([q["text"] for q in queries], batch_size=64, convert_to_numpy=True,
                           normalize_embeddings=True).astype(np.float32)
    log(f"encoded {len(corpus)} articles in {td:.0f}s, {len(queries)} queries")
    S = Q @ D.T
    top = np.argsort(-S, axis=1)[:, :100]
    run = {q["id"]: {corpus[j]["id"]: float(S[i, j]) for j in top[i]} for i, q in enumerate(queries)}
    res = {"tag": a.tag, "model": a.model, "queries": len(queries), "docs": len(corpus), "max_seq_length": 256,
           "bf16": not a.fp32, "doc_encode_s": round(td, 1), **measure(run, qrels)}
    log(json.dumps(res))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"dense-{a.tag}.json").write_text(json.dumps(res, indent=1))


def cmd_rerank(a):
    import bm25s
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(a.threads)
    corpus, queries, qrels = load()
    retr = bm25s.BM25()
    retr.index([simple_tokens(d["text"]) for d in corpus], show_progress=False)
    res_all, sc_all = retr.retrieve([simple_tokens(q["text"]) or ["_"] for q in queries], k=100, show_progress=False, n_threads=1)
    bm25_run = {q["id"]: {corpus[j]["id"]: float(s) for j, s in zip(res_all[i], sc_all[i])} for i, q in enumerate(queries)}
    out = {"bm25_all_1000": measure(bm25_run, qrels)}
    log(f"BM25, all {len(queries)} queries: {out['bm25_all_1000']}")
    sub = queries[: a.queries]
    out["bm25_first"] = measure({q["id"]: bm25_run[q["id"]] for q in sub}, qrels)
    log(f"BM25, first {len(sub)}: {out['bm25_first']}")
    ce = CrossEncoder(a.model, device="cpu", max_length=a.max_length)
    text = {d["id"]: d["text"] for d in corpus}
    run = {}
    t0 = time.time()
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if not a.fp32 else torch.no_grad()
    with ctx:
        for n, q in enumerate(sub):
            ids = list(bm25_run[q["id"]])
            s = ce.predict([(q["text"], text[d]) for d in ids], batch_size=32, show_progress_bar=False)
            run[q["id"]] = {d: float(x) for d, x in zip(ids, s)}
            if (n + 1) % 20 == 0:
                part = measure(run, qrels, ("RR@10",))
                log(f"{n + 1} queries reranked, {time.time() - t0:.0f}s, running RR@10 {part}")
    out["reranked_first"] = measure(run, qrels)
    out.update(model=a.model, queries=len(sub), depth=100, max_length=a.max_length, bf16=not a.fp32,
               seconds=round(time.time() - t0, 1))
    log(json.dumps(out))
    p = Path(a.out)
    p.mkdir(parents=True, exist_ok=True)
    (p / f"rerank-{Path(a.model).name}.json").write_text(json.dumps(out, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("dense", "rerank"):
        p = sub.add_parser(name)
        p.add_argument("--model", required=True)
        p.add_argument("--out", default="/work/models/eval")
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--fp32", action="store_true")
        if name == "dense":
            p.add_argument("--tag", required=True)
            p.add_argument("--cache", default="/work/models/eval/cache")
            p.add_argument("--progress", action="store_true")
        else:
            p.add_argument("--queries", type=int, default=200)
            p.add_argument("--max-length", type=int, default=512)
    a = ap.parse_args()
    {"dense": cmd_dense, "rerank": cmd_rerank}[a.cmd](a)


if __name__ == "__main__":
    main()
