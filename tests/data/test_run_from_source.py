"""`run --source PATH`: from a folder of photos to a report, the dataset named after the folder,
for every layout a user brings: class folders (uneven ones too), a pre-split copy (train/, val/,
test/) and a flat folder labelled by a CSV.

Trained for real, briefly: a randomly initialised VGG16 at 32 px on generated photos (PNG among
them), one epoch.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import cli
from pipeline.data.manifest import read_manifest
from pipeline.workflows.chapter.plan import ChapterConfig, default_run_name, with_data_dir

FAST = ["--base", "vgg16", "--weights", "none", "--image-size", "32", "--batch-size", "8",
        "--no-augment", "--steps", "extract,evaluate", "--epochs", "1"]


def _photos(root, write_image, sizes):
    for label, count in sizes.items():
        for i in range(count):
            write_image(root / label / f"{label}{i}.{'png' if i % 2 else 'jpg'}",
                        fmt="PNG" if i % 2 else "JPEG")
    return root


def test_run_source_alone_prepares_trains_and_reports(tmp_path, write_image, monkeypatch):
    source = _photos(tmp_path / "photos" / "petals", write_image,
                     {"iris": 12, "rose": 8, "tulip": 5})
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(cli.main, ["run", "--source", str(source),
                                           "--split", "0.5,0.25,0.25", *FAST])

    assert result.exit_code == 0, result.output + repr(result.exception)
    out = result.stdout
    assert "prepared data/petals (class-folders layout): 3 classes, 25 photos" in out
    assert "dataset: data/petals: 3 classes, 25 photos (train 13, validation 6, test 6)" in out
    counts = read_manifest(tmp_path / "data" / "petals")["counts"]
    assert counts["train"] == {"iris": 6, "rose": 4, "tulip": 3}  # uneven, kept so
    assert any(p.suffix == ".png" for p in (tmp_path / "data" / "petals").rglob("*"))
    report = tmp_path / "models" / "chapter-auto-petals" / "report.html"
    assert report.is_file()
    assert (tmp_path / "models" / "chapter-auto-petals" / "extract" / "evaluation-test").is_dir()

    again = CliRunner().invoke(cli.main, ["run", "--source", str(source), *FAST])
    assert again.exit_code == 0, again.output
    assert "prepared" not in again.stdout  # the same dataset, found and reused
    assert "done before with the same inputs" in again.stdout


def test_the_dataset_folder_follows_the_source(tmp_path, write_image, kaggle_source):
    flowers = tmp_path / "oxford-flowers-17"
    for label in ("daisy", "iris"):
        write_image(flowers / label / "0.jpg")
    config = with_data_dir(ChapterConfig(source=flowers))
    assert str(config.data_dir) == "data/oxford-flowers-17"
    assert default_run_name(ChapterConfig(source=flowers)) == "chapter-auto-oxford-flowers-17"
    assert str(with_data_dir(ChapterConfig(source=kaggle_source(2))).data_dir) == (
        "data/cats_and_dogs_small")
    assert str(with_data_dir(ChapterConfig()).data_dir) == "data/cats_and_dogs_small"
    given = tmp_path / "mine"
    assert with_data_dir(ChapterConfig(source=flowers, data_dir=given)).data_dir == given


# -- the three copies of a dataset, each from generated photos to a report ------------

SPECIES = {"bluebell": 8, "crocus": 8, "daisy": 8, "iris": 8}


def _uneven_copy(root, write_image):
    """Half the photos of two classes dropped: 8, 4, 8, 4."""
    _photos(root, write_image, SPECIES)
    for label in ("crocus", "iris"):
        for path in sorted((root / label).iterdir())[::2]:
            path.unlink()
    return {"bluebell": 8, "crocus": 4, "daisy": 8, "iris": 4}


def _pre_split_copy(root, write_image):
    """train/, val/, test/ of class folders, as Kaggle and Roboflow export them."""
    for split, count in (("train", 4), ("val", 2), ("test", 2)):
        _photos(root / split, write_image, dict.fromkeys(SPECIES, count))
    return dict.fromkeys(SPECIES, 8)


def _csv_copy(root, write_image):
    """A flat folder of photos, their species in a labels.csv beside them."""
    rows = []
    for label, count in SPECIES.items():
        for i in range(count):
            name = f"{len(rows):04d}.{'png' if i % 2 else 'jpg'}"
            write_image(root / name, fmt="PNG" if i % 2 else "JPEG")
            rows.append(f"{name},{label}")
    (root / "labels.csv").write_text("image,species\n" + "\n".join(rows) + "\n")
    return dict(SPECIES)


@pytest.mark.parametrize(
    ("make", "layout", "expected"),
    [
        (_uneven_copy, "class-folders",
         {"train": {"bluebell": 6, "crocus": 2, "daisy": 6, "iris": 2},
          "validation": dict.fromkeys(SPECIES, 1), "test": dict.fromkeys(SPECIES, 1)}),
        (_pre_split_copy, "pre-split",
         {"train": dict.fromkeys(SPECIES, 4), "validation": dict.fromkeys(SPECIES, 2),
          "test": dict.fromkeys(SPECIES, 2)}),
        (_csv_copy, "csv-labels",
         {"train": dict.fromkeys(SPECIES, 6), "validation": dict.fromkeys(SPECIES, 1),
          "test": dict.fromkeys(SPECIES, 1)}),
    ],
    ids=["uneven", "pre-split", "csv-labelled"],
)
def test_run_source_alone_takes_every_layout_to_a_report(tmp_path, write_image, monkeypatch,
                                                         make, layout, expected):
    """`run --source` with no split given: the default split (fractions, or the source's own
    folders), every photo used, a report naming the dataset and its photos per class."""
    source = tmp_path / "copies" / "flowers"
    total = sum(make(source, write_image).values())
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(cli.main, ["run", "--source", str(source), *FAST])

    assert result.exit_code == 0, result.output + repr(result.exception)
    assert f"prepared data/flowers ({layout} layout): 4 classes, {total} photos" in result.stdout
    assert read_manifest(tmp_path / "data" / "flowers")["counts"] == expected
    assert sum(sum(split.values()) for split in expected.values()) == total  # none left out
    parent = tmp_path / "models" / "chapter-auto-flowers"
    assert (parent / "extract" / "evaluation-test").is_dir()
    page = (parent / "report.html").read_text()
    sizes = ", ".join(f"{split} {sum(expected[split].values())}" for split in expected)
    assert f"flowers (data/flowers): 4 classes; {sizes} photos, prepared from a {layout} " \
           "source" in page
    for label in SPECIES:
        counts = [expected[split][label] for split in expected]
        cells = "".join(f"<td>{n}</td>" for n in (*counts, sum(counts)))
        assert f"<tr><th>{label}</th>{cells}</tr>" in page, label


def test_run_takes_the_labels_csv_from_anywhere(tmp_path, write_image, monkeypatch):
    """As competitions ship them: train.csv beside the flat folder, not in it. `run` names
    it with --labels (and its columns with --labels-columns), as `data prepare` does."""
    source = tmp_path / "competition" / "images"
    _csv_copy(source, write_image)
    labels = source.parent / "train.csv"
    (source / "labels.csv").rename(labels)
    (source / "notes.csv").write_text("nothing,to see\n")  # the folder's CSV is not the one
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(cli.main, [
        "run", "--source", str(source), "--labels", str(labels), "--labels-columns",
        "image,species", *FAST])

    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "prepared data/images (csv-labels layout): 4 classes, 32 photos" in result.stdout
    assert f"labels: {labels}" in result.stdout
    assert read_manifest(tmp_path / "data" / "images")["classes"] == sorted(SPECIES)


def test_a_bad_source_stops_run_in_one_line_before_anything_is_written(tmp_path, write_image,
                                                                        monkeypatch):
    """The mistakes `data prepare` names (tests/data/test_prepare_bad_sources.py) stop `run`
    the same way: one line, exit status 2, no dataset and no run folder."""
    one_class = _photos(tmp_path / "roses", write_image, {"rose": 6})
    twice = tmp_path / "flat"
    _csv_copy(twice, write_image)
    with (twice / "labels.csv").open("a") as labels:
        labels.write("0000.jpg,iris\n")  # bluebell's first photo, labelled again
    monkeypatch.chdir(tmp_path)

    for source, message in ((one_class, "found 1 class (rose), need at least 2"),
                            (twice, "labels '0000.jpg' 'iris', but row 2 labels it 'bluebell'")):
        result = CliRunner().invoke(cli.main, ["run", "--source", str(source), *FAST])
        assert result.exit_code == 2, result.output
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
        assert not (tmp_path / "data").exists() and not (tmp_path / "models").exists()
