"""The HTML report: one file that needs nothing else, with the runs beside the book's numbers."""

from __future__ import annotations

import base64
import dataclasses
import io
import re
from html.parser import HTMLParser

from PIL import Image

from pipeline.report import Report, RunSummary, write_report
from pipeline.report.html import render_html, write_html


class _Page(HTMLParser):
    """Collects table rows (as cell texts), image sources and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id") or attrs.get("class") or "table"
            self.rows.setdefault(self._table, [])
        elif tag == "tr" and self._table:
            self.rows[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        if tag == "img":
            self.images.append(attrs["src"])
        self.links += [value for key, value in attrs.items() if key in ("href", "src", "srcset")]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.rows[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def test_the_table_has_a_row_per_run_beside_the_books_number(report):
    page = _parse(render_html(report))
    header, *rows = page.rows["strategies"]
    assert header[0] == "Strategy" and header[-1] == "Book's reference"
    assert [row[0] for row in rows] == ["scratch-1", "augment-1", "extract-1", "finetune-1"]
    assert rows[0] == ["scratch-1", "scratch", "—", "71.2%", "70.0%", "—", "—", "30",
                       "1 min 35 s", "3,453,121", "≈ 71% validation"]
    assert rows[3][2:7] == ["vgg16, 150 px", "97.2%", "96.8%", "96.8%", "0.968"]
    assert rows[3][7] == "20 (after extract-1)" and rows[3][-1] == "≈ 96.8% test"


def test_the_books_numbers_are_labelled_as_the_books(report):
    text = render_html(report)
    assert "Deep Learning with Python" in text and "2,000 training photos" in text
    book = _parse(text).rows["book"]
    assert book[0] == ["Book's strategy", "Kind", "Book's accuracy", "Split"]
    assert [row[2] for row in book[1:]] == ["71%", "82%", "90%", "96%", "96.8%"]


def test_everything_is_embedded_and_nothing_is_fetched(report):
    text = render_html(report)
    page = _parse(text)
    assert page.links and all(link.startswith("data:image/") for link in page.links)
    assert not re.search(r"https?://", text), "the report must not name any web address"
    assert "<script" not in text and "<link" not in text and "@import" not in text
    # curves + 3 wrong photos + 1 Grad-CAM, each a picture PIL can open
    assert len(page.images) == 5
    for source in page.images:
        header, data = source.split(",", 1)
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.load()
            assert image.format == ("PNG" if "png" in header else "JPEG")


def test_photos_are_shrunk_to_keep_the_file_small(report):
    text = render_html(report)
    page = _parse(text)
    photos = [source for source in page.images if source.startswith("data:image/jpeg")]
    for source in photos:
        with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as im:
            assert max(im.size) <= 224
    assert len(text) < 400_000


def test_user_strings_are_escaped(report, tmp_path):
    hostile = "<script>alert('x')</script>"
    run = dataclasses.replace(report.runs[0], name=hostile)
    text = render_html(Report((run, *report.runs[1:]), title='A & B "report"'))
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "<title>A &amp; B &quot;report&quot;</title>" in text
    assert "dog &lt;b&gt;&amp;amp; &#x27;x&#x27;.jpg" in text  # a photo's file name


def test_confusion_matrix_counts_with_row_shares(report):
    rows = _parse(render_html(report)).rows["confusion"]
    assert rows == [["true \\ predicted", "cat", "dog"], ["cat", "480 (96%)", "20 (4%)"],
                    ["dog", "12 (2%)", "488 (98%)"]]


def test_an_unreadable_photo_is_said_not_hidden(report, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    run = report.runs[-1]
    photo = dataclasses.replace(run.wrong_photos[1], path=broken)
    runs = (*report.runs[:-1], dataclasses.replace(run, wrong_photos=(photo,)))
    text = render_html(Report(runs))
    assert "(photo could not be read)" in text and "broken.jpg" in text


def test_a_run_without_history_or_test_set_still_reports(tmp_path):
    report = Report((RunSummary("bare", "netvlad", None, None, 0, 0.0, 0),))
    out = write_html(report, tmp_path / "out" / "report.html")
    rows = _parse(out.read_text()).rows["strategies"]
    assert rows[1] == ["bare", "netvlad", "—", "—", "—", "—", "—", "0", "0.0 s", "0"]
    assert "Book's reference" not in rows[0], "no data known to be cats vs dogs: no book"


def test_write_report_writes_both_versions_atomically(report, tmp_path):
    files = write_report(report, tmp_path / "reports")
    assert files.html.read_text().startswith("<!DOCTYPE html>")
    assert files.markdown.is_file()
    leftovers = [p.name for p in files.html.parent.rglob(".*")]
    assert leftovers == [], "no temporary files left"


def test_the_data_is_named_with_its_sizes_per_split_and_class(report):
    text = render_html(report)
    assert "Data: cats_and_dogs_small" in text
    assert "2 classes; train 2,000, validation 1,000, test 1,000 photos" in text
    rows = _parse(text).rows["dataset"]
    assert rows[0] == ["Class", "train", "validation", "test", "total"]
    assert rows[1] == ["cat", "1000", "500", "500", "2000"]
    assert rows[-1] == ["all classes", "2000", "1000", "1000", "4000"]


def test_recall_per_class_beside_the_runs(report):
    rows = _parse(render_html(report)).rows["recall"]
    assert rows == [["Class", "finetune-1"], ["cat", "96.0%"], ["dog", "97.6%"]]


def test_another_dataset_gets_no_book_numbers(flowers_report):
    text = render_html(flowers_report)
    page = _parse(text)
    assert "book" not in page.rows and "Deep Learning with Python" not in text
    assert "Book's reference" not in page.rows["strategies"][0]
    assert "<h1>oxford-flowers-17: small-data strategies compared</h1>" in text
    assert page.rows["strategies"][1][2] == "efficientnet_lite1, 240 px"
    assert len(page.rows["dataset"]) == 17 + 2


def test_the_book_numbers_follow_the_classes_not_the_caller(report, flowers_report):
    assert report.shows_book and not flowers_report.shows_book
    assert not dataclasses.replace(report, book_references=False).shows_book
    two_other = dataclasses.replace(report.datasets[0], class_names=("ant", "bee"))
    assert not dataclasses.replace(report, datasets=(two_other,)).shows_book


def test_a_17_class_confusion_matrix_is_compact(flowers_report):
    text = render_html(flowers_report)
    rows = _parse(text).rows["confusion compact"]
    assert len(rows) == 18 and all(len(row) == 18 for row in rows)
    assert all(cell.isdigit() for row in rows[1:] for cell in row[1:]), "counts only"
    assert re.search(r'title="bluebell as bluebell: \d+%"', text), "the share on hover"
