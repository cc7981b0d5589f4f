"""Predict the class of image files with a run's saved model.

Folders are walked (sorted, image extensions only). A file that cannot be read becomes a
row with an error and the others are still predicted: one bad photo never stops a batch.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.image_file import load_image_array
from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import class_probabilities, predicted_classes
from pipeline.evaluation.saved_model import RunModel, load_run_model
from pipeline.evaluation.tta import check_views, predict_with_tta

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Prediction:
    """One input file: its predicted class and that class's probability, or why it failed.

    ``probabilities`` holds every class's, in class-index order; ``top`` the ``top_k`` most
    probable classes asked for, most probable first (a tie goes to the lower index, as
    ``label`` does). Both are empty for a file that failed.
    """

    path: Path
    label: str | None = None
    probability: float | None = None
    error: str | None = None
    probabilities: Mapping[str, float] = field(default_factory=dict)
    top: tuple[tuple[str, float], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "class": self.label, "probability": self.probability,
                "error": self.error,
                "top": [{"class": name, "probability": p} for name, p in self.top],
                "probabilities": dict(self.probabilities)}


def image_files(inputs: Iterable[str | Path]) -> Iterator[tuple[Path, str | None]]:
    """Each input file, or the images found in each folder (sorted), with an error if missing.

    A file named explicitly is tried whatever its extension; inside folders only image
    extensions count, so stray ``.txt`` or ``.DS_Store`` files are not reported as failures.
    """
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            )
            if not found:
                yield path, "folder holds no images"
            for file in found:
                yield file, None
        elif path.is_file():
            yield path, None
        else:
            yield path, "no such file or folder"


# A diverged model (NaN weights) outputs NaN: no class can be read from it.
NO_FINITE = "the model produced no finite prediction (NaN): it diverged in training"


def predict_paths(
    run_path: str | Path,
    inputs: Sequence[str | Path],
    *,
    which: str = "best",
    batch_size: int = 32,
    tta: int = 1,
    top_k: int = 1,
) -> list[Prediction]:
    """Predict every image in ``inputs`` (files or folders) with the run's model, in input order.

    ``tta`` > 1 averages each prediction over the image and ``tta``-1 flips/crops; ``top_k``
    is how many of the most probable classes each row's ``top`` lists.
    """
    check_views(tta)
    if batch_size < 1:
        raise PipelineError("`batch_size` must be positive")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise PipelineError(f"`top_k` {top_k!r}: must be a whole number, 1 or more")
    if not inputs:
        raise PipelineError("give at least one image file or folder")
    loaded = load_run_model(run_path, which)
    return predict_files(loaded, image_files(inputs), batch_size, tta, top_k=top_k)


def predict_files(
    loaded: RunModel, files: Iterable[tuple[Path, str | None]], batch_size: int = 32,
    tta: int = 1, workers: int | None = None, *, top_k: int = 1,
) -> list[Prediction]:
    """Predict ``(path, error)`` pairs, ``batch_size`` images at a time to bound memory.

    Why it is fast: photos are decoded by ``workers`` threads (default: one per core; PIL and
    TensorFlow's resize release the GIL) at most two batches ahead, while the model's compiled
    ``predict_on_batch`` runs on the batch before; every batch is padded to ``batch_size`` so
    the graph is traced once, not again for the last, shorter batch.
    """
    if top_k > loaded.num_classes:
        raise PipelineError(f"`top_k` {top_k}: this run has {loaded.num_classes} classes; "
                            f"choose 1 to {loaded.num_classes}")
    rows: list[Prediction | None] = []
    pending: list[tuple[int, Path, np.ndarray]] = []  # (row slot, file, pixels)

    def forward(batch: np.ndarray) -> np.ndarray:
        padded = np.concatenate([batch, np.repeat(batch[-1:], batch_size - len(batch), 0)])
        return np.asarray(loaded.model.predict_on_batch(padded))[:len(batch)]

    def flush() -> None:
        if not pending:
            return
        images = np.stack([pixels for _, _, pixels in pending])
        probabilities = class_probabilities(predict_with_tta(forward, images, tta))
        for (slot, path, _), probs in zip(pending, probabilities, strict=True):
            rows[slot] = (_row(path, probs, loaded.class_names, top_k)
                          if np.isfinite(probs).all() else Prediction(path, error=NO_FINITE))
        pending.clear()

    for path, error, pixels in _decoded(files, loaded.image_size, 2 * batch_size, workers):
        if pixels is not None:
            pending.append((len(rows), path, pixels))
        rows.append(None if error is None else Prediction(path, error=error))
        if len(pending) >= batch_size:
            flush()
    flush()
    return [row for row in rows if row is not None]


def _row(path: Path, probs: np.ndarray, class_names: Sequence[str], top_k: int) -> Prediction:
    """The prediction of one image from its (C,) probabilities."""
    best = int(predicted_classes(probs[None])[0])
    order = np.argsort(-probs, kind="stable")[:top_k]  # stable: ties to the lower index
    return Prediction(
        path, class_names[best], float(probs[best]),
        probabilities={name: float(p) for name, p in zip(class_names, probs, strict=True)},
        top=tuple((class_names[i], float(probs[i])) for i in order),
    )


def _decoded(
    files: Iterable[tuple[Path, str | None]], image_size: int, ahead: int, workers: int | None,
) -> Iterator[tuple[Path, str | None, np.ndarray | None]]:
    """``(path, error, pixels)`` in input order, decoded by a thread pool up to ``ahead``
    files in advance (so memory holds a few batches, not the folder)."""

    def decode(path: Path) -> tuple[str | None, np.ndarray | None]:
        try:
            return None, load_image_array(path, image_size)
        except PipelineError as failure:
            return _reason(failure, path), None

    window: collections.deque = collections.deque()
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for path, error in files:
            window.append((path, error, None if error else pool.submit(decode, path)))
            if len(window) > ahead:
                yield _result(window.popleft())
        while window:
            yield _result(window.popleft())


def _result(entry: tuple[Path, str | None, Future | None]):
    path, error, future = entry
    if future is None:
        return path, error, None
    failure, pixels = future.result()
    return path, failure, pixels


def _reason(error: PipelineError, path: Path) -> str:
    """The error message without the path (the row already names the file)."""
    text = str(error)
    prefix = f"{path}: "
    text = text[len(prefix):] if text.startswith(prefix) else text
    return text.replace(f" '{path}'", "").replace(str(path), path.name)
