"""What an ensemble run depends on (``EnsembleConfig``), every default defined here once.

Light on purpose (no TensorFlow): the command line reads these defaults for its options.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.data.defaults import DEFAULT_MODELS_DIR

EVALUATION_BATCH = 32  # images per batch while the ensemble is validated: memory only


@dataclass
class EnsembleConfig:
    """Runs to average into one model, and where the new run goes.

    ``members`` are run folders trained on the same classes (any kind, base or image size:
    ``extract``, ``finetune``, ``train``); ``which`` of each run's models to take (best or
    final). The ensemble is validated on the first member's dataset.
    """

    members: tuple[Path, ...] = ()
    models_dir: Path = DEFAULT_MODELS_DIR
    run_name: str | None = None
    which: str = "best"
    batch_size: int = EVALUATION_BATCH
