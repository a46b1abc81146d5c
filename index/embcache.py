"""An on-disk cache of embeddings keyed by model and text hash, so unchanged passages are never
embedded twice (index rebuilds, benchmark reruns)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_key(model_name: str, **settings) -> str:
    """A key for one way of embedding: the model and every setting that changes its vectors."""
    blob = json.dumps({"model": model_name, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


class EmbeddingCache:
    """Embeddings of one model configuration, stored as shards of (hashes, vectors).

    Example::

        cache = EmbeddingCache(".cache/embeddings", model_key("me5", max_seq_length=256))
        found = cache.get(texts)            # list of vectors or None
        cache.put(missing_texts, vectors)
    """

    def __init__(self, directory: str | Path, key: str) -> None:
        self.directory = Path(directory) / key
        self.directory.mkdir(parents=True, exist_ok=True)
        self._vectors: dict[str, np.ndarray] = {}
        for shard in sorted(self.directory.glob("shard-*.npz")):
            try:
                with np.load(shard) as data:
                    for h, v in zip(data["hashes"].tolist(), data["vectors"]):
                        self._vectors[h] = v
            except (OSError, ValueError, KeyError):
                continue  # a damaged shard is ignored (its texts are embedded again)

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        return [self._vectors.get(text_key(t)) for t in texts]

    def by_hash(self) -> dict[str, np.ndarray]:
        """All stored vectors by :func:`text_key` (a view: do not change it)."""
        return self._vectors

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store the vectors of ``texts`` as one new shard, written atomically: an interruption
        leaves either the whole shard or nothing (and then nothing is counted in memory either)."""
        if len(texts) == 0:
            return
        hashes = [text_key(t) for t in texts]
        vectors = np.asarray(vectors, dtype=np.float32)
        tmp = self.directory / f".tmp-{uuid.uuid4().hex}.npz"
        try:
            np.savez(tmp, hashes=np.array(hashes), vectors=vectors)
            os.replace(tmp, self.directory / f"shard-{uuid.uuid4().hex}.npz")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        for h, v in zip(hashes, vectors):
            self._vectors[h] = v


def encode_cached(encode_fn, texts: Sequence[str], cache: EmbeddingCache | None, *, chunk: int = 256, progress=None) -> np.ndarray:
    """Embed ``texts`` with ``encode_fn(list[str]) -> array``, reusing and filling ``cache``.

    New embeddings are written to the cache every ``chunk`` texts, so an interrupted run resumes.
    """
    if cache is None:
        return encode_fn(list(texts))
    found = cache.get(texts)
    missing = [i for i, v in enumerate(found) if v is None]
    if progress is not None:
        progress(len(texts) - len(missing), len(texts))
    for start in range(0, len(missing), chunk):
        idx = missing[start : start + chunk]
        batch = [texts[i] for i in idx]
        vecs = encode_fn(batch)
        cache.put(batch, vecs)
        for i, v in zip(idx, vecs):
            found[i] = v
        if progress is not None:
            progress(len(texts) - len(missing) + start + len(idx), len(texts))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(found).astype(np.float32)
