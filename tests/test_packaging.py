"""The built wheel, installed into a fresh virtual environment, runs as ``small-data`` and as
``python -m pipeline``, and puts no top-level ``cli.py`` into site-packages.

A top-level ``cli`` module is what another distribution shipping its own ``cli.py`` replaced
(and deleted on its uninstall). The fresh environment gets no dependencies installed: a
``.pth`` line points it at this environment's site-packages, whose own ``.pth`` files (the
editable install's finder among them) are not run from there, so ``pipeline`` can only come
from the wheel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*command, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    done = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


def _source_copy(tmp_path: Path) -> Path:
    """The files a build reads (the root's files and the package), outside the checkout, so
    building writes nothing into it."""
    source = tmp_path / "source"
    source.mkdir()
    for path in REPO.iterdir():
        if path.is_file():
            shutil.copy2(path, source / path.name)
    shutil.copytree(REPO / "pipeline", source / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return source


def test_the_wheel_installs_small_data_and_python_m_pipeline(tmp_path):
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", wheels, _source_copy(tmp_path), cwd=tmp_path, timeout=300)
    (wheel,) = wheels.glob("small_data_keras-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist()}
    assert "cli.py" not in top_level and "pipeline" in top_level, top_level

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet",
         wheel, cwd=tmp_path, timeout=300)
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                     cwd=tmp_path).stdout.strip())
    (site / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    assert not (site / "cli.py").exists()

    outside = tmp_path / "elsewhere"  # not the checkout: its cli.py and pipeline/ are not seen
    outside.mkdir()
    where = _run(python, "-c", "import pipeline; print(pipeline.__file__)", cwd=outside)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    for command, program in (([venv / "bin" / "small-data"], "small-data"),
                             ([python, "-m", "pipeline"], "python -m pipeline")):
        shown = _run(*command, "--help", cwd=outside).stdout
        assert shown.startswith(f"Usage: {program} [OPTIONS] COMMAND")
        assert f"\n  {program} extract" in shown and "python cli.py" not in shown
        shown = _run(*command, "extract", "--help", cwd=outside).stdout
        assert shown.startswith(f"Usage: {program} extract [OPTIONS]")
        assert f"`{program} finetune models/<run>`" in " ".join(shown.split())
