"""The Markdown report: the same tables, pictures as PNG files beside it."""

from __future__ import annotations

import dataclasses
import re

from PIL import Image

from pipeline.report import Report
from pipeline.report.markdown import cell, write_markdown


def test_tables_and_pictures_beside_the_file(report, tmp_path):
    out = write_markdown(report, tmp_path / "report.md")
    text = out.read_text()
    assert "| scratch-1 | scratch | — | 71.2% | 70.0% | — | — | 30 | 1 min 35 s | 3,453,121 | " \
        "≈ 71% validation |" in text
    assert "| finetune-1 | finetune | vgg16, 150 px | 97.2% | 96.8% | 96.8% | 0.968 |" in text
    assert "## Data: cats\\_and\\_dogs\\_small" in text
    assert "| cat | 1000 | 500 | 500 | 2000 |" in text
    assert "| cat | 96.0% |" in text  # recall per class
    assert "| fast feature extraction (VGG16) | extract | 90% | validation |" in text
    assert "Deep Learning with Python" in text and "Book's reference" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links[0] == "report_files/curves.png" and len(links) == 5
    for link in links:
        assert link.endswith(".png")
        with Image.open(tmp_path / link) as image:
            assert image.format == "PNG" and max(image.size) <= 1100
    assert not re.search(r"https?://", text)


def test_markdown_cells_cannot_break_the_table_or_inject_html(report, tmp_path):
    assert cell("a|b <i>x</i> *y*\nz") == "a\\|b &lt;i&gt;x&lt;/i&gt; \\*y\\* z"
    run = dataclasses.replace(report.runs[0], name="evil | <img src=x>")
    text = write_markdown(Report((run,)), tmp_path / "r.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| evil"))
    assert row.count("|") - row.count("\\|") == 11  # ten columns, not broken by the name
    assert "<img" not in text


def test_another_dataset_gets_no_book_numbers_and_a_compact_matrix(flowers_report, tmp_path):
    text = write_markdown(flowers_report, tmp_path / "flowers.md").read_text()
    assert "Deep Learning with Python" not in text and "Book's reference" not in text
    assert "## Data: oxford-flowers-17" in text
    matrix = [line for line in text.split("## Confusion matrix: extract")[1].splitlines()
              if line.startswith("| ")]
    assert len(matrix) == 18 and "%" not in "".join(matrix[1:]), "counts only at 17 classes"


def test_an_ensemble_shows_no_epochs_and_no_grad_cam_it_does_not_have(tmp_path):
    from pipeline.report.model import RunSummary, WrongPhoto
    from pipeline.report.table import strategy_row, wrong_photos_caption

    photo = tmp_path / "wrong.jpg"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(photo)
    wrong = (WrongPhoto(photo, "cat", "dog", 0.8),)
    ensemble = RunSummary("ensemble", "ensemble", 0.97, 0.98, 0, 12.0, 7_454_562, {},
                          model="efficientnet_lite1+efficientnet_lite0", image_size=240,
                          wrong_photos=wrong)
    assert strategy_row(ensemble)[7] == "—"
    assert "Grad-CAM" not in wrong_photos_caption(ensemble)
    explained = dataclasses.replace(ensemble, kind="finetune", wrong_photos=(
        dataclasses.replace(wrong[0], gradcam=photo),))
    assert strategy_row(explained)[7] == "0" and "Grad-CAM" in wrong_photos_caption(explained)
    written = write_markdown(Report((ensemble,), title="one ensemble"), tmp_path / "out")
    text = written.read_text()
    assert "| ensemble | ensemble |" in text and "Grad-CAM shows" not in text
