"""`visualize ...` from the command line: every PNG path printed, mistakes as one-line errors."""

from pathlib import Path

from click.testing import CliRunner

import cli


def _written(output: str) -> list[Path]:
    return [Path(line.removeprefix("wrote ")) for line in output.splitlines()
            if line.startswith("wrote ")]


def test_each_command_writes_the_pngs_it_prints(tiny_run, synthetic_dataset, tmp_path, open_png):
    image = str(synthetic_dataset / "test" / "dog" / "dog.26.jpg")
    run = str(tiny_run.path)
    commands = [
        ["activations", run, image, "--layers", "conv1,pool4", "-o", str(tmp_path / "act")],
        ["filters", run, "--layer", "conv2", "--count", "4", "--steps", "3",
         "-o", str(tmp_path / "filters.png")],
        ["gradcam", run, image, "--class", "cat", "-o", str(tmp_path / "cam")],
        ["kernels", image, "--size", "64", "-o", str(tmp_path / "kernels.png")],
    ]
    expected_counts = [2, 1, 1, 1]
    for command, count in zip(commands, expected_counts, strict=True):
        result = CliRunner().invoke(cli.main, ["visualize", *command])
        assert result.exit_code == 0, result.output
        written = _written(result.stdout)
        assert len(written) == count, result.stdout
        for path in written:
            assert tmp_path in path.parents
            open_png(path)


def test_mistakes_are_one_line_errors(tiny_run, synthetic_dataset, tmp_path):
    image = str(synthetic_dataset / "test" / "dog" / "dog.26.jpg")
    run = str(tiny_run.path)
    cases = {
        ("filters", run, "--layer", "pool1"): "not a convolution",
        ("filters", run, "--layer", "nope"): "no such layer",
        ("gradcam", run, str(tmp_path / "missing.jpg")): "no such file",
        ("activations", str(tmp_path), image): "not a run folder",
        ("kernels", str(tmp_path / "missing.jpg")): "no such file",
    }
    for command, message in cases.items():
        result = CliRunner().invoke(cli.main, ["visualize", *command])
        assert result.exit_code == 2, (command, result.output)
        assert message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
