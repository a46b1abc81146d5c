"""Fine-tuning the dense encoder and the reranker on (query, positive passage) pairs.

The trainers are sentence-transformers' own (``SentenceTransformerTrainer`` with
MultipleNegativesRankingLoss, optionally inside MatryoshkaLoss, for the encoder;
``CrossEncoderTrainer`` with binary cross-entropy or a listwise loss for the reranker), so
checkpoints, resuming, progress bars with an ETA and GPU use are theirs. This module prepares the
data (pairs files checked line by line, pairs made from a corpus's titles, hard negatives mined
from an index), evaluates before and after on a held-out split, and writes a standard model
directory (safetensors only) with a model card.

Example::

    from ...search.train import TrainConfig, read_pairs, train_model

    pairs = read_pairs("train_pairs.jsonl.gz")
    result = train_model("encoder", pairs, "models/my-encoder",
                         TrainConfig(base="rasyosef/embedding-amharic-medium", epochs=1), index="indexes/mine")
    print(result.before, result.after)   # {'MRR@10': ..., 'Recall@1': ..., 'Recall@10': ...}

An interrupted run (Ctrl-C, a crash, ``stop_after``) leaves checkpoints in ``OUT/checkpoints``;
the same call resumes from the last one. A finished run leaves only the model in ``OUT``.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import json
import random
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Literal

from .card import format_metrics, model_card
from .common import (CHECKPOINTS, DATA_FILE, KINDS, PRECISIONS, RUN_FILE, TRAINING_FILE, Kind, Precision, TrainError,
                     TrainingInterrupted)
from .evaluation import EvalSet, eval_from_pairs, evaluate_encoder, evaluate_reranker
from .pairs import MiningReport, Pair, mine_negatives, pairs_hash, split_holdout

# -- training ----------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class TrainConfig:
    """Settings of a run. ``precision``: the arithmetic (:func:`choose_precision`; bf16 is autocast
    over fp32 master weights, which is also what is saved); ``query_length``/``passage_length``:
    tokens per query and per passage while training the encoder; ``pair_length``: tokens per
    (query, passage) pair while training the reranker (the saved model keeps the base's lengths);
    ``loss``: ``mnrl`` (encoder), ``bce`` or ``listwise`` (reranker); ``matryoshka``: embedding
    sizes to train for as well (encoder); ``negatives``/``negative_depth``: hard negatives per pair
    and how deep in the first stage they are looked for (``--index``); ``holdout``: the fraction of
    pairs held out for the before/after evaluation (when no eval set is given), which get
    ``heldout_negatives`` mined negatives each as distractors; ``freeze_layers``: keep the token
    embeddings and the first N transformer layers as they are (no gradient flows through them, so
    training is cheaper: the backward pass and the optimizer only see the layers above);
    ``micro_batch``: (query, passage) pairs the reranker scores per forward pass: a step whose pairs
    are more (``batch_size`` times the positive, the negatives and, listwise, in-batch negatives) is
    computed in parts of at most this many, so memory stays bounded whatever the batch and the
    negatives, with the same gradients (listwise: cached gradients, GradCache; bce: gradient
    accumulation); ``max_steps``: a bound on the optimizer steps (a short run). The defaults are the measured fast settings (BENCHMARKS.md, "Fine-tuning")."""

    base: str
    epochs: float = 1.0
    batch_size: int = 32
    micro_batch: int = 32
    lr: float = 2e-5
    precision: Precision = "auto"
    query_length: int = 64
    passage_length: int = 128
    pair_length: int = 256
    device: str = "auto"
    loss: str | None = None
    matryoshka: tuple[int, ...] | None = None
    negatives: int | None = None
    negative_depth: int = 30
    holdout: float = 0.1
    holdout_max: int = 1000
    heldout_negatives: int = 5
    freeze_layers: int = 0
    seed: int = 13
    warmup: float = 0.1
    checkpoint_minutes: float = 10.0
    max_steps: int | None = None

    def settings(self, kind: Kind) -> dict:
        """What identifies a run of ``kind`` (a resumed run must match): the settings that shape the
        result. The device, the precision and the checkpoint interval may change between an
        interrupted run and its resumption, and so may the micro-batch (it splits the same
        computation); the lengths of the other kind do not apply."""
        d = asdict(self)
        d["negatives"] = self.negatives_for(kind)
        d["loss"] = self.loss or ("mnrl" if kind == "encoder" else "bce")
        d["matryoshka"] = list(self.matryoshka) if self.matryoshka else None
        for k in ("device", "precision", "checkpoint_minutes", "micro_batch",
                  *(("pair_length",) if kind == "encoder" else ("query_length", "passage_length"))):
            d.pop(k)
        return d


    def negatives_for(self, kind: Kind) -> int:
        """Negatives per pair: ``negatives``, else the kind's measured default (:data:`DEFAULT_NEGATIVES`)."""
        return self.negatives if self.negatives is not None else DEFAULT_NEGATIVES[kind]


DEFAULT_NEGATIVES: dict[str, int] = {"encoder": 0, "reranker": 1}
"""Negatives per pair when none is asked for. The encoder: in-batch negatives only, measured as good
as one mined hard negative for 0.77x the cost on the bounded run (BENCHMARKS.md, "Fine-tuning:
training speed on a CPU"); the reranker: one mined negative per pair (binary cross-entropy needs negatives)."""


@dataclass
class TrainResult:
    kind: str
    out: Path
    before: dict[str, float] | None
    after: dict[str, float] | None
    steps: int
    resumed_from: int
    seconds: float
    train_pairs: int
    heldout: int
    info: dict


def choose_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError("--device cuda: no CUDA GPU is available to PyTorch here (use --device cpu or auto)")
    return device


def choose_precision(precision: str, device: str) -> Literal["fp32", "bf16"]:
    """The arithmetic of training on ``device``: ``bf16`` is autocast to bfloat16 with fp32 master
    weights, where the hardware computes bfloat16 natively (a CPU with AVX-512 BF16 or AMX, a CUDA GPU
    that supports it); ``auto`` is bf16 there and fp32 elsewhere. bf16 asked for where it would be
    emulated (slower than fp32), or an unknown choice, raises :class:`TrainError`."""
    if precision not in PRECISIONS:
        raise TrainError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return "fp32"
    if device.startswith("cuda"):
        import torch

        native, hardware = torch.cuda.is_bf16_supported(), "this GPU"
    else:
        from ...index.engines import cpu_has_bf16

        native, hardware = cpu_has_bf16(), "this CPU (it has neither AVX-512 BF16 nor AMX)"
    if precision == "auto":
        return "bf16" if native else "fp32"
    if not native:
        raise TrainError(f"--precision bf16: {hardware} does not compute bfloat16 natively, so bf16 would be slower "
                         "than fp32 here; use --precision fp32 or auto")
    return "bf16"


def _base_error(exc, kind: Kind) -> TrainError:
    from ...index.models import ModelUnavailableError

    assert isinstance(exc, ModelUnavailableError)
    advice = exc.advice().replace("--dense-model/--reranker", "--base")
    return TrainError(f"cannot train the {kind}: its base model {exc.model!r} is not available ({exc.reason}). {advice}")


def _load_base(kind: Kind, base: str, device: str):
    from ...index.models import ModelUnavailableError, load_cross_encoder, load_encoder, resolve_model

    try:
        resolve_model(base)
        if kind == "encoder":
            model = load_encoder(base, device=device)
        else:
            model = load_cross_encoder(base, device=device)
    except ModelUnavailableError as exc:
        raise _base_error(exc, kind) from None
    if kind == "reranker" and getattr(model, "num_labels", 1) != 1:
        raise TrainError(f"{base}: a reranker base must have one output (it has {model.num_labels}); "
                         "start from an encoder or a one-logit cross-encoder")
    return model


def _freeze(model, layers: int) -> None:
    """No gradient for the token embeddings and the first ``layers`` transformer layers of ``model``
    (a SentenceTransformer or a CrossEncoder over a BERT-like network)."""
    if layers <= 0:
        return
    hf = model[0].auto_model if hasattr(model[0], "auto_model") else getattr(model, "model", None)
    net = getattr(hf, "base_model", hf)
    blocks = getattr(getattr(net, "encoder", None), "layer", None)
    if blocks is None or not hasattr(net, "embeddings"):
        raise TrainError(f"--freeze-layers: the network of this model ({type(hf).__name__}) has no embeddings and "
                         "encoder layers to freeze; use --freeze-layers 0")
    if layers >= len(blocks):
        raise TrainError(f"--freeze-layers {layers}: the model has {len(blocks)} layers; freeze fewer so some are trained")
    for module in (net.embeddings, *blocks[:layers]):
        for param in module.parameters():
            param.requires_grad_(False)


def _set_max_length(model, value: int | None) -> None:
    if value is not None:
        model.max_seq_length = value


def _fill_negatives(pairs: list[Pair], n: int, seed: int) -> tuple[list[Pair], int]:
    """Every pair with exactly ``n`` negatives: missing ones are other pairs' positives, at random."""
    if n <= 0:
        return [Pair(p.query, p.positive, [], p.doc_id, p.line) for p in pairs], 0
    rng = random.Random(seed)
    positives = list(dict.fromkeys(p.positive for p in pairs))
    filled = 0
    out = []
    for p in pairs:
        negs = list(p.negatives[:n])
        tries = 0
        while len(negs) < n and tries < 10 * n:
            tries += 1
            cand = rng.choice(positives)
            if cand != p.positive and cand not in negs:
                negs.append(cand)
                filled += 1
        while len(negs) < n:  # too few distinct passages: repeat
            negs.append(negs[-1] if negs else p.positive[: max(1, len(p.positive) // 2)])
            filled += 1
        out.append(Pair(p.query, p.positive, negs, p.doc_id, p.line))
    return out, filled


def _dataset(kind: Kind, pairs: list[Pair], n_neg: int, loss: str):
    from datasets import Dataset

    if kind == "encoder" or loss == "listwise":
        cols = {"query": [p.query for p in pairs], "positive": [p.positive for p in pairs]}
        for i in range(n_neg):
            cols[f"negative_{i + 1}"] = [p.negatives[i] for p in pairs]
        return Dataset.from_dict(cols)
    queries, passages, labels = [], [], []
    for p in pairs:
        for text, label in [(p.positive, 1.0), *((n, 0.0) for n in p.negatives[:n_neg])]:
            queries.append(p.query)
            passages.append(text)
            labels.append(label)
    return Dataset.from_dict({"query": queries, "passage": passages, "label": labels})


def _stopper(every_s: float, stop_after: int | None, flag: threading.Event,
             on_step: Callable[[int, int], None] | None = None):
    from transformers import TrainerCallback

    class Checkpoints(TrainerCallback):
        """A checkpoint every ``every_s`` seconds, a clean stop (with a checkpoint) on Ctrl-C, ``stop_after``
        or ``flag``; ``on_step(step, total)`` at the start and after each step."""

        stopped = False

        def __init__(self):
            self.last = time.monotonic()

        def on_train_begin(self, args, state, control, **kwargs):
            if on_step is not None:
                on_step(state.global_step, state.max_steps)

        def on_step_end(self, args, state, control, **kwargs):
            if on_step is not None:
                on_step(state.global_step, state.max_steps)
            if time.monotonic() - self.last >= every_s:
                control.should_save = True
                self.last = time.monotonic()
            if flag.is_set() or (stop_after is not None and state.global_step >= stop_after and state.global_step < state.max_steps):
                control.should_save = True
                control.should_training_stop = True
                Checkpoints.stopped = True
            return control

    return Checkpoints()


@contextlib.contextmanager
def _sigint_stops(flag: threading.Event, log: Callable[[str], None]):
    """The first Ctrl-C finishes the current step, saves a checkpoint and stops; a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        log("stopping after this step and saving a checkpoint (Ctrl-C again aborts without one)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def missing_trainer_packages() -> list[str]:
    """The Python packages training needs that are not installed here (``amharic-search[train]``)."""
    import importlib.util

    return [name for name in ("accelerate", "datasets") if importlib.util.find_spec(name) is None]


def _check_trainer_packages() -> None:
    missing = missing_trainer_packages()
    if missing:
        raise TrainError(f"training needs the Python packages {', '.join(missing)}: "
                         "pip install 'amharic-search[train]' (or pip install " + " ".join(missing) + ")")


def _is_training_output(out: Path) -> bool:
    return (out / TRAINING_FILE).is_file() or (out / CHECKPOINTS).is_dir()


def _write_state(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".gz":
        with gzip.open(tmp, "wt", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False)
    else:
        tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(path)


def _read_state(path: Path):
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    return json.loads(path.read_text(encoding="utf-8"))


def train_model(
    kind: Kind,
    pairs: list[Pair],
    out: str | Path,
    config: TrainConfig,
    *,
    source: str = "",
    index: str | Path | None = None,
    eval_set: EvalSet | None = None,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = False,
    log: Callable[[str], None] = print,
    stop_after: int | None = None,
    extra_info: dict | None = None,
    strict: bool = False,
    on_step: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> TrainResult:
    """Fine-tune ``config.base`` on ``pairs`` and write the model to ``out`` (safetensors, model card).

    ``index``: mine hard negatives from its first stage (:func:`mine_negatives`). ``eval_set``:
    evaluate on it instead of a held-out split of the pairs. Checkpoints go to ``out/checkpoints``;
    with ``resume`` a run left there by an interrupted call with the same pairs and settings
    continues from its last checkpoint (other settings are refused). ``stop_after`` stops after that
    many steps as an interruption would (:class:`TrainingInterrupted`). ``log`` receives the progress
    lines (counts, before/after figures). ``strict``: an index whose encoder is missing is an error
    (else its hard negatives come from BM25 alone, with a note). ``on_step(step, total)`` is called
    when training starts and after each optimizer step (a progress display). Setting ``stop`` (from
    another thread: a page's Stop button) stops as Ctrl-C does: after the current step, with a
    checkpoint, raising :class:`TrainingInterrupted`.
    """
    if kind not in KINDS:
        raise TrainError(f"unknown model kind {kind!r} (encoder or reranker)")
    loss = config.loss or ("mnrl" if kind == "encoder" else "bce")
    allowed = {"encoder": ("mnrl",), "reranker": ("bce", "listwise")}[kind]
    if loss not in allowed:
        raise TrainError(f"--loss {loss} does not train a {kind} (choose {' or '.join(allowed)})")
    if config.matryoshka and kind != "encoder":
        raise TrainError("--matryoshka trains an encoder's embedding sizes; a reranker has none")
    if not 0 <= config.holdout < 1:
        raise TrainError(f"--holdout must be a fraction in [0, 1), got {config.holdout}")
    if not pairs:
        raise TrainError("no training pairs")
    out = Path(out)
    state_dir = out / CHECKPOINTS
    device = choose_device(config.device)
    precision = choose_precision(config.precision, device)
    for name, least in (("batch_size", 1), ("micro_batch", 1), ("query_length", 1), ("passage_length", 1), ("pair_length", 1),
                        ("freeze_layers", 0)):
        if getattr(config, name) < least:
            raise TrainError(f"--{name.replace('_', '-')} must be at least {least}, got {getattr(config, name)}")
    settings = config.settings(kind)
    identity = {"kind": kind, "settings": settings, "pairs": pairs_hash(pairs), "index": str(index) if index else None,
                "eval": hashlib.sha256(json.dumps(eval_set.to_dict(), sort_keys=True).encode()).hexdigest() if eval_set else None}

    if out.exists() and not out.is_dir():
        raise TrainError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not _is_training_output(out):
        raise TrainError(f"--out {out} is a folder that holds other files; choose a new or empty folder")
    run = _read_state(state_dir / RUN_FILE) if resume and (state_dir / RUN_FILE).is_file() else None
    if run is None and (out / TRAINING_FILE).is_file() and not overwrite:
        raise TrainError(f"{out} already holds a trained model; pass --overwrite to replace it or choose another --out")
    if run is not None and run.get("identity") != identity:
        differs = [k for k in identity if run.get("identity", {}).get(k) != identity[k]]
        if "settings" in differs:
            old = run["identity"]["settings"]
            differs = [f"{k} ({old.get(k)} -> {v})" for k, v in settings.items() if old.get(k) != v] + \
                      [k for k in differs if k != "settings"]
        raise TrainError(f"{state_dir} holds an interrupted run with other data or settings ({', '.join(differs)}); "
                         "run it again as it was to resume, or pass --no-resume to start over")

    _check_trainer_packages()
    model = _load_base(kind, config.base, device)  # a missing base: an error before any work
    t_start = time.perf_counter()
    if run is None:
        if out.is_dir():
            shutil.rmtree(out)
        state_dir.mkdir(parents=True)
        if eval_set is None:
            train_pairs, held = split_holdout(pairs, config.holdout, seed=config.seed, max_pairs=config.holdout_max)
        else:
            train_pairs, held = list(pairs), []
        mining, held_mining = None, None
        negatives = config.negatives_for(kind)
        if negatives == 0 and any(p.negatives for p in train_pairs):
            log(f"note: the pairs bring negatives of their own; --negatives 0 (the {kind}'s default) leaves them out: "
                "pass --negatives N to train with them")
        if index is not None and negatives > 0:
            mining = MiningReport()
            train_pairs = mine_negatives(train_pairs, index, negatives=negatives, depth=config.negative_depth,
                                         progress=progress, report=mining, strict=strict)
            for note in mining.notes:
                log(f"note: {note}")
            log(mining.summary())
        if held and index is not None and config.heldout_negatives > 0:  # distractors, so before/after is not noise
            held_mining = MiningReport()
            held = mine_negatives(held, index, negatives=config.heldout_negatives, depth=config.negative_depth,
                                  report=held_mining, strict=strict)
            log("held out: " + held_mining.summary())
        ev = eval_set if eval_set is not None else eval_from_pairs(held) if held else None
        have_negatives = any(p.negatives for p in train_pairs)
        n_neg = negatives if (have_negatives or kind == "reranker" and loss == "bce") else 0
        train_pairs, filled = _fill_negatives(train_pairs, n_neg, config.seed)
        run = {
            "identity": identity,
            "counts": {"pairs": len(pairs), "train": len(train_pairs), "heldout": len(held),
                       "eval_queries": len(ev.queries) if ev else 0, "eval_passages": len(ev.passages) if ev else 0,
                       "negatives_per_pair": n_neg, "random_negatives": filled,
                       "mined_negatives": mining.mined if mining else 0,
                       "heldout_mined": held_mining.mined if held_mining else 0},
            "mining": asdict(mining) if mining else None,
            "source": source, "eval_source": ev.source if ev else None,
            "before": None, "prepare_seconds": round(time.perf_counter() - t_start, 1),
        }
        _write_state(state_dir / DATA_FILE, {"train": [p.to_dict() for p in train_pairs],
                                             "eval": ev.to_dict() if ev else None})
        _write_state(state_dir / RUN_FILE, run)
    data = _read_state(state_dir / DATA_FILE)
    train_pairs = [Pair(d["query"], d["positive"], d.get("negatives", []), d.get("doc_id")) for d in data["train"]]
    ev = EvalSet.from_dict(data["eval"]) if data["eval"] else None
    n_neg = run["counts"]["negatives_per_pair"]
    counts = run["counts"]
    log(f"{counts['train']} training pairs ({n_neg} negatives each: {counts['mined_negatives']} mined, "
        f"{counts['random_negatives']} random); evaluation: "
        + (f"{len(ev.queries)} queries, {len(ev.passages)} passages ({ev.source})" if ev else "none (--holdout 0)"))

    inference_length = model.max_seq_length
    _set_max_length(model, config.passage_length if kind == "encoder" else config.pair_length)
    evaluate = functools.partial(evaluate_encoder if kind == "encoder" else evaluate_reranker, precision=precision)
    if ev is not None and run.get("before") is None:
        run["before"] = evaluate(model, ev)
        _write_state(state_dir / RUN_FILE, run)
    if ev is not None:
        log("before: " + format_metrics(run["before"]))

    _freeze(model, config.freeze_layers)
    trainer, total_steps = _trainer(kind, model, train_pairs, n_neg, loss, config, device, precision, state_dir,
                                    progress)
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(state_dir))
    resumed_from = 0
    if last:
        resumed_from = _read_state(Path(last) / "trainer_state.json").get("global_step", 0)
        log(f"resuming from {last} (step {resumed_from} of {total_steps})")
    flag = stop if stop is not None else threading.Event()
    trainer.add_callback(_stopper(config.checkpoint_minutes * 60, stop_after, flag, on_step))
    t_train = time.perf_counter()
    scored = pairs_per_step(kind, n_neg, loss, config.batch_size)
    log(f"training in {precision} on {device}: {total_steps} steps of {config.batch_size} pairs, "
        + (f"{config.query_length} tokens per query, {config.passage_length} per passage" if kind == "encoder"
           else f"{config.pair_length} tokens per pair, {scored} scored per step"
                + (f", {config.micro_batch} at a time (--micro-batch)" if scored > config.micro_batch else "")))
    with _sigint_stops(flag, log), _ComputedDtype(trainer.model) as computed, \
            contextlib.redirect_stdout(_DropStdout()) if not progress else contextlib.nullcontext():
        output = trainer.train(resume_from_checkpoint=last or None)
    step = trainer.state.global_step
    run["train_seconds"] = run.get("train_seconds", 0.0) + time.perf_counter() - t_train  # over all sessions
    if step < trainer.state.max_steps:
        _write_state(state_dir / RUN_FILE, run)
        raise TrainingInterrupted(out, step, trainer.state.max_steps)
    train_seconds = run["train_seconds"]

    model = trainer.model
    model.eval()
    t_eval = time.perf_counter()
    after = evaluate(model, ev) if ev is not None else None
    eval_seconds = time.perf_counter() - t_eval
    if after:
        log("after:  " + format_metrics(after))
    _set_max_length(model, inference_length)
    model.save_pretrained(str(out), safe_serialization=True)
    for path in out.rglob("*"):
        if path.is_file() and CHECKPOINTS not in path.relative_to(out).parts and path.suffix in (".bin", ".pt", ".pth", ".pkl"):
            path.unlink()  # safetensors only
    info = {
        "kind": kind, "base": config.base, "settings": {**settings, "device": device, "loss": loss, "precision": precision},
        "computed_in": computed.get("dtype"),
        "counts": counts, "mining": run.get("mining"), "source": run.get("source"), "eval_source": run.get("eval_source"),
        "before": run.get("before"), "after": after, "steps": step, "resumed_from": resumed_from,
        "train_seconds": round(train_seconds, 1), "train_loss": round(float(output.training_loss), 4),
        "loss_curve": [[e["step"], round(e["loss"], 4)] for e in trainer.state.log_history if "loss" in e],
        "prepare_seconds": run.get("prepare_seconds"), "eval_seconds": round(eval_seconds, 1) if after else None,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"), **(extra_info or {}),
    }
    (out / "README.md").write_text(model_card(info), encoding="utf-8")
    shutil.rmtree(state_dir, ignore_errors=True)
    (out / TRAINING_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    return TrainResult(kind, out, run.get("before"), after, step, resumed_from, train_seconds, counts["train"],
                       counts["heldout"], info)


def measure_step_seconds(kind: Kind, pairs: list[Pair], config: TrainConfig, *, steps: int = 3) -> float:
    """Seconds one optimizer step of ``config`` takes on this machine: ``steps`` steps (the first, a
    warm-up, not counted) of the real trainer on ``pairs`` (their negatives as given, random ones to
    fill), nothing saved. An estimate's measured rate: a run takes about this times its steps."""
    import tempfile

    from transformers import TrainerCallback

    if not pairs:
        raise TrainError("no training pairs")
    _check_trainer_packages()
    device = choose_device(config.device)
    precision = choose_precision(config.precision, device)
    loss = config.loss or ("mnrl" if kind == "encoder" else "bce")
    model = _load_base(kind, config.base, device)
    _set_max_length(model, config.passage_length if kind == "encoder" else config.pair_length)
    _freeze(model, config.freeze_layers)
    negatives = config.negatives_for(kind)
    n_neg = negatives if (any(p.negatives for p in pairs) or kind == "reranker" and loss == "bce") else 0
    filled, _ = _fill_negatives(pairs, n_neg, config.seed)
    ends: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())

    probe = replace(config, max_steps=max(2, steps), warmup=0.0)
    with tempfile.TemporaryDirectory(prefix="amharic-search-measure-") as tmp:
        trainer, _ = _trainer(kind, model, filled, n_neg, loss, probe, device, precision, Path(tmp), False, save=False)
        trainer.add_callback(Clock())
        with contextlib.redirect_stdout(_DropStdout()):
            trainer.train()
    gaps = [b - a for a, b in zip(ends, ends[1:])]
    return sorted(gaps)[len(gaps) // 2]


class _DropStdout:
    """The trainers print their loss dictionaries on stdout; without progress they are dropped."""

    def write(self, s):
        return len(s)

    def flush(self):
        pass


class _ComputedDtype:
    """Records the dtype the model's first linear layer computes in during training (``bfloat16`` under
    bf16 autocast), so the run's record says what really ran, not only what was asked."""

    def __init__(self, model):
        self.model, self.seen, self.handle = model, {}, None

    def __enter__(self) -> dict:
        import torch

        layer = next((m for m in self.model.modules() if isinstance(m, torch.nn.Linear)), None)
        if layer is not None:
            def hook(module, inputs, output):
                if module.training and "dtype" not in self.seen:
                    self.seen["dtype"] = str(output.dtype).replace("torch.", "")

            self.handle = layer.register_forward_hook(hook)
        return self.seen

    def __exit__(self, *exc):
        if self.handle is not None:
            self.handle.remove()
        return False


IN_BATCH_NEGATIVES = 4
"""Other queries' positives scored as negatives per query by the listwise reranker loss (sentence-transformers' default)."""


def pairs_per_step(kind: Kind, n_neg: int, loss: str, batch_size: int) -> int:
    """(query, passage) pairs the reranker scores in one optimizer step (the encoder: 0, it scores none)."""
    if kind == "encoder":
        return 0
    if loss == "listwise":
        return batch_size * (1 + n_neg + min(IN_BATCH_NEGATIVES, batch_size - 1))
    return batch_size  # bce: the dataset has one row per pair (positive or negative)


def _split_step(kind: Kind, n_neg: int, loss: str, config: TrainConfig) -> tuple[int, int, int | None]:
    """How a step is computed within ``config.micro_batch`` pairs per forward pass: (rows per forward
    pass, gradient accumulation steps, the listwise loss's mini-batch or None). bce: the largest divisor
    of the batch that fits, accumulated to the same batch; listwise: GradCache over the whole batch."""
    per_step, micro = pairs_per_step(kind, n_neg, loss, config.batch_size), config.micro_batch
    if kind == "encoder" or per_step <= micro:
        return config.batch_size, 1, None
    if loss == "listwise":
        return config.batch_size, 1, micro
    rows = max(d for d in range(1, micro + 1) if config.batch_size % d == 0)
    return rows, config.batch_size // rows, None


def _trainer(kind, model, train_pairs, n_neg, loss_name, config, device, precision, state_dir, progress, save=True):
    import math

    dataset = _dataset(kind, train_pairs, n_neg, loss_name)
    steps_per_epoch = math.ceil(len(dataset) / config.batch_size)
    total = config.max_steps or max(1, math.ceil(steps_per_epoch * config.epochs))
    rows, accumulate, cached = _split_step(kind, n_neg, loss_name, config)
    common = dict(
        output_dir=str(state_dir), num_train_epochs=config.epochs, per_device_train_batch_size=rows,
        gradient_accumulation_steps=accumulate,
        learning_rate=config.lr, warmup_steps=int(config.warmup * total), weight_decay=0.01,
        max_steps=config.max_steps or -1, save_strategy="steps" if save else "no",
        save_steps=max(1, total // 4) if total >= 8 else total,
        save_total_limit=2, logging_steps=max(1, min(50, total // 10)), report_to="none", seed=config.seed,
        use_cpu=device == "cpu", disable_tqdm=not progress, dataloader_num_workers=0,
        bf16=precision == "bf16",  # autocast over fp32 master weights (accelerate's mixed precision), CPU or GPU
    )
    if kind == "encoder":
        from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
        from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
        from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

        prompts = getattr(model, "prompts", None) or {}
        qp = next((prompts[n] for n in ("query",) if prompts.get(n)), None)
        dp = next((prompts[n] for n in ("document", "passage", "doc") if prompts.get(n)), None)
        column_prompts = {}
        if qp:
            column_prompts["query"] = qp
        if dp:
            column_prompts.update({c: dp for c in dataset.column_names if c != "query"})
        args = SentenceTransformerTrainingArguments(**common, batch_sampler="no_duplicates",
                                                    prompts=column_prompts or None)
        # queries and passages cut at their own lengths: the collator tokenizes each column as its task
        collator = SentenceTransformerDataCollator(
            preprocess_fn=model.preprocess, prompts=column_prompts or None,
            router_mapping={c: "query" if c == "query" else "document" for c in dataset.column_names},
            max_length={"query": config.query_length, "document": config.passage_length})
        loss = MultipleNegativesRankingLoss(model)
        if config.matryoshka:
            loss = MatryoshkaLoss(model, loss, matryoshka_dims=list(config.matryoshka))
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                                             data_collator=collator)
    else:
        from sentence_transformers import CrossEncoderTrainer, CrossEncoderTrainingArguments
        from sentence_transformers.cross_encoder.losses import (BinaryCrossEntropyLoss,
                                                                CachedMultipleNegativesRankingLoss,
                                                                MultipleNegativesRankingLoss)

        args = CrossEncoderTrainingArguments(**common)
        if loss_name == "bce":
            loss = BinaryCrossEntropyLoss(model)
        elif cached:
            loss = CachedMultipleNegativesRankingLoss(model, num_negatives=IN_BATCH_NEGATIVES, mini_batch_size=cached)
        else:
            loss = MultipleNegativesRankingLoss(model, num_negatives=IN_BATCH_NEGATIVES)
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    return trainer, total
