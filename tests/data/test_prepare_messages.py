"""Lines that say what really went wrong: a photo this user may not read is not "corrupt", and
a prepared dataset given as the source is named as one, with where to pass it instead."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.data.images import check_image
from pipeline.data.layouts import scan_source
from pipeline.data.manifest import require_prepared
from pipeline.data.prepare import PrepareConfig, prepare_dataset
from pipeline.errors import PipelineError

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534

# Decodes the photo as user ``nobody``: root reads any file whatever its mode, so only a real
# other user meets a permission error. Pillow's plugins are loaded before privileges go.
AS_NOBODY = (
    "import os, sys\n"
    "from PIL import Image\n"
    "from pipeline.data.images import check_image\n"
    "Image.init()\n"
    f"os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
    "print(check_image(sys.argv[1]).reason)\n"
)


def test_a_photo_this_user_may_not_read_is_not_called_corrupt(write_image):
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the check as another user (nobody)")
    # Under /tmp itself, so that nobody may walk to the file (pytest's tmp_path is private).
    with tempfile.TemporaryDirectory(prefix="unreadable-") as folder:
        os.chmod(folder, 0o755)
        photo = write_image(Path(folder) / "cat.0.jpg")
        os.chmod(photo, 0o000)
        done = subprocess.run([sys.executable, "-c", AS_NOBODY, str(photo)], capture_output=True,
                              text=True, timeout=60, check=False, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "cannot be read (permission denied)"
        os.chmod(photo, 0o644)
        assert check_image(photo).ok  # the same file, readable, is a good photo


def test_a_prepared_dataset_given_as_the_source_is_named_as_one(tmp_path, kaggle_source):
    prepared = prepare_dataset(
        PrepareConfig(source=kaggle_source(per_class=5), data_root=tmp_path / "data",
                      name="small", train=3, validation=1, test=1), progress=False
    ).dataset_dir
    with pytest.raises(PipelineError, match="already a prepared dataset") as error:
        scan_source(prepared)
    assert "`data_dir`" in str(error.value) and "found 0 class" not in str(error.value)

    from pipeline.cli import main  # the whole command line: --data is an option of train

    done = CliRunner().invoke(main, ["data", "prepare", "--source", str(prepared),
                                     "--data-root", str(tmp_path / "again")], prog_name="cli.py")
    assert done.exit_code == 2
    assert "already a prepared dataset" in done.output and "--data" in done.output


def test_a_run_folder_given_as_the_dataset_is_named_as_one(tmp_path):
    run = tmp_path / "models" / "scratch-1"
    run.mkdir(parents=True)
    (run / "config.json").write_text('{"data_dir": "data/small"}')
    (run / "history.json").write_text("{}")
    with pytest.raises(PipelineError, match="is a training run's folder") as error:
        require_prepared(run)
    assert "did not finish" not in str(error.value) and "`data_dir`" in str(error.value)
