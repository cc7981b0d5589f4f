"""Tiny generated photos for the data tests (never real ones), and source folders made of them."""

from __future__ import annotations

import hashlib
import os
import subprocess
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _write_image(
    path: Path, size: tuple[int, int] = (48, 40), mode: str = "RGB", fmt: str = "JPEG", **save
) -> Path:
    """Write a noisy ``size`` (width, height) image whose pixels depend on the file name."""
    rng = np.random.default_rng(zlib.crc32(os.fsencode(path.name)))  # any name, even not UTF-8
    width, height = size
    noise = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    if mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt, **save)
    return path


@pytest.fixture
def write_image() -> Callable[..., Path]:
    """``write_image(path, size=(w, h), mode="RGB", fmt="JPEG", **save_options)``."""
    return _write_image


@pytest.fixture
def kaggle_source(tmp_path) -> Callable[..., Path]:
    """``kaggle_source(per_class=10, classes=("cat", "dog"))``: a flat Kaggle-style folder."""

    def make(per_class: int = 10, classes: Iterable[str] = ("cat", "dog")) -> Path:
        source = tmp_path / "kaggle" / "train"
        for label in classes:
            for i in range(per_class):
                _write_image(source / f"{label}.{i}.jpg")
        return source

    return make


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, plus mode and mtime: proof nothing was touched."""
    digest = {}
    for path in sorted(folder.rglob("*")):
        stat = path.stat()
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        digest[path.relative_to(folder).as_posix()] = f"{content}:{stat.st_mode}:{stat.st_mtime_ns}"
    return digest


@pytest.fixture
def digest_tree() -> Callable[[Path], dict[str, str]]:
    return tree_digest


@pytest.fixture
def small_fs(tmp_path) -> Callable[..., Path]:
    """``small_fs(size="256k", read_only=False)``: a real, tiny tmpfs file system of its own.

    For a full disk, a read-only folder and a cross-device link without any mock. Needs
    root (or CAP_SYS_ADMIN); the test is skipped, saying so, where mounting is not allowed.
    """
    mounts: list[Path] = []

    def make(size: str = "256k", read_only: bool = False) -> Path:
        point = tmp_path / f"fs{len(mounts)}"
        point.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or 'not root'})")
        mounts.append(point)
        return point

    yield make
    for point in reversed(mounts):
        subprocess.run(["umount", str(point)], check=False)
