"""Fill the report's typed values from run folders: the one place the report meets ``runs.py``.

A run folder gives the record (kind, epochs, trainable parameters, parent), the history,
metrics.json (validation and test accuracy) and, when ``evaluate`` ran on the test split,
``evaluation-test/`` (confusion matrix, the most confidently wrong photos). Grad-CAM of a
few of those photos is computed here with the run's own model. A folder made by ``run``
(``chapter.json``) stands for the step runs inside it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.errors import PipelineError
from pipeline.report.model import ConfusionMatrix, DatasetSummary, Report, RunSummary, WrongPhoto
from pipeline.runs.folder import EXTRACT, SCRATCH, Run, RunRecord

EVALUATION = "evaluation-test"
WRONG_PHOTOS = 8  # shown per run
GRADCAM_PHOTOS = 3  # of which explained with Grad-CAM: each costs a forward and backward pass


def expand_folders(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders: a ``run`` parent folder stands for its completed step runs, in order."""
    from pipeline.runs.chapter_record import is_chapter, read_record

    folders: list[Path] = []
    for path in map(Path, paths):
        if is_chapter(path):
            record = read_record(path)
            folders += [path / step for step, state in record.steps.items()
                        if state.status == "completed" and (path / step).is_dir()]
        else:
            folders.append(Run.open(path).path)
    if not folders:
        raise PipelineError("no completed runs to report in " + ", ".join(map(str, paths)))
    return folders


def report_from_folders(
    paths: Sequence[str | Path],
    *,
    wall_seconds: Mapping[str, float] | None = None,
    wrong: int = WRONG_PHOTOS,
    gradcam: int = GRADCAM_PHOTOS,
    title: str | None = None,
) -> Report:
    """A ``Report`` of the runs at ``paths`` (run folders or ``run`` parent folders).

    ``wall_seconds`` maps a run folder (as a string) to its measured wall time; without it
    the time is read from the run record.
    """
    folders = expand_folders(paths)
    names = _display_names(folders)
    by_path = {folder.resolve(): names[folder] for folder in folders}
    summaries = []
    for folder in folders:
        run = Run(folder)
        record = run.record()
        parent = None
        if record.parent_run is not None:
            parent = by_path.get(Path(record.parent_run).resolve())
        seconds = (wall_seconds or {}).get(str(folder))
        summaries.append(summary_from_run(run, name=names[folder], parent=parent,
                                          wall_seconds=seconds, wrong=wrong, gradcam=gradcam))
    records = {}
    for folder in folders:
        record = Run(folder).record()
        records.setdefault(record.data_dir, record)
    datasets = tuple(dataset_summary(record) for record in records.values())
    names = ", ".join(dataset.name for dataset in datasets)
    return Report(tuple(summaries), title=title or f"{names}: small-data strategies compared",
                  datasets=datasets)


def dataset_summary(record: RunRecord) -> DatasetSummary:
    """The dataset a run trained on, its sizes read from its manifest (or the run's record
    when the dataset folder is gone)."""
    from pipeline.data.manifest import read_manifest

    path = Path(record.data_dir)
    try:
        manifest = read_manifest(path)
    except PipelineError:
        return DatasetSummary(path.name, str(path), tuple(record.class_names),
                              split_sizes=dict(record.counts))
    counts = {split: {name: int(count) for name, count in per_class.items()}
              for split, per_class in manifest["counts"].items()}
    return DatasetSummary(path.name, str(path), tuple(manifest["classes"]), counts=counts,
                          layout=manifest.get("layout"))


def summary_from_run(
    run: Run,
    *,
    name: str | None = None,
    parent: str | None = None,
    wall_seconds: float | None = None,
    wrong: int = WRONG_PHOTOS,
    gradcam: int = GRADCAM_PHOTOS,
) -> RunSummary:
    """One run as the report shows it."""
    record = run.record()
    metrics = run.read_metrics()
    evaluation = _evaluation(run)
    # The evaluate step's measure of the saved model first (what `run` printed), else the
    # run's own, taken while training (result.step_test_accuracy says why).
    test = evaluation.get("accuracy") if evaluation is not None else None
    if test is None:
        test = metrics.get("test", {}).get("accuracy")
    history = run.read_history() if run.file("history.json").is_file() else {}
    photos = _wrong_photos(run, record, evaluation, wrong, gradcam) if evaluation else ()
    evaluation = evaluation or {}
    return RunSummary(
        name=name or run.name,
        kind=strategy_kind(record),
        val_accuracy=_float(metrics.get("validation", {}).get("accuracy")),
        test_accuracy=_float(test),
        epochs=record.epochs_run,
        wall_time_s=wall_seconds if wall_seconds is not None else recorded_seconds(record),
        trainable_params=trainable_parameters(run, record),
        history=history,
        parent=parent,
        confusion=_confusion(run),
        wrong_photos=photos,
        model=record.base or record.config.get("architecture") or "convnet",
        image_size=record.image_size,
        balanced_accuracy=_float(evaluation.get("balanced_accuracy")),
        macro_f1=_float(evaluation.get("macro_f1")),
        recall={name: float(scores["recall"])
                for name, scores in evaluation.get("per_class", {}).items()},
    )


def strategy_kind(record: RunRecord) -> str:
    """The report's strategy: the run's kind, ``-augment`` when it trained on augmented images.

    A from-scratch model other than the book's first-edition convnet is named, e.g.
    ``scratch-augment (mini_xception)``: the book's reference numbers are that convnet's, so
    such a row gets none rather than another model's.
    """
    kind = record.kind
    if kind in (SCRATCH, EXTRACT) and record.config.get("augment"):
        kind = f"{kind}-augment"
    architecture = record.config.get("architecture", "convnet")
    if record.kind == SCRATCH and architecture != "convnet":
        kind = f"{kind} ({architecture})"
    return kind


def recorded_seconds(record: RunRecord) -> float:
    """Wall time from the record: creation to finish, plus the features computed before it.

    The record is written once the features are ready, so their computing time (kept per
    split) is added; features reused from the cache cost nothing here, as in the run.
    """
    seconds = 0.0
    if record.finished:
        seconds = (datetime.fromisoformat(record.finished)
                   - datetime.fromisoformat(record.created)).total_seconds()
    for features in (record.features, record.split_features,
                     record.cached_top.features if record.cached_top else None):
        seconds += sum(entry.compute_seconds for entry in (features or {}).values())
    return max(seconds, 0.0)


def trainable_parameters(run: Run, record: RunRecord) -> int:
    """Trainable parameters as recorded, else counted in the saved model (loaded for it)."""
    if record.trainable_parameters is not None:
        return int(record.trainable_parameters)
    from pipeline.models.saving import load_model

    model = load_model(run.model_path("best"))
    return int(sum(int(np.prod(weight.shape)) for weight in model.trainable_weights))


def _evaluation(run: Run) -> dict | None:
    import json

    path = run.file(EVALUATION) / "metrics.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path}: cannot read ({error}); evaluate the run again") from None


def _confusion(run: Run) -> ConfusionMatrix | None:
    import json

    path = run.file(EVALUATION) / "confusion_matrix.json"
    if not path.is_file():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    return ConfusionMatrix(tuple(document["classes"]),
                           tuple(tuple(int(c) for c in row) for row in document["matrix"]))


def _wrong_photos(run: Run, record: RunRecord, evaluation: dict, wrong: int,
                  gradcam: int) -> tuple[WrongPhoto, ...]:
    entries = [entry for entry in evaluation.get("most_wrong", [])[:wrong]
               if Path(entry["file"]).is_file()]
    overlays = _gradcams(run, record, [Path(e["file"]) for e in entries[:gradcam]])
    return tuple(
        WrongPhoto(Path(entry["file"]), entry["true"], entry["predicted"],
                   float(entry["probability"]), gradcam=overlays.get(index))
        for index, entry in enumerate(entries)
    )


def _gradcams(run: Run, record: RunRecord, photos: list[Path]) -> dict[int, bytes]:
    """Grad-CAM overlays (PNG bytes) of ``photos`` for the class the model predicted."""
    if not photos:
        return {}
    from pipeline.data.image_file import load_image_array, load_photo
    from pipeline.models.saving import load_model
    from pipeline.visualize.gradcam import gradcam
    from pipeline.visualize.gradcam_plot import overlay_heatmap

    model = load_model(run.model_path("best"))
    overlays = {}
    for index, photo in enumerate(photos):
        try:
            result = gradcam(model, load_image_array(photo, record.image_size))
        except PipelineError:  # a model without feature maps to explain: no overlays
            return overlays
        blended = overlay_heatmap(load_photo(photo, 320), result.heatmap)
        buffer = io.BytesIO()
        Image.fromarray(blended).save(buffer, format="PNG")
        overlays[index] = buffer.getvalue()
    return overlays


def _display_names(folders: Sequence[Path]) -> dict[Path, str]:
    """Each folder's name, with its parent's where two would read the same."""
    plain = [folder.name for folder in folders]
    return {
        folder: folder.name if plain.count(folder.name) == 1
        else f"{folder.parent.name}/{folder.name}"
        for folder in folders
    }


def _float(value) -> float | None:
    return None if value is None else float(value)
