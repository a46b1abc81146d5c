"""Shared helpers for the benchmark scripts: the collections in ../shared/data and BENCHMARKS.md."""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import os
import platform
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AMHARIC_SEARCH_DATA", ROOT.parent / "shared" / "data"))
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_collection(name: str) -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus, queries, qrels) of ``enh``, ``amqa`` or ``amqa+enh`` (AmQA with enh distractors)."""
    from amharic_search.search.evaluate import load_qrels, load_queries

    if name == "amqa+enh":
        corpus = read_jsonl(DATA / "amqa" / "corpus.jsonl") + read_jsonl(DATA / "enh" / "corpus.jsonl")
        name = "amqa"
    else:
        corpus = read_jsonl(DATA / name / "corpus.jsonl")
    return corpus, load_queries(DATA / name / "queries.jsonl"), load_qrels(DATA / name / "qrels.tsv")


def tuning_queries(name: str, n: int = 1000, seed: int = 13) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Held-out tuning queries from the collection's train pairs (disjoint from its test queries)."""
    base = "amqa" if name.startswith("amqa") else name
    path = DATA / base / "train_pairs.jsonl.gz"
    if not path.exists():
        path = DATA / base / "train_pairs.jsonl"
    pairs = read_jsonl(path)
    random.Random(seed).shuffle(pairs)
    pairs = pairs[:n]
    queries = {f"t{i}": p["query"] for i, p in enumerate(pairs)}
    qrels = {f"t{i}": {p["doc_id"]: 1} for i, p in enumerate(pairs)}
    return queries, qrels


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def machines(records) -> str:
    """The machines that saved records were measured on: a report rendered later names theirs, not its own."""
    return "; ".join(sorted({r.get("machine") or "machine not recorded" for r in records}))


def today() -> str:
    return _dt.date.today().isoformat()


def write_section(title: str, body: str) -> None:
    """Replace (or append) the section ``## title`` of BENCHMARKS.md."""
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    BENCHMARKS_MD.write_text(text.rstrip() + "\n", encoding="utf-8")


def markdown_table(header: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
