"""Trained models on the whole enh collection, and on AmQA with enh as distractors (CPU): dense
alone, the fused first stage, and the trained cross-encoder over the fused top 100 (issue: semantic
quality without a GPU).

    python bench/train_speed.py --full-epoch            # the encoder, one epoch on the CPU (train's defaults)
    python bench/dense_runs.py --collection enh --window 256 --variants truncated --precision bf16 \\
        --model MODEL --tag TAG                         # per encoder: ~15 min on 2 cores
    amharic-search train encoder --pairs ../shared/data/enh/train_pairs.jsonl.gz --holdout 0 --device cpu \
        --base bench/.cache/train_speed/full-epoch --out bench/.cache/trained/cpu-ft2 --seed 14   # cpu-ft2
    amharic-search index build ../shared/data/enh/corpus.jsonl --out bench/.cache/trained/enh-lexical --no-dense   # to mine from
    amharic-search train encoder --pairs ../shared/data/enh/train_pairs.jsonl.gz --holdout 0 --device cpu \
        --base bench/.cache/train_speed/full-epoch --index bench/.cache/trained/enh-lexical --negatives 1 \
        --out bench/.cache/trained/cpu-ft-neg --seed 14                                           # cpu-ft-neg
    python bench/trained_full.py first-stage --tags base-bf16,cpu-ft,cpu-ft2,cpu-ft-neg,gpu-ft
    amharic-search train encoder --pairs ../shared/data/amqa/train_pairs.jsonl --holdout 0 --device cpu \
        --base ../shared/models/me5-small-am --out bench/.cache/trained/amqa-ft --seed 13            # amqa-ft
    amharic-search train encoder --pairs ../shared/data/amqa/train_pairs.jsonl --holdout 0 --device cpu \
        --base bench/.cache/train_speed/full-epoch --out bench/.cache/trained/cpu-ft-amqa --seed 13  # cpu-ft-amqa
    amharic-search train encoder --pairs ../shared/data/enh/train_pairs.jsonl.gz --pairs ../shared/data/amqa/train_pairs.jsonl \
        --holdout 0 --device cpu --base ../shared/models/me5-small-am --out bench/.cache/trained/both-ft --seed 13  # both-ft
    python bench/dense_runs.py --collection amqa+enh ... --tag TAG    # as above, per encoder (enh's vectors are cached)
    python bench/trained_full.py first-stage --collection amqa+enh --tags base-bf16,cpu-ft,amqa-ft,cpu-ft-amqa,both-ft
    python bench/trained_full.py first-stage --tags amqa-ft,cpu-ft-amqa,both-ft    # the same encoders on enh
    python bench/trained_full.py rerank --tag gpu-ft --reranker /work/models/enh-reranker-gpu --queries 200
    python bench/trained_full.py mine --tag cpu-ft-neg --model bench/.cache/trained/cpu-ft-neg \
        --out bench/.cache/trained/enh-train-fused-negatives.jsonl     # 7 fused negatives per train headline, ~3 min
    amharic-search train reranker --pairs bench/.cache/trained/enh-train-fused-negatives.jsonl --holdout 0 \
        --device cpu --base bench/.cache/trained/cpu-ft-neg --negatives 1 --loss bce --pair-length 192 --lr 3e-5 \
        --out bench/.cache/trained/cpu-rr-bce --seed 13                                            # cpu-rr-bce
    python bench/trained_full.py rerank --tag cpu-ft-neg --reranker bench/.cache/trained/cpu-rr-bce --queries 100
    amharic-search train reranker --pairs bench/.cache/trained/enh-train-fused-negatives.jsonl --holdout 0 \
        --device cpu --base bench/.cache/trained/cpu-rr-bce --negatives 1 --loss bce --pair-length 192 --lr 3e-5 \
        --out bench/.cache/trained/cpu-rr-bce2 --seed 14                                           # cpu-rr-bce2
    python bench/trained_full.py rerank --tag cpu-ft-neg --reranker bench/.cache/trained/cpu-rr-bce2 --queries 100
    python bench/trained_full.py complete --tag cpu-ft --model bench/.cache/train_speed/full-epoch   # missing scores computed
    python bench/trained_full.py misses --tag cpu-ft-neg --show 10      # the headlines fusion leaves out of its top 100
    python bench/trained_full.py report --write         # the BENCHMARKS.md section from the results so far

Every one of the 1,000 enh test headlines against all 12,986 articles. Lexical = the product's BM25
over whole documents (default analyzer, bench/fusion.py's lists); dense = one embedding per
article cut at 256 tokens (bench/dense_runs.py's ``truncated`` runs; the product ranks an article
by its best passage, which for the stand-in scored 0.395 against truncation's 0.410, BENCHMARKS
"First stage"); fused = the product's fusion code with the product's default setting (z-score
weighted sum, BM25 0.7 / dense 0.3, 300 documents from each), not retuned for the trained
encoders: the tuning queries are train pairs the encoders were trained on. Other dense weights are
shown on the test queries for information only, never to choose.

``rerank``: the fused top 100 of the first ``--queries`` test headlines reranked by the
cross-encoder through the product's scorer (Searcher.score_passages: the candidate's passage as
the product picks it, its best-matching sentences within the model's max length), bf16 on the CPU
as the product runs it. Each query's scores are kept (``bench/.cache/trained/rerank-*.jsonl``),
so an interrupted run resumes and bench/adaptive.py can read them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, ROOT, load_collection, machine, machines, markdown_table, today, write_section  # noqa: E402
from bench.dense_runs import load_run  # noqa: E402
from bench.fusion import fuse, lexical_lists, to_run  # noqa: E402
from amharic_search.search.evaluate import evaluate  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "trained"
# the figures are kept in the repository (the models, runs and per-query scores stay in the cache): the runs
# take hours on 2 cores, and a cache does not outlive the machine it was made on
RESULTS = ROOT / "bench" / "results" / "trained_full.json"
DEFAULT_FUSION = ("zscore", 0.3, 300)
TAGS = {
    "base-bf16": "stand-in me5-small-am, not trained",
    "cpu-ft": "fine-tuned on the CPU: one epoch over all 11,277 enh train pairs, train's defaults (bf16, 64/128 tokens, batch 32, in-batch negatives), 353 steps",
    "cpu-ft2": "cpu-ft trained one more epoch on the CPU (the same defaults, a fresh schedule, seed 14): 706 steps in all",
    "cpu-ft-neg": "cpu-ft trained one more epoch on the CPU with 1 BM25-mined hard negative per pair (seed 14): 706 steps in all",
    "gpu-ft": "fine-tuned on a GPU: 2 epochs over all 11,277 enh pairs, 2 mined negatives per pair (bench/gpu_train.py)",
    "amqa-ft": "fine-tuned on the CPU: one epoch over the 1,719 AmQA train pairs, train's defaults",
    "cpu-ft-amqa": "cpu-ft, then one epoch over the 1,719 AmQA train pairs (both pair sets, one after the other)",
    "both-ft": "fine-tuned on the CPU: one epoch over enh's 11,277 and AmQA's 1,719 train pairs joined, train's defaults",
}
COLLECTIONS = {"enh": "All 1,000 enh test headlines against all 12,986 articles",
               "amqa+enh": "All 600 AmQA test questions against its 375 paragraphs and enh's 12,986 articles as distractors"}


def result_key(collection: str, tag: str) -> str:
    return f"first-stage/{tag}" if collection == "enh" else f"first-stage/{collection}/{tag}"


def read_results() -> dict:
    return json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}


def save_result(key: str, value: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = read_results()
    results[key] = {**value, "machine": value.get("machine") or machine()}
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")


def figures(m: dict) -> dict:
    return {k: round(float(m[k]), 4) for k in ("MRR@10", "nDCG@10", "Recall@10", "Recall@100")}


def lexical_for(collection: str, corpus, queries) -> dict:
    path = CACHE / f"lexical-{collection}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as d:
            return {q: (r, s) for q, r, s in zip(d["qids"].tolist(), d["rows"], d["scores"])}
    lists = lexical_lists(corpus, queries)
    CACHE.mkdir(parents=True, exist_ok=True)
    qids = list(lists)
    width = max(len(lists[q][0]) for q in qids)
    rows = np.full((len(qids), width), -1, dtype=np.int64)
    scores = np.full((len(qids), width), -np.inf, dtype=np.float32)
    for i, q in enumerate(qids):
        r, s = lists[q]
        rows[i, : len(r)], scores[i, : len(s)] = r, s
    np.savez(path, qids=np.array(qids), rows=rows, scores=scores)
    return lists


def trim(lists: dict) -> dict:
    return {q: (r[r >= 0], s[r >= 0]) for q, (r, s) in lists.items()}


def fused_lists(tag: str, corpus, queries, collection: str = "enh") -> tuple[dict, dict, dict]:
    lex = trim(lexical_for(collection, corpus, queries))
    dense_all = load_run(collection, 256, "truncated", tag)
    den = {q: dense_all[q] for q in queries}
    method, w, depth = DEFAULT_FUSION
    return lex, den, fuse(lex, den, method, depth, w=w)


@click.group()
def main() -> None:
    """Trained models on the whole enh collection."""


@main.command("first-stage")
@click.option("--tags", default="base-bf16,cpu-ft,gpu-ft", show_default=True)
@click.option("--collection", type=click.Choice(list(COLLECTIONS)), default="enh", show_default=True)
def first_stage(tags: str, collection: str) -> None:
    """Dense alone and fused, per encoder."""
    corpus, queries, qrels = load_collection(collection)
    ids = [d["id"] for d in corpus]
    for tag in tags.split(","):
        lex, den, fused = fused_lists(tag, corpus, queries, collection)
        r = {"lexical": figures(evaluate(to_run(ids, lex), qrels)), "dense": figures(evaluate(to_run(ids, den), qrels)),
             "fused": figures(evaluate(to_run(ids, fused), qrels)), "date": today(), "queries": len(queries),
             "documents": len(corpus)}
        r["fused_weights"] = {str(w): figures(evaluate(to_run(ids, fuse(lex, den, "zscore", 300, w=w)), qrels))
                              for w in (0.2, 0.4, 0.5, 0.6)}
        save_result(result_key(collection, tag), r)
        print(tag, json.dumps({k: r[k] for k in ("dense", "fused")}), flush=True)


@main.command("rerank")
@click.option("--tag", default="gpu-ft", show_default=True, help="The encoder whose fused top 100 is reranked.")
@click.option("--reranker", "reranker_path", required=True)
@click.option("--queries", "n_queries", default=200, show_default=True, help="The first N test headlines.")
@click.option("--candidates", default=100, show_default=True)
@click.option("--max-length", default=None, type=int, help="Reranker tokens (default: the model's, as the product).")
@click.option("--window", type=click.Choice(["best", "head"]), default="best", show_default=True,
              help="What the reranker reads of a long passage (the product's option; best is its default).")
def rerank(tag: str, reranker_path: str, n_queries: int, candidates: int, max_length: int | None, window: str) -> None:
    """The trained cross-encoder over the fused top 100, through the product's scorer."""
    from amharic_search.index.build import build_index
    from amharic_search.search import Searcher

    corpus, queries, qrels = load_collection("enh")
    ids = [d["id"] for d in corpus]
    index = CACHE / "enh-lexical"
    if not (index / "manifest.json").exists():
        build_index(DATA / "enh" / "corpus.jsonl", index, dense_model=None, show_progress=True)
    searcher = Searcher.load(index, reranker=reranker_path, use_dense=False, strict=True)
    col = searcher.collection
    order = {d: i for i, d in enumerate(col.doc_ids())}
    assert all(order[d] == i for i, d in enumerate(ids)), "the index's documents are in corpus order"
    _, _, fused = fused_lists(tag, corpus, queries)
    chosen = list(queries)[:n_queries]
    setting = f"{max_length or 'model'}" + ("" if window == "best" else f"-{window}")
    out = CACHE / f"rerank-{tag}-{Path(reranker_path).name}-{setting}.jsonl"
    done = {}
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            done[r["qid"]] = r
    t0 = time.perf_counter()
    for n, q in enumerate(chosen):
        if q in done:
            continue
        docs = fused[q][0][:candidates]
        terms = searcher.analyzer.tokens(queries[q])
        rows = []
        for d in docs.tolist():  # the passage the product reranks: the document's best BM25 passage (first on ties)
            a, b = int(col.doc_offsets[d]), int(col.doc_offsets[d + 1])
            own = np.arange(a, b)
            rows.append(a if b - a == 1 else int(own[np.argmax(col.bm25.scores_of(terms, own))]))
        passages = col.passages(rows)
        t = time.perf_counter()
        s = searcher.score_passages(queries[q], passages, window=window, max_length=max_length)
        rec = {"qid": q, "docs": [ids[d] for d in docs.tolist()], "scores": [round(float(x), 5) for x in s],
               "seconds": round(time.perf_counter() - t, 3)}
        with out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        done[q] = rec
        if (n + 1) % 20 == 0:
            print(f"{n + 1}/{len(chosen)} queries, {time.perf_counter() - t0:.0f} s", flush=True)
    run_fused = {q: {d: float(len(done[q]["docs"]) - i) for i, d in enumerate(done[q]["docs"])} for q in chosen}
    run_rr = {q: dict(zip(done[q]["docs"], done[q]["scores"])) for q in chosen}
    sub = {q: qrels[q] for q in chosen}
    r = {"queries": len(chosen), "candidates": candidates, "max_length": max_length or searcher.reranker.max_length,
         "window": window,
         "reranker": reranker_path, "date": today(), "fused": figures(evaluate(run_fused, sub)),
         "reranked": figures(evaluate(run_rr, sub)),
         "seconds_per_query": round(float(np.mean([done[q]["seconds"] for q in chosen])), 2)}
    if (trained := Path(reranker_path) / "training.json").exists():  # a reranker of `train reranker`: how it was made
        info = json.loads(trained.read_text(encoding="utf-8"))
        r["training"] = {k: info.get(k) for k in ("base", "steps", "train_seconds", "train_loss", "computed_in")}
        r["training"].update(settings={k: info["settings"].get(k) for k in
                                       ("loss", "negatives", "batch_size", "lr", "pair_length", "epochs", "seed")},
                             pairs=info["counts"]["train"], source=info.get("source"),
                             last_loss=(info.get("loss_curve") or [None])[-1])  # [step, loss] of the last logged
    save_result(f"rerank/{tag}/{Path(reranker_path).name}/{setting}", r)
    print(json.dumps(r), flush=True)


@main.command("mine")
@click.option("--tag", required=True, help="The encoder's tag (its article vectors come from dense_runs.py's cache).")
@click.option("--model", "model_path", required=True, help="The encoder itself (it embeds the train headlines).")
@click.option("--negatives", default=7, show_default=True, help="Negatives kept per pair (train takes the first N).")
@click.option("--depth", default=30, show_default=True, help="Fused candidates looked at per headline.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True)
def mine(tag: str, model_path: str, negatives: int, depth: int, out_path: str) -> None:
    """Hard negatives for the enh train pairs from the fused first stage (a pairs file for train reranker).

    The evaluation's first stage (the product's BM25 and fusion, the encoder's truncated article
    vectors) over all 12,986 articles for each of the 11,277 train headlines; the best fused
    candidates that are not the pair's article, not titled as the headline and not near-copies of
    the article (the trainer's own filter, ``pick_negatives``) become its negatives, best first.
    """
    import gzip

    from sentence_transformers import SentenceTransformer

    from amharic_search.search.train import MiningReport, Pair, pick_negatives
    from bench.dense_runs import document_texts, embed, embedding_caches
    from bench.fusion import document_bm25

    corpus, _, _ = load_collection("enh")
    with gzip.open(DATA / "enh" / "train_pairs.jsonl.gz", "rt", encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f]
    texts = document_texts(corpus)
    analyzer, bm25 = document_bm25(corpus)
    model = SentenceTransformer(model_path, device="cpu")
    model.max_seq_length = 256
    cache = embedding_caches(model_path, 256, "bf16")
    docs = embed(model, cache["document"], "document", texts, "documents", 32, "bf16")
    heads = embed(model, cache["query"], "query", [p["query"] for p in pairs], "train headlines", 32, "bf16")
    _, w, fusion_depth = DEFAULT_FUSION
    qs = {str(i): p["query"] for i, p in enumerate(pairs)}
    lex = {q: bm25.top_k(analyzer.tokens(t), fusion_depth) for q, t in tqdm(qs.items(), desc="BM25", unit=" headlines")}
    den = {}
    for a in range(0, len(pairs), 1024):
        s = heads[a:a + 1024] @ docs.T
        top = np.argsort(-s, axis=1, kind="stable")[:, :fusion_depth]
        den.update({str(a + j): (top[j], s[j, top[j]]) for j in range(len(top))})
    fused = fuse(lex, den, "zscore", fusion_depth, w=w)
    report, short = MiningReport(), 0
    with open(out_path, "w", encoding="utf-8") as f:
        for i, p in enumerate(tqdm(pairs, desc="negatives", unit=" pairs")):
            found = pick_negatives(Pair(p["query"], p["positive"], [], p["doc_id"]),
                                   ((corpus[r]["id"], corpus[r].get("title"), corpus[r]["text"])
                                    for r in fused[str(i)][0][:depth].tolist()), negatives, report=report)
            short += len(found) < negatives
            f.write(json.dumps({**p, "negatives": found}, ensure_ascii=False) + "\n")
    print(json.dumps({"pairs": len(pairs), "tag": tag, "depth": depth, "mined": report.mined, "short": short,
                      "positive": report.excluded_positive, "near_duplicate": report.excluded_near_duplicate}), flush=True)


@main.command("complete")
@click.option("--tag", required=True, help="The encoder's tag (the record is saved as complete/TAG).")
@click.option("--model", "model_path", required=True, help="The encoder itself: its vectors come from dense_runs.py's cache.")
def complete(tag: str, model_path: str) -> None:
    """The default fusion with missing scores computed instead of imputed (a diagnosis of R@100).

    The product fuses the top 300 of each retriever and gives a document missing from one list that
    list's lowest normalized score. Here every candidate gets its true score from both retrievers
    (the same z-score statistics, taken over each top 300), and then every document is a candidate.
    """
    from sentence_transformers import SentenceTransformer

    from bench.dense_runs import document_texts, embed, embedding_caches
    from bench.fusion import document_bm25

    corpus, queries, qrels = load_collection("enh")
    ids, qids, texts = [d["id"] for d in corpus], list(queries), document_texts(corpus)
    analyzer, bm25 = document_bm25(corpus)
    lexical = np.stack([bm25.scores(analyzer.tokens(queries[q])) for q in qids]).astype(np.float64)
    model = SentenceTransformer(model_path, device="cpu")
    model.max_seq_length = 256
    cache = embedding_caches(model_path, 256, "bf16")  # dense_runs.py's vectors
    dense = (embed(model, cache["query"], "query", [queries[q] for q in qids], "queries", 32, "bf16")
             @ embed(model, cache["document"], "document", texts, "documents", 32, "bf16").T).astype(np.float64)
    _, w, depth = DEFAULT_FUSION
    normalized, candidates, lists = [], np.zeros(lexical.shape, bool), []
    for scores, found in ((lexical, lexical > 0), (dense, np.ones(dense.shape, bool))):  # BM25 lists only hold matches
        top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]  # each retriever's top 300, best first
        listed = np.take_along_axis(found, top, 1)
        lists.append({q: (top[j][listed[j]], scores[j, top[j][listed[j]]]) for j, q in enumerate(qids)})
        values = np.where(listed, np.take_along_axis(scores, top, 1), np.nan)
        mean, std = np.nanmean(values, 1, keepdims=True), np.nanstd(values, 1, keepdims=True)
        normalized.append((scores - mean) / np.where(std > 0, std, 1))
        np.put_along_axis(candidates, top, listed, 1)
    fused = (1 - w) * normalized[0] + w * normalized[1]

    def figures_of(score: np.ndarray) -> dict:
        top = np.argsort(-score, axis=1)[:, :100]
        return figures(evaluate({q: {ids[r]: float(100 - i) for i, r in enumerate(top[j])} for j, q in enumerate(qids)}, qrels))

    r = {"date": today(), "dense_weight": w, "depth": depth,
         "as_fused": figures(evaluate(to_run(ids, fuse(*lists, "zscore", depth, w=w)), qrels)),  # the product's way
         "computed": figures_of(np.where(candidates, fused, -np.inf)),
         "every_document": figures_of(fused)}
    save_result(f"complete/{tag}", r)
    print(tag, json.dumps(r), flush=True)


@main.command("misses")
@click.option("--tag", default="cpu-ft-neg", show_default=True, help="The encoder whose fused first stage is read.")
@click.option("--days", default=14, show_default=True, help="'Near in time': dated within this many days of each other.")
@click.option("--show", default=0, show_default=True, help="Print the first N missed headlines with both articles' starts.")
def misses(tag: str, days: int, show: int) -> None:
    """The test headlines whose article the default fusion leaves out of its top 100 (a diagnosis of R@100).

    For each: whether its article is in each retriever's top 300, the share of the headline's words (the
    product's analyzer) found in its article, and whether the fused first article is dated near it
    and holds at least as many of the headline's words: possibly another report of the story, which
    a single-label collection counts as wrong.
    """
    from amharic_search.index.analyzer import Analyzer
    from amharic_search.index.calendar import parse_date

    from bench.dense_runs import document_texts

    corpus, queries, qrels = load_collection("enh")
    row = {d["id"]: i for i, d in enumerate(corpus)}
    texts = document_texts(corpus)
    meta = {m["id"]: m for m in map(json.loads, (DATA / "enh" / "metadata.jsonl").read_text(encoding="utf-8").splitlines())}
    day = {i: parse_date(date, "ethiopian") if (date := meta[d["id"]]["date_ethiopian"]) else None  # a few are undated
           for i, d in enumerate(corpus)}
    analyzer = Analyzer()
    lex, den, fused = fused_lists(tag, corpus, queries)

    def share(words: set[str], doc: int) -> float:
        return len(words & set(analyzer.tokens(texts[doc]))) / max(1, len(words))

    found, missed = [], []
    for q, text in queries.items():
        article = row[next(d for d, v in qrels[q].items() if v > 0)]
        words = set(analyzer.tokens(text))
        if article in fused[q][0][:100]:
            found.append(share(words, article))
            continue
        first = int(fused[q][0][0])
        near = None not in (day[first], day[article]) and abs(day[first] - day[article]) <= days
        missed.append({"qid": q, "bm25": int(np.sum(lex[q][0] == article)), "dense": int(np.sum(den[q][0] == article)),
                       "share": share(words, article), "first_share": share(words, first), "near": near})
        if len(missed) <= show:
            print(f"{q}: {text}\n  its article: {texts[article][:200]}\n  fused first: {texts[first][:200]}")
    n = len(missed)
    r = {"date": today(), "tag": tag, "queries": len(queries), "missed": n, "days": days,
         "in_neither": sum(not m["bm25"] and not m["dense"] for m in missed),
         "bm25_only": sum(m["bm25"] and not m["dense"] for m in missed),
         "dense_only": sum(m["dense"] and not m["bm25"] for m in missed),
         "in_both": sum(m["bm25"] and m["dense"] for m in missed),
         "share_missed": round(float(np.mean([m["share"] for m in missed])), 3) if n else None,
         "share_found": round(float(np.mean(found)), 3),
         "under_a_quarter": sum(m["share"] < 0.25 for m in missed),
         "first_as_close": sum(m["first_share"] >= m["share"] for m in missed),
         "first_near_as_close": sum(m["near"] and m["first_share"] >= m["share"] for m in missed),
         "qids": [m["qid"] for m in missed]}
    save_result(f"misses/{tag}", r)
    print(json.dumps({k: v for k, v in r.items() if k != "qids"}), flush=True)


def combined(key: str, k: int = 60) -> float | None:
    """MRR@10 of the fused and reranked ranks combined by RRF, from the kept per-query scores."""
    from amharic_search.search.evaluate import load_qrels

    _, tag, model, setting = key.split("/")
    path = CACHE / f"rerank-{tag}-{model}-{setting}.jsonl"
    if not path.exists():  # a record whose per-query scores are gone keeps the figure it had
        return read_results().get(key, {}).get("rrf_mrr10")
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    qrels = load_qrels(DATA / "enh" / "qrels.tsv")
    run = {}
    for r in recs:
        s = np.asarray(r["scores"])
        rerank_rank = np.argsort(np.argsort(-s, kind="stable"), kind="stable")
        fused = 1 / (k + np.arange(len(s))) + 1 / (k + rerank_rank)
        run[r["qid"]] = {d: float(x) for d, x in zip(r["docs"], fused)}
    return round(float(evaluate(run, {q: qrels[q] for q in run})["MRR@10"]), 4)


def stage_rows(res: dict, collection: str) -> list[list]:
    """The first-stage table of a collection: BM25 once, then dense and fused per encoder with a record."""
    columns = ("MRR@10", "nDCG@10", "Recall@10", "Recall@100")
    rows = []
    for tag, what in TAGS.items():
        if r := res.get(result_key(collection, tag)):
            if not rows:
                rows.append(["BM25 alone", "-", *(r["lexical"][k] for k in columns)])
            rows += [[f"{stage}: {what}", tag, *(r[stage][k] for k in columns)] for stage in ("dense", "fused")]
    return rows


@main.command("report")
@click.option("--write", is_flag=True, help="Write the section into BENCHMARKS.md.")
def report(write: bool) -> None:
    """The table(s) from the results so far."""
    res = read_results()
    rows = stage_rows(res, "enh")

    def label(key: str) -> str:
        return key.split("/", 1)[1] if key.startswith("first-stage/") else key

    dates = ", ".join(f"{d} ({', '.join(sorted(label(k) for k, r in res.items() if r['date'] == d))})"
                      for d in sorted({r["date"] for r in res.values()}))
    recovered = sorted(label(k) for k, r in res.items() if r.get("recovered"))
    body = [f"Machine: {machines(res.values())}. Measured: {dates}. Rerun: see `bench/trained_full.py`'s docstring (each model is "
            "re-created by the commands there, each from the seed it names, 13 by default)."
            + (f" The records of {', '.join(recovered)} were written down from this section after their run files "
               "were lost with the machine that made them (bench/results/ keeps the figures since)." if recovered else "")
            + "\n",
            f"{COLLECTIONS['enh']}. Dense = one embedding per article cut at 256 "
            "tokens (bf16 autocast); fused = the product's default fusion (z-score sum, dense weight 0.3, 300 from "
            "each), not retuned for the trained encoders. Goals of the issue: fused MRR@10 >= 0.76 and R@100 >= "
            "0.975, dense alone >= 0.60.\n",
            markdown_table(["first stage", "encoder", "MRR@10", "nDCG@10", "R@10", "R@100"], rows)]
    weights = [[tag, w, m["MRR@10"], m["Recall@100"]] for tag in TAGS if (r := res.get(f"first-stage/{tag}"))
               for w, m in r["fused_weights"].items()]
    if weights:
        body += ["\nOther dense weights of the same fusion, on the test headlines (for information; not used to "
                 "choose anything):\n", markdown_table(["encoder", "dense weight", "MRR@10", "R@100"], weights)]
    if amqa := stage_rows(res, "amqa+enh"):
        body += [f"\n{COLLECTIONS['amqa+enh']} (the same dense and fusion settings; no goal was set for it):\n",
                 markdown_table(["first stage", "encoder", "MRR@10", "nDCG@10", "R@10", "R@100"], amqa),
                 "\nReading (2026-12-05): enh's 11,277 headline pairs lift AmQA too (cpu-ft), more than AmQA's own "
                 "1,719 train pairs do alone (amqa-ft) or after enh (cpu-ft-amqa, which also loses most of cpu-ft's gain "
                 "on enh). One epoch over both pair sets joined (both-ft, 407 steps, 20 min) is the best on AmQA (dense "
                 "0.786, R@100 0.978) and keeps cpu-ft's figures on enh. AmQA's pairs cover only 286 paragraphs (about 6 "
                 "questions each; the trainer keeps duplicate texts out of a batch), in 54 steps: few distinct passages "
                 "to learn from, a reading of the figures, not a tested cause."]
    done = [[tag, w, r["as_fused"][m], r["computed"][m], r["every_document"][m]]
            for k, r in res.items() if k.startswith("complete/") and (tag := k.split("/", 1)[1]) in TAGS
            for w, m in (("MRR@10", "MRR@10"), ("R@100", "Recall@100"))]
    if done:
        body += ["\nMissing scores computed instead of imputed (`bench/trained_full.py complete`, the default fusion): "
                 "the product gives a document missing from one retriever's top 300 that list's lowest normalized "
                 "score; here each candidate gets its true score from both, and then every article is a candidate (the "
                 "encoder re-created by its command on the machine of the record: the product's column equals the "
                 "table above). "
                 "The R@100 goal's shortfall is the scores' own, not the imputation's or the depth's:\n",
                 markdown_table(["encoder", "measure", "as the product fuses", "missing scores computed",
                                 "every article a candidate"], done)]
    for k, m in res.items():
        if k.startswith("misses/"):
            body.append(
                f"\nThe headlines behind the shortfall (`bench/trained_full.py misses --tag {m['tag']}`, {m['date']}): "
                f"the default fusion leaves {m['missed']} of the {m['queries']:,} test headlines' articles out of its "
                f"top 100. {m['in_neither']} of them are in neither retriever's top 300, {m['bm25_only']} in BM25's only, "
                f"{m['dense_only']} in the dense one's only and {m['in_both']} in both (fusion ranks them below 100). "
                f"Their headlines share {m['share_missed']:.2f} of their words (the product's analyzer) with their "
                f"article, against {m['share_found']:.2f} for the headlines found ({m['under_a_quarter']} under a "
                f"quarter); the fused first article holds at least as many of the headline's words for "
                f"{m['first_as_close']} of the {m['missed']}, and only {m['first_near_as_close']} of those are dated "
                f"within {m['days']} days of the labelled article. So they are headlines written away from their "
                "article's words (those read: figurative, or naming what the article only implies), not other reports of the same "
                "story: neither the encoders trained on enh here nor the GPU-trained one (R@100 0.968-0.969) reach them, and a "
                "reranker, which reorders the top 100, cannot.")
    rr = [[k.split("/", 1)[1], r["queries"], r["max_length"], r.get("window", "best"), r["fused"]["MRR@10"],
           r["reranked"]["MRR@10"], round(r["reranked"]["MRR@10"] - r["fused"]["MRR@10"], 4), combined(k),
           r["fused"]["Recall@100"], r.get("seconds_per_query")]
          for k, r in res.items() if k.startswith("rerank/")]
    if rr:
        body += ["\nThe trained cross-encoder over the fused top 100 (the first N test headlines; the product's scorer, "
                 "bf16; `RRF` = fused rank and reranker rank combined by reciprocal rank fusion, k=60, a diagnosis):\n",
                 markdown_table(["first stage / reranker / setting", "queries", "tokens", "window", "fused MRR@10",
                                 "reranked MRR@10", "gain", "RRF(fused, reranked)", "fused R@100 (ceiling)",
                                 "s per query"], rr)]
    made = [[k.split("/")[2], t["base"].split("/")[-1], t["pairs"], t["settings"]["loss"], t["settings"]["negatives"],
             t["settings"]["pair_length"], t["settings"]["batch_size"], f'{t["settings"]["lr"]:g}', t["steps"],
             f'{t["train_seconds"] / 60:.1f}', f'{t["train_loss"]:.3f}',
             f'{t["last_loss"][1]:.3f} (step {t["last_loss"][0]})' if t.get("last_loss") else "-", r["machine"]]
            for k, r in {k.split("/")[2]: (k, r) for k, r in res.items()  # one row per reranker, whatever its settings
                         if k.startswith("rerank/") and r.get("training")}.values() if (t := r["training"])]
    if made:
        body += ["\nHow the rerankers trained on the CPU were made (`amharic-search train reranker`, commands in "
                 "bench/trained_full.py's docstring; negatives from `trained_full.py mine`: the fused first stage of "
                 "cpu-ft-neg over all 12,986 articles for each train headline, the pair's article, an article titled as "
                 "the headline and near-copies of the article left out, best first):\n",
                 markdown_table(["reranker", "base", "pairs", "loss", "negatives", "tokens", "batch", "lr", "steps",
                                 "minutes", "mean loss", "last logged loss", "machine"], made)]
    if rr:
        body.append(
            "\nDiagnosis. The cross-encoder trained on the GPU (bench/gpu_train.py: the stand-in's body with a fresh "
            "one-logit head, 7 BM25-mined negatives (top 30) per headline, listwise, 2 epochs) lifts BM25's top 100 (0.612 -> 0.723 on 200 "
            "headlines, \"Fine-tuning on a GPU\") but ranks the fine-tuned fused top 100 below the fused order, and "
            "combining the two orders does not help either. The likely cause (a hypothesis, not yet checked "
            "document by document): the fused candidates are harder than BM25's, since the fine-tuned encoder brings in "
            "articles on the same event that share few words with the headline, and the reranker never saw such "
            "negatives (its negatives were mined by BM25 only). A one-off check on 2026-12-04 (script not kept) "
            "supports it: in groups of the positive and 7 negatives from the fused top 30, the reranker put the "
            "positive first for 0.855 of train headlines and 0.805 of test headlines (no memorization gap: fused "
            "negatives are hard even on the headlines it was trained on); over the 100 test headlines it ordered 15 "
            "better than the fused order, 21 worse and 64 the same, and its mistakes were other articles on the same "
            "story. The passage window makes no difference here (best and head give the same figures): a passage "
            "(<= 350 tokens) fits the 512 tokens whole. Next recipe: negatives mined from the fused first stage "
            "(`bench/gpu_train.py prepare --dense ENCODER`), near-duplicates of the positive filtered out, and "
            "distillation from the fused scores. On this CPU that recipe ran at 4.4 s per step (from the GPU-trained "
            "reranker, word embeddings frozen, 2 groups of 8 at 256 tokens per step), about 7 hours for one epoch "
            "over the 11,277 train headlines: it needs the GPU (84 s for 2 epochs of the BM25 recipe on an H200)."
            "\n\nThe CPU attempt at that recipe (2026-12-06, cpu-rr-bce above): the fused negatives now come from "
            "`trained_full.py mine` (cpu-ft-neg's fused top 30 over all articles; 7 per headline, 5 near-copies left "
            "out), and one epoch of binary cross-entropy with the hardest one, from cpu-ft-neg's body with a fresh "
            "head, at 192 tokens, fits the goal's time (73 min, the machine mostly to itself). It ranks far below the "
            "fused order (0.502 against 0.733 on the first 100 test headlines). Its training loss is still 0.55-0.58 "
            "over the last 150 steps (0.693 is chance): by the end of the epoch it tells a headline's article from "
            "that headline's hardest fused negative only a little better than chance. What two hours of this CPU "
            "buy is about 25,000 scored pairs at 192 tokens (0.19 s per pair in bf16 over that epoch; 0.39-0.45 s "
            "at 256 tokens in a 3-step probe); the GPU reranker that also lost saw about 180,000 at 384. So no cross-encoder grown from the stand-in's body within the time goal has come near the fused "
            "first stage. A second epoch on the same negatives (cpu-rr-bce2: from cpu-rr-bce, a fresh schedule, seed "
            "14, 76 min; 2.5 hours of training in all, past the goal's two) lifts it 0.502 -> 0.541 on the same 100 "
            "headlines, with the training loss at 0.52-0.55 all epoch: it still learns, slowly, and stays 0.19 below "
            "the fused order. Untried, because neither can be had here: a reranker pretrained for the task (the product's "
            "rasyosef/reranker-amharic-medium, off the hub) fine-tuned on these negatives, and the stand-in recipe "
            "on a GPU. Memory: with `--micro-batch` (default 32) `--negatives 3 --loss listwise` runs "
            "in bounded memory: 8.9 GB peak (2 steps of 32 headlines, 256 pairs of 256 tokens each, cpu-ft-neg as base, "
            "/usr/bin/time -v); without it, the same run was killed at 24 GB in its first step.")
    text = "\n".join(body)
    print(text)
    if write:
        write_section("Trained models on the whole enh collection (CPU)", text)


if __name__ == "__main__":
    main()
