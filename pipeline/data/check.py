"""Check a split dataset for duplicates, leaks between splits and photos that look mislabelled.

Three questions, each answered from what the pipeline already has:

* exact duplicates: the same file bytes (sha256), wherever they are;
* near duplicates: the same picture re-encoded, resized or slightly cropped, found by the
  cosine similarity of a conv base's pooled features. A pair across splits (a training
  photo whose twin is in validation or test) is a leak: the held-out accuracy then
  measures memory, not generalisation, so such pairs are flagged ``ACROSS splits``;
* label suspects: photos whose k nearest neighbours (in feature space, all splits
  pooled) mostly carry another label; a wrong label, or an odd photo, is likelier there.

The features come in as arrays (the lead's feature cache); nothing here runs a model.
Similarities are computed in row blocks of float32, so 4,000 photos of 1,280 features
need a few tens of MB, never an N x N float64 matrix.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.contact_sheet import write_contact_sheet
from pipeline.errors import PipelineError

# Cosine similarity of L2-normalised pooled conv features. Post-ReLU features are all >= 0,
# so even unrelated photos of one class score well above 0; a re-saved, resized or lightly
# cropped copy of one photo keeps almost the same activations. 0.95 keeps to the second kind:
# lower it to catch looser crops, at the price of look-alike photos of the same scene.
NEAR_DUPLICATE_THRESHOLD = 0.95
NEIGHBOURS = 10  # k: enough that one odd neighbour does not decide, few enough to stay local
TOP_SUSPECTS = 20
MAX_NEAR_PAIRS = 1000  # the most similar pairs kept; a bad threshold must not fill memory
BLOCK_ROWS = 512  # rows of the similarity matrix at a time: 512 x 4,000 float32 = 8 MB


@dataclass(frozen=True)
class SplitData:
    """One split's photos: ``paths[i]`` has class index ``labels[i]`` and ``features[i]``."""

    name: str
    paths: Sequence[Path]
    labels: np.ndarray  # (N,) integer class indices
    features: np.ndarray  # (N, D) pooled conv-base features


@dataclass(frozen=True)
class Photo:
    split: str
    index: int  # position in its split's ``paths``
    path: Path
    label: int


@dataclass(frozen=True)
class DuplicatePair:
    """Two photos that are the same picture; ``similarity`` is 1.0 for identical bytes."""

    first: Photo
    second: Photo
    similarity: float

    @property
    def across_splits(self) -> bool:
        return self.first.split != self.second.split

    @property
    def where(self) -> str:
        """``ACROSS splits`` (a leak between train/validation/test) or ``within split``."""
        if self.across_splits:
            return f"ACROSS splits ({self.first.split}/{self.second.split})"
        return f"within split ({self.first.split})"


@dataclass(frozen=True)
class LabelSuspect:
    """A photo most of whose ``k`` nearest neighbours have another label.

    ``score`` is the fraction of neighbours with a label other than the photo's;
    ``neighbour_label`` the label most of them have.
    """

    photo: Photo
    score: float
    neighbour_label: int


@dataclass(frozen=True)
class DataCheck:
    exact_duplicates: tuple[DuplicatePair, ...]
    near_duplicates: tuple[DuplicatePair, ...]
    label_suspects: tuple[LabelSuspect, ...]

    @property
    def leaks(self) -> tuple[DuplicatePair, ...]:
        """Exact and near duplicates that sit in different splits."""
        return tuple(p for p in self.exact_duplicates + self.near_duplicates if p.across_splits)


def check_data(
    splits: Sequence[SplitData],
    *,
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
    k: int = NEIGHBOURS,
    top: int = TOP_SUSPECTS,
    max_pairs: int = MAX_NEAR_PAIRS,
    min_score: float = 0.5,
) -> DataCheck:
    """Find exact duplicates, near duplicates and label suspects over all ``splits`` together.

    Near duplicates leave out pairs already found as exact duplicates and are sorted most
    similar first (at most ``max_pairs``); suspects are the ``top`` highest scores above
    ``min_score`` (by default: most neighbours disagree), highest first.
    """
    photos, features = _pooled(splits, threshold, k)
    exact = exact_duplicates(photos)
    identical = {(pair.first, pair.second) for pair in exact}
    near, scores, majority = _neighbourhoods(photos, features, threshold, k, max_pairs, identical)
    order = sorted(range(len(photos)), key=lambda index: (-scores[index], index))
    suspects = [
        LabelSuspect(photos[index], float(scores[index]), int(majority[index]))
        for index in order[:top]
        if scores[index] > min_score
    ]
    return DataCheck(tuple(exact), tuple(near), tuple(suspects))


def exact_duplicates(photos: Sequence[Photo]) -> list[DuplicatePair]:
    """Every pair of photos with the same file bytes, in input order."""
    groups: dict[str, list[Photo]] = defaultdict(list)
    for photo in photos:
        groups[_sha256(photo.path)].append(photo)
    return [
        DuplicatePair(group[i], group[j], 1.0)
        for group in groups.values()
        for i in range(len(group))
        for j in range(i + 1, len(group))
    ]


def _neighbourhoods(photos, features, threshold, k, max_pairs, identical):
    """One blocked pass over the cosine-similarity matrix: near pairs and kNN label votes.

    Returns the near-duplicate pairs, each photo's share of neighbours with another label,
    and the label most of its neighbours have.
    """
    labels = np.array([photo.label for photo in photos])
    count = len(photos)
    k = min(k, count - 1)
    # A min-heap of (similarity, -i, -j): the least similar kept pair is dropped first, and
    # among equal similarities the pair that comes later in the input.
    kept: list[tuple[float, int, int]] = []
    scores, majority = np.zeros(count), labels.copy()
    for start in range(0, count, BLOCK_ROWS):
        block = features[start:start + BLOCK_ROWS] @ features.T  # (rows, N) float32
        rows = np.arange(block.shape[0])
        block[rows, rows + start] = -np.inf  # a photo is not its own neighbour
        for row, column in zip(*np.nonzero(block > threshold), strict=True):
            i, j = start + int(row), int(column)
            if i < j and (photos[i], photos[j]) not in identical:
                item = (float(block[row, column]), -i, -j)
                (heapq.heappush if len(kept) < max_pairs else heapq.heappushpop)(kept, item)
        if k > 0:
            nearest = np.argpartition(-block, k - 1, axis=1)[:, :k]  # (rows, k), any order
            votes = labels[nearest]
            own = labels[start:start + block.shape[0], None]
            scores[start:start + block.shape[0]] = (votes != own).mean(axis=1)
            majority[start:start + block.shape[0]] = [np.bincount(v).argmax() for v in votes]
    near = [
        DuplicatePair(photos[-i], photos[-j], min(similarity, 1.0))
        for similarity, i, j in sorted(kept, reverse=True)
    ]
    return near, scores, majority


def _pooled(splits: Sequence[SplitData], threshold: float, k: int):
    """All splits' photos in one list and their features L2-normalised as one float32 matrix."""
    if not splits:
        raise PipelineError("`splits` is empty: give at least one split to check")
    if not 0.0 < threshold <= 1.0:
        raise PipelineError(f"`threshold` must be in (0, 1], got {threshold}")
    if k < 1:
        raise PipelineError(f"`k` must be at least 1, got {k}")
    photos: list[Photo] = []
    blocks = []
    width = None
    for split in splits:
        features = np.asarray(split.features, dtype=np.float32)
        labels = np.asarray(split.labels)
        if features.ndim != 2 or len(features) != len(split.paths) or len(labels) != len(
            split.paths
        ):
            raise PipelineError(
                f"split {split.name!r}: `features` {features.shape} and `labels` "
                f"{labels.shape} must have one row per path ({len(split.paths)} paths)"
            )
        if width is not None and features.shape[1] != width:
            raise PipelineError(
                f"split {split.name!r}: `features` have {features.shape[1]} columns, the "
                f"other splits {width}; use features of one conv base for all splits"
            )
        width = features.shape[1]
        if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0):
            raise PipelineError(
                f"split {split.name!r}: `labels` must be class indices (integers >= 0)"
            )
        if not np.all(np.isfinite(features)):
            raise PipelineError(f"split {split.name!r}: `features` contain NaN or infinity")
        photos += [
            Photo(split.name, index, Path(path), int(label))
            for index, (path, label) in enumerate(zip(split.paths, labels, strict=True))
        ]
        blocks.append(features)
    if len(photos) < 2:
        raise PipelineError("`splits` hold fewer than two photos: nothing to compare")
    features = np.concatenate(blocks)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return photos, features / np.maximum(norms, 1e-12)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:
        raise PipelineError(f"{path}: cannot be read ({error.strerror})") from error
    return digest.hexdigest()


def write_contact_sheets(
    result: DataCheck, folder: Path, class_names: Sequence[str] | None = None, most: int = 12
) -> dict[str, Path]:
    """One PNG per finding in ``folder``: duplicate pairs side by side, suspects with captions.

    Returns ``{"exact-duplicates": path, "near-duplicates": path, "label-suspects": path}``;
    each sheet shows at most ``most`` pairs or photos, the worst first (leaks before
    duplicates within a split).
    """
    def name(label: int) -> str:
        return class_names[label] if class_names and 0 <= label < len(class_names) else str(label)

    def pair_items(pairs: Sequence[DuplicatePair]) -> list[tuple[Path, str]]:
        worst = sorted(pairs, key=lambda pair: not pair.across_splits)[:most]
        items = []
        for pair in worst:
            flag = "ACROSS" if pair.across_splits else "within"
            for photo in (pair.first, pair.second):
                items.append((photo.path, f"{flag} {pair.similarity:.3f}\n{_caption(photo)}"))
        return items

    suspects = [
        (s.photo.path, f"{_caption(s.photo)}: {name(s.photo.label)}\n"
                       f"{s.score:.0%} of neighbours: {name(s.neighbour_label)}")
        for s in result.label_suspects[:most]
    ]
    folder = Path(folder)
    sheets = {
        "exact-duplicates": (pair_items(result.exact_duplicates), "Exact duplicates (same bytes)"),
        "near-duplicates": (pair_items(result.near_duplicates), "Near duplicates (features)"),
        "label-suspects": (suspects, "Labels most neighbours disagree with"),
    }
    return {
        key: write_contact_sheet(items, folder / f"{key}.png", title=title, columns=4,
                                 empty_text="none found")
        for key, (items, title) in sheets.items()
    }


def _caption(photo: Photo) -> str:
    name = photo.path.name if len(photo.path.name) <= 24 else photo.path.name[:21] + "..."
    return f"{photo.split}/{name}"
