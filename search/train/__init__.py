"""Fine-tuning the dense encoder and the reranker (``amharic-search train``), and adapting a
collection's encoder from the page (:mod:`search.train.adapt`).

- :mod:`~search.train.pairs`: pairs files, pairs from titles, the held-out split, hard negatives;
- :mod:`~search.train.evaluation`: before/after figures on held-out pairs or judged queries;
- :mod:`~search.train.trainer`: the sentence-transformers trainers, checkpoints and resuming;
- :mod:`~search.train.card`: the model card;
- :mod:`~search.train.common`: the kinds, the run's files and the errors.

Example::

    from ...search.train import TrainConfig, read_pairs, train_model

    pairs = read_pairs("train_pairs.jsonl.gz")
    result = train_model("encoder", pairs, "models/my-encoder", TrainConfig(base="rasyosef/embedding-amharic-medium"))
"""

from __future__ import annotations

from .common import (CHECKPOINTS, DATA_FILE, KINDS, PRECISIONS, RUN_FILE, TRAINING_FILE, Kind, PairsError, Precision,
                     TrainError, TrainingInterrupted)
from .evaluation import EvalSet, eval_from_pairs, eval_from_qrels, evaluate_encoder, evaluate_reranker
from .pairs import (MiningReport, Pair, TitlesReport, index_documents, mine_negatives, near_duplicate, pairs_from_index,
                    pairs_from_titles, pairs_hash, pick_negatives, read_pairs, split_holdout, title_pairs)
from .trainer import (TrainConfig, TrainResult, choose_device, choose_precision, measure_step_seconds,
                      missing_trainer_packages, train_model)

__all__ = [
    "CHECKPOINTS", "DATA_FILE", "KINDS", "PRECISIONS", "RUN_FILE", "TRAINING_FILE", "Kind", "PairsError", "Precision",
    "TrainError", "TrainingInterrupted", "EvalSet", "eval_from_pairs", "eval_from_qrels", "evaluate_encoder", "evaluate_reranker",
    "MiningReport", "Pair", "TitlesReport", "index_documents", "mine_negatives", "near_duplicate", "pairs_from_index",
    "pairs_from_titles", "pairs_hash", "pick_negatives", "read_pairs", "split_holdout", "title_pairs", "TrainConfig", "TrainResult",
    "choose_device", "choose_precision", "measure_step_seconds", "missing_trainer_packages", "train_model",
]
