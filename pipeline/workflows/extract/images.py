"""Feature extraction trained on images: the frozen conv base under the head, end to end.

The slow way of ``extract``, taken with ``augment`` and ``views`` 0 (augmentation on the
fly, the exact path: augmentation layers in front of the frozen base, every epoch sees new
versions of the images, so the head overfits less; ``views`` > 0 trains on cached views
instead, ``views.py``), with ``augment`` on a base that cannot be split, or with
``multi_size`` (each training batch at one of several sizes, SPP-net style, for a head that
pools any feature map to a fixed length). Without ``augment`` no augmentation is applied,
whatever else is set. Mixup and CutMix (``training.mixup``, ``training.cutmix``) train
only here: the other ways train on cached features or views.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from pipeline.cache.features import predict_batch
from pipeline.data.dataset import load_split
from pipeline.models.bases import ConvBase
from pipeline.models.heads import initialise_head, needs_initialisation
from pipeline.models.transfer import base_output_name, build_transfer_model
from pipeline.models.weights import WeightsChoice
from pipeline.runs.folder import Run
from pipeline.training.config import splits_present
from pipeline.training.loop import augmentation_layer, augmented_and_mixed
from pipeline.training.skeleton import Callbacks, train_new_run
from pipeline.workflows.extract.common import SAMPLE_IMAGES, extract_record
from pipeline.workflows.extract.config import ExtractConfig


def train_on_images(
    config: ExtractConfig, base: ConvBase, weights: WeightsChoice, manifest: dict, policy: str,
    verbose, callbacks: Callbacks = (),
) -> Run:
    """Train conv base (frozen) + head on the images of ``config.data_dir``; returns the run."""
    options = config.training
    splits = splits_present(manifest, config.data_dir)
    train_size = max(config.multi_size, default=config.image_size)
    train = load_split(config.data_dir, "train", train_size, options.batch_size, shuffle=True,
                       seed=options.seed)
    evaluation = {split: load_split(config.data_dir, split, config.image_size,
                                    options.batch_size, cache=False)
                  for split in splits if split != "train"}

    augmentation = None
    if config.augment:
        augmentation = augmentation_layer(config.augmentation, train.dataset, options.seed)
    # Mixup and CutMix mix the augmented images and their labels in the tf.data pipeline:
    # the augmentation runs there too, before them, not in the model.
    model = build_transfer_model(
        base, weights, None if config.multi_size else config.image_size, train.num_classes,
        config.head, config.head_options, None if options.mixes else augmentation,
    )
    if needs_initialisation(config.head):
        initialise_head(model.layers, _image_feature_sample(model, train.dataset),
                        seed=options.seed)
    train_batches = train.dataset
    if options.mixes:
        train_batches = augmented_and_mixed(train_batches, augmentation, options,
                                            train.num_classes, verbose)
    if config.multi_size:
        train_batches = train_batches.map(_random_size_resizer(config.multi_size, options.seed))
    record = extract_record(
        config, base, weights, list(train.class_names), policy,
        counts={"train": train.count, **{s: d.count for s, d in evaluation.items()}},
        base_output=base_output_name(model),
    )
    return train_new_run(
        model, record, train_batches, {split: data.dataset for split, data in evaluation.items()},
        models_dir=config.models_dir, run_name=config.run_name, options=options,
        schedule=config.lr_schedule, steps_per_epoch=math.ceil(train.count / options.batch_size),
        callbacks=callbacks, verbose=verbose,
    )


def _image_feature_sample(model: keras.Model, dataset) -> np.ndarray:
    """The conv base's features of the first training batches (no augmentation at predict)."""
    base_model = keras.Model(model.input, model.get_layer(base_output_name(model)).output)
    samples, seen = [], 0
    for images, _ in dataset:
        samples.append(np.asarray(predict_batch(base_model, images), dtype="float32"))
        seen += len(samples[-1])
        if seen >= SAMPLE_IMAGES // 4:  # the base runs on images here: keep it short
            break
    return np.concatenate(samples)


def _random_size_resizer(sizes: tuple[int, ...], seed: int):
    """A tf.data map giving each training batch one size drawn from ``sizes`` (SPP-net)."""
    choices = tf.constant(sorted(set(sizes)), dtype=tf.int32)
    generator = tf.random.Generator.from_seed(seed)

    def resize(images, labels):
        index = generator.uniform((), 0, len(choices), dtype=tf.int32)
        size = choices[index]
        return tf.image.resize(images, tf.stack([size, size])), labels

    return resize
