"""Adapting a collection's encoder to its corpus in the background: the page's "Adapt to this collection".

Three jobs, each in a thread of this process, held in a registry here (one job per index directory,
shared by every page session and surviving Streamlit reruns; the page only reads their state):

- :func:`start_adapt` fine-tunes the encoder the index was built with on (title, body) pairs made
  from the documents the index holds (:func:`search.train.pairs_from_index`) with the command's
  measured fast settings, as ``amharic-search train encoder --from-titles CORPUS --index INDEX``
  does (the held-out titles get distractors mined from the index), within a time budget the user
  chooses from an estimate measured on this machine (:func:`estimate`, :func:`start_measure`).
  The model goes to a new folder beside the index, ``NAME.adapted-YYYYMMDD-HHMMSS``: it stays with the index that will use it (the index's manifest
  names it), a new name per run never overwrites a model an index uses, and an index root stays
  listable (the folder has no manifest). A stopped run is continued by the next one
  (its checkpoints are in that folder).
- :func:`start_measure` times a few training steps and the other parts of an adaptation on this
  machine and records the rates, so that the estimate can be shown before adapting starts.
- :func:`start_rebuild` re-embeds the index with an adapted model: the documents are read back
  from the index's own store (so an upload or a moved corpus works) and built again in place by
  :func:`index.build.build_index` with the index's analyzer, BM25, chunking, FAISS and precision
  settings; the manifest keeps the original corpus path and any tuned fusion. Only the embeddings
  are new work, and the old index answers until the new one replaces it atomically.

Example::

    from ...search.train import adapt

    why = adapt.unavailable(index_dir, manifest)        # None, or a reason code
    est = adapt.estimate(index_dir, measure=True)       # about a minute the first time on a machine
    print(est.seconds, est.steps_for(20 * 60))          # the whole run; the steps that fit 20 minutes
    job = adapt.start_adapt(index_dir, budget_s=20 * 60)
    job.wait(); print(job.state, job.before, job.after, job.model)
    adapt.start_rebuild(index_dir, job.model).wait()
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

log = logging.getLogger("amharic-search")

MIN_PAIRS = 20
"""Fewest usable titles to adapt from: below this a held-out measure means nothing and training little."""

ADAPTED = ".adapted-"
_FIELDS = {"id": "amharic-search:id", "title": "amharic-search:title", "text": "amharic-search:text"}


def page_config(base: str):
    """The training settings of the page's action: the command's defaults (the measured fast settings),
    with a smaller held-out measure (at most 300 titles, 3 distractors each) so that measuring before
    and after stays a small part of the time on a laptop."""
    from .trainer import TrainConfig

    return TrainConfig(base=base, holdout_max=300, heldout_negatives=3)


# -- how long it takes: rates measured on this machine -----------------------------------------------

RATES_FILE = "training-rates.json"
"""In the cache directory: the measured rates of each model and settings on this machine."""


@dataclass
class Rates:
    """What adapting costs on this machine with one model and settings: seconds per optimizer step,
    per pair whose hard negatives are mined, per text embedded by the before/after measure."""

    step_seconds: float
    mining_seconds: float
    encode_seconds: float
    measured: str  # when (YYYY-MM-DD HH:MM)
    source: str  # "measured" (a few steps timed) or "run" (a finished adaptation's average)


def _rates_key(config) -> str:
    from ...index.engines import cores

    keep = ("precision", "query_length", "passage_length", "batch_size", "freeze_layers", "device")
    return json.dumps({"base": str(config.base), "cores": cores(), "negatives": config.negatives_for("encoder"),
                       **{k: getattr(config, k) for k in keep}}, sort_keys=True)


def _rates_path() -> Path:
    from ...index.engines import cache_dir

    return cache_dir() / RATES_FILE


def rates_stamp() -> float:
    """Changes whenever a rate is recorded (a page can key its cached estimate on it)."""
    try:
        return _rates_path().stat().st_mtime
    except OSError:
        return 0.0


def _all_rates() -> dict:
    try:
        return json.loads(_rates_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def known_rates(config) -> Rates | None:
    """The rates recorded on this machine for ``config``'s model and settings, or None."""
    entry = _all_rates().get(_rates_key(config))
    try:
        return Rates(**entry) if entry else None
    except TypeError:
        return None


def _record_rates(config, rates: Rates) -> None:
    path = _rates_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    table = {**_all_rates(), _rates_key(config): asdict(rates)}
    tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(table, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def measure_rates(index: str | Path, config, pairs=None) -> Rates:
    """Time the parts of an adaptation on this machine and record them: hard negatives mined for a
    few titles, a few training steps of ``config`` (:func:`search.train.trainer.measure_step_seconds`),
    a batch embedded as the before/after measure does. About a minute on a 2-core laptop."""
    from ...index.dense import encode
    from ...index.models import load_encoder

    from ..searcher import Searcher
    from .pairs import mine_negatives, pairs_from_index
    from .trainer import choose_device, choose_precision, measure_step_seconds

    pairs = pairs if pairs is not None else pairs_from_index(index)
    sample = pairs[: max(3 * config.batch_size, 16)]
    searcher = Searcher.load(index, reranker=None)
    few = sample[:8]
    t = time.perf_counter()
    negatives = config.negatives_for("encoder")
    mined = mine_negatives(few, index, negatives=max(1, negatives, config.heldout_negatives), depth=config.negative_depth,
                           searcher=searcher)
    mining = (time.perf_counter() - t) / len(few)
    if negatives:
        sample = mined + mine_negatives(sample[8:], index, negatives=negatives, depth=config.negative_depth,
                                        searcher=searcher)
    step = measure_step_seconds("encoder", sample, config)
    device = choose_device(config.device)
    model = load_encoder(config.base, device=device)
    model.max_seq_length = config.passage_length
    texts = [p.positive for p in sample[:16]]
    precision = choose_precision(config.precision, device)
    encode(model, texts[:2], precision=precision)  # warm-up
    t = time.perf_counter()
    encode(model, texts, precision=precision)
    rates = Rates(step_seconds=round(step, 2), mining_seconds=round(mining, 4),
                  encode_seconds=round((time.perf_counter() - t) / len(texts), 4),
                  measured=time.strftime("%Y-%m-%d %H:%M"), source="measured")
    _record_rates(config, rates)
    return rates


@dataclass
class Estimate:
    """How long adapting an index takes on this machine, from measured :class:`Rates`."""

    titles: int
    train_pairs: int
    heldout: int
    steps: int  # one epoch
    batch_size: int
    mined_pairs: int  # pairs whose hard negatives are mined (training and held out)
    measured_texts: int  # texts the before and the after measure embed (at most)
    rates: Rates

    @property
    def fixed_seconds(self) -> float:
        """The part that does not shrink with a budget: mining and the before/after measures."""
        return self.mined_pairs * self.rates.mining_seconds + self.measured_texts * self.rates.encode_seconds

    def seconds_for(self, steps: int) -> float:
        return self.fixed_seconds + steps * self.rates.step_seconds

    @property
    def seconds(self) -> float:
        return self.seconds_for(self.steps)

    def steps_for(self, budget_s: float) -> int:
        """Training steps that fit ``budget_s`` seconds, at most one epoch's (0: not even one)."""
        return max(0, min(self.steps, int((budget_s - self.fixed_seconds) // self.rates.step_seconds)))


def epoch_steps(pairs, config) -> int:
    """Optimizer steps of one epoch over ``pairs`` less the held-out ones."""
    import math

    from .pairs import split_holdout

    train, _ = split_holdout(pairs, config.holdout, seed=config.seed, max_pairs=config.holdout_max)
    return max(1, math.ceil(len(train) / config.batch_size))


def estimate(index: str | Path, *, base: str | None = None, config=None, measure: bool = False,
             pairs=None) -> Estimate | None:
    """How long adapting ``index`` takes here: its titles and the rates recorded on this machine for
    the model and settings (``measure``: measured now when none are recorded, else None is returned).
    ``base``/``config``: as for :func:`start_adapt`."""
    from ...index.manifest import read_manifest

    from .pairs import pairs_from_index, split_holdout

    base = base or base_model(read_manifest(index))
    config = replace(config, base=base) if config is not None else page_config(base)
    pairs = pairs if pairs is not None else pairs_from_index(index)
    rates = known_rates(config) or (measure_rates(index, config, pairs) if measure else None)
    if rates is None:
        return None
    train, held = split_holdout(pairs, config.holdout, seed=config.seed, max_pairs=config.holdout_max)
    return Estimate(titles=len(pairs), train_pairs=len(train), heldout=len(held),
                    steps=epoch_steps(pairs, config), batch_size=config.batch_size,
                    mined_pairs=(len(train) if config.negatives_for("encoder") else 0)
                    + (len(held) if config.heldout_negatives else 0),
                    measured_texts=2 * len(held) * (2 + config.heldout_negatives), rates=rates)


# -- can this index be adapted? ----------------------------------------------------------------------


def base_model(manifest: dict) -> str | None:
    """The encoder the index was built with (None for a keyword-only index)."""
    return (manifest.get("dense") or {}).get("model")


def count_titles(index: str | Path):
    """How many (title, body) pairs the index's documents give: a :class:`search.train.TitlesReport`
    (reads every document once, keeps none)."""
    from .pairs import TitlesReport, index_documents, title_pairs

    report = TitlesReport()
    for _ in title_pairs(index_documents(index), report=report):
        pass
    return report


def unavailable(index: str | Path, manifest: dict, *, base: str | None = None, titles: int | None = None) -> str | None:
    """Why the index cannot be adapted here, as a code, or None when it can: ``sharded``, ``lexical``
    (no embeddings), ``encoder`` (its encoder is not on this machine), ``packages`` (the trainers'
    packages are missing), ``titles`` (fewer than :data:`MIN_PAIRS` usable titles; ``titles``: their
    number as :func:`count_titles` says, counted here when not given). ``base``: the encoder to
    start from (default: the index's; the same model from another folder, e.g. an offline bundle)."""
    reason = model_unavailable(manifest, base)
    if reason is None:
        reason = too_few_titles(titles if titles is not None else count_titles(index).pairs)
    return reason


def too_few_titles(titles: int) -> str | None:
    """``titles`` when fewer than :data:`MIN_PAIRS` usable titles were counted, else None: the reason
    checked after :func:`model_unavailable` (which needs no reading of the documents)."""
    return "titles" if titles < MIN_PAIRS else None


def model_unavailable(manifest: dict, base: str | None = None) -> str | None:
    """The reasons of :func:`unavailable` that need no reading of the documents (all but ``titles``)."""
    from ...index.models import cached_model

    from .trainer import missing_trainer_packages

    if manifest.get("shards"):
        return "sharded"
    if not base_model(manifest):
        return "lexical"
    if not cached_model(base or base_model(manifest)):
        return "encoder"
    if missing_trainer_packages():
        return "packages"
    return None


def _siblings(index: Path) -> list[Path]:
    """The adapted-model folders of ``index`` (beside it), newest first."""
    pattern = re.compile(re.escape(index.name + ADAPTED) + r"\d{8}-\d{6}(-\d+)?$")
    if not index.parent.is_dir():
        return []
    return sorted((p for p in index.parent.iterdir() if p.is_dir() and pattern.match(p.name)),
                  key=lambda p: p.name, reverse=True)


def unfinished_run(index: str | Path) -> Path | None:
    """The folder of a stopped adaptation of ``index`` (checkpoints, no model yet) that the next one continues."""
    from .common import CHECKPOINTS, RUN_FILE, TRAINING_FILE

    for path in _siblings(Path(index).resolve()):
        if (path / CHECKPOINTS / RUN_FILE).is_file() and not (path / TRAINING_FILE).is_file():
            return path
    return None


def latest_model(index: str | Path) -> Path | None:
    """The newest finished adapted model of ``index``, or None."""
    from .common import TRAINING_FILE

    return next((p for p in _siblings(Path(index).resolve()) if (p / TRAINING_FILE).is_file()), None)


def training_info(model: str | Path) -> dict:
    """What training wrote about an adapted model (training.json): before/after, counts, steps."""
    from .common import TRAINING_FILE

    try:
        return json.loads((Path(model) / TRAINING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def in_use(manifest: dict, model: str | Path) -> bool:
    base = base_model(manifest)
    return bool(base) and Path(base).expanduser().resolve() == Path(model).resolve()


# -- jobs --------------------------------------------------------------------------------------------


@dataclass
class Job:
    """A background adaptation or rebuild of one index. The page reads these fields; only the job's
    thread writes them."""

    kind: str  # "adapt", "measure" or "rebuild"
    index: Path
    state: str = "running"  # running, done, stopped, failed
    phase: str = "preparing"  # adapt: preparing, measuring, training, evaluating; rebuild: build_index's stages
    done: int = 0
    total: int = 0
    fraction: float = 0.0
    started: float = field(default_factory=time.monotonic)
    eta_s: float | None = None
    error: str | None = None  # a reason code (see unavailable) or "failed"
    error_type: str = ""
    detail: str = ""
    model: Path | None = None
    before: dict | None = None
    after: dict | None = None
    heldout: int = 0
    pairs: int = 0
    documents: int = 0
    steps: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _mark: tuple[float, float] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() and self.running

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def stop(self) -> None:
        """Ask an adaptation to stop after its current step (its checkpoint is kept; the next one continues)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (tests, scripts); True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _progress(self, value: float) -> None:
        """``value`` in [0, 1] of the current phase; the ETA from the pace since the phase's first report."""
        now = time.monotonic()
        self.fraction = value
        if self._mark is None or value < self._mark[1]:
            self._mark = (now, value)
            self.eta_s = None
        elif value > self._mark[1] and now > self._mark[0]:
            rate = (value - self._mark[1]) / (now - self._mark[0])
            self.eta_s = (1.0 - value) / rate if rate > 0 else None

    def _phase(self, phase: str) -> None:
        if phase != self.phase:
            self.phase, self._mark, self.eta_s = phase, None, None


_JOBS: dict[str, Job] = {}
_LOCK = threading.Lock()


def _key(index: str | Path) -> str:
    return str(Path(index).resolve())


def current(index: str | Path) -> Job | None:
    """The index's job (running or ended), or None."""
    return _JOBS.get(_key(index))


def forget(index: str | Path) -> None:
    """Drop the index's ended job from the registry (a running one stays)."""
    with _LOCK:
        job = _JOBS.get(_key(index))
        if job is not None and not job.running:
            del _JOBS[_key(index)]


def _start(job: Job, target) -> Job:
    with _LOCK:
        running = _JOBS.get(_key(job.index))
        if running is not None and running.running:
            return running  # one job per index: a second click, or another session, gets the running one
        _JOBS[_key(job.index)] = job

    def run() -> None:
        try:
            target(job)
        except BaseException as exc:  # noqa: BLE001 - a thread's end: said in the page, detailed in the log
            _failed(job, exc)

    job._thread = threading.Thread(target=run, name=f"amharic-search-{job.kind}", daemon=True)
    job._thread.start()
    return job


def _failed(job: Job, exc: BaseException) -> None:
    from ...index.models import ModelUnavailableError

    job.error = "model" if isinstance(exc, ModelUnavailableError) else "failed"
    job.error_type = type(exc).__name__
    job.detail = str(exc)
    if job.error == "failed":
        log.error("%s of %s failed", job.kind, job.index, exc_info=(type(exc), exc, exc.__traceback__))
    else:
        log.warning("%s of %s: %s", job.kind, job.index, exc)
    job.state = "failed"


def start_adapt(index: str | Path, *, base: str | None = None, config=None, budget_s: float | None = None,
                max_steps: int | None = None) -> Job:
    """Fine-tune the index's encoder on its titles in the background (or return the job already
    running for this index). ``base``: as for :func:`unavailable`; ``config``: a
    :class:`search.train.TrainConfig` (default :func:`page_config`; its ``base`` is replaced).
    ``budget_s``: train only the steps that fit this many seconds by the rates measured on this
    machine (:func:`estimate`; measured first when none are recorded), the preparation and the
    before/after measures included; ``max_steps``: at most this many steps. Less than one epoch is a
    complete run over part of the titles (its learning-rate schedule ends with it). A budget too
    small for one step fails with the error ``budget``. A stopped run continues with the budget
    chosen when it started."""
    return _start(Job("adapt", Path(index).resolve()), lambda job: _adapt(job, base, config, budget_s, max_steps))


def start_measure(index: str | Path, *, base: str | None = None, config=None) -> Job:
    """Measure in the background how long adapting takes here (:func:`measure_rates`), so that
    :func:`estimate` can answer before adapting starts (or return the job already running for it)."""
    return _start(Job("measure", Path(index).resolve(), phase="measuring"), lambda job: _measure(job, base, config))


def _measure(job: Job, base: str | None, config) -> None:
    from ...index.manifest import read_manifest

    manifest = read_manifest(job.index)
    reason = model_unavailable(manifest, base)
    if reason is not None:
        job.error, job.state = reason, "failed"
        return
    base = base or base_model(manifest)
    config = replace(config, base=base) if config is not None else page_config(base)
    measure_rates(job.index, config)
    job.state = "done"


def start_rebuild(index: str | Path, model: str | Path) -> Job:
    """Re-embed the index with ``model`` in the background (or return the job already running for it)."""
    job = Job("rebuild", Path(index).resolve(), phase="reading", model=Path(model).resolve())
    return _start(job, lambda job: _rebuild(job))


def _new_output(index: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = index.parent / f"{index.name}{ADAPTED}{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = index.parent / f"{index.name}{ADAPTED}{stamp}-{n}"
    return out


def _adapt(job: Job, base: str | None, config, budget_s: float | None = None, max_steps: int | None = None) -> None:
    from ...index.manifest import read_manifest
    from ...index.models import resolve_model

    from .common import TrainError, TrainingInterrupted
    from .pairs import TitlesReport, pairs_from_index
    from .trainer import train_model

    manifest = read_manifest(job.index)
    reason = model_unavailable(manifest, base)
    base = base or base_model(manifest)
    if reason is None:
        resolve_model(base)  # ModelUnavailableError: said as "the model could not be loaded"
        report = TitlesReport()
        pairs = pairs_from_index(job.index, report=report)
        job.pairs, job.documents = report.pairs, report.documents
        reason = too_few_titles(report.pairs)
    if reason is not None:
        job.error, job.state = reason, "failed"
        return
    config = replace(config, base=base) if config is not None else page_config(base)

    def on_step(step: int, total: int) -> None:
        job._phase("training")
        job.done, job.total = step, total
        job._progress(step / total if total else 0.0)
        if total and step >= total:
            job._phase("evaluating")

    source = f"the titles and bodies of the documents of the index {job.index} ({report.summary()})"
    out = unfinished_run(job.index)
    if out is not None:  # a stopped run continues as it started, with its budget
        config = replace(config, max_steps=_stopped_settings(out).get("max_steps"))
    elif budget_s is not None or max_steps is not None:
        epoch = epoch_steps(pairs, config)
        steps = min(max_steps or epoch, epoch)
        if budget_s is not None:
            job._phase("measuring")
            fit = estimate(job.index, base=base, config=config, measure=True, pairs=pairs).steps_for(budget_s)
            if fit < 1:
                job.error, job.state = "budget", "failed"
                return
            steps = min(steps, fit)
        config = replace(config, max_steps=steps if steps < epoch else None)
    out = out or _new_output(job.index)
    for attempt in (1, 2):
        job.model = out
        try:
            result = train_model("encoder", pairs, out, config, source=source, index=job.index, log=log.info,
                                   on_step=on_step, stop=job._stop, extra_info={"adapted_index": str(job.index)})
            break
        except TrainingInterrupted as exc:
            job.done, job.total, job.state = exc.step, exc.total, "stopped"
            return
        except TrainError as exc:
            if attempt == 1 and "holds an interrupted run" in str(exc):  # a stopped run with other titles or settings
                out = _new_output(job.index)
                continue
            raise
    job.before, job.after, job.steps = result.before, result.after, result.steps
    job.heldout = result.heldout
    _record_run_rates(config, result.info)
    _record_run_rates(replace(config, base=str(out)), result.info)  # the same network: adapting it again costs the same
    job.state = "done"


def _stopped_settings(out: Path) -> dict:
    from .common import CHECKPOINTS, RUN_FILE

    try:
        return json.loads((out / CHECKPOINTS / RUN_FILE).read_text(encoding="utf-8"))["identity"]["settings"]
    except (OSError, ValueError, KeyError):
        return {}


def _record_run_rates(config, info: dict) -> None:
    """A finished adaptation's own averages become this machine's rates for its settings."""
    counts = info.get("counts") or {}
    mined = counts.get("train", 0) * bool(counts.get("mined_negatives")) + counts.get("heldout", 0) * bool(counts.get("heldout_mined"))
    texts = counts.get("eval_queries", 0) + counts.get("eval_passages", 0)
    known = known_rates(config)
    if not info.get("steps") or not info.get("train_seconds"):
        return
    _record_rates(config, Rates(
        step_seconds=round(info["train_seconds"] / info["steps"], 2),
        mining_seconds=round(info.get("prepare_seconds", 0.0) / mined, 4) if mined else (known.mining_seconds if known else 0.0),
        encode_seconds=round(info.get("eval_seconds", 0.0) / texts, 4) if texts and info.get("eval_seconds") else
        (known.encode_seconds if known else 0.0),
        measured=info.get("finished", time.strftime("%Y-%m-%d %H:%M"))[:16], source="run"))


def export_documents(index: str | Path, path: str | Path) -> int:
    """Write the live documents of an index (id, title, text and metadata, from its stores) to a JSONL file
    that :func:`index.build.build_index` reads with :data:`_FIELDS`; returns how many."""
    from ...index.update import live_documents

    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for doc in live_documents(index):  # documents added since the build included, deleted ones not
            record = {k: v for k, v in (doc.get("metadata") or {}).items() if k not in _FIELDS.values()}
            record.update({_FIELDS["id"]: doc["id"], _FIELDS["title"]: doc["title"], _FIELDS["text"]: doc["text"]})
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def rebuild_with_encoder(index: str | Path, model: str | Path, *, on_progress=None):
    """Build ``index`` again in place from its own documents with ``model`` as its encoder and its
    other settings as they were; returns the :class:`index.build.BuildReport`. A model that cannot be
    loaded raises ModelUnavailableError and leaves the index as it was."""
    from ...index.analyzer import AnalyzerConfig
    from ...index.bm25 import BM25Params
    from ...index.build import build_index
    from ...index.chunking import ChunkConfig
    from ...index.manifest import read_manifest, update_manifest

    index = Path(index)
    old = read_manifest(index)
    dense = old.get("dense") or {}
    bm25 = {k: v for k, v in (old.get("bm25") or {}).items() if k in BM25Params.__dataclass_fields__}
    chunking = {k: v for k, v in (old.get("chunking") or {}).items() if k in ChunkConfig.__dataclass_fields__}
    kind = (dense.get("faiss") or {}).get("type")
    with tempfile.TemporaryDirectory(prefix="amharic-search-rebuild-") as tmp:
        corpus = Path(tmp) / "documents.jsonl"
        export_documents(index, corpus)
        report = build_index(
            corpus, index, format="jsonl", id_field=_FIELDS["id"], title_field=_FIELDS["title"],
            text_field=_FIELDS["text"], dense_model=str(model), analyzer=AnalyzerConfig.from_dict(old["analyzer"]),
            bm25=BM25Params(**bm25), chunking=ChunkConfig(**chunking),
            dense_index_kind=kind if kind in ("flat", "ivf") else "auto",
            dense_precision=dense.get("precision") if dense.get("precision") in ("fp32", "bf16") else "auto",
            dense_engine=dense.get("engine") if dense.get("engine") in ("torch", "openvino") else "auto",
            name=old.get("name"), examples=old.get("examples") or None, show_progress=False, on_progress=on_progress,
            strict=True,
        )
    kept = {"corpus": {**report.manifest["corpus"], **{k: v for k, v in (old.get("corpus") or {}).items()
                                                         if k in ("path", "format")}}}
    if old.get("fusion"):
        kept["fusion"] = old["fusion"]  # tuned by `amharic-search tune`
    report.manifest = update_manifest(index, **kept)
    return report


def _rebuild(job: Job) -> None:
    def on_progress(stage: str, fraction: float) -> None:
        job._phase(stage)
        job.fraction = fraction
        if stage == "embedding":  # the long part: its own pace for the ETA
            job._progress(min(1.0, max(0.0, (fraction - 0.3) / 0.65)))
            job.fraction = fraction

    report = rebuild_with_encoder(job.index, job.model, on_progress=on_progress)
    job.documents, job.steps = report.documents, report.embedded
    job.state = "done"
