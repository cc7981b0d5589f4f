"""Workflows train under ``strategy`` and compile with ``jit``, and record both in the run.

A strategy over two logical CPUs must be made when a process starts, so the mirrored cases
run ``strategy_worker.py`` once in a subprocess (as tests/devices/test_distribute.py does).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cli
from pipeline.errors import PipelineError
from pipeline.runs.folder import Run
from pipeline.training.options import TrainingOptions

WORKER = Path(__file__).with_name("strategy_worker.py")
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 240  # TensorFlow start, one epoch and two extractions on two shared cores


@pytest.fixture(scope="module")
def mirrored(synthetic_dataset, tmp_path_factory) -> Path:
    """The worker's output folder, after it ran to the end with two replicas."""
    out = tmp_path_factory.mktemp("mirrored")
    environment = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    done = subprocess.run([sys.executable, str(WORKER), str(synthetic_dataset), str(out)],
                          cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_train_under_mirrored_records_two_replicas(mirrored):
    record = Run.open(mirrored / "models" / "mirrored").record()
    assert record.status == "completed" and record.epochs_run == 1
    assert (record.strategy, record.replicas, record.jit) == ("mirrored", 2, False)
    assert record.config["training"]["strategy"] == "mirrored"
    assert (mirrored / "models" / "mirrored" / "best.keras").is_file()


def test_features_under_mirrored_equal_those_of_one_device(mirrored):
    with np.load(mirrored / "features.npz") as saved:
        assert saved["spread"].shape == saved["alone"].shape == (32, 4)
        assert np.abs(saved["alone"]).max() > 0  # the model computed something
        np.testing.assert_allclose(saved["spread"], saved["alone"], atol=1e-5, rtol=1e-5)
        np.testing.assert_array_equal(saved["spread_labels"], saved["alone_labels"])


def test_options_two_cpu_replicas_cannot_train_with_are_refused(mirrored):
    uneven, jit = (mirrored / "refused.txt").read_text().splitlines()
    assert uneven.startswith("`batch_size` 5 does not split across 2 replicas")
    assert jit.startswith("`jit` cannot compile a step mirrored over CPU devices")


def test_jit_is_passed_to_keras_and_recorded(tmp_path):
    import keras
    import tensorflow as tf

    from pipeline.models.classifier import compile_classifier
    from pipeline.runs.folder import RunRecord
    from pipeline.training.context import training_context
    from pipeline.training.loop import fit_into_run

    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    with training_context(TrainingOptions(strategy="one", jit=True, batch_size=8)):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
        compile_classifier(model, 2, "sgd", 0.1)
        run = Run.create(tmp_path, "scratch", "xla")
        run.write_record(RunRecord("scratch", "synthetic", ["a", "b"], 3))
        fit_into_run(model, run, data, data, epochs=1, verbose=0)
    assert model.jit_compile is True
    record = run.record()
    assert (record.strategy, record.replicas, record.jit) == ("one", 1, True)
    compile_classifier(model, 2, "sgd", 0.1)  # outside a workflow: Keras' own choice
    assert model.jit_compile == "auto" or model.jit_compile is False  # auto: off on a CPU


def test_jit_defaults_to_keras_own_choice():
    assert TrainingOptions().jit is None and TrainingOptions().jit_compile == "auto"
    assert TrainingOptions(jit=False).jit_compile is False


def test_a_bad_strategy_is_one_clear_line():
    result = CliRunner().invoke(cli.main, ["train", "--strategy", "ring"])
    assert result.exit_code == 2
    assert "Invalid value for '--strategy': 'ring' is not one of 'auto', 'one', 'mirrored'" \
        in result.output
    with pytest.raises(PipelineError, match=r"^`strategy` 'ring': choose one of auto, one, "
                                            r"mirrored, multiworker$"):
        TrainingOptions(strategy="ring").validate()
    with pytest.raises(PipelineError, match="`jit` must be true, false or unset"):
        TrainingOptions(jit="yes").validate()  # type: ignore[arg-type]
