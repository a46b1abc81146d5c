"""Fine-tuning benchmark: the stand-in encoder (and a reranker from it) trained with
`search.train` (the code behind `amharic-search train`), measured on a collection's test queries,
which are never used for training or for choosing settings.

    # CPU, bounded (what fits a 2-core machine): 600 enh train pairs, 200 test queries against
    # their articles + 1,800 other articles, one epoch, 256 tokens
    python bench/finetune.py --collection enh --train-pairs 600 --test-queries 200 --distractors 1800
    # the issue's full run, on a GPU: all 11,277 pairs, all test queries, the whole corpus, and the
    # fused first stage after re-embedding (index build with the trained encoder)
    python bench/finetune.py --collection enh --device cuda --fused --kind both
    python bench/finetune.py --collection amqa+enh --pairs amqa,enh --device cuda --fused
    python bench/finetune.py --collection enh --from-titles --device cuda          # self-supervised

Steps: (1) a lexical index of the collection (bench/.cache/finetune/lexical-*), for BM25 hard
negatives; (2) `train_model("encoder", ...)` from ../shared/models/me5-small-am with
MultipleNegativesRankingLoss and ``--negatives`` BM25 hard negatives per pair, timed, with the
process's peak memory; (3) dense MRR@10 / R@100 of the base and the trained encoder on the test
queries (one embedding per document, cut at ``--max-length`` tokens); with ``--fused``, indexes
built with each encoder (passages) and the fused first stage evaluated; (4) with ``--kind
reranker|both``, a reranker trained from the stand-in the same way, reordering the BM25 top
``--rerank-depth`` (``--fused``: the fused top 100) of the test queries; kept in
bench/.cache/finetune/reranker-* (rebuilt when missing: the speed work measures against it).
``--write`` puts the table into BENCHMARKS.md ("Fine-tuning").
"""

from __future__ import annotations

import json
import os
import random
import resource
import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, ROOT, machine, markdown_table, read_jsonl, today, write_section  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "finetune"
STAND_IN = ROOT.parent / "shared" / "models" / "me5-small-am"


def processed(result, batch_size: int, epochs: float) -> int:
    """Training pairs the run went through (a --max-steps run stops before the epochs end)."""
    return int(min(result.steps * batch_size, result.train_pairs * epochs))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_pairs_of(names: list[str], limit: int | None, seed: int):
    from amharic_search.search.train import read_pairs

    pairs = []
    for name in names:
        path = DATA / name / "train_pairs.jsonl.gz"
        pairs += read_pairs(path if path.exists() else DATA / name / "train_pairs.jsonl")
    random.Random(seed).shuffle(pairs)
    return pairs[:limit] if limit else pairs


def lexical_index(collection: str, corpus_path: Path) -> Path:
    from amharic_search.index.build import build_index

    out = CACHE / f"lexical-{collection.replace('+', '_')}"
    if not (out / "manifest.json").exists():
        t = time.perf_counter()
        build_index(corpus_path, out, dense_model=None, show_progress=False)
        print(f"lexical index of {collection} in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def corpus_file(collection: str) -> Path:
    if collection != "amqa+enh":
        return DATA / collection / "corpus.jsonl"
    path = CACHE / "amqa_enh-corpus.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for name in ("amqa", "enh"):
                f.write((DATA / name / "corpus.jsonl").read_text(encoding="utf-8").rstrip("\n") + "\n")
    return path


def test_set(collection: str, n_queries: int | None, distractors: int | None, seed: int):
    """(queries, qrels, documents): a seeded subset of the test queries, their judged documents and
    ``distractors`` other documents (all documents when None)."""
    from amharic_search.search.evaluate import load_qrels, load_queries

    base = "amqa" if collection.startswith("amqa") else collection
    queries, qrels = load_queries(DATA / base / "queries.jsonl"), load_qrels(DATA / base / "qrels.tsv")
    qids = sorted(q for q in queries if q in qrels)
    rng = random.Random(seed)
    if n_queries and n_queries < len(qids):
        qids = sorted(rng.sample(qids, n_queries))
    corpus = read_jsonl(corpus_file(collection))
    if distractors is not None:
        judged = {d for q in qids for d in qrels[q]}
        others = [d for d in corpus if d["id"] not in judged]
        keep = judged | {d["id"] for d in rng.sample(others, min(distractors, len(others)))}
        corpus = [d for d in corpus if d["id"] in keep]
    return {q: queries[q] for q in qids}, {q: qrels[q] for q in qids}, corpus


def dense_eval(model_dir: str, queries, qrels, corpus, max_length: int, device: str, precision: str = "fp32") -> dict:
    """Dense alone: one embedding per document (cut at max_length tokens), cosine, document ranking
    (``precision="bf16"``: computed under bf16 autocast, same ranking to the third decimal)."""
    import numpy as np

    from amharic_search.index.dense import encode
    from amharic_search.index.layout import searchable_text
    from amharic_search.index.models import load_encoder
    from amharic_search.search.evaluate import evaluate

    model = load_encoder(model_dir, device=device)
    model.max_seq_length = max_length
    t = time.perf_counter()
    docs = encode(model, [searchable_text(d.get("title", ""), d["text"]) for d in corpus], kind="document", batch_size=32,
                  precision=precision)
    qv = encode(model, list(queries.values()), kind="query", batch_size=64, precision=precision)
    seconds = time.perf_counter() - t
    sims = qv @ docs.T
    run = {}
    for qid, row in zip(queries, sims):
        top = np.argsort(-row)[:100]
        run[qid] = {corpus[i]["id"]: float(row[i]) for i in top}
    m = evaluate(run, qrels)
    return {"MRR@10": m["MRR@10"], "Recall@100": m["Recall@100"], "embed_seconds": round(seconds, 1)}


def fused_eval(model_dir: str, queries, qrels, corpus, tag: str, reranker: str | None = None) -> dict:
    """The product's first stage (and reranking with ``reranker``): an index built with the encoder."""
    from amharic_search.index.build import build_index
    from amharic_search.search.evaluate import evaluate, run_queries
    from amharic_search.search.options import SearchOptions
    from amharic_search.search.searcher import Searcher

    path = CACHE / f"corpus-{tag}.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus), encoding="utf-8")
    out = CACHE / f"index-{tag}"
    build_index(path, out, dense_model=model_dir, show_progress=True)
    searcher = Searcher.load(out, reranker=reranker, strict=True)
    result = {}
    for mode, rerank in (("fused", False), ("fused+rerank", True)) if reranker else (("fused", False),):
        run = run_queries(searcher, queries, SearchOptions(top_k=100, rerank=rerank), desc=mode, progress=True)
        m = evaluate(run, qrels)
        result[mode] = {"MRR@10": m["MRR@10"], "Recall@100": m["Recall@100"]}
    return result


def rerank_eval(model_dir: str | None, queries, qrels, lexical: Path, depth: int, max_length: int, device: str) -> dict:
    """BM25 top ``depth`` of each test query reordered by the cross-encoder (None: BM25's order)."""
    from amharic_search.index.models import load_cross_encoder
    from amharic_search.search.evaluate import evaluate
    from amharic_search.search.searcher import Searcher

    searcher = Searcher.load(lexical, reranker=None, use_dense=False)
    model = load_cross_encoder(model_dir, max_length=max_length, device=device) if model_dir else None
    run = {}
    t = time.perf_counter()
    for qid, text in queries.items():
        resp = searcher.search(text, top_k=depth, stages="lexical", rerank=False, candidates=depth)
        results = resp.results
        if model is not None and results:
            scores = model.predict([(text, r.text) for r in results], batch_size=32, show_progress_bar=False)
            order = sorted(range(len(results)), key=lambda i: -float(scores[i]))
        else:
            order = range(len(results))
        run[qid] = {results[i].doc_id: float(len(results) - k) for k, i in enumerate(order)}
    m = evaluate(run, qrels)
    return {"MRR@10": m["MRR@10"], f"Recall@{min(depth, 100)}": m["Recall@100"], "seconds": round(time.perf_counter() - t, 1)}


@click.command()
@click.option("--collection", type=click.Choice(["enh", "amqa", "amqa+enh"]), default="enh", show_default=True)
@click.option("--pairs", "pair_sets", default=None, help="Train pairs of these collections (comma-separated; default: the collection's).")
@click.option("--from-titles", is_flag=True, help="Self-supervised: pairs from the train articles with their headlines as titles.")
@click.option("--kind", type=click.Choice(["encoder", "reranker", "both"]), default="encoder", show_default=True)
@click.option("--base", default=str(STAND_IN), show_default=True)
@click.option("--train-pairs", default=None, type=int, help="Use this many train pairs (seeded sample; default all).")
@click.option("--test-queries", default=None, type=int, help="Evaluate on this many test queries (seeded; default all).")
@click.option("--distractors", default=None, type=int, help="Corpus = the judged articles + this many others (default: all).")
@click.option("--epochs", default=1.0, show_default=True)
@click.option("--batch-size", default=None, type=int, help="Default: `train`'s (TrainConfig).")
@click.option("--lr", default=3e-5, show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True)
@click.option("--query-length", default=None, type=int, help="Training: tokens per query (default: `train`'s).")
@click.option("--passage-length", default=None, type=int, help="Training: tokens per passage (default: `train`'s).")
@click.option("--pair-length", default=None, type=int, help="Training the reranker: tokens per pair (default: `train`'s).")
@click.option("--eval-length", "--max-length", "max_length", default=256, show_default=True,
              help="Evaluation: tokens of each document the encoder embeds / the reranker reads.")
@click.option("--negatives", default=None, type=int, help="BM25 hard negatives per pair (default: `train`'s).")
@click.option("--negative-depth", default=30, show_default=True)
@click.option("--rerank-depth", default=20, show_default=True)
@click.option("--max-steps", default=None, type=int)
@click.option("--device", default="auto", show_default=True)
@click.option("--fused", is_flag=True, help="Also build indexes with each encoder and evaluate the fused first stage (slow on a CPU).")
@click.option("--seed", default=13, show_default=True)
@click.option("--reuse", is_flag=True, help="Evaluate the models an earlier run of the same settings trained (no training).")
@click.option("--write", is_flag=True, help="Write the results into BENCHMARKS.md (section 'Fine-tuning').")
@click.option("--report-only", is_flag=True, help="Train nothing: render the saved report of the same settings.")
def main(collection, pair_sets, from_titles, kind, base, train_pairs, test_queries, distractors, epochs, batch_size, lr,
         precision, query_length, passage_length, pair_length, max_length, negatives, negative_depth, rerank_depth,
         max_steps, device, fused, seed, reuse, write, report_only):
    from amharic_search.search.train import TrainConfig, pairs_from_titles, train_model

    CACHE.mkdir(parents=True, exist_ok=True)
    names = (pair_sets or ("amqa" if collection.startswith("amqa") else collection)).split(",")
    tag = f"{collection.replace('+', '_')}-{'+'.join(names)}{'-titles' if from_titles else ''}-n{train_pairs or 'all'}"
    if report_only:
        saved = CACHE / f"report-{tag}.json"
        if not saved.exists():
            raise click.ClickException(f"no report of these settings yet ({saved}): run without --report-only")
        text = render(json.loads(saved.read_text(encoding="utf-8")))
        print(text)
        if write:
            write_section("Fine-tuning", text)
        return
    lexical = lexical_index(collection, corpus_file(collection))
    if from_titles:  # the train pairs' articles with their headlines put back as titles
        base_pairs = train_pairs_of(names, train_pairs, seed)
        titled = CACHE / f"titled-{tag}.jsonl"
        titled.write_text("".join(json.dumps({"id": p.doc_id, "title": p.query, "text": p.positive}, ensure_ascii=False) + "\n"
                                  for p in base_pairs), encoding="utf-8")
        pairs = pairs_from_titles(titled)
        source = f"titles of {len(base_pairs)} {'+'.join(names)} train articles (--from-titles)"
    else:
        pairs = train_pairs_of(names, train_pairs, seed)
        source = f"{'+'.join(names)} train pairs ({len(pairs)} sampled, seed {seed})"
    queries, qrels, corpus = test_set(collection, test_queries, distractors, seed)
    print(f"{len(pairs)} training pairs; {len(queries)} test queries against {len(corpus)} documents", flush=True)
    given = dict(batch_size=batch_size, query_length=query_length, passage_length=passage_length,
                 pair_length=pair_length, negatives=negatives)
    config = dict(base=base, epochs=epochs, lr=lr, precision=precision, device=device, negative_depth=negative_depth,
                  holdout=0.05, holdout_max=200, seed=seed, max_steps=max_steps, checkpoint_minutes=5,
                  **{k: v for k, v in given.items() if v is not None})
    config = {k: getattr(TrainConfig(**config), k) for k in (*config, *given)}  # with train's defaults, as run
    config["negatives"] = TrainConfig(**config).negatives_for("encoder")
    report: dict = {"date": today(), "machine": machine(), "collection": collection, "source": source,
                    "command": " ".join(["python bench/finetune.py", *(a for a in sys.argv[1:] if a != "--write")]),
                    "test_queries": len(queries), "documents": len(corpus), "settings": config}
    dev = "cuda" if device == "cuda" else "cpu"
    if kind in ("encoder", "both") and reuse and (CACHE / f"encoder-{tag}" / "training.json").exists():
        out = CACHE / f"encoder-{tag}"
        report["encoder"] = {"reused": str(out), **json.loads((out / "training.json").read_text())["counts"]}
        report["dense_before"] = dense_eval(base, queries, qrels, corpus, max_length, dev)
        print("dense before", report["dense_before"], flush=True)
        report["dense_after"] = dense_eval(str(out), queries, qrels, corpus, max_length, dev)
        print("dense after", report["dense_after"], flush=True)
    elif kind in ("encoder", "both"):
        out = CACHE / f"encoder-{tag}"
        t = time.perf_counter()
        result = train_model("encoder", pairs, out, TrainConfig(**config), source=source, index=lexical, progress=True,
                             overwrite=True, log=lambda s: print(s, flush=True))
        report["encoder"] = {"train_pairs": result.train_pairs, "steps": result.steps, "heldout": result.heldout,
                             "precision": result.info["settings"]["precision"], "computed_in": result.info["computed_in"],
                             "heldout_passages": result.info["counts"]["eval_passages"],
                             "train_seconds": round(result.seconds, 1), "total_seconds": round(time.perf_counter() - t, 1),
                             "pairs_seen": processed(result, config["batch_size"], epochs),
                             "seconds_per_1000_pairs": round(result.seconds / processed(result, config["batch_size"], epochs) * 1000, 1),
                             "peak_mb": round(peak_mb()), "heldout_before": result.before, "heldout_after": result.after,
                             "load": round(os.getloadavg()[0], 1)}
        print(json.dumps(report["encoder"]), flush=True)
        report["dense_before"] = dense_eval(base, queries, qrels, corpus, max_length, dev)
        print("dense before", report["dense_before"], flush=True)
        report["dense_after"] = dense_eval(str(out), queries, qrels, corpus, max_length, dev)
        print("dense after", report["dense_after"], flush=True)
        if fused:
            report["fused_before"] = fused_eval(base, queries, qrels, corpus, f"{tag}-base")
            report["fused_after"] = fused_eval(str(out), queries, qrels, corpus, f"{tag}-trained")
            print("fused", report["fused_before"], report["fused_after"], flush=True)
    if kind in ("reranker", "both"):
        out = CACHE / f"reranker-{tag}"
        rconfig = {**config, "negatives": max(1, config["negatives"])}
        t = time.perf_counter()
        result = train_model("reranker", pairs, out, TrainConfig(**rconfig), source=source, index=lexical, progress=True,
                             overwrite=True, log=lambda s: print(s, flush=True))
        report["reranker"] = {"train_pairs": result.train_pairs, "steps": result.steps, "heldout": result.heldout,
                              "precision": result.info["settings"]["precision"],
                              "heldout_passages": result.info["counts"]["eval_passages"],
                              "train_seconds": round(result.seconds, 1),
                              "pairs_seen": processed(result, config["batch_size"], epochs),
                             "seconds_per_1000_pairs": round(result.seconds / processed(result, config["batch_size"], epochs) * 1000, 1),
                              "peak_mb": round(peak_mb()), "heldout_before": result.before, "heldout_after": result.after,
                              "load": round(os.getloadavg()[0], 1), "negatives": rconfig["negatives"]}
        report["bm25_top"] = rerank_eval(None, queries, qrels, lexical, rerank_depth, max_length, dev)
        report["reranked"] = rerank_eval(str(out), queries, qrels, lexical, rerank_depth, max_length, dev)
        print("rerank", report["bm25_top"], report["reranked"], flush=True)
        if fused:  # the full pipeline: fused top 100 (trained encoder with --kind both) -> the trained reranker
            encoder = str(CACHE / f"encoder-{tag}") if kind == "both" else base
            report["fused_after" if kind == "both" else "fused_before"] = fused_eval(
                encoder, queries, qrels, corpus, f"{tag}-{'trained' if kind == 'both' else 'base'}", reranker=str(out))
            print("pipeline", report.get("fused_after") or report.get("fused_before"), flush=True)
    (CACHE / f"report-{tag}.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(report, ensure_ascii=False), flush=True)
    if write:
        write_section("Fine-tuning", render(report))


FULL_CORPUS = {"enh": 12986}


def render(r: dict) -> str:
    s = r["settings"]
    whole = FULL_CORPUS.get(r["collection"])
    pool = (f"all {r['documents']:,} documents of the corpus" if whole is None or r["documents"] >= whole else
            f"a reduced pool of {r['documents']:,} documents (the judged ones and random others, not the {whole:,} of the "
            "corpus: figures are higher than full-corpus ones)")
    lines = [f"`bench/finetune.py`, {r['date']}, {r['machine']}. Training: {r['source']}, one epoch"
             + (f" bounded to {s['max_steps']} steps" if s.get("max_steps") else "")
             + f", batch {s['batch_size']}, lr {s['lr']}, precision {s['precision']}, {s['query_length']} tokens per query "
             f"and {s['passage_length']} per passage (the reranker: {s['pair_length']} per pair), BM25 hard negatives per "
             f"pair: encoder {s['negatives']}"
             + (f" (in-batch negatives only)" if not s["negatives"] else "")
             + (f", reranker {r['reranker'].get('negatives', max(1, s['negatives']))}" if "reranker" in r else "")
             + f". Test: {r['test_queries']} {r['collection']} test queries against {pool}."
             + (f" Rerun: `{r['command']}`." if r.get("command") else ""), ""]
    if "encoder" in r and "reused" not in r["encoder"]:
        e = r["encoder"]
        lines += [markdown_table(["dense alone (one vector per document)", "MRR@10", "R@100"],
                                 [["stand-in (before)", r["dense_before"]["MRR@10"], r["dense_before"]["Recall@100"]],
                                  ["fine-tuned (after)", r["dense_after"]["MRR@10"], r["dense_after"]["Recall@100"]]]), "",
                  f"Encoder training: {e['train_pairs']} pairs, {e['steps']} steps, {e['train_seconds']} s "
                  f"({e['seconds_per_1000_pairs']} s per 1,000 pairs, computed in {e.get('computed_in')}), peak memory "
                  f"{e['peak_mb']} MB" + (f", load average {e['load']} at its end" if e.get("load") else "") + f". The trainer's own held-out check ({e.get('heldout')} pairs ranked among "
                  f"{e.get('heldout_passages')} passages, their mined hard negatives included): MRR@10 "
                  f"{(e.get('heldout_before') or {}).get('MRR@10', float('nan')):.3f} -> "
                  f"{(e.get('heldout_after') or {}).get('MRR@10', float('nan')):.3f}."]
        if "fused_before" in r:
            rows = [[f"{mode} with the {name} encoder", r[key][mode]["MRR@10"], r[key][mode]["Recall@100"]]
                    for name, key in (("stand-in", "fused_before"), ("fine-tuned", "fused_after")) for mode in r[key]]
            lines += ["", markdown_table(["first stage (index built with the encoder)", "MRR@10", "R@100"], rows)]
    if "reranker" in r:
        e, k = r["reranker"], [m for m in r["reranked"] if m.startswith("Recall@")][0]
        lines += ["", markdown_table([f"BM25 top {k.split('@')[1]} reordered", "MRR@10", k],
                                     [["BM25 order", r["bm25_top"]["MRR@10"], r["bm25_top"][k]],
                                      ["fine-tuned reranker", r["reranked"]["MRR@10"], r["reranked"][k]]]), "",
                  f"Reranker training: {e['train_pairs']} pairs, {e['steps']} steps, {e['train_seconds']} s "
                  f"({e['seconds_per_1000_pairs']} s per 1,000 pairs), peak memory {e['peak_mb']} MB"
                  + (f"; load average {e['load']} at its end" if e.get("load") else "") + "."]
    lines += ["", "Training speed per setting: \"Fine-tuning: training speed on a CPU\"; the encoders trained on all "
              "enh pairs against the whole collection, alone, fused and reranked: \"Trained models on the whole enh "
              "collection (CPU)\" and \"Fine-tuning on a GPU\"."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
