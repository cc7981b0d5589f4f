#!/usr/bin/env bash
# The main job, from a fresh machine: set up, prepare the classic cats-vs-dogs split, then
# fast feature extraction (VGG16), fine-tuning of block5 on cached tensors, test evaluation
# and curves. About 30 minutes on 2 CPU cores; minutes on a GPU.
#
#   DOGS_VS_CATS=/path/to/kaggle/train bash scripts/main.sh
#
# The photos come from $DOGS_VS_CATS (Kaggle's train/ folder or PetImages; default
# ../shared/datasets/dogs-vs-cats/train); without them, PetImages is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export TF_CPP_MIN_LOG_LEVEL=2
python=.venv/bin/python
source=${DOGS_VS_CATS:-../shared/datasets/dogs-vs-cats/train}
dataset=data/cats_and_dogs_small
if [ -f "$dataset/manifest.json" ]; then
    echo "== using the prepared dataset $dataset"
elif [ -d "$source" ]; then
    "$python" cli.py data prepare --source "$source"
else
    "$python" cli.py data download
    "$python" cli.py data prepare --source data/PetImages
fi

stamp=$(date +%Y%m%d-%H%M%S)
extract=models/main-extract-$stamp
finetune=models/main-finetune-$stamp
echo "== fast feature extraction"
"$python" cli.py extract --data "$dataset" --run-name "$(basename "$extract")"
echo "== fine-tuning block5 on cached block4_pool tensors"
"$python" cli.py finetune "$extract" --run-name "$(basename "$finetune")" --epochs 10
echo "== evaluation on the test split"
"$python" cli.py evaluate "$finetune" --split test
"$python" cli.py plot "$extract" "$finetune" -o "models/main-curves-$stamp.png"
echo "== done: $extract, $finetune"
