"""The run record: ``config.json``, one versioned dataclass saying what a run was and how it ended.

Written with ``RunRecord.to_dict`` and read back with ``RunRecord.from_dict`` into the same typed
object (as timm's ``PretrainedCfg``), so readers get fields, never a dict to dig in. Only
``pipeline.runs.folder`` writes and reads it (and re-exports these names): the record is the file's
schema, the run folder is where it lives.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pipeline.errors import PipelineError
from pipeline.system.typed_json import read_typed

CONFIG = "config.json"  # the record's file in a run folder
SCRATCH, EXTRACT, FINETUNE = "scratch", "extract", "finetune"  # kinds of run
RECORD_VERSION = 3  # bump when a field changes meaning or disappears (3: finetune's augment)

RUNNING, COMPLETED, INTERRUPTED, FAILED = "running", "completed", "interrupted", "failed"


def utc_now() -> str:
    """The time now, UTC, to the second: how the record writes its times."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class WeightsRecord:
    """Where the conv base's weights came from (``source``) and a line saying which."""

    source: str  # imagenet | lpips | file | none
    detail: str


@dataclass(frozen=True)
class FeatureRecord:
    """One split's cached features as a run used them."""

    path: str
    key: str  # sha256 of the feature key
    layer: str
    shape: list[int]
    reused: bool
    compute_seconds: float  # time spent computing them in this run (0 when reused)


@dataclass(frozen=True)
class CachedTopRecord:
    """Fine-tuning on cached tensors: where the model was split and the tensors used."""

    split_layer: str
    features: dict[str, FeatureRecord]


@dataclass(frozen=True)
class ViewsRecord:
    """Training on cached augmented views (finite augmentation) of a frozen bottom."""

    path: str
    key: str  # sha256 of the views key (features key, augmentation, seed)
    layer: str  # the bottom's output layer the views hold
    views: int  # augmented views per training image
    computed: int  # views computed by this run (0: all reused)
    compute_seconds: float


@dataclass(frozen=True)
class RunRecord:
    """Everything a run's readers need, typed; ``config`` keeps the full workflow config.

    ``config`` is the workflow's configuration dataclass as a dict, for the record only:
    what a reader needs is a field here.
    """

    kind: str  # scratch | extract | finetune
    data_dir: str  # the dataset trained on
    class_names: list[str]
    image_size: int  # the size images are fed at (multi-size runs: the evaluation size)
    config: dict[str, Any] = field(default_factory=dict)
    status: str = RUNNING  # running | completed | interrupted | failed
    stop_reason: str | None = None  # interrupted or failed: why, in words
    version: int = RECORD_VERSION
    created: str = field(default_factory=utc_now)
    finished: str | None = None
    precision: str = "float32"  # the Keras dtype policy training ran under
    strategy: str = "default"  # the tf.distribute strategy it trained under (its kind)
    replicas: int = 1  # model copies training in step; the batch size was split across them
    jit: bool | None = None  # XLA compilation asked for; None: Keras' own choice ("auto")
    base: str | None = None  # conv base (transfer runs)
    weights: WeightsRecord | None = None
    preprocessing: str | None = None
    parent_run: str | None = None  # finetune: the extract run it started from
    epochs_run: int = 0
    best_epoch: int | None = None
    last_epoch: int | None = None  # the epoch last.keras holds (to resume from)
    resumed: list[str] = field(default_factory=list)  # "<time>: from epoch N", one per resume
    process: str | None = None  # "<host>:<pid>" that trains it while running
    evaluated_model: str | None = None  # the model metrics.json was measured on
    counts: dict[str, int] = field(default_factory=dict)  # images per split
    base_output: str | None = None  # transfer runs: the base's last layer (the head's input)
    features: dict[str, FeatureRecord] | None = None  # extract: the base's output per split
    split_features: dict[str, FeatureRecord] | None = None  # extract: at the split point
    trainable_layers: list[str] | None = None  # finetune
    trainable_parameters: int | None = None  # finetune
    cached_top: CachedTopRecord | None = None  # finetune on cached tensors
    views: ViewsRecord | None = None  # trained on cached augmented views
    schedule: str | None = None  # learning-rate schedule (constant | cosine)
    warmup_epochs: float | None = None
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, document: Any, source: str = CONFIG) -> RunRecord:
        """The record in ``document``; a clear error for another version or a damaged one."""
        if not isinstance(document, dict):
            raise PipelineError(f"{source}: not a run record; the run may be damaged")
        version = document.get("version")
        if version == 2:
            document, version = _from_version_2(document), RECORD_VERSION
        if version != RECORD_VERSION:
            raise PipelineError(
                f"{source}: a run record of version {version or 1}, this pipeline reads version "
                f"{RECORD_VERSION}; train the run again with this version"
            )
        return read_typed(cls, document, source, "run record")


def _from_version_2(document: dict[str, Any]) -> dict[str, Any]:
    """A version 2 record in version 3's terms. Version 2's finetune config said ``views`` V
    (0: no augmentation) and ``augment`` (the exact path, views unused); version 3's says
    ``augment`` (augmentation on or off) and ``views`` (cached views, 0: on the fly), as
    extract always did. The same training either way; only the words changed."""
    config = document.get("config")
    if document.get("kind") != FINETUNE or not isinstance(config, dict):
        return {**document, "version": RECORD_VERSION}
    exact, views = config.get("augment"), config.get("views")
    if exact:
        config = {**config, "augment": True, "views": 0}
    else:
        config = {**config, "augment": bool(views)}
    return {**document, "config": config, "version": RECORD_VERSION}
