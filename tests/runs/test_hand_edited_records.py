"""Records edited by hand are checked field by field on reading: one line naming the file and
the field, never a traceback and never a wrong answer (classes "c, a, t" from ``"cat"``)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipeline.errors import PipelineError
from pipeline.runs.chapter_record import CHAPTER_RECORD, ChapterRecord, read_record, save_record
from pipeline.runs.folder import Run, RunRecord
from pipeline.system.typed_json import read_typed


def _run(tmp_path) -> Run:
    run = Run.create(tmp_path, "scratch", "edited")
    run.write_record(RunRecord(kind="scratch", data_dir="data/x", class_names=["cat", "dog"],
                               image_size=48))
    return run


def _edit(path, **changes):
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("image_size", "150", r"`image_size` should be a whole number, got '150'"),
    ("image_size", True, r"`image_size` should be a whole number, got True"),
    ("class_names", "cat", r"`class_names` should be a list, got 'cat'"),
    ("class_names", ["cat", 3], r"`class_names\[1\]` should be text, got 3"),
    ("epochs_run", 2.5, r"`epochs_run` should be a whole number"),
    ("weights", {"source": "none"}, r"the field `weights.detail` is missing"),
    ("jit", "yes", r"`jit` should be true or false, got 'yes'"),
    ("resumed", None, r"`resumed` should be a list, got None"),
])
def test_a_wrong_type_in_config_json_names_the_file_and_the_field(tmp_path, field, value,
                                                                   expected):
    run = _run(tmp_path)
    _edit(run.file("config.json"), **{field: value})
    with pytest.raises(PipelineError, match=expected) as error:
        run.record()
    assert str(run.file("config.json")) in str(error.value)


def test_history_and_metrics_values_as_text_are_named(tmp_path):
    run = _run(tmp_path)
    run.write_history({"loss": [0.5, 0.4], "val_loss": [0.6, 0.5]})
    run.write_metrics("test", {"accuracy": 0.9})
    _edit(run.file("history.json"), loss=[0.5, "0.4"])
    with pytest.raises(PipelineError, match=r"history.json: damaged history: `loss\[1\]`"):
        run.read_history()
    _edit(run.file("metrics.json"), test={"accuracy": "high"})
    with pytest.raises(PipelineError, match=r"metrics.json: damaged metrics: `test.accuracy`"):
        run.read_metrics()


def test_a_chapter_record_with_a_wrong_step_is_named(tmp_path):
    save_record(tmp_path, ChapterRecord(data_dir="data/x", plan={}, config={}))
    _edit(tmp_path / CHAPTER_RECORD, steps={"extract": {"status": 3}})
    with pytest.raises(PipelineError, match=r"`steps.extract.status` should be text, got 3"):
        read_record(tmp_path)


def test_a_chapter_folder_written_before_the_rename_still_reads(tmp_path):
    """Chapter folders of 0.1 hold ``run.json``: read as they are, rewritten as chapter.json."""
    record = ChapterRecord(data_dir="data/x", plan={"steps": ["extract"]}, config={})
    (tmp_path / "run.json").write_text(json.dumps(record.to_dict()))
    assert read_record(tmp_path).plan == {"steps": ["extract"]}
    save_record(tmp_path, read_record(tmp_path), status="completed")
    assert not (tmp_path / "run.json").exists()
    assert read_record(tmp_path).status == "completed"


def test_export_refuses_a_record_whose_classes_are_a_string(tiny_run, tmp_path):
    from cli import main

    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(tiny_run.path, copy)
    _edit(copy / "config.json", class_names="cat")
    result = CliRunner().invoke(main, ["export", str(copy), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "`class_names` should be a list" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_numbers_are_accepted_where_a_float_is_expected():
    assert read_typed(dict[str, list[float | None]], {"a": [1, 2.5, None]}, "x") == {
        "a": [1.0, 2.5, None]}
    with pytest.raises(PipelineError, match="`a` should be a list"):
        read_typed(dict[str, list[float]], {"a": 1}, "x")
