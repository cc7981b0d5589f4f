"""`evaluate` and `predict` on the command line: numbers printed, files written, clear errors."""

import json

from click.testing import CliRunner

import cli


def test_evaluate_prints_the_numbers_and_every_file(tiny_run, tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(cli.main, ["evaluate", str(tiny_run.path), "--split", "test",
                                           "--top-wrong", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout and "ROC AUC" in result.stdout
    dataset = tiny_run.record().data_dir  # which dataset it used, said
    assert result.stdout.startswith(f"{tiny_run.name} (best.keras) on test of {dataset}, ")
    assert "balanced accuracy" in result.stdout and "macro F1" in result.stdout
    assert "precision" in result.stdout and "recall" in result.stdout
    for name in ("metrics.json", "confusion_matrix.json", "confusion_matrix.png", "most_wrong.png"):
        assert f"wrote {out / name}" in result.stdout


def test_predict_json_with_a_bad_file_exits_1_after_predicting_the_rest(
    tiny_run, synthetic_dataset, tmp_path
):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    folder = synthetic_dataset / "test" / "cat"
    result = CliRunner().invoke(cli.main, ["predict", str(tiny_run.path), str(folder),
                                           str(tmp_path / "bad.png"), "--format", "json"])
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert len(rows) == 9 and sum(row["error"] is not None for row in rows) == 1
    assert "1 of 9 could not be predicted" in result.stderr


def test_predict_csv_and_table(tiny_run, synthetic_dataset):
    image = str(synthetic_dataset / "test" / "dog" / "dog.24.jpg")
    result = CliRunner().invoke(cli.main, ["predict", str(tiny_run.path), image, "--format",
                                           "csv", "--model", "final"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "path,class,probability,error,p(cat),p(dog)"
    result = CliRunner().invoke(cli.main, ["predict", str(tiny_run.path), image])
    assert result.exit_code == 0 and "dog.24.jpg" in result.stdout


def test_predict_top_k(tiny_run, synthetic_dataset):
    image = str(synthetic_dataset / "test" / "dog" / "dog.24.jpg")
    result = CliRunner().invoke(cli.main, ["predict", str(tiny_run.path), image, "--top-k", "2",
                                           "--format", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert [entry["class"] for entry in row["top"]] == sorted(
        row["probabilities"], key=row["probabilities"].get, reverse=True)
    result = CliRunner().invoke(cli.main, ["predict", str(tiny_run.path), image, "--top-k", "5"])
    assert result.exit_code == 2
    assert "--top-k 5: this run has 2 classes; choose 1 to 2" in result.stderr


def test_a_missing_run_is_a_one_line_error(tmp_path):
    for command in (["evaluate", str(tmp_path / "nope")],
                    ["predict", str(tmp_path / "nope"), str(tmp_path)]):
        result = CliRunner().invoke(cli.main, command)
        assert result.exit_code == 2
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
