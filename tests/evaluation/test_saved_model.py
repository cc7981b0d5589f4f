"""One loader for saved models (Keras' safe mode on), and every way of pointing at a model."""

import keras
import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.architectures import build_named_model, model_to_inspect
from pipeline.evaluation.saved_model import class_index, load_run_model
from pipeline.models.saving import load_model, save_model
from pipeline.runs.folder import Run, RunRecord


def test_a_run_model_comes_with_what_feeding_it_needs(tiny_run, synthetic_dataset):
    loaded = load_run_model(tiny_run.path)
    assert loaded.model_path.name == "best.keras"
    assert loaded.image_size == 48 and loaded.class_names == ("cat", "dog")
    assert loaded.data_dir == synthetic_dataset
    assert load_run_model(tiny_run.path, "final").model_path.name == "final.keras"


def test_the_loader_says_which_of_three_things_is_wrong(tmp_path):
    with pytest.raises(PipelineError, match="no such model file"):
        load_model(tmp_path / "nothing.keras")
    (tmp_path / "broken.keras").write_text("not a zip")
    with pytest.raises(PipelineError, match="not a Keras model file"):
        load_model(tmp_path / "broken.keras")
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(PipelineError, match="refused by Keras safe mode"):
        load_model(tmp_path / "lambda.keras")


def test_a_model_with_the_packages_own_layers_loads_and_predicts_the_same(tmp_path):
    from pipeline.models.heads import build_head

    head = build_head("netvlad", (2, 2, 8), 2)
    save_model(head, tmp_path / "head.keras")
    images = np.random.default_rng(0).normal(size=(2, 2, 2, 8)).astype("float32")
    np.testing.assert_allclose(load_model(tmp_path / "head.keras").predict(images, verbose=0),
                               head.predict(images, verbose=0), rtol=1e-6)


def test_a_run_without_a_model_says_so(tmp_path):
    run = Run.create(tmp_path, "scratch", "empty")
    run.write_record(RunRecord("scratch", "data/x", ["cat", "dog"], image_size=48))
    with pytest.raises(PipelineError, match="no saved model"):
        load_run_model(run.path)
    with pytest.raises(PipelineError, match="choose best or final"):
        load_run_model(run.path, "latest")


def test_unknown_class_names_list_the_known_ones():
    assert class_index(("cat", "dog"), "dog") == 1
    with pytest.raises(PipelineError, match="cat, dog"):
        class_index(("cat", "dog"), "horse")


def test_models_by_name_file_or_run(tiny_run):
    assert model_to_inspect("mobilenet-v2", 32).input_shape == (None, 32, 32, 3)
    assert build_named_model("scratch").input_shape == (None, 150, 150, 3)
    assert model_to_inspect(tiny_run.path).name == "scratch_convnet"
    assert model_to_inspect(str(tiny_run.file("final.keras"))).name == "scratch_convnet"
    with pytest.raises(PipelineError, match="not a run folder"):
        model_to_inspect("alexnet")
    with pytest.raises(PipelineError, match="at least 32"):
        build_named_model("vgg16", 16)
