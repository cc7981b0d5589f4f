"""predict: a row per file, even a decompression bomb; 16-bit PNGs seen as prepare does."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.evaluation.predict import predict_paths
from tests.odd_images import write_16bit_png, write_png_claiming


@pytest.mark.parametrize("side", [30_000, 10_000])
def test_a_bomb_is_a_row_with_its_reason_and_the_others_are_predicted(tiny_run, tmp_path, side):
    folder = tmp_path / "photos"
    _, grey = write_16bit_png(folder / "a_scan.png", size=(48, 48))
    Image.fromarray(grey.astype(np.uint8)).convert("RGB").save(tmp_path / "scan8.png")
    write_png_claiming(folder / "b_bomb.png", side, side)

    rows = predict_paths(tiny_run.path, [folder, tmp_path / "scan8.png"], batch_size=2)

    assert [row.path.name for row in rows] == ["a_scan.png", "b_bomb.png", "scan8.png"]
    scan_row, bomb_row, eight_bit_row = rows
    assert bomb_row.label is None and "too large to decode safely" in bomb_row.error
    assert str(folder) not in bomb_row.error  # the row names the file already
    assert scan_row.error is None and eight_bit_row.error is None
    # The 16-bit scan is predicted exactly like its correct 8-bit version, not like white.
    assert scan_row.label == eight_bit_row.label
    assert scan_row.probability == pytest.approx(eight_bit_row.probability, abs=1e-6)
