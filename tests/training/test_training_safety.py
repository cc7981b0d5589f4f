"""Nothing lost, nothing silent: a diverged loss, a full disk and bad numbers end a run clearly.

Every fault is real: a learning rate that truly diverges, a real tiny tmpfs that truly fills.
"""

from __future__ import annotations

import json
import math
import subprocess

import keras
import pytest
from click.testing import CliRunner

import cli
from pipeline.data.dataset import load_split
from pipeline.errors import PipelineError
from pipeline.models.classifier import compile_classifier
from pipeline.models.scratch import build_scratch_convnet
from pipeline.runs.folder import Run, RunRecord
from pipeline.system import interrupts
from pipeline.training.loop import fit_into_run
from pipeline.training.options import TrainingOptions


def _strict_json(path):
    """``path`` parsed as standard JSON: a bare NaN or Infinity is an error."""
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.mark.parametrize("field,value", [
    ("learning_rate", math.inf), ("learning_rate", math.nan), ("learning_rate", -1e-3),
    ("early_stopping", 0), ("early_stopping", -1),
])
def test_options_refuse_what_cannot_train(field, value):
    with pytest.raises(PipelineError, match=f"`{field}`"):
        TrainingOptions(**{field: value}).validate()


@pytest.mark.parametrize("flag,value", [("--lr", "inf"), ("--lr", "nan"), ("--dropout", "nan"),
                                        ("--l2", "inf"), ("--rotation", "nan")])
def test_the_cli_refuses_non_finite_numbers_before_any_work(tmp_path, flag, value):
    missing = tmp_path / "no-dataset"  # were the number accepted, this would be the error
    result = CliRunner().invoke(cli.main, ["train", "--data", str(missing), "--augment",
                                           "--models-dir", str(tmp_path), flag, value])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {flag} ")
    assert "finite" in result.stderr or "[0, 1)" in result.stderr
    assert not any(tmp_path.iterdir())


class _DivergeAtEpoch(keras.callbacks.Callback):
    """Raises the learning rate to 1e9 when ``epoch`` begins: real training then diverges."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.optimizer.learning_rate.assign(1e9)


def test_a_diverging_loss_stops_at_once_and_keeps_the_last_good_epoch(synthetic_dataset,
                                                                       tmp_path):
    train = load_split(synthetic_dataset, "train", 48, 8)
    validation = load_split(synthetic_dataset, "validation", 48, 8)
    model = compile_classifier(build_scratch_convnet(48, 2), 2, "rmsprop", 1e-4)
    run = Run.create(tmp_path, "scratch")
    run.write_record(RunRecord("scratch", str(synthetic_dataset), ["cat", "dog"], 48))
    interrupts.take_deferred()
    outcome = fit_into_run(model, run, train.dataset, validation.dataset, epochs=6,
                           callbacks=[_DivergeAtEpoch(1)], verbose=0)

    record = run.record()
    assert (outcome.status, record.status) == ("failed", "failed")
    assert "loss became nan in epoch 2" in record.stop_reason
    assert record.epochs_run == 2 and record.best_epoch == 1 and record.last_epoch == 1
    assert run.file("best.keras").is_file() and run.file("last.keras").is_file()
    assert not run.file("final.keras").exists()  # NaN weights are not a model
    history = _strict_json(run.file("history.json"))
    assert history["loss"][1] is None and math.isfinite(history["loss"][0])
    assert math.isnan(run.read_history()["loss"][1])  # readers get NaN back, as a float
    deferred = interrupts.take_deferred()
    assert isinstance(deferred, PipelineError) and "`learning_rate`" in str(deferred)


def test_the_cli_fails_a_diverged_run_and_evaluate_refuses_it(synthetic_dataset, tmp_path):
    runner = CliRunner()
    args = ["train", "--data", str(synthetic_dataset), "--models-dir", str(tmp_path),
            "--image-size", "48", "--batch-size", "8", "--epochs", "3", "--run-name", "big",
            "--lr", "1e6"]
    result = runner.invoke(cli.main, args)
    assert result.exit_code == 2, result.output
    assert "training failed" in result.stderr and "lower --lr" in result.stderr
    run = Run.open(tmp_path / "big", warn=False)
    assert run.record().status == "failed" and run.record().epochs_run == 1
    assert not run.file("final.keras").exists() and not run.file("best.keras").exists()
    _strict_json(run.file("history.json"))

    result = runner.invoke(cli.main, ["evaluate", str(run.path)])
    assert result.exit_code == 2
    assert "warning: run" in result.stderr and "failed after 1 epoch" in result.stderr
    assert "no saved model to use" in result.stderr and "ROC" not in result.output


def test_training_writes_tensorboard_scalars_without_the_tensorboard_package(tiny_run):
    import tensorflow as tf

    logs = tiny_run.file("logs")
    assert str(logs) in tiny_run.summary()
    tags = {}
    for split in ("train", "validation"):
        (events,) = (logs / split).glob("events.out.tfevents.*")
        for record in tf.data.TFRecordDataset(str(events)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars"
                tags[(split, value.tag)] = float(tf.make_ndarray(value.tensor))
    history = tiny_run.read_history()
    assert tags[("train", "epoch_loss")] == pytest.approx(history["loss"][0])
    assert tags[("validation", "epoch_accuracy")] == pytest.approx(history["val_accuracy"][0])


def test_a_full_disk_is_one_line_and_leaves_nothing_partial(synthetic_dataset, tmp_path):
    point = tmp_path / "fs"
    point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(point)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'not root'})")
    try:
        result = CliRunner().invoke(cli.main, [
            "train", "--data", str(synthetic_dataset), "--models-dir", str(point),
            "--image-size", "48", "--batch-size", "8", "--epochs", "2", "--run-name", "full"])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and "disk is full" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
        run = Run.open(point / "full", warn=False)
        assert run.record().status == "failed" and "disk is full" in run.record().stop_reason
        leftovers = [p.name for p in run.path.iterdir() if p.name.startswith(".")]
        assert leftovers == [] and not run.file("best.keras").exists()
    finally:
        subprocess.run(["umount", str(point)], check=False)
