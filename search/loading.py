"""Loading and validation: which models a search of an index can have, found and checked before
any is loaded, under the one missing-model policy (a stage whose model cannot be had is skipped with
one note; ``strict`` makes it an error)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..index.dense import embedding_dim
from ..index.manifest import IndexFormatError, corpus_source
from ..index.models import DEFAULT_RERANKER, ModelUnavailableError, Stage, load_encoder, model_fingerprint, resolve_model

from .rerank import Backend, Reranker


class EncoderMismatchError(IndexFormatError):
    """The query encoder is not the one the index was embedded with: its vectors would be noise."""


def check_encoder(built: dict, name: str, *, allow_other: bool = False, notes: list[str] | None = None) -> str | None:
    """Refuse an encoder whose fingerprint differs from the one recorded in the index (``built``:
    the manifest's ``dense`` entry). A model that cannot be had raises ModelUnavailableError; an
    index built before fingerprints were recorded is accepted (only its dimension is checked).
    Returns the encoder's fingerprint."""
    fingerprint = model_fingerprint(resolve_model(name))
    expected = built.get("fingerprint")
    if expected and fingerprint != expected:
        message = (f"the index was embedded with {built.get('model')!r} (fingerprint {expected[:19]}) but the encoder "
                   f"{name!r} has fingerprint {fingerprint[:19]}: its query vectors would not match the passages'. "
                   "Query with the index's encoder, or rebuild the index with this one")
        if not allow_other:
            raise EncoderMismatchError(message + " (--allow-other-encoder to use it anyway)")
        if notes is not None:
            notes.append(message.replace(". Query with", "; used anyway (--allow-other-encoder). Query with"))
    return fingerprint


def lexical_only_note(manifest: dict, directory: Path, dense_model: str | None = None) -> str:
    """The note for an index built without embeddings: how to add them (the same build, with an encoder)."""
    return (f"dense retrieval skipped: the index was built without embeddings (lexical only). To add them, "
            f"build it again with an encoder: `{rebuild_command(manifest, directory, dense_model)}` (only the "
            "embeddings are new work); --no-dense leaves dense retrieval out without this note")


def rebuild_command(manifest: dict, directory: Path, dense_model: str | None = None) -> str:
    """The command that adds embeddings to a lexical-only index, with paths that work where it runs
    (absolute: a server's working directory is not the one the index was built in); ``CORPUS``
    stands for a corpus that is no longer where it was built from, ``MODEL`` for an unknown encoder."""
    corpus = corpus_source(manifest) or "CORPUS"
    model = dense_model if dense_model not in ("index", None) else "MODEL"
    shards = f" --shards {len(manifest['shards'])}" if manifest.get("shards") else ""
    return (f"amharic-search index build {shlex.quote(str(corpus))} --out {shlex.quote(str(Path(directory).resolve()))} "
            f"--dense-model {shlex.quote(str(model))}{shards}")


@dataclass(frozen=True)
class LoadOptions:
    """Which models a searcher loads (:meth:`search.searcher.Searcher.load` takes these as keywords).

    ``dense_model="index"``: the encoder the index was built with; ``reranker=None`` or
    ``use_dense=False`` skip those stages; ``strict``: a missing model is an error, not a note;
    ``allow_other_encoder``: accept an encoder whose fingerprint differs from the index's.
    """

    dense_model: str | None = "index"
    reranker: str | None = DEFAULT_RERANKER
    max_length: int | None = None
    reranker_backend: Backend = "auto"
    use_dense: bool = True
    strict: bool = False
    allow_other_encoder: bool = False


@dataclass
class Models:
    """The models a searcher has, and the notes of the stages it skipped."""

    encoder: object | None = None
    reranker: Reranker | None = None
    notes: list[str] = field(default_factory=list)


def load_models(directory: Path, manifest: dict, options: LoadOptions) -> Models:
    """The query encoder and the reranker for the index at ``directory``, per ``options``."""
    dense_model, reranker, strict, use_dense = options.dense_model, options.reranker, options.strict, options.use_dense
    notes: list[str] = []

    def missing(exc: ModelUnavailableError, stage: Stage) -> None:
        if strict:
            exc.stage = stage
            raise exc
        notes.append(exc.note(stage))

    # every model is found (a path, the cache) and checked before any is loaded: mistakes are reported at once
    built = manifest.get("dense") or {}
    dense_name = None
    if use_dense and built.get("model"):
        dense_name = built["model"] if dense_model in ("index", None) else dense_model
        try:
            check_encoder(built, dense_name, allow_other=options.allow_other_encoder, notes=notes)
        except ModelUnavailableError as exc:
            missing(exc, "dense")
            dense_name = None
    elif use_dense:
        notes.append(lexical_only_note(manifest, directory, dense_model))
    if reranker:
        try:
            resolve_model(reranker)
        except ModelUnavailableError as exc:
            missing(exc, "rerank")
            reranker = None

    encoder = None
    if dense_name:
        try:
            encoder = load_encoder(dense_name)
            dim = embedding_dim(encoder)
            if dim != built["dim"]:
                raise EncoderMismatchError(
                    f"the index was embedded with {built['model']!r} ({built['dim']} dimensions) but "
                    f"{dense_name!r} makes {dim}-dimensional embeddings; query with the index's model or rebuild"
                )
        except ModelUnavailableError as exc:
            missing(exc, "dense")
            encoder = None
    rr = None
    if reranker:
        try:
            rr = Reranker.load(reranker, max_length=options.max_length, backend=options.reranker_backend)
        except ModelUnavailableError as exc:
            missing(exc, "rerank")
    return Models(encoder, rr, notes)
