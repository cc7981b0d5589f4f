"""tf.data input from a prepared dataset."""

import numpy as np
import pytest

from pipeline.data.dataset import load_split
from pipeline.errors import PipelineError


def test_split_yields_raw_resized_images_and_binary_labels(synthetic_dataset):
    split = load_split(synthetic_dataset, "validation", image_size=40, batch_size=5)
    assert split.count == 16 and split.class_names == ("cat", "dog") and split.cached
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in split.dataset], strict=True)
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert images.shape == (16, 40, 40, 3) and images.dtype == np.float32
    assert images.max() > 1.5  # 0..255, not rescaled: models rescale themselves
    assert labels.shape == (16, 1) and sorted(set(labels.ravel())) == [0.0, 1.0]


def test_training_order_changes_between_epochs_but_not_its_content(synthetic_dataset):
    split = load_split(synthetic_dataset, "train", 32, 64, shuffle=True, seed=1)
    first = next(iter(split.dataset))[0].numpy()
    second = next(iter(split.dataset))[0].numpy()
    assert not np.array_equal(first, second)
    np.testing.assert_allclose(np.sort(first.ravel()), np.sort(second.ravel()))


def test_missing_dataset_says_how_to_prepare_one(tmp_path):
    with pytest.raises(PipelineError, match="data prepare"):
        load_split(tmp_path / "nothing", "train", 32, 4)
    with pytest.raises(PipelineError, match="unknown split"):
        load_split(tmp_path, "holdout", 32, 4)
