"""tf.data input from a prepared dataset."""

import numpy as np
import pytest

from pipeline.data.dataset import load_split, naming_undecodable_images
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


@pytest.fixture
def small_dataset(tmp_path):
    """A dataset of its own (these tests change its files): 4/2/2 JPEGs per class."""
    from pipeline.data.synth import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path / "data", sizes=(4, 2, 2), image_size=32, seed=3)


def test_a_photo_replaced_or_deleted_after_prepare_is_named_before_any_training(small_dataset):
    photos = sorted((small_dataset / "train" / "dog").iterdir())
    photos[0].write_bytes(photos[0].read_bytes()[:-10] + b"0123456789")  # same size, new bytes
    with pytest.raises(PipelineError, match=f"train/dog/{photos[0].name} \\(content changed\\)"):
        load_split(small_dataset, "validation", 32, 4)  # any split: the dataset is one thing
    photos[1].unlink()
    with pytest.raises(PipelineError, match=f"train/dog/{photos[1].name} \\(missing\\)"):
        load_split(small_dataset, "train", 32, 4)


def test_only_the_files_the_manifest_lists_are_used(small_dataset, write_image):
    write_image(small_dataset / "train" / "cat" / "added-later.jpg")
    split = load_split(small_dataset, "train", 32, 4)
    assert split.count == 8 and all("added-later" not in p.name for p in split.file_paths)


def corrupt_after_prepare(dataset, split="train", label="cat", index=1):
    """A listed photo TensorFlow cannot decode, recorded as is (as if prepared like that)."""
    import json

    from pipeline.data.manifest import MANIFEST_NAME, file_entry

    path = sorted((dataset / split / label).iterdir())[index]
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    manifest = json.loads((dataset / MANIFEST_NAME).read_text())
    entries = manifest["splits"][split][label]
    for i, entry in enumerate(entries):
        if entry["name"] == path.name:
            entries[i] = file_entry(path, made=entry["made"], source=entry["source"])
    (dataset / MANIFEST_NAME).write_text(json.dumps(manifest))
    return path


def test_an_undecodable_photo_in_a_cached_split_is_named_while_loading(small_dataset):
    bad = corrupt_after_prepare(small_dataset)
    with pytest.raises(PipelineError) as caught:
        load_split(small_dataset, "train", 32, 4)
    message = str(caught.value)
    assert message.startswith(f"{bad}: cannot read or decode image") and "\n" not in message
    assert "data prepare" in message


def test_an_undecodable_photo_streamed_mid_epoch_names_its_file(small_dataset):
    bad = corrupt_after_prepare(small_dataset)
    split = load_split(small_dataset, "train", 32, 3, shuffle=True, cache=False)
    with (pytest.raises(PipelineError, match=f"^{bad}: cannot read or decode image"),
          naming_undecodable_images()):
        for _ in split.dataset:
            pass


def test_an_undecodable_last_photo_is_named_too(small_dataset):
    bad = corrupt_after_prepare(small_dataset, label="dog", index=-1)  # the stream's last
    split = load_split(small_dataset, "train", 32, 3, cache=False)
    with (pytest.raises(PipelineError, match=f"^{bad}: cannot read or decode image"),
          naming_undecodable_images()):
        for _ in split.dataset:
            pass


def test_streamed_images_come_in_the_listed_order_with_their_labels(small_dataset):
    split = load_split(small_dataset, "validation", 32, 3, cache=False)
    labels = np.concatenate([np.asarray(y).reshape(-1) for _, y in split.dataset])
    expected = [0.0 if path.parent.name == "cat" else 1.0 for path in split.file_paths]
    assert labels.tolist() == expected and len(labels) == split.count


def test_a_cached_split_is_decoded_once_while_loading(small_dataset):
    split = load_split(small_dataset, "validation", 32, 4, shuffle=True)
    assert split.cached and split.count == 4
    for path in split.file_paths:
        path.unlink()  # decoded already: epochs read the memory cache, not the files
    for _ in range(2):
        images, labels = next(iter(split.dataset))
        assert images.shape == (4, 32, 32, 3) and labels.shape == (4, 1)
