"""Dense passage embeddings and the FAISS index that holds them."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Literal, Sequence

import numpy as np


from .engines import bf16_autocast, cores, cpu_has_bf16  # noqa: F401 - part of this module's interface

Precision = Literal["fp32", "bf16"]
Engine = Literal["torch", "openvino"]


def choose_precision(precision: Literal["auto", "fp32", "bf16"], model) -> Precision:
    """``auto``: bf16 on a CPU that computes it natively, else fp32 (GPUs run fp32 here)."""
    if precision != "auto":
        return precision
    on_cpu = str(getattr(model, "device", "cpu")).startswith("cpu")
    return "bf16" if on_cpu and cpu_has_bf16() else "fp32"


def choose_engine(engine: Literal["auto", "torch", "openvino"], model, precision: Precision) -> Engine:
    """``auto``: OpenVINO for bf16 on the CPU where it is installed (1.4x PyTorch bf16, same vectors
    to cosine 0.99999: BENCHMARKS.md, "Engines"), else PyTorch."""
    if engine != "auto":
        return engine
    from .engines.openvino import available

    on_cpu = str(getattr(model, "device", "cpu")).startswith("cpu")
    return "openvino" if on_cpu and precision == "bf16" and available() else "torch"


_engines: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _openvino(model, precision: Precision):
    """The model's OpenVINO engine at ``precision``, converted on first use (one per model and precision)."""
    import torch

    from .engines.openvino import OpenVINOEncoder

    mine = _engines.setdefault(model, {})
    if precision not in mine:
        mine[precision] = OpenVINOEncoder(model, precision=precision, threads=torch.get_num_threads())
    return mine[precision]


def embedding_dim(model) -> int:
    """The encoder's output dimension (sentence-transformers renamed the method in v5)."""
    method = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(method())


def _prompt_name(model, kind: str) -> str | None:
    names = {"query": ("query",), "document": ("document", "passage", "doc")}[kind]
    prompts = getattr(model, "prompts", None) or {}
    return next((n for n in names if n in prompts), None)


def encode(
    model, texts: Sequence[str], *, kind: str = "document", batch_size: int = 32, show_progress: bool = False,
    precision: Precision = "fp32", engine: Engine = "torch",
) -> np.ndarray:
    """Normalized float32 embeddings, with the model's query or document prompt if it has one.

    Texts are encoded longest first in batches (less padding), then put back in order.
    ``precision="bf16"`` computes in bfloat16 on the CPU (autocast; the vectors stay float32);
    ``engine="openvino"`` runs the network through OpenVINO (:mod:`index.engines.openvino`).
    """
    texts = list(texts)
    if not texts:
        return np.zeros((0, embedding_dim(model)), dtype=np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    prompt_name = _prompt_name(model, kind)
    if engine == "openvino":
        prompt = (getattr(model, "prompts", None) or {}).get(prompt_name) if prompt_name else None
        emb = _openvino(model, precision).encode([texts[i] for i in order], batch_size=batch_size, prompt=prompt,
                                                 show_progress=show_progress)
    else:
        with bf16_autocast(precision == "bf16"):
            emb = model.encode([texts[i] for i in order], prompt_name=prompt_name, batch_size=batch_size,
                               show_progress_bar=show_progress, convert_to_numpy=True, normalize_embeddings=True)
        emb = emb.astype(np.float32, copy=False)
    out = np.empty_like(emb)
    out[order] = emb
    return out


EXACT_MAX = 100_000
"""Up to this many passages the index is exact (flat inner product, a few ms per query); above,
an inverted-file index (IVF) answers in milliseconds at any size (BENCHMARKS.md, "Scale")."""

IndexKind = Literal["auto", "flat", "ivf"]


def ivf_settings(n: int) -> dict:
    """IVF list count and lists probed per query for ``n`` vectors (about 4 sqrt(n) lists); the
    vectors are stored as float16 (half the memory of float32, same neighbours: BENCHMARKS.md "Dense index storage")."""
    nlist = int(min(65_536, max(64, 4 * np.sqrt(n))))
    return {"type": "ivf", "nlist": nlist, "nprobe": max(16, nlist // 64), "storage": "fp16"}


class DenseIndex:
    """Inner-product search over normalized embeddings (cosine), ids = passage rows.

    Exact (FAISS flat) up to :data:`EXACT_MAX` vectors, an IVF index above (``kind="auto"``);
    :attr:`info` describes it for the manifest.

    Example::

        index = DenseIndex.build(embeddings)
        rows, scores = index.search(query_vector, k=100)
    """

    def __init__(self, faiss_index, info: dict | None = None) -> None:
        self._index = faiss_index
        self.info = info or {"type": "flat"}
        if self.info.get("type") == "ivf":
            import faiss

            faiss.extract_index_ivf(faiss_index).nprobe = int(self.info["nprobe"])

    @classmethod
    def build(cls, embeddings: np.ndarray, *, kind: IndexKind = "auto", seed: int = 0) -> "DenseIndex":
        import faiss

        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        n, dim = embeddings.shape
        ids = np.arange(n, dtype=np.int64)
        if kind == "flat" or (kind == "auto" and n <= EXACT_MAX):
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
            index.add_with_ids(embeddings, ids)
            return cls(index, {"type": "flat"})
        info = ivf_settings(n)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, info["nlist"], faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct by id (vector reuse on rebuild)
        sample = np.random.default_rng(seed).choice(n, size=min(n, 64 * info["nlist"]), replace=False)
        index.train(embeddings[np.sort(sample)])
        for start in range(0, n, 100_000):
            index.add_with_ids(embeddings[start : start + 100_000], ids[start : start + 100_000])
        return cls(index, info)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def search(self, query: np.ndarray, k: int, *, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows nearest to ``query`` and their scores, best first. ``allow`` (a boolean per
        row): only allowed rows, chosen inside FAISS's search (an ``IDSelectorBitmap``), so the ``k``
        are the nearest allowed ones, not the nearest ``k`` filtered afterwards."""
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self.dim:
            raise ValueError(f"query embedding has {query.shape[1]} dimensions, the index has {self.dim}")
        k = min(k, self.size if allow is None else int(np.count_nonzero(allow)))
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        if allow is None:
            scores, ids = self._index.search(query, k)
        else:
            scores, ids = self._index.search(query, k, params=self._selector(allow))
        keep = ids[0] >= 0
        ids, scores = ids[0][keep], scores[0][keep]
        order = np.lexsort((ids, -scores))  # equal scores (duplicate passages) in row order, as shards merge them
        return ids[order], scores[order]

    def _selector(self, allow: np.ndarray):
        import faiss

        bits = np.packbits(np.asarray(allow, dtype=bool), bitorder="little")
        selector = faiss.IDSelectorBitmap(len(allow), faiss.swig_ptr(bits))
        if self.info.get("type") == "ivf":
            params = faiss.SearchParametersIVF(sel=selector, nprobe=int(self.info["nprobe"]))
        else:
            params = faiss.SearchParameters(sel=selector)
        params._keep = (bits, selector)  # FAISS holds raw pointers: keep the arrays alive with the parameters
        return params

    def vectors(self) -> np.ndarray:
        """All stored vectors, row ``i`` being passage row ``i`` (an IVF index gives them back at the
        precision it stores them in)."""
        import faiss

        if self.info.get("type") == "ivf":
            return self._index.reconstruct_batch(np.arange(self.size, dtype=np.int64)) if self.size else np.zeros((0, self.dim), np.float32)
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
    def load(cls, path: str | Path, info: dict | str | None = None) -> "DenseIndex":
        """Open a saved index; ``info`` is the manifest's description (IVF: lists probed per query;
        indexes built before IVF existed describe their exact index with a string)."""
        import faiss

        return cls(faiss.read_index(str(path)), info if isinstance(info, dict) else None)
