"""A `.keras` file with the custom layers, saved on this backend, loads on the others with the
same outputs (each other backend is tried in a subprocess, since a process has one backend)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from pipeline.layers import LocallyConnected2D, NetVLAD, SpatialPyramidPooling

REPO = Path(__file__).resolve().parents[2]
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

# Loads every model named on the command line and writes its predictions next to it.
LOAD_AND_PREDICT = """
import sys
import keras
import numpy as np
import pipeline.layers  # registers the layers: no custom_objects
assert keras.backend.backend() == sys.argv[1], keras.backend.backend()
for stem in sys.argv[2:]:
    model = keras.saving.load_model(stem + ".keras")
    np.save(stem + ".out.npy", model.predict(np.load(stem + ".in.npy"), verbose=0))
"""


def _models() -> dict[str, keras.Model]:
    """One small model per layer, with non-trivial weights (random biases, ghost clusters)."""
    keras.utils.set_random_seed(0)
    spp_in = keras.Input((None, None, 3))
    spp = keras.Model(spp_in, SpatialPyramidPooling((1, 2, 3), pooling="avg")(spp_in))
    local_in = keras.Input((6, 5, 3))
    local = LocallyConnected2D(4, 3, padding="same", bias_initializer="random_normal")
    vlad_in = keras.Input((None, None, 3))
    return {
        "spp": spp,
        "local": keras.Model(local_in, local(local_in)),
        "netvlad": keras.Model(vlad_in, NetVLAD(3, ghost_clusters=1)(vlad_in)),
    }


def _other_backends() -> list[str]:
    return [b for b in BACKEND_MODULES if b != keras.backend.backend()]


@pytest.mark.parametrize("backend", _other_backends())
def test_keras_file_saved_here_loads_on_another_backend(backend, tmp_path):
    if importlib.util.find_spec(BACKEND_MODULES[backend]) is None:
        pytest.skip(f"the {backend} backend is not installed")
    rng = np.random.default_rng(0)
    expected = {}
    for name, model in _models().items():
        x = rng.normal(size=(2, 6, 5, 3)).astype("float32")
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}.in.npy", x)
        expected[name] = model.predict(x, verbose=0)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    stems = [str(tmp_path / name) for name in expected]
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, backend, *stems],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name, outputs in expected.items():
        loaded = np.load(tmp_path / f"{name}.out.npy")
        np.testing.assert_allclose(loaded, outputs, rtol=1e-5, atol=1e-5, err_msg=name)
