"""Every name and output path a user gives is checked the same way, before any work."""

from __future__ import annotations

import pytest

from pipeline.errors import PipelineError
from pipeline.system.paths import check_name, child_path, output_file, output_folder


@pytest.mark.parametrize("name", ["cats_and_dogs_small", "run-2", "v1.5", "A", "_x"])
def test_plain_names_are_accepted(tmp_path, name):
    assert check_name(name) == name
    assert child_path(tmp_path, name) == tmp_path / name


@pytest.mark.parametrize(
    "name", ["../x", "..", ".", "", "/etc", "a/b", "a\\b", ".hidden", "-rf", "x" * 101, None, 3,
             "name with space", "ünïcode/../x"],
)
def test_names_that_could_leave_the_root_or_hide_are_refused(tmp_path, name):
    with pytest.raises(PipelineError, match=r"^`run_name` .*must be a plain folder name"):
        child_path(tmp_path, name, "run_name")
    assert list(tmp_path.iterdir()) == []


def test_an_output_file_inside_a_folder_gets_the_default_name(tmp_path):
    assert output_file(None, "kernels-cat.png", tmp_path / "models") == (
        tmp_path / "models" / "kernels-cat.png")
    assert output_file(tmp_path, "kernels-cat.png", "models") == tmp_path / "kernels-cat.png"
    assert output_file(tmp_path / "x.png", "kernels-cat.png", "models") == tmp_path / "x.png"


def test_an_output_below_a_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "plain").write_text("a file")
    with pytest.raises(PipelineError, match=r"^`out` .*plain is a file, not a folder"):
        output_file(tmp_path / "plain" / "x.png", "d.png", "models")
    with pytest.raises(PipelineError, match=r"^`out_dir` .*plain: is a file; give a folder"):
        output_folder(tmp_path / "plain", "out_dir")
    assert output_folder(tmp_path / "new" / "deeper", "out_dir") == tmp_path / "new" / "deeper"
