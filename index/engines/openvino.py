"""Transformer inference through OpenVINO on the CPU: the encoder at indexing time and the
cross-encoder at query time.

The PyTorch model is converted in memory once (``openvino.convert_model``, dynamic batch and
sequence length) and compiled for the CPU with one stream and one thread per core. ``precision``
is OpenVINO's inference precision: ``bf16`` (on a CPU that computes bfloat16 natively: AMX or
AVX-512 BF16) or ``fp32``. Tokenization and everything after the network (pooling,
normalization, the cross-encoder's activation) stay the sentence-transformers code, so scores and
vectors are comparable with the PyTorch backends (BENCHMARKS.md, "Engines").

This module is shared by both sides (``index`` embeds with it, ``search`` reranks with it); it
imports OpenVINO only when an engine is built.
"""

from __future__ import annotations

import warnings
from typing import Literal, Sequence

import numpy as np

from . import cores, pair_features

EnginePrecision = Literal["fp32", "bf16"]


def available() -> bool:
    """Whether the OpenVINO runtime is installed."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def _compile(module, example: dict, *, precision: EnginePrecision, threads: int | None):
    import openvino as ov
    import torch

    names = list(example)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python conditionals in the model code
        graph = ov.convert_model(module.eval(), example_input=tuple(example[n].cpu() for n in names),
                                 input=[(ov.PartialShape([-1, -1]), ov.Type.i64) for _ in names])
    config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
              "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(threads or cores())}
    return ov.Core().compile_model(graph, "CPU", config), names


def input_names(features) -> list[str]:
    """The tokenizer outputs a transformer takes, in the order the traced modules take them."""
    return [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in features]


def embedding_module(st_model, names: list[str]):
    """A SentenceTransformer as a module of positional inputs (``names``) -> its sentence embeddings."""
    import torch

    class Embed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = st_model

        def forward(self, *inputs):
            return self.model(dict(zip(names, inputs)))["sentence_embedding"]

    return Embed()


def logits_module(hf_model, names: list[str]):
    """A Hugging Face sequence classifier as a module of positional inputs (``names``) -> its logits
    (what the ONNX export and the OpenVINO conversion of a cross-encoder trace)."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = hf_model

        def forward(self, *inputs):
            return self.model(**dict(zip(names, inputs))).logits

    return Logits()


def _features(tokenized: dict, names: list[str]) -> list[np.ndarray]:
    return [tokenized[n].cpu().numpy().astype(np.int64) for n in names]


def _run(request, inputs: list[np.ndarray]) -> np.ndarray:
    """The first output of one inference, copied out of the request's buffer."""
    return np.array(request.infer(inputs)[0], dtype=np.float32)


class OpenVINOEncoder:
    """A SentenceTransformer's ``encode`` through OpenVINO: the same tokenizer, prompts, pooling and
    normalization (they are part of the converted graph), float32 vectors.

    Example::

        engine = OpenVINOEncoder(SentenceTransformer("rasyosef/embedding-amharic-medium"), precision="bf16")
        vectors = engine.encode(["የቡና ምርት"], batch_size=32)
    """

    def __init__(self, st_model, *, precision: EnginePrecision = "bf16", threads: int | None = None) -> None:
        self.model = st_model
        self.precision = precision
        self._tokenize = getattr(st_model, "preprocess", None) or st_model.tokenize  # renamed in sentence-transformers 6
        example = self._tokenize(["ሰላም", "ሰላም ነው ወይ"])
        names = input_names(example)
        self.compiled, self.names = _compile(embedding_module(st_model, names), {n: example[n] for n in names},
                                             precision=precision, threads=threads)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, prompt: str | None = None,
               normalize: bool = True, show_progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts`` in the order given (batches of ``batch_size`` as given: sort
        them by length first for less padding); ``show_progress``: a bar over the batches."""
        from tqdm.auto import tqdm

        dim = self.compiled.outputs[0].get_partial_shape()[-1]
        request = self.compiled.create_infer_request()  # one per call: calls from several threads run side by side
        out = []
        for start in tqdm(range(0, len(texts), batch_size), desc="Batches", disable=not show_progress):
            batch = [(prompt or "") + t for t in texts[start : start + batch_size]]
            out.append(_run(request, _features(self._tokenize(batch), self.names)))
        emb = np.concatenate(out) if out else np.zeros((0, dim.get_length()), dtype=np.float32)
        if normalize:
            norms = np.linalg.norm(emb, axis=1, keepdims=True)
            emb = emb / np.maximum(norms, 1e-12)
        return emb


class OpenVINOCrossEncoder:
    """Scores (query, passage) pairs like ``CrossEncoder.predict``, through OpenVINO.

    Example::

        engine = OpenVINOCrossEncoder(CrossEncoder("rasyosef/reranker-amharic-medium"), precision="bf16")
        scores = engine.predict([("የቡና ምርት", "…")], batch_size=16)
    """

    def __init__(self, cross_encoder, *, precision: EnginePrecision = "bf16", threads: int | None = None) -> None:
        self.cross_encoder = cross_encoder
        self.precision = precision
        example = cross_encoder.preprocess([("ሰላም", "ሰላም ነው ወይ"), ("ሰላም", "ነው")])
        names = input_names(example)
        self.compiled, self.names = _compile(logits_module(cross_encoder.model, names),
                                             {n: example[n] for n in names}, precision=precision, threads=threads)

    def predict(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 16, max_length: int | None = None) -> np.ndarray:
        import torch

        order = np.argsort([-len(q) - len(p) for q, p in pairs], kind="stable")
        out = np.empty(len(pairs), dtype=np.float32)
        activation = getattr(self.cross_encoder, "activation_fn", None)
        request = self.compiled.create_infer_request()  # one per call: calls from several threads run side by side
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            features = _features(pair_features(self.cross_encoder, [pairs[i] for i in idx], max_length), self.names)
            logits = torch.from_numpy(_run(request, features))
            scores = activation(logits) if activation is not None else logits
            out[idx] = scores[:, -1].float().numpy()
        return out
