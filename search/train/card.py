"""The model card (README.md) written beside a trained model."""

from __future__ import annotations


def format_metrics(m: dict[str, float] | None) -> str:
    return "-" if not m else "  ".join(f"{k} {v:.4f}" for k, v in m.items())


def model_card(info: dict) -> str:
    """The README.md of a trained model: base, data, settings, before/after figures."""
    kind = info["kind"]
    s, c = info["settings"], info["counts"]
    use = ("amharic-search index build CORPUS --out INDEX --dense-model {this folder}" if kind == "encoder"
           else "amharic-search query INDEX \"...\" --reranker {this folder}")
    lines = [
        f"# Amharic {'dense encoder' if kind == 'encoder' else 'reranker (cross-encoder)'} fine-tuned with amharic-search",
        "",
        f"Fine-tuned from `{info['base']}` by `amharic-search train {kind}` on {info['finished']}.",
        "Weights in safetensors; loads with sentence-transformers "
        f"({'SentenceTransformer' if kind == 'encoder' else 'CrossEncoder'}) and everywhere amharic-search takes a model:",
        "",
        "```bash",
        use,
        "```",
        "",
        "## Data",
        "",
        f"- Source: {info.get('source') or 'pairs given to the library'}",
        f"- Pairs: {c['pairs']} ({c['train']} for training, {c['heldout']} held out for evaluation)",
        f"- Negatives per training pair: {c['negatives_per_pair']} ({c['mined_negatives']} mined as hard negatives, "
        f"{c['random_negatives']} random other positives)",
    ]
    if info.get("mining"):
        m = info["mining"]
        lines.append(f"- Hard negatives: first stage ({'+'.join(m['stages'])}) of the index, top {s['negative_depth']}, "
                     f"skipping the positive ({m['excluded_positive']} times) and its near-duplicates "
                     f"({m['excluded_near_duplicate']})")
    lines += [
        f"- Evaluation: {info.get('eval_source') or 'none'} ({c['eval_queries']} queries, {c['eval_passages']} passages)",
        "",
        "## Settings",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    loss = {"mnrl": "MultipleNegativesRankingLoss (in-batch + hard negatives)", "bce": "BinaryCrossEntropyLoss",
            "listwise": "MultipleNegativesRankingLoss (listwise over the positive and its negatives)"}[s["loss"]]
    if s.get("matryoshka"):
        loss = f"MatryoshkaLoss({loss}, dims {s['matryoshka']})"
    lengths = ([("query length (training, tokens)", s["query_length"]), ("passage length (training, tokens)", s["passage_length"])]
               if kind == "encoder" else [("pair length (training, tokens)", s["pair_length"])])
    computed = info.get("computed_in")
    rows = [("loss", loss), ("epochs", s["epochs"]), ("batch size", s["batch_size"]), ("learning rate", s["lr"]),
            *lengths, *([("frozen", f"token embeddings and the first {s['freeze_layers']} layers")]
                        if s.get("freeze_layers") else []), ("steps", info["steps"]), ("device", s["device"]),
            ("precision", f"{s.get('precision', 'fp32')}" + (f" (computed in {computed}; weights kept and saved in float32)"
                                                           if computed else "")),
            ("training time", f"{info['train_seconds']:.0f} s" + (f" (over sessions; resumed at step {info['resumed_from']})"
                                                             if info.get("resumed_from") else "")), ("final training loss", info.get("train_loss")),
            ("seed", s["seed"])]
    if s.get("max_steps"):
        rows.append(("max steps (bounded run)", s["max_steps"]))
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "## Before / after", ""]
    before, after = info.get("before"), info.get("after")
    if before and after:
        lines += ["| model | " + " | ".join(before) + " |", "|---|" + "---|" * len(before),
                  f"| base (`{info['base']}`) | " + " | ".join(f"{v:.4f}" for v in before.values()) + " |",
                  "| fine-tuned | " + " | ".join(f"{after.get(k, float('nan')):.4f}" for k in before) + " |", "",
                  ("Judged queries: each one's judged documents and BM25 top 30 from the index, ordered by the model"
                   if not str(info.get("eval_source") or "").startswith("held-out") else
                   "Each held-out query's positive ranked among all held-out passages"
                   + (f" (the held-out positives and {c['heldout_mined']} hard negatives mined for them)" if c.get("heldout_mined") else "")
                   if kind == "encoder" else
                   "Each held-out query's candidates (the 30 best by BM25 among the held-out passages, and the positive) "
                   "ordered by the model") + "."]
    else:
        lines.append("Not evaluated (no held-out pairs).")
    return "\n".join(lines) + "\n"
