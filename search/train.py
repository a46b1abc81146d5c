"""Fine-tuning the dense encoder and the reranker on (query, positive passage) pairs.

The trainers are sentence-transformers' own (``SentenceTransformerTrainer`` with
MultipleNegativesRankingLoss, optionally inside MatryoshkaLoss, for the encoder;
``CrossEncoderTrainer`` with binary cross-entropy or a listwise loss for the reranker), so
checkpoints, resuming, progress bars with an ETA and GPU use are theirs. This module prepares the
data (pairs files checked line by line, pairs made from a corpus's titles, hard negatives mined
from an index), evaluates before and after on a held-out split, and writes a standard model
directory (safetensors only) with a model card.

Example::

    from search.train import TrainConfig, read_pairs, train_model

    pairs = read_pairs("train_pairs.jsonl.gz")
    result = train_model("encoder", pairs, "models/my-encoder",
                         TrainConfig(base="rasyosef/embedding-amharic-medium", epochs=1), index="indexes/mine")
    print(result.before, result.after)   # {'MRR@10': ..., 'Recall@1': ..., 'Recall@10': ...}

An interrupted run (Ctrl-C, a crash, ``stop_after``) leaves checkpoints in ``OUT/checkpoints``;
the same call resumes from the last one. A finished run leaves only the model in ``OUT``.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import random
import re
import shutil
import signal
import threading
import time
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal

Kind = Literal["encoder", "reranker"]
KINDS = ("encoder", "reranker")
CHECKPOINTS = "checkpoints"
RUN_FILE = "run.json"
DATA_FILE = "data.jsonl.gz"
TRAINING_FILE = "training.json"


class PairsError(ValueError):
    """A pairs file that cannot be used; the message names the file and the line."""


class TrainError(ValueError):
    """Training cannot start or continue as asked; the message says why and what to do."""


class TrainingInterrupted(RuntimeError):
    """Training stopped before the end (Ctrl-C, ``stop_after``); the checkpoint lets the same run resume."""

    def __init__(self, out: Path, step: int, total: int) -> None:
        self.out, self.step, self.total = out, step, total
        super().__init__(f"training stopped at step {step} of {total}; the checkpoint is in {out / CHECKPOINTS}: "
                         "run the same command again to resume")


# -- pairs -----------------------------------------------------------------------------------------


@dataclass
class Pair:
    query: str
    positive: str
    negatives: list[str] = field(default_factory=list)
    doc_id: str | None = None
    line: int | None = None

    def to_dict(self) -> dict:
        d = {"query": self.query, "positive": self.positive}
        if self.negatives:
            d["negatives"] = list(self.negatives)
        if self.doc_id is not None:
            d["doc_id"] = self.doc_id
        return d


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8-sig") if path.suffix == ".gz" else open(path, encoding="utf-8-sig")


def _text(value, where: str, name: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise PairsError(f"{where}: {name!r} must be a string, got {type(value).__name__}")
    value = unicodedata.normalize("NFC", value).strip()
    if required and not value:
        raise PairsError(f"{where}: {name!r} is empty")
    return value


def read_pairs(path: str | Path) -> list[Pair]:
    """The pairs of a JSONL file (``.gz`` too): one object a line with ``query`` and ``positive``
    (strings), optional ``negatives`` (a list of strings; ``negative`` with one string or a list is
    accepted too) and ``doc_id``. Blank lines are skipped; any other problem raises
    :class:`PairsError` naming the file and line.

    Example::

        pairs = read_pairs("../shared/data/enh/train_pairs.jsonl.gz")
    """
    path = Path(path)
    if not path.is_file():
        raise PairsError(f"{path}: no such file")
    pairs: list[Pair] = []
    try:
        with _open_text(path) as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise PairsError(f"{where}: not valid JSON ({exc})") from None
                if not isinstance(record, dict):
                    raise PairsError(f"{where}: expected a JSON object with 'query' and 'positive', "
                                     f"got {type(record).__name__}")
                for name in ("query", "positive"):
                    if name not in record:
                        raise PairsError(f"{where}: no {name!r} field (a pair needs 'query' and 'positive'; "
                                         f"fields here: {', '.join(map(repr, record)) or 'none'})")
                negatives = record.get("negatives", record.get("negative", []))
                if isinstance(negatives, str):
                    negatives = [negatives]
                if not isinstance(negatives, list):
                    raise PairsError(f"{where}: 'negatives' must be a list of strings")
                doc_id = record.get("doc_id")
                pairs.append(Pair(
                    query=_text(record["query"], where, "query"),
                    positive=_text(record["positive"], where, "positive"),
                    negatives=[n for n in (_text(x, where, "negatives", required=False) for x in negatives) if n],
                    doc_id=None if doc_id is None else str(doc_id),
                    line=number,
                ))
    except UnicodeDecodeError as exc:
        raise PairsError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise PairsError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
    if not pairs:
        raise PairsError(f"{path}: no pairs (the file is empty)")
    return pairs


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


@dataclass
class TitlesReport:
    """What :func:`pairs_from_titles` did: documents read, pairs made, documents skipped by reason."""

    documents: int = 0
    pairs: int = 0
    skipped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        skips = ", ".join(f"{n} {why}" for why, n in self.skipped.most_common()) or "none"
        return f"{self.pairs} pairs from {self.documents} documents (skipped: {skips})"


def pairs_from_titles(corpus: str | Path, *, min_title_words: int = 2, min_title_chars: int = 6,
                      min_body_words: int = 20, report: TitlesReport | None = None, **read_options) -> list[Pair]:
    """(title, body) pairs from a corpus whose documents have titles: how a headline -> article
    collection is made. Skipped: an empty title, a title shorter than ``min_title_words`` words or
    ``min_title_chars`` letters, a title found verbatim in its body (it would teach copying, not
    meaning), a body under ``min_body_words`` words, and a repeated title. ``read_options`` go to
    :func:`index.readers.read_corpus` (``format``, ``title_field``…).
    """
    from index.readers import read_corpus

    docs = ((doc.id, doc.title, doc.text) for doc in read_corpus(corpus, **read_options))
    return list(title_pairs(docs, min_title_words=min_title_words, min_title_chars=min_title_chars,
                            min_body_words=min_body_words, report=report))


def pairs_from_index(index: str | Path, *, min_title_words: int = 2, min_title_chars: int = 6,
                     min_body_words: int = 20, report: TitlesReport | None = None) -> list[Pair]:
    """The pairs of :func:`pairs_from_titles` made from the documents an index holds (its store),
    not from its corpus file: it works when the corpus has moved or was an upload, and the pairs are
    exactly the documents the index searches (in the index's order).

    Example::

        pairs = pairs_from_index("indexes/mine")
    """
    return list(title_pairs(index_documents(index), min_title_words=min_title_words,
                            min_title_chars=min_title_chars, min_body_words=min_body_words, report=report))


def index_documents(index: str | Path):
    """(id, title, text) of each document of an index, in the index's order (read from its store).
    An index that cannot be read raises :class:`~index.manifest.IndexFormatError`."""
    from index.build import STORE_FILE
    from index.manifest import IndexFormatError, read_manifest
    from index.store import Store

    manifest = read_manifest(index)
    if manifest.get("shards"):
        raise IndexFormatError(f"{index} is split into shards; read the documents of the unsharded index")
    store = Store(Path(index) / STORE_FILE)
    for doc_id in store.doc_ids():
        doc = store.document(doc_id)
        if doc is not None:
            yield doc["id"], doc["title"], doc["text"]


def title_pairs(docs: Iterable[tuple[str, str, str]], *, min_title_words: int = 2, min_title_chars: int = 6,
                min_body_words: int = 20, report: TitlesReport | None = None):
    """The (title, body) pairs of ``docs`` ((id, title, text) tuples), one at a time, with the skips
    of :func:`pairs_from_titles` counted in ``report`` (``report.pairs`` is final once they are all read)."""
    report = report if report is not None else TitlesReport()
    seen: set[str] = set()
    for doc_id, raw_title, raw_text in docs:
        report.documents += 1
        title, body = _norm(raw_title or ""), _norm(raw_text or "")
        if not title:
            why = "without a title"
        elif len(title.split()) < min_title_words or len(title) < min_title_chars:
            why = "with a too short title"
        elif len(body.split()) < min_body_words:
            why = "with a too short body"
        elif title in body:
            why = "whose title is in the body verbatim"
        elif title in seen:
            why = "with a repeated title"
        else:
            why = None
        if why:
            report.skipped[why] += 1
            continue
        seen.add(title)
        report.pairs += 1
        yield Pair(query=title, positive=(raw_text or "").strip(), doc_id=doc_id)


def pairs_hash(pairs: Iterable[Pair]) -> str:
    h = hashlib.sha256()
    for p in pairs:
        h.update(json.dumps(p.to_dict(), ensure_ascii=False, sort_keys=True).encode())
        h.update(b"\n")
    return h.hexdigest()


def split_holdout(pairs: list[Pair], fraction: float, *, seed: int = 13, max_pairs: int = 1000) -> tuple[list[Pair], list[Pair]]:
    """(train, held out): a seeded random ``fraction`` of the pairs (at most ``max_pairs``, at least
    one when ``fraction`` > 0), split by positive passage so that no passage is on both sides."""
    if fraction <= 0:
        return list(pairs), []
    groups: dict[str, list[Pair]] = {}
    for p in pairs:
        groups.setdefault(p.positive, []).append(p)
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    want = min(max_pairs, max(1, round(len(pairs) * fraction)))
    held: list[Pair] = []
    held_keys: set[str] = set()
    for key in keys:
        if len(held) >= want or len(held_keys) >= len(keys) - 1:
            break
        held += groups[key]
        held_keys.add(key)
    train = [p for p in pairs if p.positive not in held_keys]
    return train, held


# -- hard negatives ----------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = _WORD.findall(unicodedata.normalize("NFC", text).lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def near_duplicate(candidate: str, positive: str, *, threshold: float = 0.5, positive_shingles=None) -> bool:
    """Whether ``candidate`` is probably the positive itself or a copy of it: at least ``threshold``
    of its word trigrams occur in the positive (a passage of the same article, a reprint, an edit)."""
    cand = _shingles(candidate)
    if not cand:
        return False
    pos = positive_shingles if positive_shingles is not None else _shingles(positive)
    return len(cand & pos) / len(cand) >= threshold


@dataclass
class MiningReport:
    pairs: int = 0
    mined: int = 0
    without: int = 0
    excluded_positive: int = 0
    excluded_near_duplicate: int = 0
    stages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.mined} hard negatives for {self.pairs} pairs from the {'+'.join(self.stages) or 'first'} stage "
                f"({self.excluded_positive} candidates were the positive, {self.excluded_near_duplicate} near-duplicates "
                f"of it were left out; {self.without} pairs got none)")


def mine_negatives(pairs: list[Pair], index: str | Path, *, negatives: int = 3, depth: int = 30,
                   duplicate_threshold: float = 0.5, progress: bool = False, searcher=None,
                   report: MiningReport | None = None, strict: bool = False) -> list[Pair]:
    """Pairs with up to ``negatives`` hard negatives each: the best first-stage candidates of the
    query in ``index`` (top ``depth`` documents; BM25 and dense fused when the index's encoder is
    here, else BM25) that are not the positive. Left out as likely false negatives: the document
    with the pair's ``doc_id``, a document whose title is the query, and near-duplicates of the
    positive (:func:`near_duplicate`). Negatives a pair already has are kept first.
    """
    from tqdm.auto import tqdm

    from .searcher import QueryError, Searcher

    report = report if report is not None else MiningReport()
    if searcher is None:
        from index.manifest import read_manifest

        has_embeddings = bool(read_manifest(index).get("dense"))  # a lexical index: BM25 alone, no note needed
        searcher = Searcher.load(index, reranker=None, strict=strict, use_dense=has_embeddings)
        report.notes += searcher.warnings
    stages = "hybrid" if searcher.has_dense else "lexical"
    report.stages = ["bm25", "dense"] if searcher.has_dense else ["bm25"]
    out: list[Pair] = []
    for pair in tqdm(pairs, desc="hard negatives", unit=" pairs", disable=not progress):
        report.pairs += 1
        found = list(pair.negatives)
        if len(found) < negatives:
            try:
                _, cands = searcher.first_stage(pair.query, stages=stages, candidates=depth)
            except QueryError:
                cands = []
            pos_shingles = _shingles(pair.positive)
            query = _norm(pair.query)
            for r in searcher.documents(cands, depth):
                if len(found) >= negatives:
                    break
                if (pair.doc_id is not None and r.doc_id == pair.doc_id) or _norm(r.text) == _norm(pair.positive) \
                        or (r.title and _norm(r.title) == query):
                    report.excluded_positive += 1
                    continue
                if near_duplicate(r.text, pair.positive, threshold=duplicate_threshold, positive_shingles=pos_shingles):
                    report.excluded_near_duplicate += 1
                    continue
                if r.text not in found:
                    found.append(r.text)
                    report.mined += 1
        report.without += not found
        out.append(Pair(pair.query, pair.positive, found[:max(negatives, len(pair.negatives))], pair.doc_id, pair.line))
    return out


# -- evaluation ------------------------------------------------------------------------------------


@dataclass
class EvalSet:
    """Queries, a passage pool, the relevant passages of each query, and optionally each query's
    candidates (the passages the reranker orders; default: the 30 best by BM25 plus the relevant)."""

    queries: list[str]
    passages: list[str]
    relevant: list[set[int]]
    candidates: list[list[int]] | None = None
    source: str = "held-out pairs"

    def to_dict(self) -> dict:
        return {"queries": self.queries, "passages": self.passages, "relevant": [sorted(r) for r in self.relevant],
                "candidates": self.candidates, "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> "EvalSet":
        return cls(d["queries"], d["passages"], [set(r) for r in d["relevant"]], d.get("candidates"), d.get("source", ""))


def eval_from_pairs(pairs: list[Pair]) -> EvalSet:
    """Each held-out query's positive ranked among all held-out passages (positives and negatives)."""
    passages: list[str] = []
    row: dict[str, int] = {}

    def add(text: str) -> int:
        if text not in row:
            row[text] = len(passages)
            passages.append(text)
        return row[text]

    relevant: dict[str, set[int]] = {}
    for p in pairs:
        relevant.setdefault(p.query, set()).add(add(p.positive))
    for p in pairs:
        for n in p.negatives:
            add(n)
    return EvalSet(list(relevant), passages, list(relevant.values()))


def eval_from_qrels(queries: str | Path, qrels: str | Path, index: str | Path, *, depth: int = 30) -> EvalSet:
    """Judged queries against the documents of ``index``: each query's candidates are its judged
    documents and its BM25 top ``depth``; the pool is all of them."""
    from .evaluate import load_qrels, load_queries
    from .searcher import QueryError, Searcher

    qs, judgments = load_queries(queries), load_qrels(qrels)
    searcher = Searcher.load(index, reranker=None, use_dense=False)
    passages: list[str] = []
    row: dict[str, int] = {}

    def add(doc_id: str) -> int | None:
        if doc_id not in row:
            doc = searcher.document(doc_id)
            if doc is None:
                return None
            row[doc_id] = len(passages)
            passages.append(doc["text"])
        return row[doc_id]

    out = EvalSet([], passages, [], [], source=f"{Path(queries).name} + {Path(qrels).name} on {index}")
    for qid, text in qs.items():
        rel = {r for d, grade in judgments.get(qid, {}).items() if grade > 0 and (r := add(d)) is not None}
        if not rel:
            continue
        try:
            _, cands = searcher.first_stage(text, stages="lexical", candidates=depth)
            ids = [r.doc_id for r in searcher.documents(cands, depth)]
        except QueryError:
            ids = []
        out.queries.append(text)
        out.relevant.append(rel)
        out.candidates.append(sorted(rel | {r for d in ids if (r := add(d)) is not None}))
    if not out.queries:
        raise TrainError(f"no query of {queries} has a judged document in {index} (check the qrels' document ids)")
    return out


def _metrics(rankings: list[list[int]], relevant: list[set[int]], ks=(1, 10)) -> dict[str, float]:
    mrr = 0.0
    recall = {k: 0.0 for k in ks}
    for ranked, rel in zip(rankings, relevant):
        for i, r in enumerate(ranked[:10]):
            if r in rel:
                mrr += 1.0 / (i + 1)
                break
        for k in ks:
            recall[k] += len(rel & set(ranked[:k])) / len(rel)
    n = max(1, len(rankings))
    return {"MRR@10": round(mrr / n, 4), **{f"Recall@{k}": round(v / n, 4) for k, v in recall.items()}}


def _lexical_candidates(ev: EvalSet, n: int = 30) -> list[list[int]]:
    from index.analyzer import Analyzer
    from index.bm25 import BM25Index

    analyzer = Analyzer()
    bm25 = BM25Index.build([analyzer.tokens(p) for p in ev.passages])
    out = []
    for q, rel in zip(ev.queries, ev.relevant):
        rows, _ = bm25.top_k(analyzer.tokens(q), n)
        out.append(sorted(set(rows.tolist()[:n]) | rel))
    return out


def evaluate_encoder(model, ev: EvalSet, *, batch_size: int = 32) -> dict[str, float]:
    """MRR@10, Recall@1, Recall@10 of ranking the pool (or each query's candidates) by the encoder."""
    import numpy as np

    from index.dense import encode

    q = encode(model, ev.queries, kind="query", batch_size=batch_size)
    p = encode(model, ev.passages, kind="document", batch_size=batch_size)
    sims = q @ p.T
    rankings = []
    for i in range(len(ev.queries)):
        if ev.candidates:
            cands = np.asarray(ev.candidates[i])
            rankings.append(cands[np.argsort(-sims[i, cands], kind="stable")].tolist())
        else:
            rankings.append(np.argsort(-sims[i], kind="stable").tolist())
    return _metrics(rankings, ev.relevant)


def evaluate_reranker(model, ev: EvalSet, *, batch_size: int = 32) -> dict[str, float]:
    """MRR@10, Recall@1, Recall@10 of ordering each query's candidates by the cross-encoder."""
    cands = ev.candidates or _lexical_candidates(ev)
    flat = [(ev.queries[i], ev.passages[r]) for i, c in enumerate(cands) for r in c]
    scores = model.predict(flat, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True).tolist() if flat else []
    rankings, at = [], 0
    for c in cands:
        s = scores[at:at + len(c)]
        at += len(c)
        rankings.append([r for _, r in sorted(zip(s, c), key=lambda x: -x[0])])
    return _metrics(rankings, ev.relevant)


# -- training ----------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Settings of a run. ``loss``: ``mnrl`` (encoder), ``bce`` or ``listwise`` (reranker);
    ``matryoshka``: embedding sizes to train for as well (encoder); ``negatives``/``negative_depth``:
    hard negatives per pair and how deep in the first stage they are looked for (``--index``);
    ``holdout``: the fraction of pairs held out for the before/after evaluation (when no eval set is
    given); ``max_steps``: a bound on the optimizer steps (a short run)."""

    base: str
    epochs: float = 1.0
    batch_size: int = 16
    lr: float = 2e-5
    max_length: int = 256
    device: str = "auto"
    loss: str | None = None
    matryoshka: tuple[int, ...] | None = None
    negatives: int = 3
    negative_depth: int = 30
    holdout: float = 0.1
    holdout_max: int = 1000
    seed: int = 13
    warmup: float = 0.1
    checkpoint_minutes: float = 10.0
    max_steps: int | None = None

    def settings(self, kind: Kind) -> dict:
        d = asdict(self)
        d["loss"] = self.loss or ("mnrl" if kind == "encoder" else "bce")
        d["matryoshka"] = list(self.matryoshka) if self.matryoshka else None
        for k in ("device", "checkpoint_minutes"):  # may change between an interrupted run and its resumption
            d.pop(k)
        return d


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


def _base_error(exc, kind: Kind) -> TrainError:
    from index.models import ModelUnavailableError

    assert isinstance(exc, ModelUnavailableError)
    advice = exc.advice().replace("--dense-model/--reranker", "--base")
    return TrainError(f"cannot train the {kind}: its base model {exc.model!r} is not available ({exc.reason}). {advice}")


def _load_base(kind: Kind, base: str, device: str, max_length: int):
    from index.models import ModelUnavailableError, load_cross_encoder, load_encoder, resolve_model

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


def _get_max_length(kind: Kind, model) -> int | None:
    return model.max_seq_length


def _set_max_length(kind: Kind, model, value: int | None) -> None:
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
    model = _load_base(kind, config.base, device, config.max_length)  # a missing base: an error before any work
    t_start = time.perf_counter()
    if run is None:
        if out.is_dir():
            shutil.rmtree(out)
        state_dir.mkdir(parents=True)
        if eval_set is None:
            train_pairs, held = split_holdout(pairs, config.holdout, seed=config.seed, max_pairs=config.holdout_max)
            ev = eval_from_pairs(held) if held else None
        else:
            train_pairs, held, ev = list(pairs), [], eval_set
        mining = None
        if index is not None and config.negatives > 0:
            mining = MiningReport()
            train_pairs = mine_negatives(train_pairs, index, negatives=config.negatives, depth=config.negative_depth,
                                         progress=progress, report=mining, strict=strict)
            for note in mining.notes:
                log(f"note: {note}")
            log(mining.summary())
        have_negatives = any(p.negatives for p in train_pairs)
        n_neg = config.negatives if (have_negatives or kind == "reranker" and loss == "bce") else 0
        train_pairs, filled = _fill_negatives(train_pairs, n_neg, config.seed)
        run = {
            "identity": identity,
            "counts": {"pairs": len(pairs), "train": len(train_pairs), "heldout": len(held),
                       "eval_queries": len(ev.queries) if ev else 0, "eval_passages": len(ev.passages) if ev else 0,
                       "negatives_per_pair": n_neg, "random_negatives": filled,
                       "mined_negatives": mining.mined if mining else 0},
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

    inference_length = _get_max_length(kind, model)
    _set_max_length(kind, model, config.max_length)
    evaluate = evaluate_encoder if kind == "encoder" else evaluate_reranker
    if ev is not None and run.get("before") is None:
        run["before"] = evaluate(model, ev)
        _write_state(state_dir / RUN_FILE, run)
    if ev is not None:
        log("before: " + _fmt_metrics(run["before"]))

    trainer, total_steps = _trainer(kind, model, train_pairs, n_neg, loss, config, device, state_dir, progress,
                                    stop_after)
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(state_dir))
    resumed_from = 0
    if last:
        resumed_from = _read_state(Path(last) / "trainer_state.json").get("global_step", 0)
        log(f"resuming from {last} (step {resumed_from} of {total_steps})")
    flag = stop if stop is not None else threading.Event()
    trainer.add_callback(_stopper(config.checkpoint_minutes * 60, stop_after, flag, on_step))
    t_train = time.perf_counter()
    with _sigint_stops(flag, log), contextlib.redirect_stdout(_StdoutToLog(log)) if not progress else contextlib.nullcontext():
        output = trainer.train(resume_from_checkpoint=last or None)
    step = trainer.state.global_step
    run["train_seconds"] = run.get("train_seconds", 0.0) + time.perf_counter() - t_train  # over all sessions
    if step < trainer.state.max_steps:
        _write_state(state_dir / RUN_FILE, run)
        raise TrainingInterrupted(out, step, trainer.state.max_steps)
    train_seconds = run["train_seconds"]

    model = trainer.model
    model.eval()
    after = evaluate(model, ev) if ev is not None else None
    if after:
        log("after:  " + _fmt_metrics(after))
    _set_max_length(kind, model, inference_length)
    model.save_pretrained(str(out), safe_serialization=True)
    for path in out.rglob("*"):
        if path.is_file() and CHECKPOINTS not in path.relative_to(out).parts and path.suffix in (".bin", ".pt", ".pth", ".pkl"):
            path.unlink()  # safetensors only
    info = {
        "kind": kind, "base": config.base, "settings": {**settings, "device": device, "loss": loss},
        "counts": counts, "mining": run.get("mining"), "source": run.get("source"), "eval_source": run.get("eval_source"),
        "before": run.get("before"), "after": after, "steps": step, "resumed_from": resumed_from,
        "train_seconds": round(train_seconds, 1), "train_loss": round(float(output.training_loss), 4),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"), **(extra_info or {}),
    }
    (out / "README.md").write_text(model_card(info), encoding="utf-8")
    shutil.rmtree(state_dir, ignore_errors=True)
    (out / TRAINING_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    return TrainResult(kind, out, run.get("before"), after, step, resumed_from, train_seconds, counts["train"],
                       counts["heldout"], info)


class _StdoutToLog:
    """The trainers print their loss dictionaries on stdout; without progress they are dropped."""

    def __init__(self, log):
        self.log = log

    def write(self, s):
        return len(s)

    def flush(self):
        pass


def _trainer(kind, model, train_pairs, n_neg, loss_name, config, device, state_dir, progress, stop_after):
    import math

    import torch

    dataset = _dataset(kind, train_pairs, n_neg, loss_name)
    steps_per_epoch = math.ceil(len(dataset) / config.batch_size)
    total = config.max_steps or max(1, math.ceil(steps_per_epoch * config.epochs))
    common = dict(
        output_dir=str(state_dir), num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
        learning_rate=config.lr, warmup_steps=int(config.warmup * total), weight_decay=0.01,
        max_steps=config.max_steps or -1, save_strategy="steps", save_steps=max(1, total // 4) if total >= 8 else total,
        save_total_limit=2, logging_steps=max(1, min(50, total // 10)), report_to="none", seed=config.seed,
        use_cpu=device == "cpu", disable_tqdm=not progress, dataloader_num_workers=0,
        bf16=device.startswith("cuda") and torch.cuda.is_bf16_supported(),
    )
    if kind == "encoder":
        from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
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
        loss = MultipleNegativesRankingLoss(model)
        if config.matryoshka:
            loss = MatryoshkaLoss(model, loss, matryoshka_dims=list(config.matryoshka))
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    else:
        from sentence_transformers import CrossEncoderTrainer, CrossEncoderTrainingArguments
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, MultipleNegativesRankingLoss

        args = CrossEncoderTrainingArguments(**common)
        loss = BinaryCrossEntropyLoss(model) if loss_name == "bce" else MultipleNegativesRankingLoss(model)
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    return trainer, total


def _fmt_metrics(m: dict[str, float] | None) -> str:
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
    rows = [("loss", loss), ("epochs", s["epochs"]), ("batch size", s["batch_size"]), ("learning rate", s["lr"]),
            ("max length (training)", s["max_length"]), ("steps", info["steps"]), ("device", s["device"]),
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
                   "Each held-out query's positive ranked among all held-out passages" if kind == "encoder" else
                   "Each held-out query's candidates (the 30 best by BM25 among the held-out passages, and the positive) "
                   "ordered by the model") + "."]
    else:
        lines.append("Not evaluated (no held-out pairs).")
    return "\n".join(lines) + "\n"
