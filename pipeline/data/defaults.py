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
# The book's split of Kaggle's cats and dogs: photos per class for train, validation, test.
CLASSIC_COUNTS = (1000, 500, 500)
# Every other source: these fractions of each class, every photo used. 80/10/10 rather than
# 70/15/15: a small dataset needs its training photos most, and at 80 photos a class (the
# flowers) 10% still leaves 8 to validate and 8 to test on per class, 136 each over 17 classes.
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
