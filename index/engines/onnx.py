"""Cross-encoder inference through ONNX Runtime: the model exported once with ``torch.onnx``
(optionally dynamic int8 quantized), cached on disk, and run with one thread per core.

Scores are the CrossEncoder's: the same tokenization (its own ``preprocess``) and the same
activation on the logits, so the two backends are interchangeable.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from . import cache_dir, cores, pair_features

OPSET = 17


def cache_root() -> Path:
    """Where exported graphs live: $AMHARIC_SEARCH_CACHE, else the user's cache directory
    (~/.cache/amharic-search on Linux)."""
    return cache_dir() / "onnx"


def _fingerprint(cross_encoder) -> str:
    import onnxruntime
    import torch

    from ..models import weights_fingerprint

    source = getattr(cross_encoder.model, "name_or_path", "") or ""
    h = hashlib.sha256(json.dumps({"opset": OPSET, "torch": torch.__version__, "ort": onnxruntime.__version__,
                                   "config": cross_encoder.model.config.to_json_string()}).encode())
    if source and Path(source).is_dir() and any(Path(source).rglob("*.safetensors")):
        h.update(weights_fingerprint(source).encode())
    else:  # weights not on disk: hash the tensors themselves
        for name, tensor in sorted(cross_encoder.model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def export(cross_encoder, *, quantize: bool, directory: Path | None = None) -> Path:
    """The ONNX graph of ``cross_encoder`` (int8 weights when ``quantize``), exported on first use."""
    import torch

    out = (directory or cache_root()) / _fingerprint(cross_encoder)
    out.mkdir(parents=True, exist_ok=True)
    fp32, int8 = out / "model.onnx", out / "model.int8.onnx"
    if not fp32.exists():
        features = cross_encoder.preprocess([("ሰላም", "ሰላም ነው ወይ")])
        from .openvino import input_names, logits_module

        names = input_names(features)

        axes = {n: {0: "batch", 1: "sequence"} for n in names}
        axes["logits"] = {0: "batch"}
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            path = Path(tmp) / "model.onnx"
            with torch.no_grad():
                torch.onnx.export(logits_module(cross_encoder.model.eval(), names), tuple(features[n].cpu() for n in names), str(path), input_names=names,
                                  output_names=["logits"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
            os.replace(path, fp32)
    if quantize and not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory(dir=out) as tmp:
            path = Path(tmp) / "model.int8.onnx"
            quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8)
            os.replace(path, int8)
    return int8 if quantize else fp32


class OnnxCrossEncoder:
    """Scores (query, passage) pairs like ``CrossEncoder.predict``, through ONNX Runtime.

    Example::

        engine = OnnxCrossEncoder(CrossEncoder("rasyosef/reranker-amharic-medium"), quantize=True)
        scores = engine.predict([("የቡና ምርት", "…")], batch_size=16)
    """

    def __init__(self, cross_encoder, *, quantize: bool = True, threads: int | None = None, directory: Path | None = None) -> None:
        import onnxruntime as ort

        self.cross_encoder = cross_encoder
        self.quantize = quantize
        self.path = export(cross_encoder, quantize=quantize, directory=directory)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or cores()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def predict(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 16, max_length: int | None = None) -> np.ndarray:
        import torch

        order = np.argsort([-len(q) - len(p) for q, p in pairs], kind="stable")
        out = np.empty(len(pairs), dtype=np.float32)
        activation = getattr(self.cross_encoder, "activation_fn", None)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            features = pair_features(self.cross_encoder, [pairs[i] for i in idx], max_length)
            feeds = {n: features[n].cpu().numpy().astype(np.int64) for n in self.input_names}
            logits = torch.from_numpy(self.session.run(None, feeds)[0])
            scores = activation(logits) if activation is not None else logits
            out[idx] = scores[:, -1].float().numpy()
        return out
