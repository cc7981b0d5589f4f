"""The training options every workflow shares, with each workflow's defaults.

Light on purpose (no TensorFlow import): the command line reads the defaults and choice
lists from here while it builds its options, so ``--help`` stays instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.devices.strategies import STRATEGIES
from pipeline.errors import PipelineError
from pipeline.models.optimizers import OPTIMIZERS, check_ema_momentum

PRECISIONS = ("float32", "mixed")  # mixed: float16 on a GPU, bfloat16 on a CPU


@dataclass(frozen=True)
class TrainingOptions:
    """How a model is trained: optimizer, learning rate, batches, epochs, seed, precision,
    on which devices (``strategy``), whether XLA compiles it (``jit``) and whether the
    weights are averaged (``ema_momentum``)."""

    optimizer: str = "rmsprop"
    learning_rate: float | None = 1e-4  # None: the workflow's choice (extract: by head)
    batch_size: int = 32
    epochs: int = 30
    early_stopping: int | None = None  # patience in epochs; None trains every epoch
    seed: int = 1337
    precision: str = "float32"  # float32 | mixed (the output layer and loss stay float32)
    strategy: str = "auto"  # auto | one | mirrored | multiworker; batch_size is global
    jit: bool | None = None  # XLA-compile training steps; None: Keras' own choice ("auto")
    # Weight averaging: momentum of the exponential moving average of the weights, per step
    # (None: none). Validation, the best checkpoint and the saved models use the average.
    ema_momentum: float | None = None

    def validate(self) -> None:
        """Refuse what no workflow can train with, before any expensive step."""
        if self.optimizer not in OPTIMIZERS:
            raise PipelineError(f"`optimizer` {self.optimizer!r}: choose one of "
                                f"{', '.join(OPTIMIZERS)}")
        if self.learning_rate is not None and not 0 < self.learning_rate < math.inf:
            raise PipelineError(f"`learning_rate` must be a positive finite number, got "
                                f"{self.learning_rate}")
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
        if self.strategy not in STRATEGIES:
            raise PipelineError(f"`strategy` {self.strategy!r}: choose one of "
                                f"{', '.join(STRATEGIES)}")
        check_ema_momentum(self.ema_momentum)
        if self.jit is not None and not isinstance(self.jit, bool):
            raise PipelineError(f"`jit` must be true, false or unset (Keras' own choice), "
                                f"got {self.jit!r}")

    @property
    def jit_compile(self) -> bool | str:
        """``jit`` as Keras' ``compile(jit_compile=...)`` takes it."""
        return "auto" if self.jit is None else self.jit


# Each workflow's defaults: the book's choices for each step.
SCRATCH_TRAINING = TrainingOptions()
EXTRACT_TRAINING = TrainingOptions(learning_rate=None, batch_size=20)  # by head
FINETUNE_TRAINING = TrainingOptions(learning_rate=1e-5, batch_size=20)
