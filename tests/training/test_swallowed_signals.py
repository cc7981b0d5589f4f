"""A stop is not lost when library code swallows it.

Keras' ``save_model`` chooses where to hold the weights it writes inside a bare ``except:``
(falling back to memory), so a SIGTERM whose handler ran at that moment vanished: training
carried on to its last epoch and the command exited 0. Here a real SIGTERM is sent to this
process at exactly that moment (from inside ``is_memory_sufficient``, which Keras calls
there), with the command line's signal handling in place.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from keras.src.saving import saving_lib

import cli
from pipeline.models.classifier import compile_classifier
from pipeline.runs.folder import Run, RunRecord
from pipeline.system import interrupts
from pipeline.training.loop import fit_into_run

EPOCHS = 40
REPO = Path(cli.__file__).resolve().parent


def _signal_inside_keras_save(monkeypatch, on_save: int = 1) -> list[int]:
    """SIGTERM to this process when Keras decides where to write the weights, in its
    ``on_save``-th save; returns the saves seen so far (a list that grows)."""
    real, saves = saving_lib.is_memory_sufficient, []

    def signalled(*args, **kwargs):
        saves.append(1)
        if len(saves) == on_save:
            os.kill(os.getpid(), signal.SIGTERM)  # its handler runs before the next line
        return real(*args, **kwargs)

    monkeypatch.setattr(saving_lib, "is_memory_sufficient", signalled)
    return saves


def _signal(signum: int) -> None:
    """Send ``signum`` to this process and let its handler run (it raises, inside signals_stop)."""
    os.kill(os.getpid(), signum)
    signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a line for the handler to run before


def _signal_swallowed(signum: int = signal.SIGTERM) -> None:
    """``_signal``, its exception swallowed as a library's bare ``except:`` would."""
    with contextlib.suppress(KeyboardInterrupt):
        _signal(signum)


def _train(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(64, 4)).astype("float32")
    labels = (features[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    compile_classifier(model, 2, "sgd", 0.1)
    run = Run.create(tmp_path, "extract")
    run.write_record(RunRecord("extract", "data", ["cat", "dog"], 4))
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(16)
    return run, fit_into_run(model, run, data, data, epochs=EPOCHS, verbose=0)


def test_sigterm_swallowed_by_a_save_still_stops_training(tmp_path, monkeypatch):
    saves = _signal_inside_keras_save(monkeypatch)
    interrupts.take_deferred()
    with interrupts.signals_stop():
        run, outcome = _train(tmp_path)
        deferred = interrupts.take_deferred()
    assert saves, "Keras no longer asks is_memory_sufficient when it saves: move the signal"
    assert outcome.interrupted and outcome.epochs_run <= 2, outcome
    assert isinstance(deferred, interrupts.Terminated)
    record = run.record()
    assert record.status == "interrupted" and record.stop_reason == "stopped by SIGTERM"


def test_a_swallowed_stop_is_raised_once_and_a_handled_one_not_at_all():
    with interrupts.signals_stop():
        _signal_swallowed()
        with pytest.raises(interrupts.Terminated):
            interrupts.raise_swallowed()
        interrupts.raise_swallowed()  # once only

        with pytest.raises(KeyboardInterrupt):  # Ctrl-C, caught where it is dealt with
            _signal(signal.SIGINT)
        interrupts.handled()
        interrupts.raise_swallowed()  # nothing left


def test_handlers_come_back_and_an_ignored_ctrl_c_stays_ignored():
    before = signal.getsignal(signal.SIGTERM)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup
    try:
        with interrupts.signals_stop():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not before
    finally:
        signal.signal(signal.SIGINT, previous)
    assert signal.getsignal(signal.SIGTERM) is before
    with interrupts.signals_stop():
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        with interrupts.signals_stop():  # nested (the CLI around ``run``): the outer one rules
            _signal_swallowed()
        assert signal.getsignal(signal.SIGTERM) is not before
        with pytest.raises(interrupts.Terminated):  # still remembered after the inner one
            interrupts.raise_swallowed()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_cli_exits_143_for_a_stop_swallowed_after_training(synthetic_dataset, tmp_path,
                                                                monkeypatch):
    # One epoch saves best.keras, last.keras, then final.keras after training: the signal
    # comes in the third save, when no batch loop is left to raise it again.
    saves = _signal_inside_keras_save(monkeypatch, on_save=3)
    result = CliRunner().invoke(cli.main, [
        "train", "--data", str(synthetic_dataset), "--models-dir", str(tmp_path),
        "--image-size", "48", "--batch-size", "16", "--epochs", "1", "--run-name", "one"])
    assert len(saves) >= 3
    assert Run.open(tmp_path / "one", warn=False).record().status == "completed"
    assert result.exit_code == 143 and "terminated" in result.stderr, result.output


def test_feature_extraction_stops_at_the_next_batch_after_a_swallowed_stop(tmp_path, capsys):
    from pipeline.cache.features import FeatureCache, FeatureKey, fill_from_model

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    x = np.zeros((6, 3), "float32")
    batches = [(x[i:i + 2], np.zeros((2, 1), "float32")) for i in range(0, 6, 2)]
    key = FeatureKey(base="dense", layer="dense", weights="w" * 64, image_size=3,
                     preprocessing="none", dataset="d" * 64, split="train")
    with interrupts.signals_stop():
        _signal_swallowed()
        with pytest.raises(interrupts.Terminated):
            FeatureCache(tmp_path).write(key, count=6, feature_shape=(2,), label_shape=(1,),
                                         label_dtype="float32",
                                         fill=fill_from_model(model, batches, verbose=0))
    assert "Interrupted (SIGTERM): features of 0 of 6 images kept" in capsys.readouterr().err


def test_a_run_stopped_after_its_last_epoch_completes_when_given_again(synthetic_dataset,
                                                                       tmp_path, monkeypatch):
    # The signal comes in the last epoch's first save (best.keras): every epoch is done but
    # the run is marked interrupted. The same command again completes it without training.
    _signal_inside_keras_save(monkeypatch, on_save=1)
    command = ["train", "--data", str(synthetic_dataset), "--models-dir", str(tmp_path),
               "--image-size", "48", "--batch-size", "16", "--epochs", "1", "--run-name", "one"]
    first = CliRunner().invoke(cli.main, command)
    run = Run.open(tmp_path / "one", warn=False)
    assert first.exit_code == 143, first.output
    assert run.record().status == "interrupted" and run.record().last_epoch == 1
    monkeypatch.undo()
    again = subprocess.run([sys.executable, "cli.py", *command], cwd=REPO, capture_output=True,
                           text=True, timeout=300)  # a new process: a rerun, not an update
    assert again.returncode == 0, again.stderr[-2000:]
    assert "after epoch 1" in again.stdout  # continued, not trained afresh
    record = Run.open(tmp_path / "one", warn=False).record()
    assert record.status == "completed" and record.epochs_run == 1, record
    assert len(run.read_history()["loss"]) == 1
    assert "validation" in run.read_metrics()  # evaluated, as a completed run is
    assert not (run.path / "last.keras").exists()  # nothing left to continue
