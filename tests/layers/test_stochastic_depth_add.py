"""StochasticDepthAdd: the layer contract; Keras' Add at inference, at rate 0 and when frozen;
in training each sample keeps its whole branch, scaled by 1 / (1 - rate), or loses it, about
``rate`` of the samples losing it."""

import keras
import numpy as np
import pytest

from pipeline.layers.stochastic_depth_add import StochasticDepthAdd
from tests.layers.contract import model_around, run_layer_contract, to_numpy


def _pair(batch: int = 8, seed: int = 0) -> list[np.ndarray]:
    """``[residual, shortcut]``: two different standard normal feature maps."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, 3, 3, 4)).astype("float32") for _ in range(2)]


def _kept(output: np.ndarray, residual: np.ndarray, shortcut: np.ndarray, rate: float,
          tolerance: float = 1e-6) -> np.ndarray:
    """Per sample: True where it kept its branch, False where it lost it; fails on anything
    else (a branch dropped in part, or not scaled)."""
    def matches(expected):
        return np.isclose(output, expected, rtol=tolerance, atol=tolerance).all(axis=(1, 2, 3))

    kept, dropped = matches(shortcut + residual / (1 - rate)), matches(shortcut)
    assert np.all(kept != dropped), "a sample neither kept nor lost its whole branch"
    return kept


def test_layer_contract(tmp_path):
    # fit runs the layer with training=True, so the compiled step drops branches.
    run_layer_contract(StochasticDepthAdd, dict(rate=0.5, seed=3), (4, 5, 5, 3), tmp_path,
                       inputs=2)


def test_is_keras_add_at_inference_at_rate_zero_and_when_frozen():
    residual, shortcut = _pair()
    plain = to_numpy(keras.layers.Add()([residual, shortcut]))
    np.testing.assert_array_equal(
        to_numpy(StochasticDepthAdd(0.5)([residual, shortcut], training=False)), plain)
    np.testing.assert_array_equal(
        to_numpy(StochasticDepthAdd(0.0)([residual, shortcut], training=True)), plain)
    frozen = StochasticDepthAdd(0.5, seed=1)
    frozen.trainable = False  # a frozen block stays the function its cached output came from
    np.testing.assert_array_equal(to_numpy(frozen([residual, shortcut], training=True)), plain)


def test_in_training_each_sample_keeps_or_loses_its_whole_branch_about_rate_of_them_lost():
    rate, batch = 0.25, 2000
    residual, shortcut = _pair(batch, seed=1)
    layer = StochasticDepthAdd(rate, seed=2)
    kept = _kept(to_numpy(layer([residual, shortcut], training=True)), residual, shortcut,
                 rate)
    # Binomial: the dropped fraction's standard deviation is 0.0097 here.
    assert abs((1 - kept.mean()) - rate) < 0.04
    again = _kept(to_numpy(layer([residual, shortcut], training=True)), residual, shortcut,
                  rate)
    assert not np.array_equal(kept, again), "every call draws anew"


def test_under_mixed_bfloat16_the_draws_stay_whole_branches():
    rate = 0.5  # a scale of 2: exact in bfloat16
    residual, shortcut = _pair(256, seed=3)
    layer = StochasticDepthAdd(rate, seed=4, dtype="mixed_bfloat16")
    outputs = layer([residual, shortcut], training=True)
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    as_bfloat16 = [to_numpy(keras.ops.cast(keras.ops.cast(x, "bfloat16"), "float32"))
                   for x in (residual, shortcut)]
    kept = _kept(to_numpy(keras.ops.cast(outputs, "float32")), *as_bfloat16, rate,
                 tolerance=1e-2)
    assert 0.35 < kept.mean() < 0.65


def test_a_compiled_mixed_bfloat16_step_trains_through_the_draws():
    keras.utils.set_random_seed(0)
    model = model_around(StochasticDepthAdd(0.5, seed=7, dtype="mixed_bfloat16"), (3, 3, 4),
                         inputs=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=True)
    targets = np.zeros((8, 2), "float32")
    history = model.fit(_pair(), targets, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), True, "0.1"])
def test_a_rate_outside_0_to_1_is_refused(rate):
    with pytest.raises(ValueError, match="`rate` must be a number in \\[0, 1\\)"):
        StochasticDepthAdd(rate)


def test_residual_index_1_drops_the_second_input():
    residual, shortcut = _pair(64, seed=5)
    layer = StochasticDepthAdd(0.5, residual_index=1, seed=6)
    kept = _kept(to_numpy(layer([shortcut, residual], training=True)), residual, shortcut, 0.5)
    assert 0 < kept.sum() < 64
    with pytest.raises(ValueError, match="`residual_index` must be 0 or 1"):
        StochasticDepthAdd(0.5, residual_index=2)


def test_takes_a_residual_and_a_shortcut_of_the_same_shape():
    residual, shortcut = _pair()
    with pytest.raises(ValueError, match="residual, shortcut"):
        StochasticDepthAdd(0.1)([residual, shortcut, shortcut])
    with pytest.raises(ValueError, match="same shape"):
        StochasticDepthAdd(0.1)([residual, shortcut[:, :1, :1]])
