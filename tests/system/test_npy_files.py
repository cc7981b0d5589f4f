"""NpyRows: rows of a .npy file read when indexed, the same values as numpy.load gives."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.system.npy_files import NpyRows


@pytest.fixture
def stored(tmp_path):
    array = np.arange(7 * 3 * 2, dtype="float32").reshape(7, 3, 2)
    np.save(tmp_path / "a.npy", array)
    return array, NpyRows(tmp_path / "a.npy")


@pytest.mark.parametrize("index", [
    2, -1, slice(None), slice(1, 5), slice(None, None, 3), slice(6, 1, -2),
    [5, 1, 1, 3], np.array([[0, 6], [2, 2]]), np.array([4, 5, 6]),
    np.arange(7) % 2 == 0, (slice(2, 4), 1), (3, 0, 1), [], [-7, -1],
])
def test_indexing_reads_what_numpy_holds(stored, index):
    array, rows = stored
    np.testing.assert_array_equal(rows[index], array[index])


def test_shape_len_dtype_and_whole_array(stored):
    array, rows = stored
    assert (rows.shape, len(rows), rows.dtype, rows.ndim) == (array.shape, 7, array.dtype, 3)
    np.testing.assert_array_equal(np.asarray(rows), array)
    with pytest.raises(IndexError):
        rows[7]
    with pytest.raises(IndexError):
        rows[[0, 9]]


def test_a_truncated_file_is_refused(tmp_path, stored):
    path = tmp_path / "a.npy"
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match="its header says"):
        NpyRows(path)
