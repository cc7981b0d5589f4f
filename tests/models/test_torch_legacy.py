"""Reading PyTorch legacy .pth files with NumPy: arrays, views, and refusals (no torch here)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.models.torch_legacy import read_state_dict
from tests.models.conftest import TensorEntry


def test_tensors_come_back_by_name_with_their_dtypes(tmp_path, legacy_pth):
    rng = np.random.default_rng(0)
    arrays = {
        "conv.weight": rng.normal(size=(4, 3, 3, 3)).astype("float32"),
        "bn.running_var": rng.uniform(size=7).astype("float64"),
        "bn.num_batches_tracked": np.array(12, dtype="int64"),
        "ids": np.arange(5, dtype="int32"),
    }
    state = read_state_dict(legacy_pth.arrays(tmp_path / "m.pth", arrays))
    assert list(state) == list(arrays)
    for name, array in arrays.items():
        assert state[name].dtype == array.dtype and state[name].shape == array.shape
        np.testing.assert_array_equal(state[name], array)


def test_offsets_and_strides_select_views_of_a_shared_storage(tmp_path, legacy_pth):
    storage = np.arange(30, dtype="float32")
    entries = {
        # the transpose of a 2x3 block starting at element 4: strides in elements
        "transposed": TensorEntry("s", 4, (3, 2), (1, 3)),
        "tail": TensorEntry("s", 25, (5,), (1,)),
        "every_other": TensorEntry("s", 1, (2, 3), (12, 2)),
    }
    state = read_state_dict(legacy_pth.raw(tmp_path / "v.pth", entries, {"s": storage}))
    np.testing.assert_array_equal(state["transposed"], storage[4:10].reshape(2, 3).T)
    np.testing.assert_array_equal(state["tail"], storage[25:])
    np.testing.assert_array_equal(state["every_other"], [[1, 3, 5], [13, 15, 17]])


def test_the_old_rebuild_function_is_read_too(tmp_path, legacy_pth):
    entries = {"w": TensorEntry("s", 0, (2, 2), (2, 1))}
    path = legacy_pth.raw(tmp_path / "old.pth", entries, {"s": np.ones(4, "float32")},
                          rebuild=("torch._utils", "_rebuild_tensor"))
    np.testing.assert_array_equal(read_state_dict(path)["w"], np.ones((2, 2)))


def test_a_pickle_naming_another_global_is_refused_and_nothing_runs(tmp_path, legacy_pth):
    marker = tmp_path / "pwned"
    command = f"touch {marker}".encode()
    # The state dict replaced by os.system("touch ...")
    evil = (b"\x80\x02cos\nsystem\n(X" + len(command).to_bytes(4, "little") + command
            + b"tR.")
    path = legacy_pth.raw(tmp_path / "evil.pth", {}, {}, state_pickle=evil)
    with pytest.raises(PipelineError, match=r"evil\.pth.*refus.*os\.system"):
        read_state_dict(path)
    assert not marker.exists()
    tensor = legacy_pth.raw(tmp_path / "evil2.pth", {"w": TensorEntry("s", 0, (1,), (1,))},
                            {"s": np.ones(1, "float32")}, rebuild=("builtins", "eval"))
    with pytest.raises(PipelineError, match=r"builtins\.eval"):
        read_state_dict(tensor)


def test_a_view_reaching_past_its_storage_is_refused(tmp_path, legacy_pth):
    path = legacy_pth.raw(tmp_path / "far.pth", {"w": TensorEntry("s", 2, (3,), (1,))},
                          {"s": np.ones(4, "float32")})
    with pytest.raises(PipelineError, match="outside its storage"):
        read_state_dict(path)


def test_a_truncated_file_is_refused_with_its_name(tmp_path, legacy_pth):
    path = legacy_pth.arrays(tmp_path / "cut.pth", {"w": np.ones((8, 8), "float32")})
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(PipelineError, match=r"cut\.pth.*truncated"):
        read_state_dict(path)


def test_a_zip_format_checkpoint_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "new.pth"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    with pytest.raises(PipelineError, match="_use_new_zipfile_serialization=False"):
        read_state_dict(path)


def test_a_plain_pickle_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.pth"
    path.write_bytes(pickle.dumps({"w": [1, 2]}, protocol=2))
    with pytest.raises(PipelineError, match=r"plain\.pth"):
        read_state_dict(path)
