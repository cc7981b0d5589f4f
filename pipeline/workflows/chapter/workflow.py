"""The whole chapter in one call: prepare the data, train each strategy, evaluate, report.

Read top to bottom: prepare the dataset if it is not there yet; decide the plan (a preset,
the user's choices, or the transfer-learning rule of thumb for this many training images);
run each step into its own folder inside one parent folder (``models/<run>/extract/``,
``.../finetune/``); evaluate each on the test split; write the report and a summary.

Every step is resumable by being skippable: a step is done when its folder holds a
completed run and the parent record says it was made from the same inputs (a digest of the
step's config, the dataset and the steps it builds on). Starting the same command again
after Ctrl-C, SIGTERM or a power cut skips what was done, discards the half-made step
(its folder is removed and the step rerun) and carries on. The config and plan are in
``chapter_plan``, the parent record (``run.json``) in ``chapter_record``.

Python users call ``run_chapter(RunConfig(...))`` with the options of ``python cli.py run``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.runs.chapter_record import (
    RUN_RECORD,
    ChapterRecord,
    StepRecord,
    is_chapter,
    read_record,
    save_record,
)
from pipeline.system import interrupts
from pipeline.training.config import config_to_dict
from pipeline.training.options import EXTRACT_TRAINING, FINETUNE_TRAINING, SCRATCH_TRAINING
from pipeline.workflows.chapter.plan import (
    Plan,
    RunConfig,
    check_config,
    default_run_name,
    make_plan,
)
from pipeline.workflows.chapter.presets import (
    EVALUATE,
    EXTRACT,
    EXTRACT_AUGMENT,
    FINETUNE,
    SCRATCH,
    SCRATCH_AUGMENT,
)

# Re-exported: callers of ``run`` import its config, plan and record from here as well.
__all__ = [
    "RUN_RECORD", "ChapterRecord", "ChapterResult", "Plan", "RunConfig", "StepRecord",
    "StepResult", "default_run_name", "is_chapter", "make_plan", "read_record", "run_chapter",
    "step_config", "step_digest",
]

EVALUATION_SPLIT = "test"
AUGMENTED_DROPOUT = 0.5  # the book's dropout for the augmented scratch convnet


@dataclass(frozen=True)
class StepResult:
    name: str
    path: Path
    status: str
    skipped: bool
    seconds: float | None
    test_accuracy: float | None


@dataclass(frozen=True)
class ChapterResult:
    """What ``run_chapter`` did: the parent folder, the plan, each step, the report."""

    path: Path
    plan: Plan
    steps: tuple[StepResult, ...]
    report: tuple[Path, ...] = ()

    def summary(self) -> str:
        from pipeline.report.table import duration, percent

        lines = [f"run: {self.path}", f"  plan ({self.plan.decided_by}): {self.plan.reason}",
                 f"  {'step':<16} {'test accuracy':>13} {'wall time':>12}  folder"]
        for step in self.steps:
            took = "—" if step.seconds is None else duration(step.seconds)
            note = " (done before)" if step.skipped else ""
            lines.append(f"  {step.name:<16} {percent(step.test_accuracy):>13} {took:>12}  "
                         f"{step.path}{note}")
        lines += [f"  report: {path}" for path in self.report]
        return "\n".join(lines)


# -- the chapter ------------------------------------------------------------------------------


def run_chapter(config: RunConfig, verbose: int | str = "auto") -> ChapterResult:
    """Prepare, train every planned step (skipping those already done), evaluate, report."""
    check_config(config)
    manifest = _prepared(config)
    plan = make_plan(config, sum(manifest["counts"]["train"].values()))
    parent = config.models_dir / (config.run_name or default_run_name(config))
    if verbose:
        print(f"plan ({plan.decided_by}): {plan.reason}")
        print(f"steps: {', '.join(plan.steps)}; folder: {parent}")
    record = _open_record(parent, config, plan)
    results = []
    with interrupts.signals_stop():  # SIGTERM stops like Ctrl-C
        try:
            for step in (s for s in plan.steps if s != EVALUATE):
                results.append(_train_step(step, parent, record, config, plan, manifest,
                                           verbose))
            if EVALUATE in plan.steps:
                for step in (s for s in plan.steps if s != EVALUATE):
                    _evaluate_step(step, parent, record, verbose)
                record.steps[EVALUATE].status = "completed"
        except KeyboardInterrupt:
            save_record(parent, record, status="interrupted")
            raise
        except PipelineError:
            save_record(parent, record, status="failed")
            raise
    report = _write_report(parent, plan, record) if config.report else ()
    save_record(parent, record, status="completed", report=str(report[0]) if report else None)
    steps = tuple(dataclasses.replace(result, test_accuracy=_test_accuracy(result.path))
                  for result in results)
    return ChapterResult(parent, plan, steps, report)


def _prepared(config: RunConfig) -> dict:
    """The dataset's manifest, preparing it from ``source`` first when it is not there."""
    from pipeline.data.manifest import require_prepared

    data_dir = Path(config.data_dir)
    if config.source is not None and not (data_dir / "manifest.json").is_file():
        from pipeline.data.prepare import PrepareConfig, prepare_dataset

        train, validation, test = config.split_sizes
        print(prepare_dataset(PrepareConfig(
            source=Path(config.source), data_root=data_dir.parent, name=data_dir.name,
            train=train, validation=validation, test=test,
        )).summary())
    return require_prepared(data_dir)


# -- the parent record ------------------------------------------------------------------------


def _open_record(parent: Path, config: RunConfig, plan: Plan) -> ChapterRecord:
    path = parent / RUN_RECORD
    if path.is_file():
        record = read_record(parent)
    elif parent.is_dir() and any(parent.iterdir()):
        raise PipelineError(f"{parent}: exists and is not a `run` folder; choose another "
                            "`run_name`")
    else:
        parent.mkdir(parents=True, exist_ok=True)
        record = ChapterRecord(data_dir=str(config.data_dir), plan={}, config={})
    record.plan = dataclasses.asdict(plan)
    record.config = config_to_dict(config)
    for step in plan.steps:
        record.steps.setdefault(step, StepRecord())
    save_record(parent, record, status="running")
    return record


# -- one step ---------------------------------------------------------------------------------


def step_config(step: str, parent: Path, config: RunConfig, plan: Plan):
    """The workflow config that trains ``step`` into ``parent/<step>``."""
    from pipeline.models.scratch import architecture
    from pipeline.workflows.extract.workflow import ExtractConfig
    from pipeline.workflows.finetune.workflow import FinetuneConfig
    from pipeline.workflows.scratch import ScratchConfig

    defaults = {SCRATCH: SCRATCH_TRAINING, SCRATCH_AUGMENT: SCRATCH_TRAINING,
                EXTRACT: EXTRACT_TRAINING, EXTRACT_AUGMENT: EXTRACT_TRAINING,
                FINETUNE: FINETUNE_TRAINING}[step]
    training = dataclasses.replace(
        defaults, batch_size=config.batch_size or defaults.batch_size,
        epochs=plan.epochs.get(step, defaults.epochs), seed=config.seed,
        precision=config.precision, strategy=config.strategy,
    )
    common = dict(models_dir=parent, run_name=step, training=training)
    features_dir = Path(config.models_dir) / "features"  # one cache for every run folder
    if step in (SCRATCH, SCRATCH_AUGMENT):
        # A preset's size is its conv base's: the scratch model keeps its own unless given.
        augment = step == SCRATCH_AUGMENT
        model = architecture(config.architecture)
        return ScratchConfig(data_dir=Path(config.data_dir), architecture=model.name,
                             image_size=config.image_size or model.image_size, augment=augment,
                             dropout=AUGMENTED_DROPOUT if augment else 0.0, **common)
    if step in (EXTRACT, EXTRACT_AUGMENT):
        extra = {"base": plan.base} if plan.base else {}
        return ExtractConfig(data_dir=Path(config.data_dir), weights=config.weights,
                             image_size=plan.image_size, augment=step == EXTRACT_AUGMENT,
                             features_dir=features_dir, **extra, **common)
    extra = {"views": plan.views} if plan.views is not None else {}
    return FinetuneConfig(source_run=parent / EXTRACT, unfreeze=plan.unfreeze,
                          features_dir=features_dir, **extra, **common)


def step_digest(workflow_config: Any, manifest: dict, depends_on: str | None = None) -> str:
    """sha256 of what a step's result depends on: its config, the data, the step before."""
    from pipeline.data.manifest import manifest_checksum

    document = {"config": config_to_dict(workflow_config), "data": manifest_checksum(manifest),
                "depends_on": depends_on}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _train_step(step: str, parent: Path, record: ChapterRecord, config: RunConfig, plan: Plan,
                manifest: dict, verbose) -> StepResult:
    workflow_config = step_config(step, parent, config, plan)
    depends_on = record.steps[EXTRACT].digest if step == FINETUNE else None
    digest = step_digest(workflow_config, manifest, depends_on)
    state = record.steps[step]
    folder = parent / step
    if state.digest == digest and state.status == "completed" and _completed(folder):
        if verbose:
            print(f"== {step}: done before with the same inputs ({folder})")
        return StepResult(step, folder, "completed", True, state.seconds, None)
    if folder.exists():  # half made, or made from other inputs: start the step afresh
        if verbose:
            print(f"== {step}: discarding {folder} ({_why_redo(state, digest)})")
        shutil.rmtree(folder)
    if verbose:
        print(f"== {step}")
    record.steps[step] = state = StepRecord(status="running", digest=digest)
    save_record(parent, record)
    started = time.monotonic()
    try:
        run = _train(step, workflow_config, verbose)
    except (KeyboardInterrupt, PipelineError) as stop:
        state.seconds = time.monotonic() - started
        state.status = "interrupted" if isinstance(stop, KeyboardInterrupt) else "failed"
        save_record(parent, record)
        raise
    state.seconds = time.monotonic() - started
    status = run.record().status
    state.status = status
    save_record(parent, record)
    if status != "completed":  # training absorbed a stop (or failure) to save what it had
        raise interrupts.take_deferred() or KeyboardInterrupt()
    return StepResult(step, folder, status, False, state.seconds, None)


def _train(step: str, workflow_config: Any, verbose):
    if step in (SCRATCH, SCRATCH_AUGMENT):
        from pipeline.workflows.scratch import train_scratch

        return train_scratch(workflow_config, verbose)
    if step in (EXTRACT, EXTRACT_AUGMENT):
        from pipeline.workflows.extract.workflow import run_extract

        return run_extract(workflow_config, verbose)
    from pipeline.workflows.finetune.workflow import run_finetune

    return run_finetune(workflow_config, verbose)


def _completed(folder: Path) -> bool:
    from pipeline.runs.folder import CONFIG, Run

    if not (folder / CONFIG).is_file():
        return False
    try:
        return Run(folder).record().status == "completed"
    except PipelineError:
        return False


def _why_redo(state: StepRecord, digest: str) -> str:
    if state.status != "completed":
        return f"it was left {state.status}"
    return "its inputs changed" if state.digest != digest else "its run is incomplete"


def _evaluate_step(step: str, parent: Path, record: ChapterRecord, verbose) -> None:
    """Test-split evaluation of one trained step, unless it was evaluated as it is now."""
    from pipeline.evaluation.evaluate import METRICS_FILE, evaluate_run

    state = record.steps[step]
    out = parent / step / f"evaluation-{EVALUATION_SPLIT}"
    if state.evaluated == state.digest and (out / METRICS_FILE).is_file():
        return
    from pipeline.data.manifest import require_prepared

    manifest = require_prepared(Path(record.data_dir))
    if not sum(manifest["counts"].get(EVALUATION_SPLIT, {}).values()):
        return  # no test photos: nothing to evaluate on
    started = time.monotonic()
    evaluation = evaluate_run(parent / step, EVALUATION_SPLIT, out_dir=out, top_wrong=16)
    if verbose:
        print(f"== evaluate {step}: test accuracy {evaluation.metrics['accuracy']:.4f}")
    state.evaluated, state.evaluation_seconds = state.digest, time.monotonic() - started
    save_record(parent, record)


def _test_accuracy(folder: Path) -> float | None:
    from pipeline.runs.folder import Run

    if not _completed(folder):
        return None
    value = Run(folder).read_metrics().get(EVALUATION_SPLIT, {}).get("accuracy")
    return None if value is None else float(value)


def _write_report(parent: Path, plan: Plan, record: ChapterRecord) -> tuple[Path, ...]:
    from pipeline.report import write_report
    from pipeline.report.from_runs import report_from_folders

    folders = [parent / step for step in plan.steps
               if step != EVALUATE and _completed(parent / step)]
    if not folders:
        return ()
    seconds = {str(parent / name): state.seconds for name, state in record.steps.items()
               if state.seconds is not None}
    report = report_from_folders(folders, wall_seconds=seconds)
    files = write_report(report, parent)
    return (files.html, files.markdown)
