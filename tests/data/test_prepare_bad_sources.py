"""Bad sources through the command line: one line on stderr, exit status 2, nothing written.
And photos in formats other than JPEG: kept or converted losslessly, read by the training input."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import cli
from pipeline.data.prepare import PrepareConfig, prepare_dataset


def _classes(root, write_image, sizes):
    for label, count in sizes.items():
        for i in range(count):
            write_image(root / label / f"{i}.jpg")


def _one_class(root, write_image):
    _classes(root, write_image, {"rose": 5})


def _empty_class(root, write_image):
    _classes(root, write_image, {"rose": 5, "tulip": 5})
    (root / "daisy").mkdir()


def _class_of_text_only(root, write_image):
    _classes(root, write_image, {"rose": 5, "tulip": 5})
    (root / "daisy").mkdir()
    (root / "daisy" / "notes.txt").write_text("to do")


def _too_small(root, write_image):
    _classes(root, write_image, {"rose": 5, "tulip": 2})


def _case_twins(root, write_image):
    _classes(root, write_image, {"rose": 5, "Rose": 5, "tulip": 5})


def _nested(root, write_image):
    _classes(root, write_image, {"rose": 5, "tulip": 5})
    _classes(root / "rose", write_image, {"red": 3})


def _nested_only(root, write_image):
    _classes(root / "red", write_image, {"rose": 3})
    _classes(root / "white", write_image, {"lily": 3})
    (root / "white" / "x.txt").write_text("a file beside the class folder")
    (root / "readme.txt").write_text("two levels of folders")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_one_class, "found 1 class (rose), need at least 2"),
        (_empty_class, "class folder 'daisy' is empty; add its photos or remove the folder"),
        (_class_of_text_only, "class folder 'daisy' holds no photos (only other files)"),
        (_too_small, "class 'tulip' has 2 usable photos, too few to split"),
        (_case_twins, "class folders 'Rose' and 'rose' differ only in case"),
        (_nested, "class folder 'rose' holds a folder of photos (rose/red/)"),
        (_nested_only, "class folder 'red' holds a folder of photos (red/rose/)"),
    ],
)
def test_a_bad_source_is_one_line_and_nothing_is_written(tmp_path, write_image, make, message):
    source = tmp_path / "photos"
    make(source, write_image)
    data_root = tmp_path / "data"
    data_root.mkdir()

    result = CliRunner().invoke(cli.main, ["data", "prepare", "--source", str(source),
                                           "--data-root", str(data_root)])

    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert result.stderr.startswith("error: --source ")
    assert list(data_root.iterdir()) == []  # not even a hidden build folder


def _rgb(seed: int, size=(40, 48)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)


def test_png_and_webp_are_never_made_lossy_jpegs_and_training_reads_them(tmp_path):
    source = tmp_path / "photos"
    for index, label in enumerate(("bird", "fish")):
        folder = source / label
        folder.mkdir(parents=True)
        for k in range(3):
            Image.fromarray(_rgb(10 * index + k)).save(folder / f"plain{k}.png")
        Image.fromarray(_rgb(5 + index)).save(folder / "lossless.webp", lossless=True)
        Image.fromarray(_rgb(7 + index)).save(folder / "lossy.webp", quality=60)
        rgba = np.dstack([_rgb(8 + index), np.full((40, 48), 255, np.uint8)])
        Image.fromarray(rgba).save(folder / "alpha.png")
        deep = (np.linspace(0, 65535, 40 * 48).reshape(40, 48)).astype(np.uint16)
        Image.fromarray(deep).save(folder / "deep.png")
        Image.fromarray(_rgb(9 + index)).convert("CMYK").save(folder / "print.jpg")

    result = prepare_dataset(PrepareConfig(source=source, data_root=tmp_path / "data",
                                           split="0.5,0.25,0.25"), progress=False)

    files = {p.name: p for p in result.dataset_dir.rglob("*") if p.is_file()}
    assert not [name for name in files if name.endswith(".jpg")]  # no JPEG made of any of them
    for name in ("plain0.png", "plain1.png", "plain2.png"):
        assert files[name].read_bytes() in {
            (source / label / name).read_bytes() for label in ("bird", "fish")}
    for label_index, label in enumerate(("bird", "fish")):
        made = next(result.dataset_dir.glob(f"*/{label}/lossless.png"))
        assert np.array_equal(np.asarray(Image.open(made)), _rgb(5 + label_index))
        lossy = next(result.dataset_dir.glob(f"*/{label}/lossy.png"))
        with Image.open(source / label / "lossy.webp") as original:  # no loss added to it
            assert np.array_equal(np.asarray(Image.open(lossy)),
                                  np.asarray(original.convert("RGB")))
    assert result.converted == 2 * 5 and "converted (lossless PNG" in result.summary()

    from pipeline.data.dataset import load_split

    for split in ("train", "validation", "test"):
        data = load_split(result.dataset_dir, split, image_size=32, batch_size=4)
        images = np.concatenate([batch[0].numpy() for batch in data.dataset])
        assert images.shape[1:] == (32, 32, 3) and len(images) == len(data.file_paths)
        assert images.max() > 100  # real pixels, decoded from PNG


def test_synth_makes_more_than_two_classes(tmp_path):
    from pipeline.data.manifest import read_manifest

    result = CliRunner().invoke(cli.main, ["data", "synth", "--classes", "5", "--sizes", "2",
                                           "1", "1", "--image-size", "32", "--data-root",
                                           str(tmp_path), "--name", "five"])
    assert result.exit_code == 0, result.output
    assert "5 classes (circles, stripes, rectangles, triangles, crosses)" in result.stdout
    manifest = read_manifest(tmp_path / "five")
    assert manifest["classes"] == ["circles", "stripes", "rectangles", "triangles", "crosses"]
    assert manifest["counts"]["test"] == dict.fromkeys(manifest["classes"], 1)
    for count in ("1", "9"):
        bad = CliRunner().invoke(cli.main, ["data", "synth", "--classes", count,
                                            "--data-root", str(tmp_path), "--name", "bad"])
        assert bad.exit_code == 2 and bad.stderr.startswith(f"error: --classes {count}: give 2")
    assert not (tmp_path / "bad").exists()
