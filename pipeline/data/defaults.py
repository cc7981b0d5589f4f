"""The defaults every layer shares, defined once: the dataset and run folders, the seed.

Light on purpose (no TensorFlow): the workflow configs and the command line read them.
"""

from __future__ import annotations

from pathlib import Path

DATA_ROOT = Path("data")  # where ``data prepare`` writes datasets
DATASET_NAME = "cats_and_dogs_small"  # the book's dataset, prepared from Kaggle's photos
DEFAULT_DATA_DIR = DATA_ROOT / DATASET_NAME  # the prepared dataset every command trains on
DEFAULT_MODELS_DIR = Path("models")  # where every workflow makes its run folders
DEFAULT_SEED = 1337  # the seed of every random choice: splits, shuffles, augmentation, weights
