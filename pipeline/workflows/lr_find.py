"""Learning-rate finder: train briefly at exponentially rising rates, plot loss against rate.

Why: the right fine-tuning rate depends on the base, the head and the batch size, and a
wrong one either barely moves the pretrained weights or wrecks them in a few steps. The
finder (Smith's range test, as fastai's ``lr_find``) sweeps the rate from ``min_lr`` to
``max_lr`` over ``steps`` mini-batches of the training split, one step per rate, and
records the loss; the suggestion is the rate where the smoothed loss falls fastest,
before the minimum (a rate that still learns quickly, well below where the loss blows up).

It sweeps what ``finetune`` trains: the extract run's model with its top unfrozen, on the
frozen part's cached output of the (un-augmented) training images, so a sweep costs
``steps`` cached training steps. The run's model files are not changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from matplotlib.figure import Figure

from pipeline.cache.dataset_features import feature_cache, image_features
from pipeline.cache.features import ArrayBatches
from pipeline.data.defaults import DEFAULT_MODELS_DIR
from pipeline.errors import PipelineError
from pipeline.models.classifier import compile_classifier
from pipeline.models.transfer import replace_augmentation, unfreeze
from pipeline.system import atomic
from pipeline.training.options import TrainingOptions
from pipeline.training.precision import precision_policy
from pipeline.workflows.finetune.cached_top import cached_top_split, frozen_part_source
from pipeline.workflows.finetune.config import FinetuneConfig
from pipeline.workflows.finetune.source import load_image_model, open_extract_run

PLOT_FILE = "lr_find.png"
JSON_FILE = "lr_find.json"
SMOOTHING = 0.9  # exponential moving average of the loss, debiased (fastai's choice 0.98 is
# for hundreds of steps; a short sweep needs less memory)
DIVERGED = 4.0  # stop when the smoothed loss exceeds this many times its minimum
_FINETUNING = TrainingOptions().with_defaults(FinetuneConfig.TRAINING_DEFAULTS)  # as finetune


@dataclass
class LrFindConfig:
    """A learning-rate sweep of fine-tuning an extract run (``source_run``)."""

    source_run: Path = FinetuneConfig.source_run
    unfreeze: str = FinetuneConfig.unfreeze
    min_lr: float = 1e-7
    max_lr: float = 1e-1
    steps: int = 100
    optimizer: str = _FINETUNING.optimizer
    batch_size: int = _FINETUNING.batch_size
    seed: int = _FINETUNING.seed
    precision: str = _FINETUNING.precision
    models_dir: Path = DEFAULT_MODELS_DIR
    features_dir: Path | None = None  # None: <models_dir>/features
    output: Path | None = None  # folder for the PNG and JSON; None: the extract run's folder

    def validate(self) -> None:
        if not 0 < self.min_lr < self.max_lr:
            raise PipelineError(f"`min_lr` {self.min_lr} and `max_lr` {self.max_lr}: give "
                                "0 < min_lr < max_lr")
        if self.steps < 5:
            raise PipelineError(f"`steps` {self.steps}: give at least 5 steps to sweep")
        if self.batch_size < 1:
            raise PipelineError(f"`batch_size` must be at least 1, got {self.batch_size}")


@dataclass(frozen=True)
class LrFindResult:
    """The sweep: rates tried, raw and smoothed losses, the suggested rate, the files written."""

    rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    plot: Path
    record: Path

    def summary(self) -> str:
        return (f"swept {len(self.rates)} rates from {self.rates[0]:.2e} to {self.rates[-1]:.2e}; "
                f"suggested learning rate {self.suggestion:.2e} (steepest fall of the smoothed "
                f"loss)\nwrote {self.plot}\nwrote {self.record}")


def run_lr_find(config: LrFindConfig, verbose: int = 1) -> LrFindResult:
    """Sweep the fine-tuning rate of ``config.source_run``; plot and suggest a rate."""
    config.validate()
    source = open_extract_run(config.source_run)
    from pipeline.data.manifest import require_prepared

    manifest = require_prepared(source.data_dir)
    with precision_policy(config.precision) as policy:
        keras.utils.set_random_seed(config.seed)
        model = replace_augmentation(load_image_model(source), None, policy)
        unfreeze(model, source.base, config.unfreeze)
        parts = cached_top_split(model)
        if parts is None or model.input.shape[1] is None:
            raise PipelineError(f"{source.run.path}: its model cannot be split for a cached top; "
                                "the finder needs one (choose another `unfreeze`)")
        bottom, top = parts
        cache = feature_cache(config.features_dir, config.models_dir)
        train = image_features(cache, bottom, frozen_part_source(source, manifest, policy,
                                                                 verbose), "train")
        batches = ArrayBatches(train.features, train.labels, config.batch_size, shuffle=True,
                               seed=config.seed)
        compile_classifier(top, source.num_classes, config.optimizer, config.min_lr)
        rates, losses = sweep(top, batches, config.min_lr, config.max_lr, config.steps)
    smoothed = smooth_losses(losses)
    suggestion = suggest_rate(rates, smoothed)
    out = Path(config.output) if config.output is not None else source.run.path
    plot = out / PLOT_FILE
    plot_sweep(rates, losses, smoothed, suggestion, plot, f"{source.run.path.name}: "
               f"fine-tuning {source.base.name} ({config.unfreeze}), {config.optimizer}")
    record = out / JSON_FILE
    atomic.write_json(record, {"source_run": str(source.run.path), "unfreeze": config.unfreeze,
                               "optimizer": config.optimizer, "batch_size": config.batch_size,
                               "rates": rates, "losses": losses, "smoothed": smoothed,
                               "suggestion": suggestion})
    return LrFindResult(rates, losses, smoothed, suggestion, plot, record)


def sweep(model: keras.Model, batches: ArrayBatches, min_lr: float, max_lr: float,
          steps: int) -> tuple[list[float], list[float]]:
    """One training step per rate of ``geomspace(min_lr, max_lr, steps)``; each step's loss.

    Stops early once the smoothed loss exceeds ``DIVERGED`` times its minimum.
    """
    rates, losses = [], []
    for step, rate in enumerate(np.geomspace(min_lr, max_lr, steps)):
        model.optimizer.learning_rate.assign(float(rate))
        x, y = batches[step % len(batches)]
        if step and step % len(batches) == 0:
            batches.on_epoch_end()
        model.reset_metrics()  # the loss of this batch alone, not a running mean
        loss = float(model.train_on_batch(x, y, return_dict=True)["loss"])
        rates.append(float(rate))
        losses.append(loss)
        smoothed = smooth_losses(losses)
        if not np.isfinite(loss) or (len(losses) > 5 and smoothed[-1] > DIVERGED * min(smoothed)):
            break
    return rates, losses


def smooth_losses(losses: list[float]) -> list[float]:
    """Debiased exponential moving average of ``losses`` (non-finite values kept as the last)."""
    average, out = 0.0, []
    for index, loss in enumerate(losses):
        value = loss if np.isfinite(loss) else (out[-1] if out else 0.0)
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        out.append(average / (1 - SMOOTHING ** (index + 1)))
    return out


def suggest_rate(rates: list[float], smoothed: list[float]) -> float:
    """The rate of the steepest fall of the smoothed loss against log rate, before its minimum.

    The first tenth of the sweep is skipped: there the average still rests on few steps.
    """
    skip = len(rates) // 10
    lowest = skip + int(np.argmin(smoothed[skip:]))
    if lowest - skip < 2:
        return rates[lowest]
    slopes = np.gradient(np.asarray(smoothed[skip: lowest + 1]), np.log(rates[skip: lowest + 1]))
    return float(rates[skip + int(np.argmin(slopes))])


def plot_sweep(rates: list[float], losses: list[float], smoothed: list[float],
               suggestion: float, path: Path, title: str) -> None:
    """Loss against learning rate (log axis), the suggestion marked; written atomically."""
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    axes.plot(rates, losses, color="0.75", linewidth=1, label="loss per step")
    axes.plot(rates, smoothed, color="C0", linewidth=2, label="smoothed")
    axes.axvline(suggestion, color="C3", linestyle="--", label=f"suggested {suggestion:.1e}")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss")
    finite = [value for value in smoothed if np.isfinite(value)]
    if finite:
        axes.set_ylim(min(finite) * 0.9, min(max(finite), 3 * min(finite)) * 1.1)
    axes.set_title(title, fontsize=9)
    axes.legend()
    figure.tight_layout()
    with atomic.atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
