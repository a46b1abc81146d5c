"""The index manifest: what an index directory holds and how it was built."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .layout import FORMAT_VERSION, MANIFEST


class IndexFormatError(ValueError):
    """An index directory that cannot be used; the message says why and what to do."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_indexes(root: Path) -> list[Path]:
    """Index directories directly under ``root`` (those with a manifest), by name."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())


def write_manifest(directory: Path, manifest: dict) -> None:
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(directory).as_posix()
        files[rel] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
    manifest = {**manifest, "format_version": FORMAT_VERSION, "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")


def update_manifest(directory: str | Path, **fields) -> dict:
    """Set top-level manifest fields (e.g. tuned ``fusion``) in place, atomically."""
    import os

    directory = Path(directory)
    manifest = read_manifest(directory)
    manifest.update(fields)
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, directory / MANIFEST)
    return manifest


def read_manifest(directory: str | Path, *, verify: bool = False) -> dict:
    """The manifest of an index directory, checked for format and (with ``verify``) file hashes."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise IndexFormatError(f"{directory}: no such index directory; build one with `amharic-search index build`")
    if not path.is_file():
        raise IndexFormatError(f"{directory}: not an amharic-search index (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"{path}: damaged manifest ({exc}); rebuild the index") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise IndexFormatError(
            f"{directory}: index format version {version}, this amharic-search reads version {FORMAT_VERSION}; "
            + ("upgrade amharic-search" if newer else "rebuild the index with `amharic-search index build`")
        )
    for rel, info in manifest.get("files", {}).items():
        file = directory / rel
        if not file.is_file():
            raise IndexFormatError(f"{directory}: file {rel} is missing; rebuild the index")
        if file.stat().st_size != info["bytes"]:
            raise IndexFormatError(f"{directory}: file {rel} has the wrong size (truncated?); rebuild the index")
        if verify and file_sha256(file) != info["sha256"]:
            raise IndexFormatError(f"{directory}: file {rel} does not match its checksum; rebuild the index")
    return manifest


def corpus_source(m: dict) -> Path | None:
    """The corpus an index was built from, as an absolute path, when it is on this machine (a fix-it
    command names it); None when it is not (moved, deleted, an upload's temporary folder)."""
    recorded = (m.get("corpus") or {}).get("path")
    if not recorded:
        return None
    path = Path(recorded).expanduser()
    return path.resolve() if path.exists() else None


def describe_manifest(m: dict) -> list[tuple[str, str]]:
    """The manifest as (label, value) lines for people."""
    corpus, dense, ana = m.get("corpus", {}), m.get("dense"), m.get("analyzer", {})
    steps = [k for k in ("nfc", "fold", "numerals", "lowercase", "stem", "keep_surface", "roots", "stopwords") if ana.get(k)]
    bm25 = m.get("bm25", {})
    rows = [
        ("name", m.get("name", "")),
        ("format version", str(m.get("format_version"))),
        ("built", m.get("created", "")),
        ("corpus", f"{corpus.get('path')} ({corpus.get('format')})"),
        ("documents", str(corpus.get("documents"))),
        ("passages", str(corpus.get("passages"))),
        ("corpus sha256", str(corpus.get("sha256", ""))[:16] + "…"),
        ("analyzer", f"{ana.get('name')} v{ana.get('version')}: {', '.join(steps)}"),
        ("bm25", f"{bm25.get('method')} k1={bm25.get('k1')} b={bm25.get('b')}, {bm25.get('vocabulary')} terms"),
        ("chunking", f"{m.get('chunking', {}).get('max_tokens')} tokens, overlap {m.get('chunking', {}).get('overlap')} sentence(s)"),
    ]
    if dense:
        rev = f" @ {dense['revision'][:10]}" if dense.get("revision") else ""
        faiss_info = dense.get("faiss")
        if isinstance(faiss_info, dict):
            faiss_info = "exact" if faiss_info.get("type") == "flat" else ", ".join(f"{k} {v}" for k, v in faiss_info.items())
        rows.append(("dense model", f"{dense['model']}{rev} ({dense['dim']}-d, {faiss_info})"))
        if dense.get("fingerprint"):  # indexes built before fingerprints have none
            rows.append(("fingerprint", str(dense["fingerprint"])[:23] + "…"))
    else:
        rows.append(("dense model", "none (lexical-only index)"))
    rows.append(("default reranker", (m.get("reranker") or {}).get("default_model", "")))
    if m.get("fields"):
        def field_text(name: str, f: dict) -> str:
            kind = f"date, {f.get('calendar')} calendar" if f.get("type") == "date" else f.get("type", "")
            extra = f", {f['values']} values" if "values" in f else (f", {f['range'][0]} to {f['range'][1]}" if f.get("range") else "")
            return f"{name} ({kind}{extra})"
        rows.append(("fields", "; ".join(field_text(n, f) for n, f in m["fields"].items())))
    if m.get("shards"):
        sizes = ", ".join(f"{s['passages']:,}" for s in m["shards"])
        rows.append(("shards", f"{len(m['shards'])} ({sizes} passages; BM25 with collection-wide statistics)"))
    if m.get("shard"):
        s = m["shard"]
        rows.append(("shard", f"shard-{s['index']:03d}, one of {s['count']} (passages from {s['first_passage']:,})"))
    if m.get("segments"):
        seg = m["segments"]
        parts = seg.get("parts", [])
        deleted = sum(p.get("deleted", 0) for p in parts)
        rows.append(("changes", f"generation {seg.get('generation')} ({seg.get('updated')}): {seg.get('documents'):,} live "
                                f"documents, {seg.get('passages'):,} passages in {len(parts)} parts, {deleted:,} deleted "
                                "(`amharic-search index compact` merges them)"))
    if m.get("build"):
        b = m["build"]
        rows.append(("embedded", f"on {b.get('cluster')}, {b.get('encoder_workers')} {b.get('device')} worker(s)"))
    return rows
