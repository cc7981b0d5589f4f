"""Adding ``--class-weight`` (default balanced) kept older work usable: where no weight would
change training (even classes, or ``none``), a chapter step's digest is the one recorded before
the option existed, and an interrupted run recorded without the field continues; on uneven
classes balanced is a different training and is told apart.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline.data.manifest import read_manifest
from pipeline.data.synth import write_synthetic_dataset
from pipeline.errors import PipelineError
from pipeline.runs.continuation import continued
from pipeline.runs.record import INTERRUPTED, RunRecord
from pipeline.training.config import config_to_dict
from pipeline.training.options import TrainingOptions
from pipeline.workflows.chapter.workflow import step_digest
from pipeline.workflows.extract.config import ExtractConfig


def _config(data: Path, class_weight: str) -> ExtractConfig:
    return ExtractConfig(data_dir=data, training=TrainingOptions(class_weight=class_weight))


def _as_before_the_option(config: ExtractConfig, manifest: dict) -> str:
    """The digest as it was computed when training options had no ``class_weight``."""
    import hashlib
    import json

    from pipeline.data.manifest import manifest_checksum

    document = {"config": config_to_dict(config), "data": manifest_checksum(manifest),
                "depends_on": None}
    del document["config"]["training"]["class_weight"]
    for later in ("label_smoothing", "mixup", "cutmix", "layer_decay"):  # options added later still
        del document["config"]["training"][later]
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    even = write_synthetic_dataset(root / "even", sizes=(4, 2, 2), image_size=32)
    uneven = write_synthetic_dataset(root / "uneven", sizes=(4, 2, 2), image_size=32)
    # One class loses half its training photos, in the manifest as on disk.
    import json

    manifest = json.loads((uneven / "manifest.json").read_text())
    label = sorted(manifest["splits"]["train"])[0]
    for entry in manifest["splits"]["train"][label][2:]:
        (uneven / "train" / label / entry["name"]).unlink()
    manifest["splits"]["train"][label] = manifest["splits"]["train"][label][:2]
    manifest["counts"]["train"][label] = 2
    (uneven / "manifest.json").write_text(json.dumps(manifest))
    return {"even": even, "uneven": uneven}


def test_even_classes_keep_the_digest_steps_had_before_the_option(datasets):
    data = datasets["even"]
    manifest = read_manifest(data)
    before = _as_before_the_option(_config(data, "balanced"), manifest)
    assert step_digest(_config(data, "balanced"), manifest) == before
    assert step_digest(_config(data, "none"), manifest) == before


def test_uneven_classes_tell_balanced_from_none(datasets):
    data = datasets["uneven"]
    manifest = read_manifest(data)
    none, balanced = (step_digest(_config(data, weight), manifest)
                      for weight in ("none", "balanced"))
    assert none == _as_before_the_option(_config(data, "none"), manifest)
    assert balanced != none


def _record(data: Path, class_weight: str | None) -> RunRecord:
    config = config_to_dict(_config(data, class_weight or "none"))
    if class_weight is None:  # recorded before the option existed (and the later ones)
        for field in ("class_weight", "label_smoothing", "mixup", "cutmix", "layer_decay"):
            del config["training"][field]
    return RunRecord(kind="extract", data_dir=str(data), class_names=["cat", "dog"],
                     image_size=32, config=config)


def test_a_run_recorded_before_the_option_continues(datasets):
    data = datasets["even"]
    old = dataclasses.replace(_record(data, None), status=INTERRUPTED, last_epoch=1)
    resumed = continued(old, _record(data, "balanced"))
    assert resumed.last_epoch == 1


def test_on_uneven_classes_the_old_run_continues_only_unweighted(datasets):
    data = datasets["uneven"]
    old = dataclasses.replace(_record(data, None), status=INTERRUPTED, last_epoch=1)
    assert continued(old, _record(data, "none")).last_epoch == 1
    with pytest.raises(PipelineError, match="class_weight"):
        continued(old, _record(data, "balanced"))
