"""Training pairs: pairs files checked line by line, pairs from a corpus's or an index's titles, the
held-out split, and hard negatives mined from an index."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ...index.readers import json_problem

from .common import PairsError

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
                except json.JSONDecodeError as exc:
                    raise PairsError(f"{where}: {json_problem(exc.msg, exc.doc, exc.pos)}") from None
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
    from ...index.readers import read_corpus

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
    from ...index.manifest import IndexFormatError, read_manifest
    from ...index.update import live_documents

    manifest = read_manifest(index)
    if manifest.get("shards"):
        raise IndexFormatError(f"{index} is split into shards; read the documents of the unsharded index")
    for doc in live_documents(index, manifest):  # with the documents added or deleted since the build
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


def pick_negatives(pair: Pair, candidates: Iterable[tuple], negatives: int, *,
                   duplicate_threshold: float = 0.5, report: MiningReport | None = None) -> list[str]:
    """``pair``'s negatives (those it has first) filled up to ``negatives`` from ``candidates``, (doc_id,
    title, text) best first, leaving out likely false negatives: the document with the pair's
    ``doc_id`` or its positive's text, a document titled as the query, and near-duplicates of the
    positive (:func:`near_duplicate`). ``report`` counts what was mined and left out."""
    report = report if report is not None else MiningReport()
    found = list(pair.negatives)
    if len(found) >= negatives:
        return found
    pos_shingles = _shingles(pair.positive)
    query, positive = _norm(pair.query), _norm(pair.positive)
    for doc_id, title, text in candidates:
        if len(found) >= negatives:
            break
        if (pair.doc_id is not None and doc_id == pair.doc_id) or _norm(text) == positive \
                or (title and _norm(title) == query):
            report.excluded_positive += 1
            continue
        if near_duplicate(text, pair.positive, threshold=duplicate_threshold, positive_shingles=pos_shingles):
            report.excluded_near_duplicate += 1
            continue
        if text not in found:
            found.append(text)
            report.mined += 1
    return found


def mine_negatives(pairs: list[Pair], index: str | Path, *, negatives: int = 3, depth: int = 30,
                   duplicate_threshold: float = 0.5, progress: bool = False, searcher=None,
                   report: MiningReport | None = None, strict: bool = False) -> list[Pair]:
    """Pairs with up to ``negatives`` hard negatives each: the best first-stage candidates of the
    query in ``index`` (top ``depth`` documents; BM25 and dense fused when the index's encoder is
    here, else BM25) that are not the positive. Left out as likely false negatives: the document
    with the pair's ``doc_id``, a document whose title is the query, and near-duplicates of the
    positive (:func:`pick_negatives`). Negatives a pair already has are kept first.
    """
    from tqdm.auto import tqdm

    from ..schema import QueryError

    from ..searcher import Searcher

    report = report if report is not None else MiningReport()
    if searcher is None:
        from ...index.manifest import read_manifest

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
            found = pick_negatives(pair, ((r.doc_id, r.title, r.text) for r in searcher.documents(cands, depth)),
                                   negatives, duplicate_threshold=duplicate_threshold, report=report)
        report.without += not found
        out.append(Pair(pair.query, pair.positive, found[:max(negatives, len(pair.negatives))], pair.doc_id, pair.line))
    return out
