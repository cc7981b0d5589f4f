#!/usr/bin/env bash
# The main job, from a fresh machine: set up, then the whole chapter in one resumable command:
# prepare the classic cats-vs-dogs split if needed, extract EfficientNet-Lite1 features
# (offline ImageNet weights), train the head, fine-tune its last block, evaluate on the test
# split and write the report (models/chapter-cpu-quick-cats_and_dogs_small/report.html).
# About 5-10 minutes on 2 CPU cores; started again after an interruption, it resumes.
#
#   DOGS_VS_CATS=/path/to/kaggle/train bash scripts/main.sh [more `run` options]
#
# The photos come from $DOGS_VS_CATS (Kaggle's train/ folder or PetImages; default
# ../shared/datasets/dogs-vs-cats/train); without them, PetImages is downloaded.
# PRESET=classic (the book's VGG16 chapter) or PRESET=best (every candidate recipe, the
# best on validation kept) choose another recipe.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

python=.venv/bin/python
source=${DOGS_VS_CATS:-../shared/datasets/dogs-vs-cats/train}
dataset=data/cats_and_dogs_small
if [ ! -f "$dataset/manifest.json" ] && [ ! -d "$source" ]; then
    "$python" cli.py data download
    source=data/PetImages
fi
"$python" cli.py run --preset "${PRESET:-cpu-quick}" --data "$dataset" --source "$source" "$@"
