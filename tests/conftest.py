"""Fixtures shared by the whole suite: small generated datasets, never real photos."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    """A prepared two-class dataset of 48 px JPEGs (16/8/8 per class), made once per session."""
    from pipeline.data.synth import write_synthetic_dataset

    return write_synthetic_dataset(
        tmp_path_factory.mktemp("data") / "synthetic", sizes=(16, 8, 8), image_size=48, seed=0
    )
