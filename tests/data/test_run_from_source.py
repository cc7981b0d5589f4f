"""`run --source PATH`: from a folder of photos to a report, the dataset named after the folder.

Trained for real, briefly: a randomly initialised VGG16 at 32 px on generated photos of three
uneven classes (PNG among them), one epoch.
"""

from __future__ import annotations

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
