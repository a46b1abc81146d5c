"""Inference engines for both models, on the lower floor so that build and query time share them.

- PyTorch is the reference (sentence-transformers' own ``encode`` / ``predict``).
- :mod:`index.engines.openvino`: the encoder and the cross-encoder converted in memory to OpenVINO
  (fp32 or bf16), for CPUs.
- :mod:`index.engines.onnx`: the cross-encoder exported to ONNX Runtime (fp32 or int8), cached on disk.

This module holds what they share: the cores to use, whether the CPU computes bfloat16, the
bf16 autocast context and the cache directory. The engines import their runtimes lazily.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

APP_NAME = "amharic-search"
CACHE_ENV = "AMHARIC_SEARCH_CACHE"


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX): then bf16 is fast, else slow."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next(line for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def bf16_autocast(enabled: bool):
    """A context computing in bfloat16 on the CPU when ``enabled`` (else it changes nothing)."""
    if not enabled:
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16)


def cache_dir() -> Path:
    """$AMHARIC_SEARCH_CACHE, else the user's cache directory (~/.cache/amharic-search on Linux)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME))


def length_kwargs(cross_encoder, max_length: int | None) -> dict:
    """The keywords that make a CrossEncoder's ``preprocess`` or ``predict`` read at most ``max_length``
    tokens of each pair in this call only (None or the model's own length: nothing to add), so that
    calls with different lengths can share one model from several threads."""
    own = getattr(cross_encoder, "max_seq_length", None)
    if not max_length or max_length == own:
        return {}
    return {"processing_kwargs": {"text": {"max_length": int(max_length), "truncation": True}}}


def pair_features(cross_encoder, pairs, max_length: int | None = None) -> dict:
    """The tokenized (query, passage) ``pairs`` as the cross-encoder reads them at ``max_length``."""
    return cross_encoder.preprocess(pairs, **length_kwargs(cross_encoder, max_length))
