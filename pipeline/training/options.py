"""The training options every workflow shares, and the form of each workflow's own defaults.

``learning_rate`` and ``batch_size`` left at None mean "the workflow's default" (its
config's ``TRAINING_DEFAULTS``; extraction's rate: by head), filled in once, in one place
per workflow, before anything trains. So ``TrainingOptions(epochs=3)`` from Python trains
exactly as ``--epochs 3`` on the command line: nothing else changes behind the user's back.
The recorded config holds the values the run trained with.

Light on purpose (no TensorFlow import): the command line reads the defaults and choice
lists from here while it builds its options, so ``--help`` stays instant.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from pipeline.data.defaults import DEFAULT_SEED
from pipeline.devices.strategies import STRATEGIES
from pipeline.errors import PipelineError
from pipeline.models.layer_decay_options import NO_LAYER_DECAY, check_layer_decay
from pipeline.models.loss_options import NO_SMOOTHING, check_label_smoothing
from pipeline.models.optimizers import OPTIMIZERS, check_ema_momentum
from pipeline.training.mixing_options import NO_MIXING, check_mixing

PRECISIONS = ("float32", "mixed", "auto")  # mixed: float16 on a GPU, bfloat16 on a CPU
PRECISION_HELP = (
    "mixed: float16 compute on a GPU, bfloat16 on a CPU (output and loss stay float32); "
    "auto: mixed where it measured faster at no cost in validation accuracy: on a GPU, and "
    "for fine-tuning on a CPU with AVX512-BF16 or AMX-BF16 instructions; float32 elsewhere "
    "(docs/results.md).")
# How each class's examples weigh in the training loss. none: as they come (the larger class
# counts more); balanced: class c's examples weigh n / (C * n_c), Keras' and scikit-learn's
# "balanced", so every class adds the same total to the loss.
CLASS_WEIGHTS = ("none", "balanced")
# Balanced by default, measured on a skewed copy of the Oxford 17 flowers (9 species of 80
# photos, 8 of 15-20; bench/class_weight_report.py, docs/results.md): validation balanced
# accuracy tied (95.0% against 94.6%, within the 2-point noise), and the minority species'
# held-out photos were recognised 5 points better (81.6% against 76.6%, both seeds). Even
# classes weigh 1 each, so for them balanced trains exactly as none.
DEFAULT_CLASS_WEIGHT = "balanced"
CLASS_WEIGHT_REASON = (
    "Default balanced: on a skewed copy of the Oxford 17 flowers (8 species cut to 15-20 of "
    "80 photos) it recognised the small species' held-out photos 5 points better (81.6% vs "
    "76.6%, two seeds) at a tied validation balanced accuracy (95.0% vs 94.6%); with even "
    "classes it trains exactly as none (docs/results.md).")

LABEL_SMOOTHING_HELP = (
    "Label smoothing: the share of each training target spread evenly over every class "
    "(the true class trains toward 1 - a + a/classes, the others toward a/classes), e.g. "
    "0.1; 0: none.")


@dataclass(frozen=True)
class TrainingDefaults:
    """A workflow's values for the ``TrainingOptions`` fields left at None."""

    batch_size: int
    learning_rate: float | None = None  # None: decided later by the workflow (extract: by head)


@dataclass(frozen=True)
class TrainingOptions:
    """How a model is trained: optimizer, learning rate, batches, epochs, seed, precision,
    on which devices (``strategy``), whether XLA compiles it (``jit``), whether the
    weights are averaged (``ema_momentum``), how classes weigh in the loss (``class_weight``:
    none, or balanced from the training split's counts per class) and how the targets are
    softened (``label_smoothing``; ``mixup`` and ``cutmix``, which mix images too).

    ``learning_rate`` and ``batch_size`` None: the workflow's defaults (``ScratchConfig``:
    1e-4 and 32, the book's; ``ExtractConfig``: by head, 1e-3 for gap, 2e-5 for the book's
    flatten, and 20; ``FinetuneConfig``: 1e-5 and 20), resolved before training and recorded.
    """

    optimizer: str = "rmsprop"
    learning_rate: float | None = None  # None: the workflow's (see above)
    batch_size: int | None = None  # None: the workflow's (see above); global across replicas
    epochs: int = 30
    early_stopping: int | None = None  # patience in epochs; None trains every epoch
    seed: int = DEFAULT_SEED
    precision: str = "float32"  # float32 | mixed (the output layer and loss stay float32)
    strategy: str = "auto"  # auto | one | mirrored | multiworker; batch_size is global
    jit: bool | None = None  # XLA-compile training steps; None: Keras' own choice ("auto")
    # Weight averaging: momentum of the exponential moving average of the weights, per step
    # (None: none). Validation, the best checkpoint and the saved models use the average.
    ema_momentum: float | None = None
    class_weight: str = DEFAULT_CLASS_WEIGHT  # none | balanced (see CLASS_WEIGHTS)
    # Share of each training target spread over every class (pipeline.models.losses); 0: none.
    label_smoothing: float = NO_SMOOTHING
    # Mixup and CutMix: alpha of the Beta distribution of each image's share of the mix
    # (pipeline.training.mixing); 0: off. Only where the training batches whole images.
    mixup: float = NO_MIXING
    cutmix: float = NO_MIXING
    # Layer-wise learning-rate decay per stage of the base (pipeline.models.layer_decay); 1: off.
    layer_decay: float = NO_LAYER_DECAY

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
        if self.batch_size is not None and self.batch_size < 1:
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
        if self.class_weight not in CLASS_WEIGHTS:
            raise PipelineError(f"`class_weight` {self.class_weight!r}: choose one of "
                                f"{', '.join(CLASS_WEIGHTS)}")
        check_label_smoothing(self.label_smoothing)
        check_mixing("mixup", self.mixup)
        check_mixing("cutmix", self.cutmix)
        check_layer_decay(self.layer_decay)
        if self.jit is not None and not isinstance(self.jit, bool):
            raise PipelineError(f"`jit` must be true, false or unset (Keras' own choice), "
                                f"got {self.jit!r}")

    @property
    def mixes(self) -> bool:
        """Whether training images and labels are mixed (mixup or CutMix on): the targets
        are then soft, and the loss must take them (``pipeline.models.losses``)."""
        return bool(self.mixup or self.cutmix)

    @property
    def jit_compile(self) -> bool | str:
        """``jit`` as Keras' ``compile(jit_compile=...)`` takes it."""
        return "auto" if self.jit is None else self.jit

    def with_defaults(self, defaults: TrainingDefaults) -> TrainingOptions:
        """These options with the workflow's ``defaults`` where a field was left at None."""
        return dataclasses.replace(
            self,
            learning_rate=defaults.learning_rate if self.learning_rate is None
            else self.learning_rate,
            batch_size=defaults.batch_size if self.batch_size is None else self.batch_size,
        )
