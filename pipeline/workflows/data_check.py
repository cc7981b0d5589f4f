"""Check a prepared dataset with a conv base's eyes: duplicates, leaks, suspicious labels.

Read top to bottom: the conv base's output on every split, from the feature cache that
``extract`` fills (computed and cached once when it is not there), pooled to one vector per
photo; ``pipeline.data.check`` finds exact and near duplicates (within a split and across
train/validation/test, where they leak) and the photos their nearest neighbours disagree
with; a contact sheet per finding and a ``check.json`` go to the output folder.

Python users call ``check_dataset(DataCheckConfig(...))`` with the options of
``python cli.py data check``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.cache.dataset_features import FeatureSource, feature_cache, image_features
from pipeline.data.check import (
    NEAR_DUPLICATE_THRESHOLD,
    NEIGHBOURS,
    DataCheck,
    SplitData,
    check_data,
    write_contact_sheets,
)
from pipeline.data.defaults import DEFAULT_DATA_DIR, DEFAULT_MODELS_DIR
from pipeline.data.manifest import SPLITS, class_names, manifest_checksum, require_prepared
from pipeline.system import atomic

CHECK_BASE = "efficientnet_lite0"  # small, offline ImageNet weights: good near-duplicate eyes


@dataclass
class DataCheckConfig:
    data_dir: Path = DEFAULT_DATA_DIR
    base: str = CHECK_BASE
    weights: str = "auto"
    image_size: int | None = None  # None: the base's own size
    models_dir: Path = DEFAULT_MODELS_DIR
    features_dir: Path | None = None  # None: <models_dir>/features (shared with extract)
    out_dir: Path | None = None  # None: <models_dir>/data-check-<dataset>
    threshold: float = NEAR_DUPLICATE_THRESHOLD
    neighbours: int = NEIGHBOURS


@dataclass(frozen=True)
class DataCheckResult:
    check: DataCheck
    class_names: tuple[str, ...]
    out_dir: Path
    sheets: dict[str, Path]

    def summary(self, most: int = 10) -> str:
        """Counts and the worst of each finding, leaks first, for people."""
        check = self.check

        def label(index: int) -> str:
            return self.class_names[index] if 0 <= index < len(self.class_names) else str(index)

        def pair(p) -> str:
            return (f"    {p.where}: {p.first.split}/{p.first.path.name} = "
                    f"{p.second.split}/{p.second.path.name} ({p.similarity:.3f})")

        lines = [f"exact duplicates: {len(check.exact_duplicates)}, near duplicates: "
                 f"{len(check.near_duplicates)}, across splits (leaks): {len(check.leaks)}, "
                 f"label suspects: {len(check.label_suspects)}"]
        for title, pairs in (("leaks", check.leaks),
                             ("duplicates within a split",
                              [p for p in check.exact_duplicates + check.near_duplicates
                               if not p.across_splits])):
            if pairs:
                lines.append(f"  {title}:")
                lines += [pair(p) for p in pairs[:most]]
        if check.label_suspects:
            lines.append("  labels most neighbours disagree with:")
            lines += [f"    {s.photo.split}/{s.photo.path.name}: {label(s.photo.label)}, "
                      f"{s.score:.0%} of neighbours {label(s.neighbour_label)}"
                      for s in check.label_suspects[:most]]
        lines += [f"wrote {path}" for path in (*self.sheets.values(), self.out_dir / "check.json")]
        return "\n".join(lines)


def check_dataset(config: DataCheckConfig, verbose: int = 1) -> DataCheckResult:
    """Pooled conv-base features of every split (cached), then ``check_data`` over them."""
    from pipeline.models.bases import get_base
    from pipeline.models.transfer import build_features_model
    from pipeline.models.weights import resolve_weights

    manifest = require_prepared(config.data_dir)
    base = get_base(config.base)
    image_size = config.image_size or base.default_image_size
    base.check_image_size(image_size)
    weights = resolve_weights(config.weights, base, image_size)
    model = build_features_model(base, weights, image_size)
    source = FeatureSource(Path(config.data_dir), manifest_checksum(manifest), base.name,
                           image_size, weights.preprocessing, verbose=verbose)
    cache = feature_cache(config.features_dir, config.models_dir)
    splits = [split for split in SPLITS if sum(manifest["counts"][split].values())]
    data = [_split_data(cache, model, source, split) for split in splits]
    found = check_data(data, threshold=config.threshold, k=config.neighbours)
    names = tuple(class_names(manifest))
    out = Path(config.out_dir or Path(config.models_dir) / f"data-check-{config.data_dir.name}")
    sheets = write_contact_sheets(found, out, names)
    atomic.write_json(out / "check.json", _as_json(found, names, base.name))
    return DataCheckResult(found, names, out, sheets)


def _split_data(cache, model, source: FeatureSource, split: str) -> SplitData:
    """One split's pooled features, labels and file paths, in the same (dataset) order."""
    from pipeline.data.dataset import load_split

    cached = image_features(cache, model, source, split)
    features = np.asarray(cached.features, dtype=np.float32)
    if features.ndim == 4:  # (N, h, w, C) feature maps: average over the grid
        features = features.mean(axis=(1, 2))
    labels = np.asarray(cached.labels)
    labels = labels.argmax(axis=1) if labels.ndim == 2 and labels.shape[1] > 1 else labels
    paths = list(load_split(source.data_dir, split, source.image_size, 1, cache=False).file_paths)
    return SplitData(split, paths, labels.reshape(-1).astype(int), features.reshape(len(paths), -1))


def _as_json(found: DataCheck, names: tuple[str, ...], base: str) -> dict:
    def photo(p) -> dict:
        return {"split": p.split, "file": str(p.path), "label": names[p.label]}

    def pairs(items) -> list[dict]:
        return [{"first": photo(p.first), "second": photo(p.second),
                 "similarity": p.similarity, "across_splits": p.across_splits} for p in items]

    return {
        "base": base,
        "exact_duplicates": pairs(found.exact_duplicates),
        "near_duplicates": pairs(found.near_duplicates),
        "label_suspects": [{"photo": photo(s.photo), "score": s.score,
                            "neighbours_say": names[s.neighbour_label]}
                           for s in found.label_suspects],
    }
