"""The run directory: creation, the typed run record, history files, metrics, clear errors."""

import csv
import dataclasses
import json

import pytest

from pipeline.errors import PipelineError
from pipeline.runs.folder import (
    RECORD_VERSION,
    CachedTopRecord,
    FeatureRecord,
    Run,
    RunRecord,
    WeightsRecord,
)


def record(**changes) -> RunRecord:
    return RunRecord(**{"kind": "scratch", "data_dir": "data/x", "class_names": ["cat", "dog"],
                        "image_size": 48, **changes})


def test_create_names_runs_by_kind_and_never_reuses_a_folder(tmp_path):
    first = Run.create(tmp_path, "scratch")
    second = Run.create(tmp_path, "scratch")
    assert first.name.startswith("scratch-") and first.path != second.path
    named = Run.create(tmp_path, "scratch", "mine")
    (named.path / "x").write_text("x")
    with pytest.raises(PipelineError, match="already exists"):
        Run.create(tmp_path, "scratch", "mine")
    with pytest.raises(PipelineError, match="`run_name`"):
        Run.create(tmp_path, "scratch", "../escape")


def test_the_record_reads_back_as_the_same_typed_object(tmp_path):
    run = Run.create(tmp_path, "finetune")
    features = {"train": FeatureRecord("f/train", "abc", "block4_pool", [32, 3, 3, 512], True,
                                       0.0)}
    written = run.write_record(record(
        kind="finetune", weights=WeightsRecord("none", "random"), features=features,
        cached_top=CachedTopRecord("block4_pool", features), trainable_layers=["a", "b"],
        config={"training": {"epochs": 2}}))
    assert "tensorflow" in written.versions
    assert run.record() == written
    assert isinstance(run.record().cached_top.features["train"], FeatureRecord)
    document = json.loads(run.file("config.json").read_text())
    assert document["version"] == RECORD_VERSION and document["status"] == "running"


def test_updates_and_finishing_keep_the_other_fields(tmp_path):
    run = Run.create(tmp_path, "scratch")
    run.write_record(record())
    run.finish("completed", epochs_run=3, best_epoch=2)
    done = run.record()
    assert (done.status, done.epochs_run, done.best_epoch) == ("completed", 3, 2)
    assert done.finished is not None and done.class_names == ["cat", "dog"]
    with pytest.raises(TypeError):
        run.update_record(free_form_extra=1)  # no untyped extras


def test_a_record_of_another_version_is_a_clear_error(tmp_path):
    run = Run.create(tmp_path, "scratch")
    run.write_record(record())
    document = json.loads(run.file("config.json").read_text())
    for version in (None, RECORD_VERSION + 1):
        stale = {k: v for k, v in document.items() if k != "version"}
        if version is not None:
            stale["version"] = version
        run.file("config.json").write_text(json.dumps(stale))
        with pytest.raises(PipelineError, match=f"version {version or 1}.*train the run again"):
            run.record()
    run.file("config.json").write_text(json.dumps({**document, "surprise": 1}))
    with pytest.raises(PipelineError, match="damaged run record"):
        run.record()


def test_history_is_written_as_json_and_csv(tmp_path):
    run = Run.create(tmp_path, "scratch")
    run.write_history({"loss": [0.9, 0.5], "val_loss": [1.0, 0.8]})
    assert run.read_history()["val_loss"] == [1.0, 0.8]
    rows = list(csv.reader(run.file("history.csv").open()))
    assert rows == [["epoch", "loss", "val_loss"], ["1", "0.9", "1.0"], ["2", "0.5", "0.8"]]


def test_metrics_of_several_splits_are_kept_together(tmp_path):
    run = Run.create(tmp_path, "scratch")
    run.write_metrics("validation", {"accuracy": 0.5})
    run.write_metrics("test", {"accuracy": 0.75})
    assert run.read_metrics() == {"validation": {"accuracy": 0.5}, "test": {"accuracy": 0.75}}


def test_summary_names_status_numbers_and_files(tmp_path):
    run = Run.create(tmp_path, "scratch")
    run.write_record(dataclasses.replace(record(), status="completed", epochs_run=2))
    run.write_metrics("validation", {"accuracy": 0.5})
    run.write_history({"loss": [1.0]})
    text = run.summary()
    assert "(completed, 2 epochs, float32)" in text and "validation: accuracy 0.5000" in text
    assert str(run.file("history.csv")) in text


def test_open_refuses_folders_that_are_not_runs(tmp_path):
    with pytest.raises(PipelineError, match="no such run folder"):
        Run.open(tmp_path / "missing")
    with pytest.raises(PipelineError, match="not a run folder"):
        Run.open(tmp_path)
    run = Run.create(tmp_path, "scratch")
    run.write_record(record())
    with pytest.raises(PipelineError, match="no saved model"):
        Run.open(run.path).model_path()


# -- names, unfinished runs, values that are not finite -------------------------------------------


@pytest.mark.parametrize("name", ["../up", "/abs", ".hidden", "-dash", "a/b", "x" * 101])
def test_run_names_are_plain_folder_names(tmp_path, name):
    with pytest.raises(PipelineError, match="`run_name`"):
        Run.check_name_free(tmp_path, name)


def test_the_feature_cache_folder_is_no_run_name(tmp_path):
    """Refused before any feature is computed, not after (extract makes models/features)."""
    with pytest.raises(PipelineError, match=r"`run_name` 'features'.*feature cache"):
        Run.check_name_free(tmp_path, "features")


def test_a_completed_run_name_is_taken_an_interrupted_one_continues(tmp_path):
    run = Run.create(tmp_path, "scratch", "mine")
    run.write_record(record(status="completed"))
    with pytest.raises(PipelineError, match="already exists \\(completed\\)"):
        Run.create(tmp_path, "scratch", "mine")
    run.finish("interrupted", stop_reason="stopped by Ctrl-C", last_epoch=1)
    (run.path / ".config-89abcdef.json").write_text("{")  # left by a write killed mid-way
    continued = Run.create(tmp_path, "scratch", "mine")
    assert continued.resuming and continued.path == run.path
    assert not (run.path / ".config-89abcdef.json").exists()
    with pytest.raises(PipelineError, match="is a scratch run, not extract"):
        Run.create(tmp_path, "extract", "mine")


def test_a_running_run_whose_process_is_gone_can_be_continued(tmp_path):
    run = Run.create(tmp_path, "scratch", "mine")
    run.write_record(record())
    assert run.record().process.split(":")[1] == str(__import__('os').getpid())
    with pytest.raises(PipelineError, match="being trained right now"):
        Run.check_name_free(tmp_path, "mine")
    import socket

    run.update_record(process=f"{socket.gethostname()}:999999999")  # no such process
    assert Run.check_name_free(tmp_path, "mine") is True
    run.update_record(process=f"{socket.gethostname()}:not-a-pid")  # a damaged record
    assert Run.check_name_free(tmp_path, "mine") is True
    run.update_record(process="elsewhere.invalid:1")  # another machine's: cannot tell, refused
    with pytest.raises(PipelineError, match="being trained right now"):
        Run.check_name_free(tmp_path, "mine")


def test_non_finite_values_are_written_as_null_and_read_as_nan(tmp_path):
    run = Run.create(tmp_path, "scratch")
    run.write_record(record())
    run.write_history({"loss": [0.5, float("nan")], "val_loss": [float("inf"), 0.4]})
    run.write_metrics("validation", {"loss": float("nan"), "accuracy": 0.5})
    refuse = lambda constant: pytest.fail(f"{constant} is not JSON")  # noqa: E731
    assert json.loads(run.file("history.json").read_text(), parse_constant=refuse) == {
        "loss": [0.5, None], "val_loss": [None, 0.4]}
    assert json.loads(run.file("metrics.json").read_text(),
                      parse_constant=refuse)["validation"]["loss"] is None
    history = run.read_history()
    assert history["loss"][0] == 0.5 and history["loss"][1] != history["loss"][1]  # NaN
    assert run.read_metrics()["validation"]["loss"] != run.read_metrics()["validation"]["loss"]


def test_readers_are_warned_about_a_run_that_did_not_complete(tmp_path):
    run = Run.create(tmp_path, "scratch")
    run.write_record(record())
    run.finish("failed", stop_reason="the training loss became nan in epoch 3", epochs_run=3,
               best_epoch=2)
    run.file("best.keras").write_bytes(b"x")
    with pytest.warns(UserWarning, match="failed after 3 epochs .*nan in epoch 3.*"
                                         "best.keras is from epoch 2"):
        Run.open(run.path)
    assert "failed: the training loss became nan" in run.summary()


def test_an_unfinished_run_never_falls_back_from_best_to_its_stopped_final_model(tmp_path):
    run = Run.create(tmp_path, "scratch")
    run.write_record(record())
    run.finish("interrupted", stop_reason="stopped by SIGTERM", epochs_run=0)
    run.file("final.keras").write_bytes(b"x")  # the model as it stood mid-epoch
    with pytest.raises(PipelineError, match=r"no saved model to use.*stopped by SIGTERM"):
        run.model_path("best")
    assert run.model_path("final") == run.file("final.keras")  # asked for by name: fine


def test_summary_lists_the_tensorboard_logs(tmp_path):
    run = Run.create(tmp_path, "scratch")
    run.write_record(record(status="completed"))
    (run.path / "logs" / "train").mkdir(parents=True)
    assert f"  {run.path / 'logs'}" in run.summary().splitlines()


def test_summary_names_the_dataset_the_run_trained_on(tmp_path):
    """`train`, `extract` and `finetune` end with the summary: it says which dataset they used."""
    run = Run.create(tmp_path, "scratch")
    run.write_record(record(status="completed", data_dir="data/oxford-flowers-17"))
    assert "  dataset: data/oxford-flowers-17" in run.summary().splitlines()
