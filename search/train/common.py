"""What the training modules share: the kinds of model, the files of a run, the errors."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Kind = Literal["encoder", "reranker"]
KINDS = ("encoder", "reranker")
Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS = ("auto", "fp32", "bf16")
CHECKPOINTS = "checkpoints"
RUN_FILE = "run.json"
DATA_FILE = "data.jsonl.gz"
TRAINING_FILE = "training.json"


class PairsError(ValueError):
    """A pairs file that cannot be used; the message names the file and the line."""


class TrainError(ValueError):
    """Training cannot start or continue as asked; the message says why and what to do."""


class TrainingInterrupted(RuntimeError):
    """Training stopped before the end (Ctrl-C, ``stop_after``); the checkpoint lets the same run resume."""

    def __init__(self, out: Path, step: int, total: int) -> None:
        self.out, self.step, self.total = out, step, total
        super().__init__(f"training stopped at step {step} of {total}; the checkpoint is in {out / CHECKPOINTS}: "
                         "run the same command again to resume")
