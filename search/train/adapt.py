"""Adapting a collection's encoder to its corpus in the background: the page's "Adapt to this collection".

Two jobs, each in a thread of this process, held in a registry here (one job per index directory,
shared by every page session and surviving Streamlit reruns; the page only reads their state):

- :func:`start_adapt` fine-tunes the encoder the index was built with on (title, body) pairs made
  from the documents the index holds (:func:`search.train.pairs_from_index`), with one hard negative
  per pair mined from the index, exactly as ``amharic-search train encoder --from-titles CORPUS
  --index INDEX --negatives 1`` does. The model goes to a new folder beside the index,
  ``NAME.adapted-YYYYMMDD-HHMMSS``: it stays with the index that will use it (the index's manifest
  names it), a new name per run never overwrites a model an index uses, and an index root stays
  listable (the folder has no manifest). A stopped run is continued by the next one
  (its checkpoints are in that folder).
- :func:`start_rebuild` re-embeds the index with an adapted model: the documents are read back
  from the index's own store (so an upload or a moved corpus works) and built again in place by
  :func:`index.build.build_index` with the index's analyzer, BM25, chunking, FAISS and precision
  settings; the manifest keeps the original corpus path and any tuned fusion. Only the embeddings
  are new work, and the old index answers until the new one replaces it atomically.

Example::

    from search.train import adapt

    why = adapt.unavailable(index_dir, manifest)        # None, or a reason code
    job = adapt.start_adapt(index_dir)
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
from dataclasses import dataclass, field, replace
from pathlib import Path

log = logging.getLogger("amharic-search")

MIN_PAIRS = 20
"""Fewest usable titles to adapt from: below this a held-out measure means nothing and training little."""

ADAPTED = ".adapted-"
_FIELDS = {"id": "amharic-search:id", "title": "amharic-search:title", "text": "amharic-search:text"}


def page_config(base: str):
    """The training settings of the page's action: the command's defaults, one hard negative per pair."""
    from .trainer import TrainConfig

    return TrainConfig(base=base, epochs=1, batch_size=16, lr=2e-5, max_length=256, negatives=1, negative_depth=30,
                       holdout=0.1)


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
    from index.models import cached_model

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

    kind: str  # "adapt" or "rebuild"
    index: Path
    state: str = "running"  # running, done, stopped, failed
    phase: str = "preparing"  # adapt: preparing, training, evaluating; rebuild: build_index's stages
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
    from index.models import ModelUnavailableError

    job.error = "model" if isinstance(exc, ModelUnavailableError) else "failed"
    job.error_type = type(exc).__name__
    job.detail = str(exc)
    if job.error == "failed":
        log.error("%s of %s failed", job.kind, job.index, exc_info=(type(exc), exc, exc.__traceback__))
    else:
        log.warning("%s of %s: %s", job.kind, job.index, exc)
    job.state = "failed"


def start_adapt(index: str | Path, *, base: str | None = None, config=None) -> Job:
    """Fine-tune the index's encoder on its titles in the background (or return the job already
    running for this index). ``base``: as for :func:`unavailable`; ``config``: a
    :class:`search.train.TrainConfig` (default :func:`page_config`; its ``base`` is replaced)."""
    return _start(Job("adapt", Path(index).resolve()), lambda job: _adapt(job, base, config))


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


def _adapt(job: Job, base: str | None, config) -> None:
    from index.manifest import read_manifest
    from index.models import resolve_model

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
    out = unfinished_run(job.index) or _new_output(job.index)
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
    job.state = "done"


def export_documents(index: str | Path, path: str | Path) -> int:
    """Write the documents of an index (id, title, text and metadata, from its store) to a JSONL file
    that :func:`index.build.build_index` reads with :data:`_FIELDS`; returns how many."""
    from index.layout import STORE_FILE
    from index.store import Store

    store = Store(Path(index) / STORE_FILE)
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for doc in store.documents():
            record = {k: v for k, v in (doc.get("metadata") or {}).items() if k not in _FIELDS.values()}
            record.update({_FIELDS["id"]: doc["id"], _FIELDS["title"]: doc["title"], _FIELDS["text"]: doc["text"]})
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def rebuild_with_encoder(index: str | Path, model: str | Path, *, on_progress=None):
    """Build ``index`` again in place from its own documents with ``model`` as its encoder and its
    other settings as they were; returns the :class:`index.build.BuildReport`. A model that cannot be
    loaded raises ModelUnavailableError and leaves the index as it was."""
    from index.analyzer import AnalyzerConfig
    from index.bm25 import BM25Params
    from index.build import build_index
    from index.chunking import ChunkConfig
    from index.manifest import read_manifest, update_manifest

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
