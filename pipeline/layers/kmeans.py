"""k-means for small in-memory samples: NetVLAD's initial centres (no SciPy or scikit-learn)."""

from __future__ import annotations

import numpy as np


def squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """`(N, K)` squared Euclidean distances, clipped at 0 against rounding."""
    d = (x * x).sum(1)[:, None] - 2.0 * (x @ centres.T) + (centres * centres).sum(1)[None, :]
    return np.maximum(d, 0.0)


def kmeans(
    x: np.ndarray, k: int, iterations: int = 20, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """k-means++ seeding then Lloyd iterations; returns `(centres (k, D), labels (N,))`.

    Small and dependency-free (float64, all points in memory): meant for a few tens of
    thousands of descriptors, which is what a NetVLAD initialisation samples. An empty
    cluster is re-seeded with the point farthest from its centre.
    """
    x = np.asarray(x, np.float64)
    n = len(x)
    if x.ndim != 2 or n < k or k < 1:
        raise ValueError(
            f"kmeans needs `x` of shape (N, D) with N >= `k` >= 1, got {x.shape} and k={k}."
        )
    rng = np.random.default_rng(seed)
    centres = np.empty((k, x.shape[1]))
    centres[0] = x[rng.integers(n)]
    closest = squared_distances(x, centres[:1])[:, 0]
    for i in range(1, k):
        total = closest.sum()
        # All points on the chosen centres already (duplicates): any point will do.
        pick = rng.choice(n, p=closest / total) if total > 0 else rng.integers(n)
        centres[i] = x[pick]
        closest = np.minimum(closest, squared_distances(x, centres[i : i + 1])[:, 0])
    labels = np.full(n, -1)
    for _ in range(iterations):
        distances = squared_distances(x, centres)
        new_labels = distances.argmin(1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, x)
        for j in np.flatnonzero(counts == 0):
            far = distances[np.arange(n), labels].argmax()
            sums[j], counts[j] = x[far], 1
            distances[far, labels[far]] = 0.0
        centres = sums / counts[:, None]
    return centres, squared_distances(x, centres).argmin(1)
