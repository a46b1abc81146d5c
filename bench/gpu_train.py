"""Train the enh encoder and the enh cross-encoder on a borrowed GPU (one H200), from data mined here.

Three steps. Only ``prepare`` and ``assemble`` need this machine's project venv (bm25s, the
tokenizer, sentence-transformers); ``encoder`` and ``reranker`` need only torch, transformers and
numpy, so they run on the device machine's stock image (no ``datasets``, no bm25s, no network).

1. Here (CPU), write ``.gpu/`` (ignored via ``.git/info/exclude``: ``echo /.gpu/ >> .git/info/exclude``)::

       .venv/bin/python bench/gpu_train.py prepare            # .gpu/data.npz.xz + .gpu/me5-small-am/

   It tokenizes the 11,277 enh train pairs (headline -> article; disjoint from the test queries and
   their articles), cuts every article to its first 380 tokens, and mines hard negatives with BM25
   (bm25s, whitespace + Ethiopic-punctuation tokens) over the pool of the pairs' own 11,277 articles.
   Mined negatives that are near-copies of the positive (>= 50% of the word trigrams of either one
   found in the other) or the BM25 top-1 hit with the positive's first 100 characters are dropped
   and recorded as "excluded" (also masked out of in-batch negatives). Only token ids and indices
   travel (about 5 MB) next to the stand-in model (59 MB).

2. On the device (``run`` tool, carry ``[".gpu"]``), one model back per call (files back <= 64 MiB)::

       export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
       python3 bench/gpu_train.py encoder  --save /tmp/keep/encoder  --max-seconds 300   # ~47 s wall
       python3 bench/gpu_train.py reranker --save /tmp/keep/reranker --max-seconds 200   # ~95 s wall
       cp /tmp/keep/reranker/* $OUT/        # next call, while the machine is still warm (30 s): the encoder

   ``--max-seconds`` shortens the planned steps (the schedule still decays to 0) if the speed measured
   between steps ``--probe``/2 and ``--probe`` says the plan would not fit; on the H200 the encoder
   runs at 0.096 s/step (352 steps, 35 s) and the reranker at 0.059 s/step (1,408 steps, 84 s).

   Each ``--save`` folder holds the fp16 ``model.safetensors`` in 15 MB parts and ``small.tar``
   (config). A CPU dry run of the same code: ``--device cpu --limit 32 --max-steps 3``.

3. Here, re-join and make loadable folders (the tokenizer and sentence-transformers files come from
   the stand-in model)::

       .venv/bin/python bench/gpu_train.py assemble --kind encoder  --parts DIR --dest /work/models/enh-encoder-gpu
       .venv/bin/python bench/gpu_train.py assemble --kind reranker --parts DIR --dest /work/models/enh-reranker-gpu

Encoder: multilingual-e5-small (me5-small-am), mean pooling, normalized, "query: "/"passage: ",
queries <= 64 tokens, passages <= 256 tokens; MultipleNegativesRanking-style loss (scale 20) over
in-batch positives + 2 BM25 hard negatives per query (sampled from the filtered top 10, fresh each
epoch), batch 64, 2 epochs, AdamW lr 3e-5, 10% linear warmup then linear decay, bf16 autocast.
Reranker: BertForSequenceClassification (1 logit) from the same stand-in weights, input
``<s> query </s></s> passage </s>`` <= 384 tokens, groups of 1 positive + 7 negatives sampled from
the filtered BM25 top 30, listwise softmax cross-entropy, 16 groups (128 pairs) per step, 2 epochs,
AdamW lr 3e-5, 10% warmup, bf16 autocast. Seed 13 everywhere.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import math
import random
import re
import shutil
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
STAND_IN = SHARED / "models" / "me5-small-am"
PAIRS = SHARED / "data" / "enh" / "train_pairs.jsonl.gz"
P_KEEP = 380  # article tokens kept (reranker: 384 - 4 specials - short query; encoder uses fewer)
DEPTH = 50  # BM25 candidates kept per headline (after filtering)
PART = 15 * 1000 * 1000
SMALL_FILES = ("config.json",)

_PUNCT = re.compile(r"[\s\u1361-\u1368\u00ab\u00bb\u201c\u201d\u2018\u2019!-/:-@\[-`{-~]+")


def simple_tokens(text: str) -> list[str]:
    """Whitespace + Ethiopic/ASCII punctuation split, lowercased (Latin) tokens."""
    return [t for t in _PUNCT.split(text.lower()) if t]


def trigrams(text: str) -> set:
    w = simple_tokens(text)
    return {tuple(w[i : i + 3]) for i in range(len(w) - 2)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------------- prepare (CPU)
def cmd_prepare(a) -> None:
    import gzip

    import bm25s
    from transformers import AutoTokenizer

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(PAIRS, "rt", encoding="utf-8") as f:
        pairs = [json.loads(l) for l in f]
    if a.limit:
        pairs = pairs[: a.limit]
    n = len(pairs)
    assert len({p["doc_id"] for p in pairs}) == n, "pool index == pair index needs unique positives"
    # never the test side
    test_q = {json.loads(l)["text"] for l in (SHARED / "data/enh/queries.jsonl").read_text(encoding="utf-8").splitlines()}
    test_d = {l.split("\t")[1] for l in (SHARED / "data/enh/qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]}
    assert not any(p["query"] in test_q or p["doc_id"] in test_d for p in pairs), "test data in pairs"
    log(f"{n} pairs; none of them a test query or a test query's article")

    tok = AutoTokenizer.from_pretrained(str(STAND_IN))
    qpre = tok("query:", add_special_tokens=False)["input_ids"]
    ppre = tok("passage:", add_special_tokens=False)["input_ids"]
    # check that prefix + text tokenizes as prefix ids + text ids (Metaspace splits words apart)
    for p in pairs[:50]:
        assert tok("passage: " + p["positive"][:2000], add_special_tokens=False)["input_ids"] == ppre + tok(
            p["positive"][:2000], add_special_tokens=False
        )["input_ids"]
        assert tok("query: " + p["query"], add_special_tokens=False)["input_ids"] == qpre + tok(
            p["query"], add_special_tokens=False
        )["input_ids"]
    q_ids = [tok(p["query"], add_special_tokens=False)["input_ids"][:62] for p in pairs]
    p_ids = []
    for p in pairs:
        p_ids.append(tok(p["positive"][:4000], add_special_tokens=False)["input_ids"][:P_KEEP])
    assert max(max(x) for x in q_ids + p_ids) < 65535
    log(f"tokenized; prefixes query {qpre} passage {ppre}; mean article tokens kept {np.mean([len(x) for x in p_ids]):.0f}")

    # BM25 over the pool of positives (full text), each headline against it
    corpus_tokens = [simple_tokens(p["positive"]) for p in pairs]
    retr = bm25s.BM25()
    retr.index(corpus_tokens, show_progress=False)
    qtoks = [simple_tokens(p["query"]) or ["_"] for p in pairs]
    k = min(DEPTH + 10, n)
    res, _scores = retr.retrieve(qtoks, k=k, show_progress=False, n_threads=1)
    log("BM25 mined")
    if a.dense:
        res = fused_candidates(a, pairs, retr, qtoks, k)
        log(f"fused with {a.dense} (z-score, dense weight {a.dense_weight}, {FUSE_DEPTH} from each)")
    tri = [trigrams(p["positive"]) for p in pairs]
    neg = np.full((n, DEPTH), -1, dtype=np.int16)
    excl = np.full((n, 8), -1, dtype=np.int16)
    own_rank = []
    stats = {"near_copy": 0, "top1_same_start": 0}
    for i in range(n):
        kept, dropped = [], []
        row = [int(x) for x in res[i]]
        own_rank.append(row.index(i) + 1 if i in row else 0)
        first = True
        for j in row:
            if j == i:
                continue
            is_first, first = first, False
            if is_first and pairs[j]["positive"][:100] == pairs[i]["positive"][:100]:
                stats["top1_same_start"] += 1
                dropped.append(j)
                continue
            a_, b_ = tri[i], tri[j]
            inter = len(a_ & b_)
            if a_ and b_ and (inter >= 0.5 * len(a_) or inter >= 0.5 * len(b_)):
                stats["near_copy"] += 1
                dropped.append(j)
                continue
            kept.append(j)
        neg[i, : min(DEPTH, len(kept))] = kept[:DEPTH]
        excl[i, : min(8, len(dropped))] = dropped[:8]
    r = np.array(own_rank)
    log(f"filtered: {stats}; own article at {'fused' if a.dense else 'BM25'} rank 1: {np.mean(r == 1):.3f}, in top {k}: {np.mean(r > 0):.3f}")

    q_flat = np.concatenate([np.array(x, dtype=np.uint16) for x in q_ids])
    q_off = np.cumsum([0] + [len(x) for x in q_ids]).astype(np.int32)
    p_flat = np.concatenate([np.array(x, dtype=np.uint16) for x in p_ids])
    p_off = np.cumsum([0] + [len(x) for x in p_ids]).astype(np.int32)
    buf = io.BytesIO()
    np.savez(
        buf, q_flat=q_flat, q_off=q_off, p_flat=p_flat, p_off=p_off, neg=neg, excl=excl,
        qpre=np.array(qpre, dtype=np.int64), ppre=np.array(ppre, dtype=np.int64),
        specials=np.array([tok.cls_token_id, tok.sep_token_id, tok.pad_token_id], dtype=np.int64),
    )
    (out / "data.npz.xz").write_bytes(lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME))
    mdir = out / "me5-small-am"
    mdir.mkdir(exist_ok=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copyfile(STAND_IN / f, mdir / f)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log(f"wrote {out}: data.npz.xz {(out / 'data.npz.xz').stat().st_size / 1e6:.2f} MB, total {total / 1e6:.2f} MB")


FUSE_DEPTH = 300  # the product's default fusion depth (each list), as bench/trained_full.py


def fused_candidates(a, pairs: list[dict], retr, qtoks: list[list[str]], k: int) -> np.ndarray:
    """Each headline's top ``k`` of the pool as the product's first stage ranks them: BM25 (the same
    bm25s lists) and the ``--dense`` encoder fused by z-score weighted sum (search.fusion, the
    product's code). Article vectors come from ``--dense-vectors`` (rows in enh corpus order, as
    bench/dense_runs.py caches them) when given, else they are computed (one per article, 256 tokens)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from amharic_search.search.fusion import ranked, weighted_sum

    model = SentenceTransformer(a.dense, device="cpu")
    model.max_seq_length = 256
    n = len(pairs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        if a.dense_vectors:
            rows = {json.loads(l)["id"]: r for r, l in enumerate(
                (SHARED / "data/enh/corpus.jsonl").read_text(encoding="utf-8").splitlines())}
            docs = np.load(a.dense_vectors)[[rows[p["doc_id"]] for p in pairs]].astype(np.float32)
        else:
            docs = model.encode_document([p["positive"] for p in pairs], batch_size=32, show_progress_bar=True,
                                         normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)
        model.max_seq_length = 64
        qv = model.encode_query([p["query"] for p in pairs], batch_size=64, show_progress_bar=True,
                                normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)
    lex, lex_scores = retr.retrieve(qtoks, k=min(FUSE_DEPTH, n), show_progress=False, n_threads=1)
    out = np.zeros((n, k), dtype=np.int64)
    for i in range(n):
        sims = docs @ qv[i]
        top = np.argpartition(-sims, min(FUSE_DEPTH, n) - 1)[:FUSE_DEPTH]
        top = top[np.argsort(-sims[top], kind="stable")]
        fused = weighted_sum({"bm25": (lex[i], lex_scores[i]), "dense": (top, sims[top])}, normalization="zscore",
                             weights={"bm25": 1.0 - a.dense_weight, "dense": a.dense_weight})
        out[i] = [r for r, _ in ranked(fused)][:k]
    return out


# ------------------------------------------------------------------------------ device side (GPU)
class Data:
    def __init__(self, d: Path, limit: int = 0):
        npz = np.load(io.BytesIO(lzma.decompress((d / "data.npz.xz").read_bytes())))
        z = {k: npz[k] for k in npz.files}  # an NpzFile re-reads an array at every z[key]
        self.q = [z["q_flat"][a:b].astype(np.int64) for a, b in zip(z["q_off"][:-1], z["q_off"][1:])]
        self.p = [z["p_flat"][a:b].astype(np.int64) for a, b in zip(z["p_off"][:-1], z["p_off"][1:])]
        self.neg, self.excl = z["neg"].astype(np.int64), z["excl"].astype(np.int64)
        self.qpre, self.ppre = z["qpre"].tolist(), z["ppre"].tolist()
        self.cls, self.sep, self.pad = z["specials"].tolist()
        self.n = len(self.q)
        if limit:
            self.n = limit
            self.neg = np.where(self.neg < limit, self.neg, -1)
            self.excl = np.where(self.excl < limit, self.excl, -1)

    def negs(self, i: int, depth: int) -> list[int]:
        return [int(x) for x in self.neg[i, :depth] if x >= 0]


def mean(xs) -> float:
    """Mean of a list of 0-d tensors, one device sync."""
    import torch

    return float(torch.stack(xs).float().mean())


def pad_batch(seqs: list[list[int]], pad: int, torch, device):
    L = max(len(s) for s in seqs)
    ids = np.full((len(seqs), L), pad, dtype=np.int64)
    mask = np.zeros((len(seqs), L), dtype=np.int64)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = s
        mask[r, : len(s)] = 1
    return torch.from_numpy(ids).to(device, non_blocking=True), torch.from_numpy(mask).to(device, non_blocking=True)


def schedule(opt, warmup: int, total: int):
    """Linear warmup then linear decay to 0; ``plan`` (warmup, total) may be shortened while training."""
    import torch

    plan = {"warmup": warmup, "total": total}

    def f(step):
        w, t = plan["warmup"], plan["total"]
        if step < w:
            return (step + 1) / max(1, w)
        return max(0.0, (t - step) / max(1, t - w))

    sch = torch.optim.lr_scheduler.LambdaLR(opt, f)
    sch.plan = plan
    return sch


def fit_to_time(sch, step: int, elapsed: float, rate: float, cap: float, warmup_frac: float) -> str:
    """After ``step`` steps in ``elapsed`` s, shorten the plan so that training ends within ``cap`` s
    (the learning rate still decays to 0 at the last step instead of being cut off mid-way)."""
    fits = int(step + (cap - elapsed) / rate * 0.97)
    if fits >= sch.plan["total"]:
        return ""
    old = sch.plan["total"]
    sch.plan["total"] = fits
    sch.plan["warmup"] = max(step, min(sch.plan["warmup"], int(warmup_frac * fits)))
    return f"time cap {cap:.0f}s: planned {old} steps, shortened to {fits} at step {step} ({rate:.3f} s/step)"


def setup(a):
    import torch

    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        log(f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    import transformers

    log(f"transformers {transformers.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    return torch, dev


def export(model, save: Path, meta: dict) -> None:
    """fp16 safetensors in 15 MB parts + small.tar (config.json, train_meta.json)."""
    import torch

    tmp = save / "_full"
    if save.exists():
        shutil.rmtree(save)
    tmp.mkdir(parents=True)
    model = model.to("cpu").to(torch.float16)
    model.save_pretrained(str(tmp), safe_serialization=True)
    (tmp / "train_meta.json").write_text(json.dumps(meta, indent=1))
    blob = (tmp / "model.safetensors").read_bytes()
    for k in range(math.ceil(len(blob) / PART)):
        (save / f"model.safetensors.part{k:02d}").write_bytes(blob[k * PART : (k + 1) * PART])
    with tarfile.open(save / "small.tar", "w") as t:
        for f in sorted(tmp.iterdir()):
            if f.name != "model.safetensors":
                t.add(f, arcname=f.name)
    shutil.rmtree(tmp)
    log(f"exported {len(blob) / 1e6:.1f} MB in {math.ceil(len(blob) / PART)} parts to {save}")


def opt_for(model, lr: float, torch, dev):
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in trained if not any(x in n for x in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in trained if any(x in n for x in no_decay)], "weight_decay": 0.0},
    ]
    kw = {"fused": True} if dev.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=lr, **kw)


def cmd_encoder(a) -> None:
    torch, dev = setup(a)
    from transformers import AutoModel

    D = Data(Path(a.data), a.limit)
    model = AutoModel.from_pretrained(str(Path(a.data) / "me5-small-am"), dtype=torch.float32)
    model.to(dev).train()
    rng = random.Random(a.seed)
    qmax, pmax = a.q_len, a.p_len

    def q_seq(i):
        return [D.cls] + (D.qpre + D.q[i].tolist())[: qmax - 2] + [D.sep]

    def p_seq(j):
        return [D.cls] + (D.ppre + D.p[j].tolist())[: pmax - 2] + [D.sep]

    def embed(seqs):
        ids, mask = pad_batch(seqs, D.pad, torch, dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        e = (h.float() * m).sum(1) / m.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(e, dim=-1)

    B = a.batch
    per_epoch = D.n // B
    total = per_epoch * a.epochs
    if a.max_steps:
        total = min(total, a.max_steps)
    opt = opt_for(model, a.lr, torch, dev)
    sch = schedule(opt, int(a.warmup * total), total)
    log(f"encoder: {D.n} pairs, batch {B} x (1 pos + {a.hard} hard neg), {per_epoch} steps/epoch, {total} steps, lr {a.lr}, scale {a.scale}, q {qmax} / p {pmax} tokens")
    t0, step, losses, stopped, notes, marks = time.time(), 0, [], "", [], {}
    for ep in range(a.epochs):
        order = list(range(D.n))
        rng.shuffle(order)
        for b in range(per_epoch):
            if step >= sch.plan["total"]:
                break
            if time.time() - t0 > a.max_seconds * 1.1:
                stopped = f"hard stop at {a.max_seconds * 1.1:.0f}s, step {step}"
                break
            qi = order[b * B : (b + 1) * B]
            docs = list(qi)
            for i in qi:
                pool = D.negs(i, a.neg_depth)
                pick = rng.sample(pool, min(a.hard, len(pool)))
                while len(pick) < a.hard:
                    j = rng.randrange(D.n)
                    if j != i:
                        pick.append(j)
                docs.extend(pick)
            qe = embed([q_seq(i) for i in qi])
            de = embed([p_seq(j) for j in docs])
            s = qe @ de.T * a.scale
            # mask false negatives: the query's own article appearing as another's negative, near-copies
            docs_t = torch.tensor(docs, device=dev)
            own = torch.tensor(qi, device=dev)
            bad = docs_t.unsqueeze(0) == own.unsqueeze(1)
            ex = torch.from_numpy(D.excl[qi]).to(dev)
            bad |= (docs_t.view(1, -1, 1) == ex.unsqueeze(1)).any(-1)
            ar = torch.arange(len(qi), device=dev)
            bad[ar, ar] = False
            s = s.masked_fill(bad, -1e4)
            loss = torch.nn.functional.cross_entropy(s, ar)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sch.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.detach())
            step += 1
            if step in (a.probe // 2, a.probe):
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                marks[step] = time.time() - t0
            if step == a.probe:
                rate = (marks[a.probe] - marks[a.probe // 2]) / (a.probe - a.probe // 2)
                log(f"speed {rate:.3f} s/step after warm-up; whole plan would take {rate * total:.0f}s")
                note = fit_to_time(sch, step, marks[a.probe], rate, a.max_seconds, a.warmup)
                if note:
                    log(note)
                    notes.append(note)
                total = sch.plan["total"]
            if step % a.log_every == 0 or step == 1 or step == total:
                log(f"enc ep {ep} step {step}/{total} loss {mean(losses[-a.log_every:]):.4f} lr {sch.get_last_lr()[0]:.2e} {time.time() - t0:.1f}s")
        if stopped:
            break
    if dev.type == "cuda":
        torch.cuda.synchronize()
    secs = time.time() - t0
    losses = [float(x) for x in torch.stack(losses).tolist()]
    log(f"encoder trained: {step} steps in {secs:.1f}s {stopped}")
    meta = dict(kind="encoder", steps=step, seconds=round(secs, 1), loss_first=losses[0], loss_first10=float(np.mean(losses[:10])),
                loss_last10=float(np.mean(losses[-10:])), loss_curve=[round(float(np.mean(losses[k:k + 10])), 4) for k in range(0, len(losses), 10)],
                stopped=stopped, notes=notes, planned_steps=total, s_per_step=round((secs - marks.get(a.probe // 2, 0)) / max(1, step - a.probe // 2), 4), args=vars(a))
    export(model, Path(a.save), meta)


def cmd_reranker(a) -> None:
    torch, dev = setup(a)
    from transformers import AutoModelForSequenceClassification

    D = Data(Path(a.data), a.limit)
    init = a.init or str(Path(a.data) / "me5-small-am")
    model = AutoModelForSequenceClassification.from_pretrained(init, num_labels=1, dtype=torch.float32)
    model.to(dev).train()
    if a.freeze_embeddings:  # the 250k-token matrix is most of the parameters: on a CPU its AdamW update is most of a step
        model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    rng = random.Random(a.seed)
    L = a.max_len

    def pair(i, j):
        q = D.q[i].tolist()[: a.q_len]
        room = L - 4 - len(q)
        return [D.cls] + q + [D.sep, D.sep] + D.p[j].tolist()[:room] + [D.sep]

    B, G = a.batch, a.group
    per_epoch = D.n // B
    total = per_epoch * a.epochs
    if a.max_steps:
        total = min(total, a.max_steps)
    opt = opt_for(model, a.lr, torch, dev)
    sch = schedule(opt, int(a.warmup * total), total)
    log(f"reranker: {D.n} queries, {B} groups of 1 pos + {G - 1} negs (top {a.neg_depth} of the mined lists) per step, {per_epoch} steps/epoch, {total} steps, lr {a.lr}, max_len {L}")
    t0, step, losses, accs, stopped, notes, marks = time.time(), 0, [], [], "", [], {}
    for ep in range(a.epochs):
        order = list(range(D.n))
        rng.shuffle(order)
        for b in range(per_epoch):
            if step >= sch.plan["total"]:
                break
            if time.time() - t0 > a.max_seconds * 1.1:
                stopped = f"hard stop at {a.max_seconds * 1.1:.0f}s, step {step}"
                break
            seqs = []
            for i in order[b * B : (b + 1) * B]:
                pool = D.negs(i, a.neg_depth)
                pick = rng.sample(pool, min(G - 1, len(pool)))
                if len(pick) < G - 1:
                    more = [j for j in D.negs(i, DEPTH) if j not in pick]
                    pick += more[: G - 1 - len(pick)]
                bad = set(D.excl[i].tolist()) | {i}
                while len(pick) < G - 1:
                    j = rng.randrange(D.n)
                    if j not in bad and j not in pick:
                        pick.append(j)
                seqs += [pair(i, i)] + [pair(i, j) for j in pick]
            ids, mask = pad_batch(seqs, D.pad, torch, dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
                logits = model(input_ids=ids, attention_mask=mask).logits
            logits = logits.float().view(-1, G)
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=dev))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sch.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.detach())
            accs.append((logits.argmax(1) == 0).float().mean().detach())
            step += 1
            if step in (a.probe // 2, a.probe):
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                marks[step] = time.time() - t0
            if step == a.probe:
                rate = (marks[a.probe] - marks[a.probe // 2]) / (a.probe - a.probe // 2)
                log(f"speed {rate:.3f} s/step after warm-up; whole plan would take {rate * total:.0f}s")
                note = fit_to_time(sch, step, marks[a.probe], rate, a.max_seconds, a.warmup)
                if note:
                    log(note)
                    notes.append(note)
                total = sch.plan["total"]
            if step % a.log_every == 0 or step == 1 or step == total:
                log(f"rr ep {ep} step {step}/{total} loss {mean(losses[-a.log_every:]):.4f} top1 {mean(accs[-a.log_every:]):.3f} lr {sch.get_last_lr()[0]:.2e} {time.time() - t0:.1f}s")
        if stopped:
            break
    if dev.type == "cuda":
        torch.cuda.synchronize()
    secs = time.time() - t0
    losses = [float(x) for x in torch.stack(losses).tolist()]
    accs = [float(x) for x in torch.stack(accs).tolist()]
    log(f"reranker trained: {step} steps in {secs:.1f}s {stopped}")
    meta = dict(kind="reranker", steps=step, seconds=round(secs, 1), loss_first=losses[0], loss_first10=float(np.mean(losses[:10])),
                loss_last10=float(np.mean(losses[-10:])), top1_first50=float(np.mean(accs[:50])), top1_last50=float(np.mean(accs[-50:])),
                loss_curve=[round(float(np.mean(losses[k:k + 20])), 4) for k in range(0, len(losses), 20)],
                stopped=stopped, notes=notes, planned_steps=total, s_per_step=round((secs - marks.get(a.probe // 2, 0)) / max(1, step - a.probe // 2), 4), args=vars(a))
    export(model, Path(a.save), meta)


# ----------------------------------------------------------------------------------- assemble (CPU)
def cmd_assemble(a) -> None:
    parts = Path(a.parts)
    dest = Path(a.dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    files = sorted(parts.glob("model.safetensors.part*"))
    (dest / "model.safetensors").write_bytes(b"".join(p.read_bytes() for p in files))
    with tarfile.open(parts / "small.tar") as t:
        t.extractall(dest)
    cfg = json.loads((dest / "config.json").read_text())
    cfg["dtype"] = "float32"  # weights stored fp16, loaded fp32 (as the stand-in model)
    (dest / "config.json").write_text(json.dumps(cfg, indent=2))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(STAND_IN / f, dest / f)
    if a.kind == "encoder":
        for f in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
            shutil.copyfile(STAND_IN / f, dest / f)
        for d in ("1_Pooling", "2_Normalize"):
            shutil.copytree(STAND_IN / d, dest / d)
        from sentence_transformers import SentenceTransformer

        m = SentenceTransformer(str(dest), device="cpu")
        q = m.encode_query(["የኢትዮጵያ መንግሥት"])
        d = m.encode_document(["የኢትዮጵያ መንግስት ዛሬ መግለጫ ሰጠ።", "ዝናብ ዘነበ።"])
        log(f"encoder loads: dim {q.shape[1]}, max_seq_length {m.max_seq_length}, cos {(q @ d.T).round(3).tolist()}")
    else:
        from sentence_transformers import CrossEncoder

        m = CrossEncoder(str(dest), device="cpu", max_length=512)
        s = m.predict([("የኢትዮጵያ መንግሥት", "የኢትዮጵያ መንግስት ዛሬ መግለጫ ሰጠ።"), ("የኢትዮጵያ መንግሥት", "ዝናብ ዘነበ።")])
        log(f"reranker loads: num_labels {m.model.config.num_labels}, scores {np.round(s, 3).tolist()}")
        if a.resave:
            m.save(str(dest))
            import torch
            from safetensors.torch import load_file, save_file

            sd = load_file(str(dest / "model.safetensors"))
            save_file({k: v.to(torch.float16).contiguous() for k, v in sd.items()}, str(dest / "model.safetensors"), metadata={"format": "pt"})
            cfg = json.loads((dest / "config.json").read_text())
            cfg["dtype"] = "float32"
            (dest / "config.json").write_text(json.dumps(cfg, indent=2))
    for f in [dest, *dest.rglob("*")]:  # the stand-in's files are read-only; the copies need not be
        f.chmod(0o755 if f.is_dir() else 0o644)
    log(f"assembled {dest}: {sum(f.stat().st_size for f in dest.rglob('*') if f.is_file()) / 1e6:.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", default=str(ROOT / ".gpu"))
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--dense", default="", help="mine from the fused first stage with this encoder (default: BM25 only)")
    p.add_argument("--dense-vectors", default="", help="with --dense: its article vectors, enh corpus order (.npy)")
    p.add_argument("--dense-weight", type=float, default=0.3)
    for name, lr, batch, epochs in (("encoder", 3e-5, 64, 2), ("reranker", 3e-5, 16, 2)):
        p = sub.add_parser(name)
        p.add_argument("--data", default=".gpu")
        p.add_argument("--save", required=True)
        p.add_argument("--device", default="cuda")
        p.add_argument("--seed", type=int, default=13)
        p.add_argument("--limit", type=int, default=0, help="first N pairs only (dry runs)")
        p.add_argument("--max-steps", type=int, default=0)
        p.add_argument("--max-seconds", type=float, default=1e9, help="fit the schedule into this many seconds of training")
        p.add_argument("--probe", type=int, default=40, help="step at which the speed is measured for --max-seconds")
        p.add_argument("--epochs", type=int, default=epochs)
        p.add_argument("--batch", type=int, default=batch)
        p.add_argument("--lr", type=float, default=lr)
        p.add_argument("--warmup", type=float, default=0.1)
        p.add_argument("--log-every", type=int, default=10 if name == "encoder" else 25)
        p.add_argument("--no-bf16", dest="bf16", action="store_false")
        p.add_argument("--q-len", type=int, default=64 if name == "encoder" else 60)
        if name == "encoder":
            p.add_argument("--p-len", type=int, default=256)
            p.add_argument("--hard", type=int, default=2)
            p.add_argument("--neg-depth", type=int, default=10)
            p.add_argument("--scale", type=float, default=20.0)
        else:
            p.add_argument("--max-len", type=int, default=384)
            p.add_argument("--group", type=int, default=8)
            p.add_argument("--neg-depth", type=int, default=30)
            p.add_argument("--init", default="")
            p.add_argument("--freeze-embeddings", action="store_true", help="keep the word embeddings as they are (CPU speed)")
    p = sub.add_parser("assemble")
    p.add_argument("--kind", choices=["encoder", "reranker"], required=True)
    p.add_argument("--parts", required=True)
    p.add_argument("--dest", required=True)
    p.add_argument("--resave", action="store_true", help="re-save the reranker with CrossEncoder.save")
    a = ap.parse_args()
    {"prepare": cmd_prepare, "encoder": cmd_encoder, "reranker": cmd_reranker, "assemble": cmd_assemble}[a.cmd](a)


if __name__ == "__main__":
    main()
