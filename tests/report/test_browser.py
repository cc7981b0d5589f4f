"""A real browser opens the HTML report offline: every picture shows, nothing is fetched.

Headless Chromium renders a copy of the report with a small checking script added at the
end (the report itself has no script). With every host name mapped to "not found", a
picture that needed the network could not load; the script also lists every resource the
page fetched (Resource Timing), which for a self-contained page is none.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

from pipeline.report.html import write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium)",
)

_CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const result = {
    images: images.length,
    loaded: images.filter((image) => image.complete && image.naturalWidth > 0).length,
    fetched: performance.getEntriesByType("resource").map((entry) => entry.name),
    runs: Array.from(document.querySelectorAll("#strategies tbody tr"),
                     (row) => row.cells[0].textContent),
    page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
    boxes: Array.from(document.querySelectorAll(".wide"),
                      (box) => [box.scrollWidth, box.clientWidth]),
  };
  const out = document.createElement("pre");
  out.id = "browser-check";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


def _open_in_browser(page: Path, tmp_path: Path) -> dict:
    """What the checking script saw when Chromium loaded ``page`` (after its load event)."""
    checked = page.with_name("checked-" + page.name)
    checked.write_text(page.read_text().replace("</body>", _CHECK + "</body>"))
    completed = subprocess.run(
        [
            CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=5000",
            "--window-size=1200,2000",
            "--dump-dom", checked.as_uri(),
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', completed.stdout, re.DOTALL)
    assert found, f"the page's check did not run; chromium said: {completed.stderr[-2000:]}"
    return json.loads(unescape(found.group(1)))


def test_the_report_renders_offline_with_every_picture(report, tmp_path):
    page = write_html(report, tmp_path / "report.html")
    seen = _open_in_browser(page, tmp_path)
    assert seen["runs"] == ["scratch-1", "augment-1", "extract-1", "finetune-1"]
    assert seen["images"] == 5 and seen["loaded"] == 5
    assert [url for url in seen["fetched"] if not url.startswith("data:")] == []


def test_the_check_notices_a_picture_from_the_network(report, tmp_path):
    """The harness itself can fail: a page with one web picture is caught."""
    page = write_html(report, tmp_path / "report.html")
    page.write_text(
        page.read_text().replace("</body>", '<img src="http://example.invalid/x.png"></body>')
    )
    seen = _open_in_browser(page, tmp_path)
    assert seen["images"] == 6 and seen["loaded"] == 5
    assert "http://example.invalid/x.png" in seen["fetched"]


def test_a_report_of_real_runs_shows_every_picture(trained_runs, tmp_path):
    from pipeline.report import write_report
    from pipeline.report.from_runs import report_from_folders

    report = report_from_folders(trained_runs, gradcam=2)
    files = write_report(report, tmp_path)
    seen = _open_in_browser(files.html, tmp_path)
    assert seen["runs"] == ["extract-a", "finetune-a"]
    photos = sum(len(run.wrong_photos) for run in report.runs)
    expected = 1 + photos + 2 * len(report.runs)  # curves, photos, two Grad-CAMs a run
    assert seen["images"] == expected and seen["loaded"] == expected
    assert [url for url in seen["fetched"] if not url.startswith("data:")] == []


def test_a_17_class_report_fits_the_page(flowers_report, tmp_path):
    """Counts only, upright column labels: a 17 x 17 confusion matrix (and every other
    table) fits a 1200 px window without scrolling sideways."""
    page = write_html(flowers_report, tmp_path / "report.html")
    seen = _open_in_browser(page, tmp_path)
    assert seen["runs"] == ["extract", "scratch"]
    width, visible = seen["page"]
    assert width <= visible, f"the page scrolls sideways: {width} > {visible} px"
    assert seen["boxes"] and all(inner <= shown for inner, shown in seen["boxes"]), seen["boxes"]


def test_the_strategies_of_a_run_without_a_preset_fit_the_page(flowers_report, tmp_path):
    """What `run --source` writes for a small dataset: extraction, then the whole base
    fine-tuned (a long model name, "6 (after extract)" epochs, millions of parameters), the
    same for a second base, and their ensemble (two bases' names in one cell)."""
    extract = flowers_report.runs[0]
    finetune = dataclasses.replace(
        extract, name="finetune", kind="finetune", epochs=6, wall_time_s=239.0,
        trainable_params=4_103_793, parent="extract",
        history={key: values[:6] for key, values in extract.history.items()})
    second = dataclasses.replace(extract, name="extract-2", model="efficientnet_lite0",
                                 image_size=224)
    second_tuned = dataclasses.replace(finetune, name="finetune-2", parent="extract-2",
                                       model="efficientnet_lite0", image_size=224)
    ensemble = dataclasses.replace(
        extract, name="ensemble", kind="ensemble", epochs=0, wall_time_s=23.2,
        trainable_params=7_454_562, history={},
        model="efficientnet_lite1+efficientnet_lite0")
    runs = (extract, finetune, second, second_tuned, ensemble)
    report = dataclasses.replace(flowers_report, runs=runs)
    seen = _open_in_browser(write_html(report, tmp_path / "report.html"), tmp_path)
    assert seen["runs"] == [run.name for run in runs]
    width, visible = seen["page"]
    assert width <= visible, f"the page scrolls sideways: {width} > {visible} px"
