"""The feature cache: keyed on everything features depend on, never trusting a damaged entry."""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np
import pytest

from pipeline.cache.features import (
    FEATURES_FILE,
    LABELS_FILE,
    METADATA_FILE,
    VERIFIED_FILE,
    ArrayBatches,
    FeatureCache,
    FeatureKey,
    fill_from_model,
    weights_fingerprint,
)
from pipeline.errors import PipelineError
from pipeline.system.npy_files import NpyRows

KEY = FeatureKey(base="vgg16", layer="block4_pool", weights="w" * 64, image_size=48,
                 preprocessing="caffe", dataset="d" * 64, split="train")


def write(cache: FeatureCache, key: FeatureKey = KEY, count: int = 5) -> np.ndarray:
    values = np.arange(count * 8, dtype="float32").reshape(count, 2, 2, 2)

    def fill(writer):
        writer.append(values, np.arange(count).reshape(count, 1) % 2)

    cache.write(key, count=count, feature_shape=(2, 2, 2), label_shape=(1,), label_dtype="float32",
                fill=fill)
    return values


def test_written_features_load_back_read_from_disk(tmp_path):
    cache = FeatureCache(tmp_path)
    values = write(cache)
    loaded = cache.load(KEY)
    assert loaded is not None and loaded.reused and loaded.count == 5
    assert isinstance(loaded.features, NpyRows)  # rows read when indexed, never mapped
    np.testing.assert_array_equal(np.load(cache.folder(KEY) / FEATURES_FILE), values)
    np.testing.assert_array_equal(loaded.features, values)
    np.testing.assert_array_equal(loaded.labels[:, 0], [0, 1, 0, 1, 0])
    assert not list(tmp_path.glob(".*")), "no temporary folder is left behind"


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(FeatureKey)])
def test_every_part_of_the_key_leads_to_another_entry(field):
    value = getattr(KEY, field)
    changed = value + 1 if isinstance(value, int) else value + "x"
    other = dataclasses.replace(KEY, **{field: changed})
    assert other.digest() != KEY.digest()
    assert other.folder_name() != KEY.folder_name()


def test_missing_entry_is_none_and_strict_says_so(tmp_path):
    assert FeatureCache(tmp_path).load(KEY) is None
    with pytest.raises(PipelineError, match="no cached features"):
        FeatureCache(tmp_path).load(KEY, strict=True)


def damage_truncate(folder):
    path = folder / FEATURES_FILE
    path.write_bytes(path.read_bytes()[:-20])


def damage_json(folder):
    (folder / METADATA_FILE).write_text("{not json", encoding="utf-8")


def damage_foreign(folder):
    meta = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    meta["key"]["image_size"] = 150  # another computation's metadata
    (folder / METADATA_FILE).write_text(json.dumps(meta), encoding="utf-8")


def damage_unfinished(folder):
    (folder / METADATA_FILE).unlink()


@pytest.mark.parametrize("damage", [damage_truncate, damage_json, damage_foreign,
                                    damage_unfinished])
def test_a_damaged_or_foreign_entry_is_not_used(tmp_path, capsys, damage):
    cache = FeatureCache(tmp_path)
    write(cache)
    damage(cache.folder(KEY))
    assert cache.load(KEY) is None
    assert "recomputing" in capsys.readouterr().err
    with pytest.raises(PipelineError, match="unusable"):
        cache.load(KEY, strict=True)


def test_get_recomputes_a_damaged_entry_and_reuses_a_sound_one(tmp_path):
    cache = FeatureCache(tmp_path)
    calls = []

    def fill(writer):
        calls.append(1)
        writer.append(np.ones((3, 1, 1, 2), "float32"), np.zeros((3, 1), "float32"))

    def get(**extra):
        return cache.get(KEY, count=3, feature_shape=(1, 1, 2), label_shape=(1,),
                         label_dtype="float32", fill=fill, **extra)

    assert not get().reused and len(calls) == 1
    assert get().reused and len(calls) == 1
    damage_truncate(cache.folder(KEY))
    assert not get().reused and len(calls) == 2
    assert not get(recompute=True).reused and len(calls) == 3


def test_a_failed_computation_publishes_no_entry(tmp_path):
    cache = FeatureCache(tmp_path)

    def fill(writer):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.write(KEY, count=2, feature_shape=(1,), label_shape=(1,), label_dtype="float32",
                    fill=fill)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []
    assert cache.load(KEY) is None


def test_a_stop_says_how_many_rows_are_kept_and_the_next_run_goes_on_from_there(
        tmp_path, capsys):
    cache = FeatureCache(tmp_path)
    rows = np.arange(600, dtype="float32").reshape(600, 1)  # parts of 512 rows at this size
    seen: list[int] = []

    def stop_after_a_part(writer):
        seen.append(writer.start)
        writer.append(rows[writer.start:520], rows[writer.start:520])
        if writer.start == 0:
            raise KeyboardInterrupt  # 520 appended, one part of 512 safely on disk
        writer.append(rows[520:], rows[520:])

    def get():
        return cache.get(KEY, count=600, feature_shape=(1,), label_shape=(1,),
                         label_dtype="float32", fill=stop_after_a_part)

    with pytest.raises(KeyboardInterrupt):
        get()
    err = capsys.readouterr().err
    assert "Interrupted (Ctrl-C): features of 512 of 600 images kept in" in err
    assert "the same command continues from there" in err
    made = get()
    assert seen == [0, 512]
    np.testing.assert_array_equal(np.asarray(made.features), rows)


def test_fill_from_model_streams_batches_and_checks_the_count(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    x = np.random.default_rng(0).normal(size=(7, 3)).astype("float32")
    y = np.arange(7, dtype="float32").reshape(7, 1)
    batches = [(x[i:i + 3], y[i:i + 3]) for i in range(0, 7, 3)]
    cache = FeatureCache(tmp_path)

    def write_from(batches):
        return cache.write(KEY, count=7, feature_shape=(2,), label_shape=(1,),
                           label_dtype="float32", fill=fill_from_model(model, batches, verbose=0))

    made = write_from(batches)
    np.testing.assert_allclose(np.asarray(made.features), model.predict(x, verbose=0), rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(made.labels), y)
    for wrong in (batches[:2], batches + batches[:1]):
        with pytest.raises(PipelineError, match="expected"):
            write_from(wrong)
        assert not list(tmp_path.glob(".*")), "a fill that saw other data leaves no parts"


def test_weights_fingerprint_changes_with_any_weight():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    before = weights_fingerprint(model)
    assert weights_fingerprint(model) == before
    kernel = model.layers[-1].kernel
    kernel.assign(kernel.numpy() + np.eye(3, 2, dtype="float32") * 1e-6)
    assert weights_fingerprint(model) != before


def test_array_batches_cover_every_row_once_and_reshuffle_each_epoch():
    features = np.arange(10, dtype="float32").reshape(10, 1)
    batches = ArrayBatches(features, features.copy(), 4, shuffle=True, seed=0)
    assert len(batches) == 3

    def epoch():
        rows = [batches[i] for i in range(len(batches))]
        for x, y in rows:
            np.testing.assert_array_equal(x, y)  # labels stay with their features
        return np.concatenate([x for x, _ in rows])[:, 0]

    first = epoch()
    batches.on_epoch_end()
    second = epoch()
    assert sorted(first) == sorted(second) == list(range(10))
    assert list(first) != list(second)
    fixed = ArrayBatches(features, features, 4)
    np.testing.assert_array_equal(np.concatenate([fixed[i][0] for i in range(3)])[:, 0],
                                  np.arange(10))


def test_an_array_changed_in_place_fails_its_checksum_even_with_its_old_times(tmp_path, capsys):
    cache = FeatureCache(tmp_path)
    write(cache)
    assert cache.load(KEY) is not None
    path = cache.folder(KEY) / LABELS_FILE
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40  # same size, same shape: one label changed
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # even the time put back
    assert cache.load(KEY) is None
    assert f"{LABELS_FILE} does not match the checksum" in capsys.readouterr().err


def test_a_sound_entry_is_hashed_once_per_file_state(tmp_path):
    cache = FeatureCache(tmp_path)
    write(cache)
    stamp = cache.folder(KEY) / VERIFIED_FILE
    recorded = json.loads(stamp.read_text())
    features = cache.folder(KEY) / FEATURES_FILE
    assert recorded[FEATURES_FILE]["stat"][:2] == [features.stat().st_size,
                                                  features.stat().st_mtime_ns]
    stamp.unlink()  # e.g. a copied cache: verified again, and recorded again
    assert cache.load(KEY) is not None and json.loads(stamp.read_text()) == recorded
