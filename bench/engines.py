"""CPU engines side by side: speed on the real medium architecture, fidelity on trained weights.

    python bench/engines.py                 # about 40 minutes on 2 cores; BENCHMARKS.md "Engines"
    python bench/engines.py --part speed --queries 3 --no-write
    python bench/engines.py --part encoder  # one part (speed, reranker, encoder; fidelity = the last two)

* speed (ratios in one run): randomly initialised cross-encoder and encoder of the medium
  architecture (bench/speed.py; speed does not depend on the weights). Cross-encoder: each enh test
  headline's 100 BM25 candidates, the product's passages, full length with the focus window, as the
  product reranks them (``Reranker.score``). Encoder: 512 passages of the enh index, batches of 32,
  longest first (``index.dense.encode``).
* fidelity against fp32 PyTorch, on trained weights. Cross-encoder: ``--trained`` (default: the
  first that exists of bench/.cache/reranker-me5-6l from bench/train_reranker.py and the
  cross-encoder bench/finetune.py trains); Spearman correlation of each query's 100 scores and
  overlap of the top 10, median and worst query. Encoder: the stand-in ../shared/models/me5-small-am
  on AmQA (375 paragraphs, 600 questions) and on the 1,000 enh test headlines among 2,000 articles
  (their judged articles and random others); cosine to the fp32 vectors and dense MRR@10 per engine.
  The stand-in's cosines are close together (the top two of a query often differ by 1e-4), so
  bf16 rounding swaps near-ties: with 150 headlines one swapped pair moves MRR@10 by 0.003.

Each part's text is kept in bench/.cache/engines-PART.md, so that rerunning one part keeps the
others' figures in the section.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import load_collection, machine, markdown_table, today, write_section  # noqa: E402

CANDIDATES_TRAINED = [ROOT / "bench" / ".cache" / "reranker-me5-6l",
                      ROOT / "bench" / ".cache" / "finetune" / "reranker-enh-enh-n320"]
CACHE = ROOT / "bench" / ".cache"
STAND_IN = ROOT.parent / "shared" / "models" / "me5-small-am"
RERANKER_ENGINES = ("torch", "torch-bf16", "openvino", "openvino-bf16", "onnx", "onnx-int8")
ENCODER_ENGINES = (("torch", "fp32"), ("torch", "bf16"), ("openvino", "fp32"), ("openvino", "bf16"))


def candidate_texts(searcher, n: int) -> list[tuple[str, list]]:
    """(headline, its 100 BM25 candidate passages) for the first ``n`` enh test headlines."""
    _, queries, _ = load_collection("enh")
    out = []
    for text in list(queries.values())[:n]:
        _, cands = searcher.first_stage(text, stages="lexical", candidates=100)
        out.append((text, searcher.collection.passages([c.row for c in cands])))
    return out


def reranker_inputs(searcher, reranker, cands):
    """What the product sends the cross-encoder: each passage's focus window at the model's length."""
    searcher.second.reranker = reranker
    return [(q, searcher.reranker_inputs(q, ps, "best")) for q, ps in cands]


def rerank_speed(searcher, cands, ce_path: Path) -> list[list]:
    from amharic_search.search.rerank import Reranker

    rows, base = [], None
    for backend in RERANKER_ENGINES:
        t0 = time.perf_counter()
        rr = Reranker.load(str(ce_path), backend=backend)
        load = time.perf_counter() - t0
        inputs = reranker_inputs(searcher, rr, cands)
        rr.score(*inputs[0])  # warm
        times = []
        for q, texts in inputs:
            rr._cache.clear()
            t = time.perf_counter()
            rr.score(q, texts)
            times.append(time.perf_counter() - t)
        p50 = float(np.median(times))
        base = base or p50
        rows.append([backend, f"{p50:.2f} s", f"{np.percentile(times, 95):.2f} s", f"{p50 / base:.2f}", f"{load:.1f} s"])
        print(rows[-1], flush=True)
    return rows


def encode_speed(encoder, texts: list[str]) -> list[list]:
    from amharic_search.index.dense import encode

    rows, base = [], None
    for engine, precision in ENCODER_ENGINES:
        encode(encoder, texts[:64], precision=precision, engine=engine)  # warm (and convert)
        t = time.perf_counter()
        encode(encoder, texts, precision=precision, engine=engine)
        rate = len(texts) / (time.perf_counter() - t)
        base = base or rate
        rows.append([f"{engine} {precision}", f"{rate:.1f}", f"{rate / base:.2f}"])
        print(rows[-1], flush=True)
    return rows


def rerank_fidelity(searcher, cands, trained: Path) -> list[list]:
    from scipy.stats import spearmanr

    from amharic_search.search.rerank import Reranker

    ref_rr = Reranker.load(str(trained), backend="torch")
    inputs = reranker_inputs(searcher, ref_rr, cands)
    ref = [ref_rr.score(q, texts) for q, texts in inputs]
    rows = []
    for backend in ("torch-bf16", "openvino-bf16", "onnx-int8"):
        rr = Reranker.load(str(trained), backend=backend)
        rho, overlap = [], []
        for (q, texts), r in zip(inputs, ref):
            got = rr.score(q, texts)
            rho.append(spearmanr(r, got)[0])
            overlap.append(len(set(np.argsort(-r)[:10]) & set(np.argsort(-got)[:10])))
        worst = int(np.argmin(rho))
        passed = min(rho) >= 0.98 and min(overlap) >= 9
        rows.append([backend, f"{np.median(rho):.4f}", f"{min(rho):.4f} (query {worst + 1})", f"{np.mean(overlap):.2f}",
                     min(overlap), "yes" if passed else "no"])
        print(rows[-1], flush=True)
    return rows


def dense_collections(pool_size: int = 2000) -> dict[str, tuple[list[dict], dict[str, str], dict]]:
    """AmQA whole, and the enh test headlines among their articles plus random others (``pool_size`` in all)."""
    amqa = load_collection("amqa")
    corpus, queries, qrels = load_collection("enh")
    qids = [q for q in queries if q in qrels]
    judged = {d for q in qids for d in qrels[q]}
    others = [d for d in corpus if d["id"] not in judged]
    random.Random(13).shuffle(others)
    pool = [d for d in corpus if d["id"] in judged] + others[: pool_size - len(judged)]
    name = f"enh ({len(qids):,} headlines, {len(pool):,} articles)"
    return {"amqa": amqa, name: (pool, {q: queries[q] for q in qids}, {q: qrels[q] for q in qids})}


def encoder_fidelity() -> list[list]:
    from amharic_search.index.dense import encode
    from amharic_search.index.models import load_encoder
    from amharic_search.search.evaluate import evaluate

    model = load_encoder(str(STAND_IN))
    model.max_seq_length = 256
    rows = []
    for name, (corpus, queries, qrels) in dense_collections().items():
        texts = [d["text"] for d in corpus]
        qvec = encode(model, list(queries.values()), kind="query")
        ref = ref_mrr = None
        for engine, precision in ENCODER_ENGINES:
            vectors = encode(model, texts, kind="document", precision=precision, engine=engine)
            ref = vectors if ref is None else ref
            cos = (ref * vectors).sum(axis=1)
            scores = qvec @ vectors.T
            run = {}
            for qid, row in zip(queries, scores):
                top = np.argsort(-row)[:100]
                run[qid] = {corpus[i]["id"]: float(row[i]) for i in top}
            mrr = evaluate(run, qrels)["MRR@10"]
            ref_mrr = mrr if ref_mrr is None else ref_mrr
            passed = cos.min() >= 0.999 and abs(mrr - ref_mrr) <= 0.005
            rows.append([name, f"{engine} {precision}", f"{cos.min():.6f}", f"{cos.mean():.6f}", f"{mrr:.4f}",
                         f"{mrr - ref_mrr:+.4f}", "yes" if passed else "no"])
            print(rows[-1], flush=True)
    return rows


PARTS = ("speed", "reranker", "encoder")


@click.command()
@click.option("--part", type=click.Choice(["all", "fidelity", *PARTS]), default="all",
              help="fidelity = reranker and encoder.")
@click.option("--queries", "n", default=20, show_default=True, help="enh test headlines (speed and reranker fidelity).")
@click.option("--trained", default=None, help="Trained cross-encoder for the fidelity check.")
@click.option("--write/--no-write", default=True, show_default=True)
def main(part: str, n: int, trained: str | None, write: bool) -> None:
    import torch

    from bench.scale_out import enh_lexical
    from bench.speed import build_models
    from amharic_search.search.searcher import Searcher

    parts = {"all": PARTS, "fidelity": PARTS[1:]}.get(part, (part,))
    CACHE.mkdir(parents=True, exist_ok=True)
    searcher = Searcher.load(enh_lexical(), reranker=None)
    cands = candidate_texts(searcher, n) if {"speed", "reranker"} & set(parts) else []
    sections = {}
    head = (f"`bench/engines.py`, measured {today()} on {machine()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), OpenVINO and ONNX Runtime with one thread per core.")
    if "speed" in parts:
        corpus, _, _ = load_collection("enh")
        with tempfile.TemporaryDirectory() as tmp:
            encoder, _, _ = build_models(Path(tmp), "medium", [d["text"] for d in corpus[:3000]])
            passages = [p.text for p in searcher.collection.passages(range(5000, 5512))]
            enc_rows = encode_speed(encoder, passages)
            ce_rows = rerank_speed(searcher, cands, Path(tmp) / "ce")
        sections["speed"] = (
            f"Speed, medium architecture with random weights. Reranking one query's 100 candidates (first {n} enh test "
            "headlines, BM25 candidates, full length, focus window); ratio to fp32 PyTorch; load = loading the model "
            "with its engine (conversion or export included; the ONNX export is cached after the first load).\n\n"
            + markdown_table(["reranker backend", "p50", "p95", "time vs torch fp32", "load"], ce_rows)
            + "\n\nEmbedding 512 enh index passages (batches of 32, longest first):\n\n"
            + markdown_table(["encoder engine", "passages/s", "speed vs torch fp32"], enc_rows))
    if "reranker" in parts:
        path = Path(trained) if trained else next((p for p in CANDIDATES_TRAINED if (p / "config.json").exists()), None)
        if path is None:
            raise SystemExit("no trained cross-encoder: run python bench/train_reranker.py or pass --trained PATH")
        fid_rows = rerank_fidelity(searcher, cands, path)
        sections["reranker"] = (
            f"Fidelity against fp32 PyTorch on trained weights. Cross-encoder `{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}`"
            " (the stand-in me5-small-am's pretrained body fine-tuned by bench/finetune.py or bench/train_reranker.py: "
            "trained weights, though not yet a good reranker; the product's trained reranker needs the GPU run of "
            f"bench/finetune.py), the {n} headlines' 100 candidates each, full length, focus window; passes = "
            "Spearman ≥ 0.98 and top-10 overlap ≥ 9 on every query.\n\n"
            + markdown_table(["reranker backend", "Spearman (median)", "Spearman (worst)", "top-10 overlap (mean)",
                              "top-10 overlap (worst)", "passes"], fid_rows))
    if "encoder" in parts:
        enc_rows = encoder_fidelity()
        sections["encoder"] = (
            "Encoder fidelity: the stand-in me5-small-am (256 tokens), each engine's document vectors against its "
            "fp32 PyTorch vectors, and dense MRR@10 with them (queries in fp32 PyTorch, as at search time); passes = "
            "cosine ≥ 0.999 and MRR@10 within 0.005 of fp32.\n\n"
            + markdown_table(["collection", "encoder engine", "cosine (min)", "cosine (mean)", "MRR@10", "vs fp32",
                              "passes"], enc_rows))
    print(head + "\n\n" + "\n\n".join(sections.values()))
    if write:
        for name, body in sections.items():
            (CACHE / f"engines-{name}.md").write_text(head + "\n\n" + body, encoding="utf-8")
        parts_text, last_head = [], None
        for x in PARTS:  # each part's measuring line once, unless the next part was measured alike
            if (CACHE / f"engines-{x}.md").exists():
                part_head, body = (CACHE / f"engines-{x}.md").read_text(encoding="utf-8").split("\n\n", 1)
                parts_text += [body] if part_head == last_head else [part_head, body]
                last_head = part_head
        text = "\n\n".join(parts_text)
        write_section("Engines", text + "\n\nRerun: `python bench/engines.py` (`--part speed|reranker|encoder`, "
                      "`--part fidelity` for the last two).")


if __name__ == "__main__":
    main()
