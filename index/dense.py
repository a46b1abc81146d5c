"""Dense passage embeddings and the FAISS index that holds them."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def embedding_dim(model) -> int:
    """The encoder's output dimension (sentence-transformers renamed the method in v5)."""
    method = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(method())


def _prompt_name(model, kind: str) -> str | None:
    names = {"query": ("query",), "document": ("document", "passage", "doc")}[kind]
    prompts = getattr(model, "prompts", None) or {}
    return next((n for n in names if n in prompts), None)


def encode(
    model, texts: Sequence[str], *, kind: str = "document", batch_size: int = 32, show_progress: bool = False
) -> np.ndarray:
    """Normalized float32 embeddings, with the model's query or document prompt if it has one.

    Texts are encoded longest first in batches (less padding), then put back in order.
    """
    texts = list(texts)
    if not texts:
        return np.zeros((0, embedding_dim(model)), dtype=np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    emb = model.encode(
        [texts[i] for i in order],
        prompt_name=_prompt_name(model, kind),
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    ).astype(np.float32, copy=False)
    out = np.empty_like(emb)
    out[order] = emb
    return out


class DenseIndex:
    """Exact inner-product search over normalized embeddings (cosine), ids = passage rows.

    Example::

        index = DenseIndex.build(embeddings)
        rows, scores = index.search(query_vector, k=100)
    """

    def __init__(self, faiss_index) -> None:
        self._index = faiss_index

    @classmethod
    def build(cls, embeddings: np.ndarray) -> "DenseIndex":
        import faiss

        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(embeddings.shape[1]))
        index.add_with_ids(embeddings, np.arange(embeddings.shape[0], dtype=np.int64))
        return cls(index)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self.dim:
            raise ValueError(f"query embedding has {query.shape[1]} dimensions, the index has {self.dim}")
        k = min(k, self.size)
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        scores, ids = self._index.search(query, k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def vectors(self) -> np.ndarray:
        """All stored vectors, row ``i`` being passage row ``i``."""
        import faiss

        inner = faiss.downcast_index(self._index.index)
        flat = inner.reconstruct_n(0, inner.ntotal)
        ids = faiss.vector_to_array(self._index.id_map)
        out = np.empty_like(flat)
        out[ids] = flat
        return out

    def save(self, path: str | Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: str | Path) -> "DenseIndex":
        import faiss

        return cls(faiss.read_index(str(path)))
