"""Every image size option has a range, checked before any work: 0 once trained silently at the
default size and 100000 ended in an out-of-memory traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli import main
from pipeline.data.sizes import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, check_image_size
from pipeline.errors import PipelineError


@pytest.mark.parametrize("size", ["0", "100000", "-3"])
@pytest.mark.parametrize("command", [["train"], ["extract", "--weights", "none"],
                                     ["run", "--steps", "extract"]])
def test_an_image_size_out_of_range_is_one_line_and_nothing_is_made(command, size,
                                                                     synthetic_dataset, tmp_path):
    models = tmp_path / "models"
    result = CliRunner().invoke(main, [*command, "--data", str(synthetic_dataset),
                                       "--models-dir", str(models), "--image-size", size])
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert f"--image-size {size}: give a whole number of pixels from {MIN_IMAGE_SIZE} to " \
           f"{MAX_IMAGE_SIZE}" in result.output
    assert not models.exists() or not any(models.iterdir())


def test_the_python_api_checks_the_same_range():
    check_image_size(None)
    check_image_size(MIN_IMAGE_SIZE)
    check_image_size(MAX_IMAGE_SIZE)
    for wrong in (MIN_IMAGE_SIZE - 1, MAX_IMAGE_SIZE + 1, 150.0, True):
        with pytest.raises(PipelineError, match="`image_size`"):
            check_image_size(wrong)
