"""The data check finds planted duplicates, leaks and mislabelled photos, and nothing else.

The dataset is generated: 40 small noise JPEGs in train/validation/test (20 per class) with
features made so that each class is a cluster (same-class cosine about 0.5, other class
about 0). Into it we plant two exact copies, two near copies and two wrong labels.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from pipeline.data import check
from pipeline.data.check import SplitData, check_data, write_contact_sheets
from pipeline.errors import PipelineError

DIM = 256
CENTRE = 16.0  # per class: same-class cosine ~0.5 +- 0.05, far from the 0.95 threshold


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


@pytest.fixture
def planted(tmp_path, write_image):
    """Train/validation/test ``SplitData`` with the findings the tests below expect."""
    rng = np.random.default_rng(0)
    sizes = {"train": 24, "validation": 8, "test": 8}
    splits = {}
    for name, size in sizes.items():
        labels = np.arange(size) % 2
        features = rng.normal(size=(size, DIM))
        features[np.arange(size), labels] += CENTRE  # class 0 along axis 0, class 1 along 1
        paths = [write_image(tmp_path / name / f"{name}-{i}.jpg", size=(12, 10))
                 for i in range(size)]
        splits[name] = [paths, labels, features]
    train, validation, test = splits["train"], splits["validation"], splits["test"]

    # exact: train 1 is train 0's file (within); test 2 is train 2's file (ACROSS, a leak)
    shutil.copyfile(train[0][0], train[0][1])
    train[1][1], train[2][1] = train[1][0], train[2][0]
    shutil.copyfile(train[0][2], test[0][2])
    test[1][2], test[2][2] = train[1][2], train[2][2]
    # near: validation 1 is validation 3 rescaled plus a little noise (within);
    # test 5 is train 7 plus a little noise (ACROSS); validation 4 is train 4 at cosine 0.9
    validation[2][1] = 3.0 * validation[2][3] + rng.normal(scale=0.2, size=DIM)
    validation[1][1] = validation[1][3]
    test[2][5] = train[2][7] + rng.normal(scale=0.2, size=DIM)
    test[1][5] = train[1][7]
    u = _unit(train[2][4])
    w = _unit(rng.normal(size=DIM) - (rng.normal(size=DIM) @ u) * u)
    w = _unit(w - (w @ u) * u)
    validation[2][4] = 0.9 * u + np.sqrt(1 - 0.81) * w
    validation[1][4] = train[1][4]
    # wrong labels: train 10 (class 0 features) says 1; validation 6 (class 0) says 1
    train[1][10] = 1
    validation[1][6] = 1
    return [SplitData(name, *splits[name]) for name in sizes]


def _key(photo):
    return (photo.split, photo.index)


def test_exact_duplicates_by_bytes_within_and_across_splits(planted):
    result = check_data(planted)
    found = {(_key(p.first), _key(p.second), p.where) for p in result.exact_duplicates}
    assert found == {
        (("train", 0), ("train", 1), "within split (train)"),
        (("train", 2), ("test", 2), "ACROSS splits (train/test)"),
    }
    assert all(pair.similarity == 1.0 for pair in result.exact_duplicates)


def test_near_duplicates_by_features_leave_out_exact_ones(planted):
    result = check_data(planted)
    found = [(_key(p.first), _key(p.second), p.across_splits) for p in result.near_duplicates]
    assert sorted(found) == [
        (("train", 7), ("test", 5), True),
        (("validation", 1), ("validation", 3), False),
    ]
    assert all(0.95 < pair.similarity <= 1.0 for pair in result.near_duplicates)
    similarities = [pair.similarity for pair in result.near_duplicates]
    assert similarities == sorted(similarities, reverse=True)
    # the cosine-0.9 pair is found only once the threshold is below it
    looser = check_data(planted, threshold=0.89)
    assert (("train", 4), ("validation", 4)) in {
        (_key(p.first), _key(p.second)) for p in looser.near_duplicates
    }


def test_leaks_are_the_pairs_across_splits(planted):
    leaks = check_data(planted).leaks
    assert {(_key(p.first), _key(p.second)) for p in leaks} == {
        (("train", 2), ("test", 2)), (("train", 7), ("test", 5)),
    }
    assert all(pair.where.startswith("ACROSS splits") for pair in leaks)


def test_label_suspects_are_the_planted_wrong_labels(planted):
    suspects = check_data(planted).label_suspects
    assert [_key(s.photo) for s in suspects] == [("train", 10), ("validation", 6)]
    for suspect in suspects:
        assert suspect.photo.label == 1 and suspect.neighbour_label == 0
        # all ten neighbours have class 0 features; one may be the other planted wrong label
        assert suspect.score >= 0.9
    assert [_key(s.photo) for s in check_data(planted, top=1).label_suspects] == [("train", 10)]


def test_blocks_do_not_change_the_answer(planted, monkeypatch):
    whole = check_data(planted, threshold=0.3, max_pairs=10_000, min_score=0.0, top=1000)
    monkeypatch.setattr(check, "BLOCK_ROWS", 7)
    blocked = check_data(planted, threshold=0.3, max_pairs=10_000, min_score=0.0, top=1000)
    assert len(whole.near_duplicates) > 50  # same-class pairs at ~0.5 are over 0.3

    def pairs(result):  # float32 sums differ in the last bits between block shapes
        return {(_key(p.first), _key(p.second)): p.similarity for p in result.near_duplicates}

    assert pairs(blocked).keys() == pairs(whole).keys()
    np.testing.assert_allclose(list(pairs(blocked).values()),
                               [pairs(whole)[key] for key in pairs(blocked)], atol=1e-6)
    assert blocked.label_suspects == whole.label_suspects
    assert blocked.exact_duplicates == whole.exact_duplicates


def test_pairs_and_scores_match_a_numpy_reference(planted):
    features = np.concatenate([s.features for s in planted])
    labels = np.concatenate([s.labels for s in planted])
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    cosine = unit @ unit.T
    upper = np.triu(cosine, 1)
    upper[0, 1] = upper[2, 24 + 8 + 2] = 0.0  # the exact copies are not near duplicates
    best = np.sort(upper[upper > 0.3])[::-1][:5]
    result = check_data(planted, threshold=0.3, max_pairs=5, min_score=-1.0, top=len(labels), k=4)
    np.testing.assert_allclose([p.similarity for p in result.near_duplicates], best, atol=1e-5)
    np.fill_diagonal(cosine, -np.inf)
    nearest = np.argsort(-cosine, axis=1)[:, :4]
    expected = (labels[nearest] != labels[:, None]).mean(axis=1)
    offsets = np.cumsum([0] + [len(s.paths) for s in planted])
    names = [s.name for s in planted]
    got = {(s.photo.split, s.photo.index): s.score for s in result.label_suspects}
    for row, score in enumerate(expected):
        split = int(np.searchsorted(offsets, row, side="right") - 1)
        assert got[(names[split], row - offsets[split])] == pytest.approx(score)


def test_contact_sheets_one_png_per_finding(planted, tmp_path, open_png):
    result = check_data(planted)
    sheets = write_contact_sheets(result, tmp_path / "sheets", class_names=("cat", "dog"))
    assert set(sheets) == {"exact-duplicates", "near-duplicates", "label-suspects"}
    for path in sheets.values():
        open_png(path, min_size=(300, 200))
    empty = check.DataCheck((), (), ())
    open_png(write_contact_sheets(empty, tmp_path / "none")["label-suspects"], (100, 100))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: SplitData(s.name, s.paths[:-1], s.labels, s.features), "one row per path"),
        (lambda s: SplitData(s.name, s.paths, s.labels, s.features[:, :5]), "5 columns"),
        (lambda s: SplitData(s.name, s.paths, s.labels - 1, s.features), "class indices"),
        (lambda s: SplitData(s.name, s.paths, s.labels, s.features * np.nan), "NaN"),
    ],
)
def test_inconsistent_inputs_are_refused_naming_the_split(planted, change, message):
    with pytest.raises(PipelineError, match=f"split 'test'.*{message}"):
        check_data([*planted[:2], change(planted[2])])


def test_an_unreadable_file_is_named(planted):
    planted[0].paths[3].unlink()
    with pytest.raises(PipelineError, match=r"train-3\.jpg: cannot be read"):
        check_data(planted)


def test_data_check_command_finds_a_planted_leak(kaggle_source, tmp_path):
    """End to end on a prepared dataset: a photo copied from train into test is a leak."""
    import json

    from click.testing import CliRunner

    from cli import main

    source = kaggle_source(per_class=10)
    shutil.copyfile(source / "cat.0.jpg", source / "cat.9.jpg")  # ids 0-3 train, 6-9 test
    runner = CliRunner()
    prepared = runner.invoke(main, ["data", "prepare", "--source", str(source), "--data-root",
                                    str(tmp_path / "data"), "--name", "small", "--train", "4",
                                    "--validation", "2", "--test", "4"])
    assert prepared.exit_code == 0, prepared.output
    out = tmp_path / "check"
    result = runner.invoke(main, ["data", "check", str(tmp_path / "data" / "small"),
                                  "--base", "vgg16", "--weights", "none", "--image-size", "32",
                                  "--models-dir", str(tmp_path / "models"), "-o", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "across splits (leaks): 1" in result.output
    assert "ACROSS splits (train/test): train/cat.0.jpg = test/cat.9.jpg" in result.output
    found = json.loads((out / "check.json").read_text())
    [pair] = found["exact_duplicates"]
    assert pair["across_splits"] and pair["first"]["label"] == pair["second"]["label"] == "cat"
    for sheet in ("exact-duplicates", "near-duplicates", "label-suspects"):
        assert (out / f"{sheet}.png").is_file()
    assert any((tmp_path / "models" / "features").iterdir()), "the features were cached"
