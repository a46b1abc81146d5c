"""Cross-encoder reranking of (query, passage) pairs."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Literal, Sequence, get_args

import numpy as np

from ..index.chunking import split_sentences
from ..index.engines import bf16_autocast, cpu_has_bf16, length_kwargs
from ..index.models import DEFAULT_RERANKER, ModelUnavailableError, load_cross_encoder

Backend = Literal["auto", "torch", "torch-bf16", "openvino", "openvino-bf16", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = get_args(Backend)


def choose_backend(backend: Backend, device: str) -> str:
    """``auto``: PyTorch on a GPU; on a CPU that computes bfloat16 natively (AMX or AVX-512 BF16),
    OpenVINO in bfloat16 (1.6x PyTorch bf16 and 4.5x fp32 with the same ranking: BENCHMARKS.md,
    "Engines"), or PyTorch bf16 without OpenVINO installed; on other CPUs PyTorch fp32. ONNX Runtime
    int8 reorders the top 10 more: opt-in."""
    if backend != "auto":
        return backend
    if not str(device).startswith("cpu"):
        return "torch"
    if not cpu_has_bf16():
        return "torch"
    from ..index.engines.openvino import available

    return "openvino-bf16" if available() else "torch-bf16"


Window = Literal["best", "head"]


def focus_window(text: str, terms: set[str], budget: int, *, analyze: Callable[[str], list[str]],
                 count: Callable[[str], int]) -> str:
    """The run of whole sentences of ``text`` within ``budget`` tokens that holds the most query terms.

    A cross-encoder reads only its first max-length tokens: for a passage longer than that, this
    sends the part that matches the query instead of the head. Text that fits, or that matches no
    query term, is returned unchanged (the reranker then reads its head); a single sentence longer
    than the budget is returned whole (the reranker reads its head).

    Example::

        focus_window(passage, set(analyzer.tokens(query)), 200, analyze=analyzer.tokens, count=n_tokens)
    """
    if not terms or budget <= 0 or count(text) <= budget:
        return text
    sentences = split_sentences(text)
    sizes = [count(s) for _, s in sentences]
    found = [set(analyze(s)) & terms for _, s in sentences]
    best, best_key = None, (0, 0)
    for i in range(len(sentences)):
        covered: set[str] = set()
        hits, used, j = 0, 0, i
        while j < len(sentences) and (j == i or used + sizes[j] <= budget):
            covered |= found[j]
            hits += len(found[j])
            used += sizes[j]
            j += 1
        key = (len(covered), hits)
        if key > best_key:
            best, best_key = (i, j), key
    if best is None:
        return text
    start = sentences[best[0]][0]
    end = sentences[best[1] - 1][0] + len(sentences[best[1] - 1][1])
    return text[start:end]


class Reranker:
    """Scores (query, passage) pairs with a sentence-transformers CrossEncoder.

    Pairs are sorted by length and scored in batches (no padding to the longest of all).

    Example::

        reranker = Reranker.load("rasyosef/reranker-amharic-medium")
        scores = reranker.score("የቡና ምርት", ["passage one", "passage two"])
    """

    def __init__(self, model, name: str, *, backend: str = "torch", engine=None, cache_size: int = 20_000) -> None:
        self.model = model
        self.name = name
        self.backend = backend
        """The backend in use: one of :data:`BACKENDS` but ``auto``."""
        self._engine = engine
        self._cache: OrderedDict[tuple, float] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0
        """Pairs answered from the score cache, and pairs scored by the model, since loading."""

    @classmethod
    def load(cls, name: str = DEFAULT_RERANKER, *, max_length: int | None = None, device: str | None = None,
             backend: Backend = "auto") -> "Reranker":
        """Load a cross-encoder; ``backend="auto"``: see :func:`choose_backend`.

        OpenVINO converts the model in memory when it loads (a few seconds); ONNX graphs are
        exported on first use and cached (``$AMHARIC_SEARCH_CACHE``, else ~/.cache/amharic-search).
        An engine that fails to start is an error when asked for by name; under ``auto`` PyTorch
        takes over.
        """
        if backend not in BACKENDS:
            raise ValueError(f"unknown reranker backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        model = load_cross_encoder(name, max_length=max_length, device=device)
        chosen = choose_backend(backend, str(model.device))
        engine = None
        try:
            if chosen.startswith("onnx"):
                from ..index.engines.onnx import OnnxCrossEncoder

                engine = OnnxCrossEncoder(model, quantize=chosen == "onnx-int8")
            elif chosen.startswith("openvino"):
                from ..index.engines.openvino import OpenVINOCrossEncoder

                engine = OpenVINOCrossEncoder(model, precision="bf16" if chosen.endswith("bf16") else "fp32")
        except Exception as exc:  # noqa: BLE001 - export, conversion or runtime failure
            if backend != "auto":
                raise ModelUnavailableError(name, f"the {chosen} backend failed ({type(exc).__name__}: {exc}); "
                                                  "use --reranker-backend torch") from None
            chosen = "torch-bf16"
        return cls(model, name, backend=chosen, engine=engine)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model (no special tokens)."""
        return len(self.model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    @property
    def max_length(self) -> int | None:
        """The model's own max length in tokens (a call's ``max_length`` overrides it for that call)."""
        return getattr(self.model, "max_seq_length", None) or getattr(self.model, "max_length", None)

    def score(self, query: str, passages: Sequence[str], *, batch_size: int = 16, max_length: int | None = None) -> np.ndarray:
        """One relevance score per passage (higher is more relevant), in the order given, reading at most
        ``max_length`` tokens of each pair (None: the model's max length).

        Scores of (query, passage) pairs seen before at the same max length come from a cache.
        """
        return self.score_many([(query, passages)], batch_size=batch_size, max_length=max_length)[0]

    def score_many(self, jobs: Sequence[tuple[str, Sequence[str]]], *, batch_size: int = 16,
                   pack: bool = False, max_length: int | None = None) -> list[np.ndarray]:
        """:meth:`score` for several queries at once (the search service's micro-batches): one array per job.

        A pair asked twice (two clients with the same query) is scored once. Without ``pack`` each
        job's new pairs are scored in the same length-sorted batches as ``score(query, passages)``
        would use, so a job's scores are bit for bit those of a call of its own (as with the cache,
        a job sharing only some of its pairs with another can differ in the last bits of the float);
        ``pack=True`` sorts the new pairs of all jobs together into fuller batches with less padding
        (scores then differ from a call of their own in the last bits, about 1e-7).
        """
        length = max_length or self.max_length
        results = [np.zeros(len(passages), dtype=np.float32) for _, passages in jobs]
        keys = [[(length, query, p) for p in passages] for query, passages in jobs]
        todo: list[list[int]] = []  # per job: the positions of its pairs to score
        owner: dict[tuple, tuple[int, int]] = {}  # a pair to score -> the (job, position) that scores it
        with self._lock:
            for j, job_keys in enumerate(keys):
                mine = []
                for i, key in enumerate(job_keys):
                    if key in self._cache:
                        results[j][i] = self._cache[key]
                        self._cache.move_to_end(key)
                        self.cache_hits += 1
                    elif key not in owner:
                        owner[key] = (j, i)
                        mine.append(i)
                todo.append(mine)
        if owner:
            groups = [[(j, i) for i in sorted(mine, key=lambda i: -len(jobs[j][1][i]))] for j, mine in enumerate(todo) if mine]
            if pack:
                groups = [sorted((p for g in groups for p in g), key=lambda p: -len(jobs[p[0]][1][p[1]]))]
            scored: dict[tuple, float] = {}
            for group in groups:
                raw = self._predict([(jobs[j][0], jobs[j][1][i]) for j, i in group], batch_size, length)
                for (j, i), value in zip(group, raw.tolist()):
                    scored[keys[j][i]] = value
            with self._lock:
                self.cache_misses += len(scored)
                for key, value in scored.items():
                    self._cache[key] = value
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            for j, job_keys in enumerate(keys):
                for i, key in enumerate(job_keys):
                    if key in scored:
                        results[j][i] = scored[key]
        return results

    def _predict(self, pairs: list[tuple[str, str]], batch_size: int, max_length: int | None) -> np.ndarray:
        if self._engine is not None:
            raw = self._engine.predict(pairs, batch_size=batch_size, max_length=max_length)
        else:
            with bf16_autocast(self.backend == "torch-bf16"):
                raw = self.model.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True,
                                         **length_kwargs(self.model, max_length))
        raw = np.asarray(raw, dtype=np.float32)
        if raw.ndim == 2:  # a two-class head: use the "relevant" logit
            raw = raw[:, -1]
        return raw
