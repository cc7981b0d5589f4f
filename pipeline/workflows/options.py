"""The training options every workflow shares, with each workflow's defaults.

Light on purpose (no TensorFlow import): the command line reads the defaults and choice
lists from here while it builds its options, so ``--help`` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import PipelineError
from pipeline.models.optimizers import OPTIMIZERS

PRECISIONS = ("float32", "mixed")  # mixed: float16 on a GPU, bfloat16 on a CPU


@dataclass(frozen=True)
class TrainingOptions:
    """How a model is trained: optimizer, learning rate, batches, epochs, seed, precision."""

    optimizer: str = "rmsprop"
    learning_rate: float = 1e-4
    batch_size: int = 32
    epochs: int = 30
    early_stopping: int | None = None  # patience in epochs; None trains every epoch
    seed: int = 1337
    precision: str = "float32"  # float32 | mixed (the output layer and loss stay float32)

    def validate(self) -> None:
        """Refuse what no workflow can train with, before any expensive step."""
        if self.optimizer not in OPTIMIZERS:
            raise PipelineError(f"`optimizer` {self.optimizer!r}: choose one of "
                                f"{', '.join(OPTIMIZERS)}")
        if not self.learning_rate > 0:
            raise PipelineError(f"`learning_rate` must be positive, got {self.learning_rate}")
        if self.epochs < 1:
            raise PipelineError(f"`epochs` must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise PipelineError(f"`batch_size` must be at least 1, got {self.batch_size}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise PipelineError(f"`early_stopping` must be at least 1 epoch, "
                                f"got {self.early_stopping}")
        if self.precision not in PRECISIONS:
            raise PipelineError(f"`precision` {self.precision!r}: choose one of "
                                f"{', '.join(PRECISIONS)}")


# Each workflow's defaults: the book's choices for each step.
SCRATCH_TRAINING = TrainingOptions()
EXTRACT_TRAINING = TrainingOptions(learning_rate=2e-5, batch_size=20)
FINETUNE_TRAINING = TrainingOptions(learning_rate=1e-5, batch_size=20)
