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
``chapter_plan``, the parent record (``chapter.json``) in ``chapter_record``.

Python users call ``run_chapter(ChapterConfig(...))`` with the options of ``python cli.py run``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.runs.chapter_record import (
    CHAPTER_RECORD,
    ChapterRecord,
    StepRecord,
    is_chapter,
    read_record,
    save_record,
)
from pipeline.system import interrupts, processes
from pipeline.training.config import config_to_dict
from pipeline.training.mixing_options import describe_mixing, refuse_mixing
from pipeline.workflows.chapter.choosing import keep_best
from pipeline.workflows.chapter.plan import (
    ChapterConfig,
    Plan,
    check_config,
    default_run_name,
    format_duration,
    make_plan,
    run_budget,
    will_prepare,
    with_data_dir,
)
from pipeline.workflows.chapter.presets import (
    DEPENDS_ON,
    STEP_ENSEMBLE,
    STEP_EVALUATE,
    STEP_EXTRACT,
    STEP_EXTRACT_AUGMENT,
    STEP_EXTRACT_SECOND,
    STEP_SCRATCH,
    STEP_SCRATCH_AUGMENT,
    TRAINING_STEPS,
)
from pipeline.workflows.chapter.result import (
    BUDGET_SPENT,
    EVALUATION_FOLDER,
    EVALUATION_SPLIT,
    NO_TEST_SPLIT,
    ChapterResult,
    StepResult,
    step_test_accuracy,
)
from pipeline.workflows.chapter.steps import mixing_steps, step_config, step_digest

# Re-exported: callers of ``run`` import its config, plan and record from here as well.
__all__ = [
    "CHAPTER_RECORD",
    "ChapterConfig",
    "ChapterRecord",
    "ChapterResult",
    "Plan",
    "StepRecord",
    "StepResult",
    "default_run_name",
    "is_chapter",
    "make_plan",
    "read_record",
    "run_chapter",
    "step_config",
    "step_digest",
]

# -- the chapter ------------------------------------------------------------------------------


def run_chapter(
    config: ChapterConfig,
    verbose: int | str = "auto",
    callbacks: Sequence[Any] = (),
) -> ChapterResult:
    """Prepare, train every planned step (skipping those already done), evaluate, report.

    Args:
        config: the data, the plan's choices (preset, steps, base, epochs ...) and the
            chapter folder (``models_dir``/``run_name``); None takes the preset's value,
            else each workflow's.
        verbose: Keras' ``fit`` verbosity for every step; 0 also keeps the plan quiet.
        callbacks: your Keras callbacks, passed to ``fit`` of every step trained now.

    The same config again skips what is done and resumes the rest. For example::

        config = ChapterConfig(source=Path("~/Downloads/train").expanduser(), preset="cpu-quick")
        result = run_chapter(config)          # models/chapter-cpu-quick-cats_and_dogs_small/
        print(result.summary())               # test accuracy per step, the report's path
    """
    config = with_data_dir(config)
    check_config(config)
    with processes.taking_over() if config.take_over else contextlib.nullcontext():
        return _run_chapter(config, verbose, callbacks)


def _run_chapter(config: ChapterConfig, verbose, callbacks: Sequence[Any]) -> ChapterResult:
    manifest = _prepared(config)
    plan = make_plan(config, sum(manifest["counts"]["train"].values()))
    _check_splits(Path(config.data_dir), manifest, plan)
    parent = config.models_dir / (config.run_name or default_run_name(config))
    mixing = mixing_steps(parent, config, plan)
    if not mixing:
        refuse_mixing(config, f"none of the planned steps ({', '.join(plan.steps)}) trains on "
                      "images: they train on cached features or views", "add a scratch step "
                      "to `steps`, or give `views` 0 to fine-tune on images augmented on the fly")
    no_test = not sum(manifest["counts"].get(EVALUATION_SPLIT, {}).values())
    if verbose:
        from pipeline.data.naming import dataset_line

        print(f"dataset: {dataset_line(Path(config.data_dir), manifest)}")
        print(f"plan ({plan.decided_by}): {plan.reason}")
        print(f"steps: {', '.join(plan.steps)}; folder: {parent}")
        if mixing:
            print(f"{describe_mixing(config)}; in the steps {', '.join(mixing)}")
        if STEP_EVALUATE in plan.steps and no_test:
            print(f"evaluate: will be skipped ({NO_TEST_SPLIT})")
    record = _open_record(parent, config, plan)
    results = []
    from pipeline.training.callbacks import TimeBudget  # Keras: only once training is ahead

    budget = run_budget(config, plan)
    deadline = None if budget is None else time.monotonic() + budget
    if verbose and budget is not None:
        print(f"time budget: {format_duration(budget)}")
    with interrupts.signals_stop():  # SIGTERM stops like Ctrl-C
        try:
            for step in (s for s in plan.steps if s != STEP_EVALUATE):
                missing = _not_trained(step, results)
                if missing or (deadline is not None and results
                               and time.monotonic() >= deadline):
                    reason = f"{missing} did not train" if missing else BUDGET_SPENT
                    record.steps[step] = StepRecord(status="skipped", reason=reason)
                    if verbose:
                        print(f"== {step}: skipped ({reason})")
                    continue
                timed = (*callbacks, TimeBudget(deadline)) if deadline is not None else callbacks
                results.append(_train_step(step, parent, record, config, plan, manifest,
                                           verbose, timed))
            trained = {r.name for r in results if r.status == "completed"}
            if plan.keep_best:
                record.kept, record.kept_reason = keep_best(parent, trained)
                if verbose:
                    print(f"kept: {record.kept} ({record.kept_reason})")
            if STEP_EVALUATE in plan.steps and no_test:
                record.steps[STEP_EVALUATE] = StepRecord(status="skipped", reason=NO_TEST_SPLIT)
                if verbose:
                    print(f"== evaluate: skipped ({NO_TEST_SPLIT})")
            elif STEP_EVALUATE in plan.steps:
                for step in (s for s in plan.steps if s in trained):
                    _evaluate_step(step, parent, record, verbose)
                record.steps[STEP_EVALUATE] = StepRecord(status="completed")
        except KeyboardInterrupt:
            save_record(parent, record, status="interrupted")
            raise
        except PipelineError:
            save_record(parent, record, status="failed")
            raise
    report = _write_report(parent, plan, record) if config.report else ()
    save_record(parent, record, status="completed", report=str(report[0]) if report else None)
    steps = tuple(dataclasses.replace(result, test_accuracy=step_test_accuracy(result.path))
                  for result in results)
    evaluate = record.steps.get(STEP_EVALUATE)
    skipped = (f"skipped ({evaluate.reason})" if evaluate is not None
               and evaluate.status == "skipped" else None)
    kept = None if record.kept is None else f"{record.kept} ({record.kept_reason})"
    return ChapterResult(parent, plan, steps, report, evaluation=skipped, kept=kept)


def _check_splits(data_dir: Path, manifest: dict, plan: Plan) -> None:
    """Refuse, before anything trains, a dataset without validation photos: every training
    step keeps its best epoch by the validation split."""
    if any(step in TRAINING_STEPS for step in plan.steps) and \
            not sum(manifest["counts"].get("validation", {}).values()):
        raise PipelineError(f"{data_dir}: the validation split is empty, but every training "
                            "step needs one (it keeps the best epoch on it); prepare the "
                            "dataset again with validation photos (`python cli.py data "
                            "prepare --force`)")


def _prepared(config: ChapterConfig) -> dict:
    """The dataset's manifest, preparing it from ``source`` first when it is not there."""
    from pipeline.data.manifest import require_prepared

    data_dir = Path(config.data_dir)
    if will_prepare(config):
        from pipeline.data.prepare import PrepareConfig, prepare_dataset

        train, validation, test = config.split_sizes or (None, None, None)
        prepared = prepare_dataset(PrepareConfig(
            source=Path(config.source), data_root=data_dir.parent, name=data_dir.name,
            split=config.split, train=train, validation=validation, test=test,
            labels=config.labels, labels_columns=config.labels_columns,
        ))
        print(prepared.summary())
        if prepared.stop is not None:  # stopped once the dataset was in place: train nothing
            raise prepared.stop
    return require_prepared(data_dir)


# -- the parent record ------------------------------------------------------------------------


def _open_record(parent: Path, config: ChapterConfig, plan: Plan) -> ChapterRecord:
    """The folder's record, made or read, marked running by this process. A folder another
    live process is running is refused: its steps' folders would be discarded as half made."""
    me = processes.describe()
    if is_chapter(parent):
        record = read_record(parent)
        other = record.process
        if record.status == "running" and other not in (None, me) and \
                not processes.may_take_over(other):
            raise PipelineError(f"{parent}: `run` is at work in it right now (process {other});"
                                " wait for it to finish, or choose another `run_name`; "
                                + processes.take_over_hint(f"process {other}"))
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
    save_record(parent, record, status="running", process=me)
    return record


# -- one step ---------------------------------------------------------------------------------


def _train_step(step: str, parent: Path, record: ChapterRecord, config: ChapterConfig, plan: Plan,
                manifest: dict, verbose, callbacks: Sequence[Any] = ()) -> StepResult:
    workflow_config = step_config(step, parent, config, plan)
    made_from = [record.steps[source].digest for source in DEPENDS_ON.get(step, ())]
    depends_on = None if not made_from else made_from[0] if len(made_from) == 1 else \
        "+".join(str(digest) for digest in made_from)
    digest = step_digest(workflow_config, manifest, depends_on)
    state = record.steps[step]
    folder = parent / step
    if state.digest == step_digest(workflow_config, manifest, depends_on, legacy=True):
        # Done before fine-tuning's flags changed meaning, with what is the same training now.
        if state.evaluated == state.digest:
            state.evaluated = digest
        state.digest = digest
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
        run = _train(step, workflow_config, verbose, callbacks)
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


def _train(step: str, workflow_config: Any, verbose, callbacks: Sequence[Any]):
    if step in (STEP_SCRATCH, STEP_SCRATCH_AUGMENT):
        from pipeline.workflows.scratch.workflow import train_scratch

        return train_scratch(workflow_config, verbose, callbacks)
    if step in (STEP_EXTRACT, STEP_EXTRACT_AUGMENT, STEP_EXTRACT_SECOND):
        from pipeline.workflows.extract.workflow import run_extract

        return run_extract(workflow_config, verbose, callbacks)
    if step == STEP_ENSEMBLE:
        from pipeline.workflows.ensemble.workflow import build_ensemble

        return build_ensemble(workflow_config, verbose=bool(verbose))
    from pipeline.workflows.finetune.workflow import run_finetune

    return run_finetune(workflow_config, verbose, callbacks)


def _not_trained(step: str, results: Sequence[StepResult]) -> str | None:
    """The step ``step`` is made of that has no completed run now (the ensemble's members,
    when the budget ran out before them), or None."""
    completed = {result.name for result in results if result.status == "completed"}
    if step != STEP_ENSEMBLE:
        return None
    return next((source for source in DEPENDS_ON[step] if source not in completed), None)


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
    out = parent / step / EVALUATION_FOLDER
    if state.evaluated == state.digest and (out / METRICS_FILE).is_file():
        return
    started = time.monotonic()
    evaluation = evaluate_run(parent / step, EVALUATION_SPLIT, out_dir=out, top_wrong=16)
    if verbose:
        print(f"== evaluate {step}: test accuracy {evaluation.metrics['accuracy']:.4f}")
    state.evaluated, state.evaluation_seconds = state.digest, time.monotonic() - started
    save_record(parent, record)


def _write_report(parent: Path, plan: Plan, record: ChapterRecord) -> tuple[Path, ...]:
    from pipeline.report import write_report
    from pipeline.report.from_runs import report_from_folders

    folders = [parent / step for step in plan.steps
               if step != STEP_EVALUATE and _completed(parent / step)]
    if not folders:
        return ()
    seconds = {str(parent / name): state.seconds for name, state in record.steps.items()
               if state.seconds is not None}
    report = report_from_folders(folders, wall_seconds=seconds)
    files = write_report(report, parent)
    return (files.html, files.markdown)
