"""Evaluate a run's saved model on one split: numbers, a confusion matrix, the worst mistakes.

Writes to ``models/<run>/evaluation-<split>/`` (``evaluation-<split>-final`` for the final
model)::

    metrics.json            loss, accuracy, balanced accuracy (mean per-class recall), macro
                            F1, per-class precision/recall/F1, ROC AUC (2 classes), and the
                            most confidently wrong files with their probabilities
    confusion_matrix.json   counts, rows = true class, columns = predicted class
    confusion_matrix.png    the same as a picture
    most_wrong.png          contact sheet of the most confidently wrong images

Predictions are made batch by batch on the same input pipeline as training, so the
numbers equal ``model.evaluate``'s (without regularisation terms, which are not part of
how well the model predicts). With ``tta`` N > 1 each image's prediction is the mean over
the image and N-1 deterministic flips/crops (``pipeline.evaluation.tta``); metrics.json
records N, and the folder gets a ``-tta<N>`` suffix so plain results are kept beside.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from pipeline.cache.features import predict_batch
from pipeline.data.contact_sheet import write_contact_sheet
from pipeline.data.dataset import load_split
from pipeline.errors import PipelineError
from pipeline.evaluation.confusion_plot import plot_confusion_matrix
from pipeline.evaluation.metrics import (
    class_probabilities,
    classification_report,
    most_confidently_wrong,
    predicted_classes,
)
from pipeline.evaluation.saved_model import RunModel, load_run_model
from pipeline.evaluation.tta import check_views, predict_with_tta
from pipeline.models.folding import inference_model
from pipeline.models.losses import loss_for
from pipeline.system import atomic
from pipeline.system.paths import output_folder, refuse_to_replace

METRICS_FILE = "metrics.json"
CONFUSION_JSON = "confusion_matrix.json"
CONFUSION_PNG = "confusion_matrix.png"
MOST_WRONG_PNG = "most_wrong.png"
OUTPUT_FILES = (METRICS_FILE, CONFUSION_JSON, CONFUSION_PNG, MOST_WRONG_PNG)


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate_run`` measured and where it wrote it."""

    out_dir: Path
    metrics: dict[str, Any]
    files: tuple[Path, ...]

    def summary(self) -> str:
        """The headline numbers and the files written, for people."""
        m = self.metrics
        auc = f"  ROC AUC {m['roc_auc']:.4f}" if m.get("roc_auc") is not None else ""
        tta = f", mean over {m['tta']} test-time views" if m.get("tta", 1) > 1 else ""
        of = f" of {m['data_dir']}" if m.get("data_dir") else ""
        lines = [f"{m['run']} ({m['model']}) on {m['split']}{of}, {m['count']} images{tta}:",
                 f"  loss {m['loss']:.4f}  accuracy {m['accuracy']:.4f}  balanced accuracy "
                 f"{m['balanced_accuracy']:.4f}  macro F1 {m['macro_f1']:.4f}{auc}"]
        width = max([12, *map(len, m["per_class"])])
        lines += [f"  {name:>{width}}: precision {s['precision']:.3f}  recall {s['recall']:.3f}  "
                  f"F1 {s['f1']:.3f}  ({s['support']} images)"
                  for name, s in m["per_class"].items()]
        lines += [f"wrote {path}" for path in self.files]
        return "\n".join(lines)


def evaluate_run(
    run_path: str | Path,
    split: str = "test",
    *,
    which: str = "best",
    top_wrong: int = 16,
    out_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    batch_size: int = 32,
    tta: int = 1,
    force: bool = False,
) -> Evaluation:
    """Evaluate the run's ``best`` (or ``final``) model on ``split`` of its dataset.

    ``data_dir`` overrides the dataset recorded in the run (e.g. after moving it); ``tta``
    averages each prediction over that many views (1: the image alone). ``out_dir`` (default:
    ``<run>/evaluation-<split>[-tta<N>]/``, replaced on each evaluation) holding files of the
    same names is refused before any work unless ``force``.
    """
    check_views(tta)
    if out_dir is not None:
        out_dir = output_folder(out_dir, "out_dir")
        refuse_to_replace((out_dir / name for name in OUTPUT_FILES), force, "out_dir")
    loaded = load_run_model(run_path, which)
    data_dir = Path(data_dir) if data_dir is not None else loaded.data_dir
    if not data_dir.is_dir():
        raise PipelineError(f"{data_dir}: the run's dataset is not there; set `data_dir`")
    data = load_split(data_dir, split, loaded.image_size, batch_size, cache=False)
    if data.class_names != loaded.class_names:
        raise PipelineError(
            f"{data_dir}: classes {list(data.class_names)} differ from the run's "
            f"{list(loaded.class_names)}; evaluate on the dataset the run was trained on"
        )

    labels, outputs = predict_split(loaded.model, data.dataset, tta)
    files = list(data.file_paths)
    check_files_match_labels(files, labels, loaded.class_names)

    probabilities = class_probabilities(outputs)
    report = classification_report(labels, probabilities, loaded.class_names)
    wrong = most_confidently_wrong(labels, probabilities, top_wrong)
    metrics = {
        "run": loaded.run.name,
        "model": loaded.model_path.name,
        "split": split,
        "data_dir": str(data_dir),
        "count": len(labels),
        "tta": tta,
        "loss": mean_loss(labels, outputs, loaded.num_classes),
        **report,
        "most_wrong": [_wrong_entry(i, files, labels, probabilities, loaded) for i in wrong],
    }

    suffix = "" if loaded.model_path.name.startswith("best") else f"-{loaded.model_path.stem}"
    suffix += f"-tta{tta}" if tta > 1 else ""
    out = Path(out_dir) if out_dir is not None else loaded.run.file(f"evaluation-{split}{suffix}")
    written = _write_outputs(out, metrics, loaded.class_names, split)
    return Evaluation(out_dir=out, metrics=metrics, files=written)


def predict_split(model: keras.Model, dataset, tta: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Class indices (N,) and raw model outputs (N, 1 or C), batch by batch in dataset order.

    ``tta`` > 1: each output is the mean over that many test-time views of the image.
    """
    labels, outputs = [], []
    running = inference_model(model)  # the same outputs, BatchNormalization folded
    full = 0  # the first batch's length: a shorter last batch is padded to it

    def predict(batch: np.ndarray) -> np.ndarray:
        # Padded, the last batch runs through the graph traced for the others; a batch of
        # another length would trace the whole model again (0.8 s for EfficientNet-Lite1).
        nonlocal full
        batch = np.asarray(batch)
        full = full or len(batch)
        padded = batch
        if len(batch) < full:
            padded = np.concatenate([batch, np.repeat(batch[-1:], full - len(batch), 0)])
        return np.asarray(predict_batch(running, padded), dtype=np.float64)[:len(batch)]

    for images, batch_labels in dataset:
        if tta > 1:
            outputs.append(predict_with_tta(predict, np.asarray(images), tta).astype(np.float64))
        else:
            outputs.append(predict(images))
        labels.append(np.asarray(batch_labels).reshape(-1))
    if not labels:
        raise PipelineError("the split is empty; nothing to evaluate")
    return np.concatenate(labels).astype(int), np.concatenate(outputs)


def check_files_match_labels(
    files: list[Path], labels: np.ndarray, class_names: tuple[str, ...]
) -> None:
    """Each file sits in the folder of its label: proof predictions and file names line up."""
    folders = [path.parent.name for path in files]
    expected = [class_names[i] for i in labels]
    if folders != expected:
        raise RuntimeError("dataset order and file listing disagree; cannot name the images")


def mean_loss(labels: np.ndarray, outputs: np.ndarray, num_classes: int) -> float:
    """The training loss (binary or sparse categorical cross-entropy), averaged over samples."""
    loss = keras.losses.get(loss_for(num_classes))
    targets = labels.reshape(-1, 1).astype("float32") if num_classes == 2 else labels
    values = loss(keras.ops.convert_to_tensor(targets), keras.ops.convert_to_tensor(outputs))
    return float(np.mean(keras.ops.convert_to_numpy(values)))


def _wrong_entry(
    index: int, files: list[Path], labels: np.ndarray, probabilities: np.ndarray, loaded: RunModel
) -> dict[str, Any]:
    predicted = int(predicted_classes(probabilities[index : index + 1])[0])
    return {
        "file": str(files[index]),
        "true": loaded.class_names[labels[index]],
        "predicted": loaded.class_names[predicted],
        "probability": float(probabilities[index, predicted]),
    }


def _write_outputs(
    out: Path, metrics: dict[str, Any], class_names: tuple[str, ...], split: str
) -> tuple[Path, ...]:
    out.mkdir(parents=True, exist_ok=True)
    matrix = metrics["confusion_matrix"]
    atomic.write_json(out / METRICS_FILE, metrics)
    atomic.write_json(
        out / CONFUSION_JSON,
        {"classes": list(class_names), "rows": "true class", "columns": "predicted class",
         "matrix": matrix},
    )
    sheet = [
        (Path(entry["file"]),
         f"{Path(entry['file']).name}\ntrue {entry['true']}, "
         f"predicted {entry['predicted']} ({entry['probability']:.2f})")
        for entry in metrics["most_wrong"]
    ]
    title = f"{metrics['run']} ({metrics['model']}), {split}: accuracy {metrics['accuracy']:.3f}"
    # The sheet is Pillow's work (decoding, resizing, PNG encoding), which releases the GIL:
    # beside matplotlib's drawing of the matrix it took the two from 0.5 s to 0.4 s.
    with ThreadPoolExecutor(max_workers=1) as pool:
        sheet_written = pool.submit(
            write_contact_sheet, sheet, out / MOST_WRONG_PNG,
            title=f"Most confidently wrong, {split} ({len(sheet)} shown)",
            empty_text="no misclassified images",
        )
        plot_confusion_matrix(np.asarray(matrix), class_names, out / CONFUSION_PNG, title)
        sheet_written.result()
    return tuple(out / name for name in OUTPUT_FILES)
