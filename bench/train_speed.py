"""Training speed on a CPU against quality: the encoder's training settings measured on one bounded
run, so that `amharic-search train`'s defaults are chosen by cost and quality, not by habit.

    python bench/train_speed.py                  # the grid (hours on 2 cores; each run in its own process)
    python bench/train_speed.py --write          # the same, then the table into BENCHMARKS.md
    python bench/train_speed.py --only lengths-bf16-s13    # one run of the grid
    python bench/train_speed.py --write --report-only      # the table from the runs done so far

The bounded run: the stand-in encoder ../shared/models/me5-small-am trained with `search.train`
(the code behind `amharic-search train encoder`) for one epoch over a seeded sample of
``--pairs`` enh train pairs (hard negatives from BM25 over a lexical index of the enh corpus, as
`--index` does), lr 3e-5 (the documented run's), on the CPU; then dense MRR@10 and R@100 of the
trained encoder on ``--test-queries`` enh test headlines (never used for training or for choosing
settings) against their articles and ``--distractors`` other articles (a reduced pool: figures are
higher than against all 12,986 articles), one embedding per article cut at 256 tokens, computed
under bf16 autocast for every model alike (the base's figures are the "before").

Each run records: training seconds (without mining or evaluation) per 1,000 pairs, the dtype the
network really computed in (a forward hook: ``bfloat16`` under bf16 autocast), the final training
loss, the process's peak memory, the seconds spent tokenizing the same batches at the same lengths
(what pre-tokenizing once would save), and the machine's load average sampled during training
(the machine is shared: timings are upper bounds, and comparisons are between runs made in the same
conditions). Results are kept one a line in bench/.cache/train_speed/results.jsonl: an interrupted
grid resumes where it stopped (``--again`` repeats runs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, machine, machines, markdown_table, today, write_section  # noqa: E402
from bench.finetune import STAND_IN, corpus_file, dense_eval, lexical_index, peak_mb, test_set, train_pairs_of  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "train_speed"  # the models and checkpoints
# the figures are kept in the repository: the grid takes most of an hour on 2 cores, and a cache does not
# outlive the machine it was made on
RESULTS = ROOT / "bench" / "results" / "train_speed.jsonl"
RATES = ROOT / "bench" / "results" / "train_speed_rates.jsonl"
LR = 3e-5
EVAL_LENGTH = 256

SETTINGS: dict[str, dict] = {
    # the documented run: one max length for queries and passages, batch 16, one hard negative
    "old": dict(query_length=256, passage_length=256, negatives=1, batch_size=16),
    "lengths": dict(query_length=64, passage_length=128, negatives=1, batch_size=16),
    "lengths-b32": dict(query_length=64, passage_length=128, negatives=1, batch_size=32),
    "in-batch-b32": dict(query_length=64, passage_length=128, negatives=0, batch_size=32),
    "freeze6-b32": dict(query_length=64, passage_length=128, negatives=1, batch_size=32, freeze_layers=6),
    "in-batch-freeze6-b32": dict(query_length=64, passage_length=128, negatives=0, batch_size=32, freeze_layers=6),
    "p96-b32": dict(query_length=64, passage_length=96, negatives=1, batch_size=32),
    "p192-b32": dict(query_length=64, passage_length=192, negatives=1, batch_size=32),
    "in-batch-b64": dict(query_length=64, passage_length=128, negatives=0, batch_size=64),
    "in-batch-p96-b32": dict(query_length=64, passage_length=96, negatives=0, batch_size=32),
}
DESCRIBE = {
    "old": "256 tokens for queries and passages, batch 16, 1 hard negative (the documented run)",
    "lengths": "queries 64 / passages 128 tokens, batch 16, 1 hard negative",
    "lengths-b32": "queries 64 / passages 128, batch 32, 1 hard negative",
    "in-batch-b32": "queries 64 / passages 128, batch 32, in-batch negatives only",
    "freeze6-b32": "queries 64 / passages 128, batch 32, 1 hard negative, embeddings + 6 of 12 layers frozen",
    "in-batch-freeze6-b32": "queries 64 / passages 128, batch 32, in-batch negatives only, embeddings + 6 layers frozen",
    "p96-b32": "queries 64 / passages 96, batch 32, 1 hard negative",
    "p192-b32": "queries 64 / passages 192, batch 32, 1 hard negative",
    "in-batch-b64": "queries 64 / passages 128, batch 64, in-batch negatives only",
    "in-batch-p96-b32": "queries 64 / passages 96, batch 32, in-batch negatives only",
}
# the order the grid runs in: what the defaults hinge on first
GRID = [
    "old-fp32-s13", "in-batch-b32-bf16-s13", "lengths-b32-bf16-s13", "freeze6-b32-bf16-s13",
    "in-batch-freeze6-b32-bf16-s13", "in-batch-b32-fp32-s13", "in-batch-b32-bf16-s14", "in-batch-b64-bf16-s13",
    "in-batch-p96-b32-bf16-s13", "in-batch-freeze6-b32-bf16-s14", "old-fp32-s14", "old-bf16-s13",
]
# back-to-back step timings (rates only, no quality): each setting in fp32 and bf16, alternately
RATE_SETTINGS = [("encoder", "old"), ("encoder", "lengths"), ("encoder", "lengths-b32"), ("encoder", "in-batch-b32"),
                 ("encoder", "freeze6-b32"), ("encoder", "p96-b32"), ("reranker", "pairs256-b16")]
RERANKER_SETTINGS = {"pairs256-b16": dict(pair_length=256, negatives=1, batch_size=16)}


def parse_key(key: str) -> tuple[str, str, int]:
    """``SETTING-PRECISION-sSEED`` -> (setting, precision, seed)."""
    rest, seed = key.rsplit("-s", 1)
    setting, precision = rest.rsplit("-", 1)
    if setting not in SETTINGS or precision not in ("fp32", "bf16"):
        raise click.BadParameter(f"{key!r}: expected SETTING-fp32|bf16-sSEED with SETTING one of {', '.join(SETTINGS)}")
    return setting, precision, int(seed)


def bounded(pairs: int, test_queries: int, distractors: int) -> dict:
    return {"pairs": pairs, "test_queries": test_queries, "distractors": distractors, "lr": LR, "eval_length": EVAL_LENGTH,
            "test_seed": 13}


def read_records(run: dict) -> list[dict]:
    """Every record of the bounded run ``run``, oldest first."""
    if not RESULTS.exists():
        return []
    records = (json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines() if line.strip())
    return [r for r in records if r.get("bounded") == run]


def read_results(run: dict) -> dict[str, dict]:
    return {r["key"]: r for r in read_records(run)}  # the latest of a key wins


class CpuClock:
    """The CPU time this process spent between the first and the last training step (all its threads):
    with the wall time, the share of the machine the training got (2.0 = both cores all the time)."""

    def __init__(self):
        self.first: tuple[float, float] | None = None
        self.last: tuple[float, float] | None = None

    def on_step(self, step: int, total: int) -> None:
        now = (time.perf_counter(), time.process_time())
        if self.first is None:
            self.first = now
        self.last = now

    @property
    def cpu(self) -> float:
        return self.last[1] - self.first[1] if self.first else 0.0

    @property
    def share(self) -> float:
        wall = self.last[0] - self.first[0] if self.first else 0.0
        return self.cpu / wall if wall else 0.0


class LoadSampler:
    """The 1-minute load average, sampled every ``every`` seconds while it runs."""

    def __init__(self, every: float = 15.0):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        s = self.samples or [os.getloadavg()[0]]
        return {"mean": round(sum(s) / len(s), 2), "max": round(max(s), 2)}


def tokenize_seconds(model_dir: str, pairs, setting: dict) -> float:
    """Seconds to tokenize the run's texts once at its lengths, in its batches (the collator's work per epoch)."""
    from amharic_search.index.models import load_encoder

    model = load_encoder(model_dir, device="cpu")
    prompts = getattr(model, "prompts", None) or {}
    b = setting["batch_size"]
    t = time.perf_counter()
    for i in range(0, len(pairs), b):
        batch = pairs[i:i + b]
        model.preprocess([p.query for p in batch], prompt=prompts.get("query"), max_length=setting["query_length"])
        passages = [p.positive for p in batch] + [n for p in batch for n in p.negatives[:setting["negatives"]]]
        model.preprocess(passages, prompt=prompts.get("document"), max_length=setting["passage_length"])
    return time.perf_counter() - t


def one_run(key: str, run: dict) -> dict:
    """Train one setting of the grid and measure it (in this process: its peak memory is the run's)."""
    from amharic_search.search.train import TrainConfig, train_model

    setting_name, precision, seed = parse_key(key)
    setting = SETTINGS[setting_name]
    pairs = train_pairs_of(["enh"], run["pairs"], seed)
    lexical = lexical_index("enh", corpus_file("enh"))
    queries, qrels, corpus = test_set("enh", run["test_queries"], run["distractors"], run["test_seed"])
    out = CACHE / f"model-{key}"
    config = TrainConfig(base=str(STAND_IN), epochs=1, lr=LR, precision=precision, device="cpu", holdout=0, seed=seed,
                         negative_depth=30, checkpoint_minutes=600, **setting)
    clock = CpuClock()
    with LoadSampler() as load:
        result = train_model("encoder", pairs, out, config, source=f"enh train pairs ({len(pairs)}, seed {seed})",
                             index=lexical, overwrite=True, resume=False, log=lambda s: print(s, flush=True),
                             on_step=clock.on_step)
    data = json.loads((out / "training.json").read_text(encoding="utf-8"))
    trained_pairs = result.train_pairs
    mined = pairs if not setting["negatives"] else _mined(pairs, lexical, setting["negatives"])  # as trained
    tok = tokenize_seconds(str(out), mined, setting)
    quality = dense_eval(str(out), queries, qrels, corpus, EVAL_LENGTH, "cpu", precision="bf16")
    shutil.rmtree(out, ignore_errors=True)
    return {
        "key": key, "setting": setting_name, "precision": precision, "seed": seed, "bounded": run, "date": today(),
        "settings": setting, "train_pairs": trained_pairs, "steps": result.steps, "train_seconds": round(result.seconds, 1),
        "seconds_per_1000_pairs": round(result.seconds / trained_pairs * 1000, 1),
        "cpu_seconds_per_1000_pairs": round(clock.cpu / trained_pairs * 1000, 1), "cpu_share": round(clock.share, 2),
        "tokenize_seconds_per_1000_pairs": round(tok / len(mined) * 1000, 2),
        "computed_in": data.get("computed_in"), "train_loss": data.get("train_loss"), "peak_mb": round(peak_mb()),
        "load": load.summary(), "mined_negatives": data["counts"]["mined_negatives"],
        "MRR@10": quality["MRR@10"], "Recall@100": quality["Recall@100"],
    }


def _mined(pairs, lexical, negatives: int):
    from amharic_search.search.train import mine_negatives

    return mine_negatives(pairs, lexical, negatives=negatives, depth=30)


def full_epoch(run: dict, whole_corpus: bool) -> dict:
    """One epoch over all enh train pairs with `train encoder`'s defaults (no pair held out: the test
    headlines are the measure), checkpointed every 5 minutes into CACHE/full-epoch: run again, the
    same call resumes. Then dense quality on the bounded test set (and on the whole corpus)."""
    from amharic_search.search.train import TrainConfig, read_pairs, train_model

    from bench.common import DATA

    pairs = read_pairs(DATA / "enh" / "train_pairs.jsonl.gz")
    out = CACHE / "full-epoch"
    config = TrainConfig(base=str(STAND_IN), device="cpu", holdout=0, checkpoint_minutes=5)
    clock = CpuClock()
    t = time.perf_counter()
    with LoadSampler() as load:
        result = train_model("encoder", pairs, out, config, source=f"all enh train pairs ({len(pairs)})", resume=True,
                             overwrite=True, log=lambda s: print(s, flush=True), on_step=clock.on_step)
    wall = time.perf_counter() - t
    info = result.info
    queries, qrels, corpus = test_set("enh", run["test_queries"], run["distractors"], run["test_seed"])
    r = {"key": "full-epoch", "bounded": run, "date": today(), "settings": info["settings"], "train_pairs": result.train_pairs,
         "steps": result.steps, "resumed_from": result.resumed_from, "train_seconds": round(result.seconds, 1),
         "wall_seconds": round(wall, 1), "seconds_per_1000_pairs": round(result.seconds / result.train_pairs * 1000, 1),
         "cpu_share": round(clock.share, 2) if not result.resumed_from else None, "load": load.summary(),
         "computed_in": info.get("computed_in"), "train_loss": info.get("train_loss"), "peak_mb": round(peak_mb()),
         "bounded_quality": dense_eval(str(out), queries, qrels, corpus, EVAL_LENGTH, "cpu", precision="bf16")}
    if whole_corpus:
        queries, qrels, corpus = test_set("enh", None, None, run["test_seed"])
        r["whole_corpus"] = {"queries": len(queries), "documents": len(corpus),
                             "before": dense_eval(str(STAND_IN), queries, qrels, corpus, EVAL_LENGTH, "cpu", precision="bf16"),
                             "after": dense_eval(str(out), queries, qrels, corpus, EVAL_LENGTH, "cpu", precision="bf16")}
    return r


def page_check(documents: int) -> dict:
    """The page's "Adapt to this collection" on this machine: an index of ``documents`` enh train
    articles with their headlines as titles (embedded by the stand-in), its adaptation's parts timed
    (:func:`search.train.adapt.measure_rates`), the estimate, then the adaptation itself run, so the
    estimate can be checked against the time it really took."""
    import shutil as _shutil

    from amharic_search.index.build import build_index
    from amharic_search.search.train import adapt

    os.environ["AMHARIC_SEARCH_CACHE"] = str(CACHE / "page-cache")  # rates of this check only
    _shutil.rmtree(CACHE / "page-cache", ignore_errors=True)
    pairs = train_pairs_of(["enh"], documents, 13)
    corpus = CACHE / f"page-{documents}.jsonl"
    corpus.write_text("".join(json.dumps({"id": p.doc_id, "title": p.query, "text": p.positive}, ensure_ascii=False) + "\n"
                              for p in pairs), encoding="utf-8")
    index = CACHE / f"page-{documents}" / "titled"
    if not (index / "manifest.json").exists():
        build_index(corpus, index, dense_model=str(STAND_IN), show_progress=False)
    for old in index.parent.glob("titled.adapted-*"):
        _shutil.rmtree(old)
    t = time.perf_counter()
    est = adapt.estimate(index, measure=True)
    measure_s = time.perf_counter() - t
    with LoadSampler() as load:
        t = time.perf_counter()
        job = adapt.start_adapt(index, budget_s=est.seconds * 2)  # room for all steps: the whole run, timed
        job.wait()
        took = time.perf_counter() - t
    if job.state != "done":
        raise RuntimeError(f"the adaptation ended {job.state}: {job.error} {job.detail}")
    info = adapt.training_info(job.model)
    r = {"key": f"page-{documents}", "date": today(), "documents": documents, "titles": est.titles,
         "train_pairs": est.train_pairs, "heldout": est.heldout, "steps": info["steps"], "measure_seconds": round(measure_s, 1),
         "rates": asdict(est.rates), "estimate_seconds": round(est.seconds, 1), "fixed_seconds": round(est.fixed_seconds, 1),
         "took_seconds": round(took, 1), "train_seconds": info["train_seconds"], "prepare_seconds": info.get("prepare_seconds"),
         "eval_seconds": info.get("eval_seconds"), "before": info.get("before"), "after": info.get("after"),
         "settings": info["settings"], "load": load.summary()}
    _shutil.rmtree(job.model, ignore_errors=True)
    return r


def base_quality(run: dict) -> dict:
    queries, qrels, corpus = test_set("enh", run["test_queries"], run["distractors"], run["test_seed"])
    q = dense_eval(str(STAND_IN), queries, qrels, corpus, EVAL_LENGTH, "cpu", precision="bf16")
    return {"key": "base", "bounded": run, "date": today(), "MRR@10": q["MRR@10"], "Recall@100": q["Recall@100"],
            "documents": len(corpus), "queries": len(queries)}


def paired_rates(rounds: int, steps: int) -> list[dict]:
    """Seconds per step of each of RATE_SETTINGS in fp32 and in bf16, measured back to back (the two
    precisions of a setting one after the other, ``rounds`` times), so that they share the load."""
    from amharic_search.search.train import TrainConfig, measure_step_seconds, mine_negatives

    lexical = lexical_index("enh", corpus_file("enh"))
    out = []
    for rnd in range(rounds):
        for kind, name in RATE_SETTINGS:
            setting = SETTINGS.get(name) or RERANKER_SETTINGS[name]
            pairs = train_pairs_of(["enh"], (steps + 1) * setting["batch_size"], 13)
            if setting["negatives"]:
                pairs = mine_negatives(pairs, lexical, negatives=setting["negatives"], depth=30)
            for precision in (("fp32", "bf16") if rnd % 2 == 0 else ("bf16", "fp32")):
                load = os.getloadavg()[0]
                config = TrainConfig(base=str(STAND_IN), lr=LR, precision=precision, device="cpu", seed=13, **setting)
                step = measure_step_seconds(kind, pairs, config, steps=steps)
                r = {"key": f"rate-{kind}-{name}-{precision}-r{rnd}", "kind": kind, "setting": name,
                     "precision": precision, "round": rnd, "date": today(), "settings": setting,
                     "step_seconds": round(step, 2), "seconds_per_1000_pairs": round(step / setting["batch_size"] * 1000, 1),
                     "load": {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)}}
                print(json.dumps(r), flush=True)
                append(r, RATES)
                out.append(r)
    return out


def append(result: dict, path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({**result, "machine": result.get("machine") or machine()}, ensure_ascii=False) + "\n")


@click.command()
@click.option("--pairs", default=480, show_default=True, help="Train pairs of the bounded run (a seeded sample).")
@click.option("--test-queries", default=300, show_default=True)
@click.option("--distractors", default=700, show_default=True, help="Articles in the pool besides the judged ones.")
@click.option("--only", default=None, help="Run this one key (SETTING-PRECISION-sSEED) here and record it.")
@click.option("--keys", default=None, help="Comma-separated keys to run instead of the grid.")
@click.option("--again", is_flag=True, help="Repeat runs already recorded.")
@click.option("--report-only", is_flag=True, help="Run nothing; print (and with --write, write) the table.")
@click.option("--rates", "rate_rounds", default=0, help="Only time steps back to back, this many rounds (no quality).")
@click.option("--rate-steps", default=4, show_default=True, help="Steps timed per measurement (the first not counted).")
@click.option("--full-epoch", "full_epoch_", is_flag=True, help="Train one epoch over all enh pairs with train's defaults (resumes).")
@click.option("--whole-corpus", is_flag=True, help="With --full-epoch: dense quality against all enh articles too.")
@click.option("--page", "page_documents", default=0, help="Time the page's adaptation on an index of this many articles.")
@click.option("--write", is_flag=True, help="Write the table into BENCHMARKS.md.")
def main(pairs, test_queries, distractors, only, keys, again, report_only, rate_rounds, rate_steps, full_epoch_, whole_corpus,
         page_documents, write):
    run = bounded(pairs, test_queries, distractors)
    CACHE.mkdir(parents=True, exist_ok=True)
    if page_documents:
        r = page_check(page_documents)
        append(r)
        print(json.dumps(r, ensure_ascii=False), flush=True)
        return
    if full_epoch_:
        r = full_epoch(run, whole_corpus)
        append(r)
        print(json.dumps(r, ensure_ascii=False), flush=True)
        return
    if rate_rounds:
        paired_rates(rate_rounds, rate_steps)
        return
    if only:
        result = base_quality(run) if only == "base" else one_run(only, run)
        append(result)
        print(json.dumps(result, ensure_ascii=False), flush=True)
        return
    if not report_only:
        todo = ["base"] + (keys.split(",") if keys else GRID)
        for key in todo:
            if key != "base":
                parse_key(key)
            if key in read_results(run) and not again:
                continue
            print(f"== {key} (load {os.getloadavg()[0]:.1f})", flush=True)
            args = [sys.executable, __file__, "--only", key, "--pairs", str(pairs), "--test-queries", str(test_queries),
                    "--distractors", str(distractors)]
            code = subprocess.call(args)
            if code:
                print(f"{key}: exit status {code}", flush=True)
    results = read_results(run)
    full_epochs = [r for r in read_records(run) if r["key"] == "full-epoch"]
    text = "\n\n".join(x for x in (render(results, run, full_epochs), render_page(read_page_checks()), render_rates(read_rates())) if x)
    print(text)
    if write:
        write_section("Fine-tuning: training speed on a CPU", text)


QUIET = 3.0
"""A run whose mean load stayed under this had the machine (nearly) to itself: 2 cores, ~2.0 is one run."""


def render(results: dict[str, dict], run: dict, full_epochs: list[dict] = ()) -> str:
    """The section's main part. ``full_epochs``: the full-epoch records, oldest first; the first made the
    model the whole-corpus section measured (cpu-ft), later runs of the same command are repeats beside it."""
    base = results.get("base")
    runs = [r for k, r in results.items() if k not in ("base", "full-epoch")]
    if not runs:
        return "No run recorded yet."
    quiet_ref = [r for r in runs if r["setting"] == "old" and r["precision"] == "fp32" and r["load"]["mean"] < QUIET]
    ref_rate = min((r["seconds_per_1000_pairs"] for r in quiet_ref), default=None)
    dates = sorted({r["date"] for r in runs})
    lines = [
        f"`bench/train_speed.py`, measured {dates[0]}{' to ' + dates[-1] if len(dates) > 1 else ''} on {machines(runs)}, "
        "CPU only, "
        + ("**on a shared machine**: other work ran on the same 2 cores for part of the time. "
           if any(r["load"]["mean"] >= QUIET for r in runs) else "one run at a time with the machine to itself. ")
        + "The load column is the 1-minute load average sampled during the training (about 2 = this run alone), "
        "\"cores had\" the CPU time of the training process over the wall time of its steps (2.0 = both cores all "
        "the time). Other work on the same cores slows a run several times over (an earlier grid ran 5-10x slower "
        f"under a load of 5-11), so only rows with a load under {QUIET:.0f} are compared for speed (\"vs old fp32\" is "
        "against the faster of the old settings' runs with the machine to itself).",
        "",
        f"The bounded run: the stand-in encoder (me5-small-am) trained one epoch on a seeded sample of {run['pairs']} "
        f"enh train pairs (seed 13 or 14: the sample and the order), lr {run['lr']}, hard negatives (where the "
        "setting has them) from BM25, top 30, the positive's article left out; quality = dense MRR@10 and R@100 of "
        f"the trained encoder on {run['test_queries']} enh **test** headlines against their articles and "
        f"{run['distractors']} others (a reduced pool of {base['documents'] if base else '?'} articles, not the "
        f"12,986 of the corpus: figures are higher than full-corpus ones), one embedding per article cut at "
        f"{run['eval_length']} tokens, every model evaluated the same way (bf16 autocast)."
        + (f" The stand-in before training: MRR@10 {base['MRR@10']:.3f}, R@100 {base['Recall@100']:.3f}." if base else ""),
        "",
    ]
    rows = []
    order = list(SETTINGS)
    for r in sorted(runs, key=lambda r: (order.index(r["setting"]), r["precision"] != "fp32", r["seed"])):
        rate = r["seconds_per_1000_pairs"]
        quiet = r["load"]["mean"] < QUIET
        rows.append([
            DESCRIBE[r["setting"]], r["precision"] + ("" if r.get("computed_in") in (None, {"fp32": "float32", "bf16": "bfloat16"}[r["precision"]])
                                                     else f" (computed in {r['computed_in']}!)"),
            r["seed"], f"{rate:,.0f} s" + ("" if quiet else " (loaded)"),
            f"{ref_rate / rate:.1f}x" if ref_rate and quiet else "-",
            f"{r['MRR@10']:.3f}", f"{r['Recall@100']:.3f}", r["train_loss"], f"{r['peak_mb'] / 1024:.1f} GB",
            f"{r['load']['mean']:.1f}", f"{r['cpu_share']:.2f}" if r.get("cpu_share") else "-",
        ])
    lines.append(markdown_table(["setting", "precision", "seed", "training per 1,000 pairs", "vs old fp32",
                                 "MRR@10 after", "R@100 after", "final loss", "peak memory", "load", "cores had"], rows))
    noise = _noise(runs)
    if noise:
        lines += ["", "Noise (the same setting, two seeds; the seed draws the sample of pairs and their order): "
                  + "; ".join(noise) + "."]
    tok = [r["tokenize_seconds_per_1000_pairs"] / r["seconds_per_1000_pairs"] for r in runs if r["load"]["mean"] < QUIET]
    if tok:
        lines += ["", f"Tokenizing is {min(tok):.1%} to {max(tok):.1%} of the training time (the same batches tokenized "
                  "at the same lengths, timed apart; rows with the machine to itself), so tokenizing once instead of "
                  "each epoch would save at most that: the trainer tokenizes each batch as it goes, and stays so."]
    full, *repeats = full_epochs or [None]
    if full:
        s, q = full["settings"], full["bounded_quality"]
        lines += ["", f"**The full epoch** (`python bench/train_speed.py --full-epoch"
                  f"{' --whole-corpus' if full.get('whole_corpus') else ''}`, {full['date']}, {machines([full])}): "
                  f"`train encoder`'s defaults (precision {s['precision']}, computed in {full['computed_in']}, queries "
                  f"{s['query_length']} / passages {s['passage_length']} tokens, batch {s['batch_size']}, "
                  f"{s['negatives']} hard negatives, lr {s['lr']}), all {full['train_pairs']:,} enh train pairs, "
                  f"{full['steps']} steps: "
                  + (f"**{full['train_seconds'] / 60:.0f} min of training** ({full['seconds_per_1000_pairs']:,.0f} s per "
                     f"1,000 pairs; load {full['load']['mean']:.1f}, max {full['load']['max']:.1f}"
                     if not full.get("resumed_from") else
                     f"{full['train_seconds'] / 60:.0f} min of training in all, over two sittings: the first stopped at step "
                     f"{full['resumed_from']}; the same command resumed it from its checkpoint and "
                     f"the last {full['steps'] - full['resumed_from']} steps took {full['wall_seconds']:.0f} s with the "
                     f"machine nearly to itself (load {full['load']['mean']:.1f}, max {full['load']['max']:.1f}; model "
                     f"loading included), **{full['wall_seconds'] / (full['steps'] - full['resumed_from']):.2f} s per "
                     f"step, {full['wall_seconds'] / (full['steps'] - full['resumed_from']) * full['steps'] / 60:.0f} min "
                     f"for the epoch at that pace**")
                  + f"; peak memory {full['peak_mb'] / 1024:.1f} GB). Dense on the bounded test set above: MRR@10 "
                  f"{q['MRR@10']:.3f}, R@100 {q['Recall@100']:.3f}."
                  + ("" if full.get("whole_corpus") else " Against all 12,986 articles, alone and fused: \"Trained models "
                     "on the whole enh collection (CPU)\", encoder cpu-ft.")]
        lines += [f"The same command run again, from scratch ({r['date']}, {machines([r])}): "
                  f"{r['train_seconds'] / 60:.1f} min of training ({r['seconds_per_1000_pairs']:,.0f} s per 1,000 pairs, "
                  f"load {r['load']['mean']:.1f}), dense on the bounded test set MRR@10 "
                  f"{r['bounded_quality']['MRR@10']:.3f}, R@100 {r['bounded_quality']['Recall@100']:.3f}."
                  for r in repeats if not r.get("resumed_from")]
        whole = full.get("whole_corpus")
        if whole:
            b, a = whole["before"], whole["after"]
            lines += ["", markdown_table(
                [f"dense alone, all {whole['queries']:,} enh test headlines against all {whole['documents']:,} articles "
                 f"(one vector per article, {run['eval_length']} tokens)", "MRR@10", "R@100"],
                [["stand-in (before)", b["MRR@10"], b["Recall@100"]],
                 ["after the full epoch", a["MRR@10"], a["Recall@100"]]])]
    return "\n".join(lines)


def read_page_checks() -> list[dict]:
    if not RESULTS.exists():
        return []
    found = {}
    for line in RESULTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and (r := json.loads(line))["key"].startswith("page-"):
            found[r["key"]] = r
    return list(found.values())


def adapt_minutes(documents: int, rates: dict, batch: int, holdout: float = 0.1, holdout_max: int = 300,
                  heldout_negatives: int = 3) -> float:
    """The page's estimate for ``documents`` titled documents (every title usable), as
    :class:`search.train.adapt.Estimate` computes it from measured rates."""
    import math

    held = min(holdout_max, max(1, round(documents * holdout)))
    steps = math.ceil((documents - held) / batch)
    fixed = held * rates["mining_seconds"] + 2 * held * (2 + heldout_negatives) * rates["encode_seconds"]
    return (fixed + steps * rates["step_seconds"]) / 60


def render_page(checks: list[dict]) -> str:
    if not checks:
        return ""
    lines = []
    for c in checks:
        r, s = c["rates"], c["settings"]
        b, a = c.get("before") or {}, c.get("after") or {}
        lines += [
            f"**The page's \"Adapt to this collection\"** (`python bench/train_speed.py --page {c['documents']}`, "
            f"{c['date']}, load {c['load']['mean']:.1f}): an index of {c['documents']:,} enh train articles with their "
            f"headlines as titles, embedded by the stand-in; {c['titles']:,} usable titles, {c['heldout']} held out. "
            f"Measuring this machine's pace took {c['measure_seconds']:.0f} s: {r['step_seconds']} s per step of "
            f"{s['batch_size']} titles, {r['mining_seconds'] * 1000:.0f} ms per title whose distractors are mined, "
            f"{r['encode_seconds'] * 1000:.0f} ms per text the before/after measure embeds. The estimate shown before "
            f"starting: {c['estimate_seconds'] / 60:.1f} min; the adaptation then took {c['took_seconds'] / 60:.1f} min "
            f"({c['steps']} steps; {c['train_seconds']:.0f} s of training), held-out MRR@10 {b.get('MRR@10', float('nan')):.3f} "
            f"-> {a.get('MRR@10', float('nan')):.3f}.", ""]
    last = checks[-1]
    sizes = (1000, 5000, 13000, 50000)
    lines += ["At these rates (the page's settings, every document with a usable title), adapting a collection on this "
              "2-core machine takes:", "",
              markdown_table(["documents"] + [f"{n:,}" for n in sizes],
                             [["minutes"] + [f"{adapt_minutes(n, last['rates'], last['settings']['batch_size']):.0f}"
                                             for n in sizes]])]
    return "\n".join(lines)


def read_rates() -> list[dict]:
    if not RATES.exists():
        return []
    return [json.loads(line) for line in RATES.read_text(encoding="utf-8").splitlines() if line.strip()]


RATE_DESCRIBE = {**DESCRIBE, "pairs256-b16": "reranker: 256 tokens per pair, batch 16, 1 hard negative (2 pairs per query)"}


def render_rates(rates: list[dict]) -> str:
    """Step timings measured back to back: fp32 next to bf16 for each setting, in the same conditions."""
    if not rates:
        return ""
    by: dict[tuple, dict[str, list[float]]] = {}
    loads = []
    for r in rates:
        by.setdefault((r["kind"], r["setting"]), {}).setdefault(r["precision"], []).append(r["seconds_per_1000_pairs"])
        loads += [r["load"]["start"], r["load"]["end"]]
    ref = by.get(("encoder", "old"), {}).get("fp32")
    ref = sum(ref) / len(ref) if ref else None
    rows = []
    for (kind, name), per in by.items():
        f, b = (sum(per[p]) / len(per[p]) if per.get(p) else None for p in ("fp32", "bf16"))
        rows.append([RATE_DESCRIBE[name], f"{f:,.0f}" if f else "-", f"{b:,.0f}" if b else "-",
                     f"{f / b:.2f}x" if f and b else "-",
                     f"{ref / b:.1f}x" if ref and b and kind == "encoder" else "-", len(per.get("bf16", []))])
    rounds = 1 + max(r["round"] for r in rates)
    return "\n".join([
        f"Step timings back to back ({min(r['date'] for r in rates)}; {rounds} round(s), the two precisions of a setting "
        "one right after the other, alternating which goes first; the trainer's own steps on the enh pairs, the first "
        f"step of each measurement not counted; load {min(loads):.1f} to {max(loads):.1f}). Seconds of training per "
        "1,000 pairs (the step time divided by the batch):", "",
        markdown_table(["setting", "fp32", "bf16", "bf16 vs fp32", "bf16 vs old fp32", "rounds"], rows)])


def _noise(runs: list[dict]) -> list[str]:
    by: dict[tuple, list[dict]] = {}
    for r in runs:
        by.setdefault((r["setting"], r["precision"]), []).append(r)
    out = []
    for (s, p), rs in by.items():
        if len(rs) > 1:
            m = [r["MRR@10"] for r in rs]
            rate = [r["seconds_per_1000_pairs"] for r in rs]
            out.append(f"{s} {p}: MRR@10 {' / '.join(f'{x:.3f}' for x in m)} (spread {max(m) - min(m):.3f}), "
                       f"time {' / '.join(f'{x:,.0f}' for x in rate)} s per 1,000 pairs")
    return out


if __name__ == "__main__":
    main()
