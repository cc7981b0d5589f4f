"""Transfer learning by feature extraction: a pretrained conv base, frozen, under a new head.

The dispatcher: it resolves the config (``common.with_base_defaults``), checks it and takes
one of three ways, each in its own module below it:

- fast (the default, ``features``): the conv base runs once over every split, its features
  are cached and the head trains on them in seconds;
- ``augment`` with ``views`` V > 0 (``views``): the base's top block and the head train on
  V cached augmented views of the part below it;
- ``augment`` with ``views`` 0, or ``multi_size`` (``images``): the frozen base under the
  head, trained end to end on images, augmented on the fly (the exact path; slow).

Python users call ``run_extract(ExtractConfig(...))`` with the same options as
``python cli.py extract``.
"""

from __future__ import annotations

from pipeline.data.manifest import require_prepared
from pipeline.models.transfer import build_features_model
from pipeline.models.weights import resolve_weights
from pipeline.runs.folder import Run
from pipeline.training.config import seed_everything
from pipeline.training.context import training_context
from pipeline.training.skeleton import Callbacks
from pipeline.workflows.extract.common import (
    SAMPLE_IMAGES,
    check_config,
    extract_record,
    put_heads_on_base,
    with_base_defaults,
)
from pipeline.workflows.extract.config import DEFAULT_BASE, ExtractConfig
from pipeline.workflows.extract.features import train_on_features
from pipeline.workflows.extract.images import train_on_images
from pipeline.workflows.extract.views import split_for_views, train_on_views

# Re-exported: the names callers imported from here before the package was split.
__all__ = [
    "DEFAULT_BASE", "SAMPLE_IMAGES", "ExtractConfig", "extract_record", "put_heads_on_base",
    "run_extract", "with_base_defaults",
]


def run_extract(config: ExtractConfig, verbose: int | str = "auto",
                callbacks: Callbacks = ()) -> Run:
    """Train a new head on a frozen pretrained conv base; returns the run (its folder).

    Args:
        config: what to train; fields left at None take the base's own values
            (``with_base_defaults``), and the run's config.json records what was used.
        verbose: Keras' ``fit`` verbosity (0 silent, 1 progress bar, 2 a line per epoch,
            "auto"); 0 also keeps the workflow's own lines quiet.
        callbacks: your Keras callbacks, passed to ``fit`` after the run's own (history,
            checkpoints, stop on Ctrl-C).

    Giving the ``run_name`` of an interrupted run again continues it. For example::

        config = ExtractConfig(data_dir=Path("data/flowers"), base="efficientnet_lite1")
        run = run_extract(config)                      # models/extract-<date>-<time>/
        print(run.summary())                           # accuracy per split, where files are
    """
    config = with_base_defaults(config)
    base = check_config(config)
    manifest = require_prepared(config.data_dir)
    weights = resolve_weights(
        config.weights, base, config.image_size, preprocessing=config.preprocessing
    )
    if verbose:
        print(f"conv base: {base.name}, weights: {weights.detail}, "
              f"preprocessing: {weights.preprocessing}")
    with training_context(config.training) as policy:
        seed_everything(config.training.seed)  # after any download, before random weights
        if config.augment and config.views and not config.multi_size:
            features_model = build_features_model(base, weights, config.image_size)
            parts = split_for_views(features_model, base)
            if parts is not None:
                return train_on_views(config, base, weights, features_model, parts, manifest,
                                      policy, verbose, callbacks)
            if verbose:
                print(f"{base.name} cannot be split at {base.top_block}: augmenting through "
                      "the whole base instead of cached views")
        if config.augment or config.multi_size:
            return train_on_images(config, base, weights, manifest, policy, verbose, callbacks)
        return train_on_features(config, base, weights, manifest, policy, verbose, callbacks)
