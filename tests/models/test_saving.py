"""The one ``.keras`` loader: a zip bomb posing as a model is refused before it is unpacked."""

from __future__ import annotations

import resource
import zipfile
from pathlib import Path

import keras
import pytest

from pipeline.errors import PipelineError
from pipeline.models.saving import load_model, save_model


def _model() -> keras.Model:
    inputs = keras.Input((8,))
    return keras.Model(inputs, keras.layers.Dense(1)(inputs))


def test_a_member_that_unpacks_to_gigabytes_is_refused_without_unpacking(tmp_path):
    real = tmp_path / "real.keras"
    save_model(_model(), real)
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for member in source.infolist():
            out.writestr(member.filename, source.read(member.filename))
        with out.open("assets/padding.bin", "w") as padding:  # 300 MiB of zeros, ~0.3 MB packed
            block = bytes(1 << 20)
            for _ in range(300):
                padding.write(block)
    assert bomb.stat().st_size < 5 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(PipelineError, match=r"bomb.keras: refused, its member assets/padding.bin"
                                            r" would unpack to 300 MiB"):
        load_model(bomb)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 200
    assert load_model(real).count_params() == 9  # a real model still loads


def test_every_module_that_registers_a_keras_class_is_imported_by_the_loader():
    # A model or optimizer saved with a class of this package loads in a fresh process only if
    # the loader imported the module that registers it (found missing once: LayerDecayAdam).
    import ast

    root = Path(__file__).resolve().parents[2]
    loader = ast.parse((root / "pipeline/models/saving.py").read_text())
    imported = {alias.name for node in ast.walk(loader) if isinstance(node, ast.Import)
                for alias in node.names}
    registering = {
        ".".join(path.relative_to(root).with_suffix("").parts)
        for path in (root / "pipeline").rglob("*.py")
        if "register_keras_serializable(" in path.read_text() and path.name != "saving.py"
    }
    assert registering, "no registering module found: the check looks in the wrong place"
    missing = {module for module in registering
               if not any(module == name or name.startswith(module) for name in imported)}
    # pipeline.data.random_affine registers through pipeline.data.augment, which imports it.
    assert missing <= {"pipeline.data.random_affine"}, missing
