"""Reading a run says exactly what is wrong: a damaged model (and the intact one to use instead),
a file this user may not read, a model that predicts NaN, a source run that did not finish."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import cli
from pipeline.errors import PipelineError
from pipeline.models.saving import load_model, save_model
from pipeline.runs.folder import Run


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Run:
    """A completed run of our own to damage (the session's ``tiny_run`` stays intact)."""
    return Run(Path(shutil.copytree(tiny_run.path, tmp_path / "copy")))


@pytest.mark.parametrize("content,message", [(b"", "is empty"),
                                             (b"PK\x03\x04 not really", "damaged or not a")])
def test_a_damaged_model_file_says_damaged(tmp_path, content, message):
    path = tmp_path / "best.keras"
    path.write_bytes(content)
    with pytest.raises(PipelineError, match=message):
        load_model(path)


def test_a_file_this_user_may_not_read_says_permission_denied(tiny_run):
    if os.geteuid() != 0:
        pytest.skip("needs root, to read as another user")
    folder = Path(tempfile.mkdtemp())
    try:
        folder.chmod(0o755)
        path = folder / "best.keras"
        shutil.copy(tiny_run.file("best.keras"), path)
        path.chmod(0o600)  # root's; nobody may not read it
        os.seteuid(65534)
        try:
            with pytest.raises(PipelineError, match="permission denied"):
                load_model(path)
        finally:
            os.seteuid(0)
    finally:
        shutil.rmtree(folder)


def test_a_damaged_best_model_points_to_the_intact_final_one(run_copy):
    data = run_copy.file("best.keras").read_bytes()
    run_copy.file("best.keras").write_bytes(data[: len(data) // 3])  # a copy cut short
    result = CliRunner().invoke(cli.main, ["predict", str(run_copy.path), "x.jpg"])
    assert result.exit_code == 2
    assert "best.keras of" in result.stderr and "is damaged; final.keras is intact: use " \
        "--model final" in result.stderr


def test_a_model_that_outputs_nan_predicts_nothing_instead_of_a_class(run_copy,
                                                                     synthetic_dataset):
    model = load_model(run_copy.file("best.keras"))
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    save_model(model, run_copy.file("best.keras"))
    image = next((synthetic_dataset / "test" / "cat").iterdir())
    result = CliRunner().invoke(cli.main, ["predict", str(run_copy.path), str(image)])
    assert result.exit_code == 1
    assert "no finite prediction" in result.output and "nan" not in result.output.split()


def test_summary_refuses_an_image_size_of_zero():
    result = CliRunner().invoke(cli.main, ["summary", "vgg16", "--image-size", "0"])
    assert result.exit_code == 2 and "--image-size" in result.output


def test_finetune_refuses_unfreeze_0_and_an_unfinished_source_without_best_model(tmp_path):
    from pipeline.runs.folder import RunRecord
    from pipeline.workflows.finetune.workflow import (
        FinetuneConfig,
        load_image_model,
        open_extract_run,
        run_finetune,
    )

    with pytest.raises(PipelineError, match="`unfreeze` 0 trains only the head"):
        run_finetune(FinetuneConfig(source_run=tmp_path, unfreeze="0"))
    source = Run.create(tmp_path, "extract")
    source.write_record(RunRecord("extract", "data/x", ["cat", "dog"], 32, base="vgg16"))
    source.finish("interrupted", stop_reason="stopped by SIGTERM")
    inputs = keras.Input((32, 32, 3))
    save_model(keras.Model(inputs, keras.layers.Dense(1)(inputs)), source.file("final.keras"))
    with pytest.warns(UserWarning, match="did not complete: interrupted"):
        extract = open_extract_run(source.path)
    with pytest.raises(PipelineError, match=r"no saved model to use.*stopped by SIGTERM"):
        load_image_model(extract)


@pytest.mark.parametrize("umask,mode", [(0o002, 0o664), (0o027, 0o640)])
def test_saved_models_follow_the_umask_like_any_file(tmp_path, umask, mode):
    """Not 0600: a run shared with a group stays readable by it where the umask says so."""
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    previous = os.umask(umask)
    try:
        save_model(model, tmp_path / "best.keras")
    finally:
        os.umask(previous)
    assert (tmp_path / "best.keras").stat().st_mode & 0o777 == mode
