"""Train a small Amharic cross-encoder on enh train pairs, so reranker speed-ups can be checked for
score fidelity on a model whose scores mean something (random weights give meaningless orders).

    python bench/train_reranker.py                           # writes bench/.cache/reranker-me5-6l
    python bench/train_reranker.py --device cuda --epochs 2  # a GPU: under a minute

Start: the stand-in encoder ../shared/models/me5-small-am (multilingual-e5-small, pruned to an
Amharic + Latin vocabulary), its first ``--layers`` layers, a fresh one-logit head. Data: the
11,277 headline/article pairs of ../shared/data/enh/train_pairs.jsonl.gz (disjoint from the test
queries and their articles), each headline with its article and 3 hard negatives from the BM25 top
30 of the index's analyzer; listwise softmax loss over the group of 4. The result is a plain
Hugging Face sequence-classification directory that sentence-transformers' CrossEncoder loads.
It is a benchmark instrument, not a product model.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, ROOT, read_jsonl  # noqa: E402

STAND_IN = ROOT.parent / "shared" / "models" / "me5-small-am"
OUT = ROOT / "bench" / ".cache" / "reranker-me5-6l"


def hard_negatives(pairs: list[dict], corpus: list[dict], depth: int = 30) -> list[list[str]]:
    """BM25 top ``depth`` document ids of each training headline, its own article removed."""
    from amharic_search.index.analyzer import Analyzer
    from amharic_search.index.bm25 import BM25Index

    analyzer = Analyzer()
    bm25 = BM25Index.build([analyzer.tokens(d["text"]) for d in corpus])
    out = []
    for p in pairs:
        rows, _ = bm25.top_k(analyzer.tokens(p["query"]), depth + 1)
        out.append([corpus[r]["id"] for r in rows.tolist() if corpus[r]["id"] != p["doc_id"]][:depth])
    return out


@click.command()
@click.option("--base", default=str(STAND_IN), show_default=True, help="Pretrained encoder to start from.")
@click.option("--out", default=str(OUT), show_default=True)
@click.option("--layers", default=6, show_default=True)
@click.option("--epochs", default=1, show_default=True)
@click.option("--batch", default=16, show_default=True, help="Headlines per step (x4 pairs).")
@click.option("--max-length", default=256, show_default=True)
@click.option("--lr", default=3e-5, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--negatives", "negatives_path", default=None, help="JSON list of hard-negative ids (else computed with BM25).")
@click.option("--save-negatives", default=None, help="Only compute the hard negatives and write them here.")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32", help="Weights as saved.")
@click.option("--max-minutes", default=None, type=float, help="Stop training after this long (then save).")
def main(base, out, layers, epochs, batch, max_length, lr, device, negatives_path, save_negatives, dtype, max_minutes) -> None:
    corpus = read_jsonl(DATA / "enh" / "corpus.jsonl")
    text_of = {d["id"]: d["text"] for d in corpus}
    with gzip.open(DATA / "enh" / "train_pairs.jsonl.gz", "rt", encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f if line.strip()]
    if negatives_path:
        negatives = json.loads(Path(negatives_path).read_text())
    else:
        t = time.perf_counter()
        negatives = hard_negatives(pairs, corpus)
        print(f"hard negatives for {len(pairs)} headlines in {time.perf_counter() - t:.0f} s", flush=True)
    if save_negatives:
        Path(save_negatives).write_text(json.dumps(negatives))
        return

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    torch.manual_seed(0)
    rng = random.Random(0)
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, num_hidden_layers=layers, dtype=torch.float32).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * (len(pairs) // batch)
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * steps), steps)
    model.train()
    t0, step, log = time.perf_counter(), 0, []
    for _ in range(epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for start in range(0, len(order) - batch + 1, batch):
            if max_minutes is not None and time.perf_counter() - t0 > max_minutes * 60:
                break
            queries, docs = [], []
            for i in order[start : start + batch]:
                negs = rng.sample(negatives[i], k=min(3, len(negatives[i])))
                negs += [rng.choice(corpus)["id"] for _ in range(3 - len(negs))]
                for doc_id in [pairs[i]["doc_id"], *negs]:
                    queries.append(pairs[i]["query"])
                    docs.append(text_of[doc_id])
            enc = tok(queries, docs, truncation="only_second", max_length=max_length, padding=True, return_tensors="pt").to(device)
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=device != "cpu"):
                logits = model(**enc).logits.float().view(batch, 4)
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(batch, dtype=torch.long, device=device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            log.append(loss.item())
            if step % 50 == 0 or step == steps:
                print(f"step {step}/{steps} loss {sum(log[-50:]) / len(log[-50:]):.3f} {time.perf_counter() - t0:.0f} s", flush=True)
    model.eval()
    model.config.id2label = {0: "LABEL_0"}
    model.to(getattr(torch, dtype)).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    info = {"base": Path(base).name, "layers": layers, "epochs": epochs, "steps": step, "batch": batch, "max_length": max_length,
            "lr": lr, "device": device, "seconds": round(time.perf_counter() - t0, 1), "final_loss": sum(log[-50:]) / max(1, len(log[-50:]))}
    Path(out, "training.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
