"""Files we write appear whole or not at all."""

import json

import pytest

from pipeline.system import atomic


def test_write_json_replaces_file_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "config.json"
    atomic.write_json(target, {"a": 1})
    atomic.write_json(target, {"a": 2, "path": tmp_path})
    assert json.loads(target.read_text()) == {"a": 2, "path": str(tmp_path)}
    assert [p.name for p in target.parent.iterdir()] == ["config.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        assert tmp.name.endswith(".keras") and tmp.parent == tmp_path
        tmp.write_text("half-written")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_a_long_target_name_gets_a_temporary_name_within_the_file_system_limit(tmp_path):
    target = tmp_path / ("é" * 120 + ".v1.json")  # 248 bytes: fine as a name, not with more
    atomic.write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [path.name for path in tmp_path.iterdir()] == [target.name]
