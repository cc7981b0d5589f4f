"""``.npy`` files read and written with ordinary file I/O, a few rows at a time, never mapped.

Why not ``numpy.load(mmap_mode="r")`` and ``open_memmap``: every page of a memory map that a
process touches counts in its resident memory until the map is closed, so reading a whole
feature file once per epoch (shuffled) makes a training process look as large as the file,
and writing through a map on a full disk kills the process with SIGBUS instead of raising
``ENOSPC``. Here reads go through ``os.preadv`` into fresh arrays (the kernel's page cache
still serves them, without charging the process) and writes through ``write``, which fails
with an ordinary ``OSError`` when the disk is full.
"""

from __future__ import annotations

import hashlib
import operator
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

_HASH_BLOCK = 1 << 20


class NpyRows:
    """A read-only, array-like view of a ``.npy`` file: rows are read when indexed.

    Supports what the training code needs: ``len``, ``shape``, ``dtype``, an integer, a slice
    or an index array along the first axis (optionally followed by more indices, applied to
    the rows read), and ``numpy.asarray`` (reads it all). Raises ValueError for a file that
    is not a C-ordered ``.npy`` array or is shorter than its header says.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as handle:
            version = npy_format.read_magic(handle)
            read_header = (npy_format.read_array_header_1_0 if version == (1, 0)
                           else npy_format.read_array_header_2_0)
            shape, fortran_order, dtype = read_header(handle)
            self._offset = handle.tell()
            size = os.fstat(handle.fileno()).st_size
        if fortran_order or dtype.hasobject or not shape:
            raise ValueError(f"{self.path.name}: not a C-ordered array of rows")
        self.shape: tuple[int, ...] = tuple(shape)
        self.dtype = np.dtype(dtype)
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        expected = self._offset + self.shape[0] * self._row_bytes
        if size != expected:
            raise ValueError(f"{self.path.name} holds {size} bytes, its header says {expected}")
        self._fd: int | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self._row_bytes

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"NpyRows({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self._read(0, len(self))
        return array if dtype is None else array.astype(dtype, copy=False)

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, tuple):
            if not index:
                return np.asarray(self)
            rows = self[index[0]]
            rest = index[1:]
            return rows[rest] if _is_integer(index[0]) else rows[(slice(None), *rest)]
        if _is_integer(index):
            row = operator.index(index)
            row = row + len(self) if row < 0 else row
            if not 0 <= row < len(self):
                raise IndexError(f"row {index} out of range for {len(self)} rows")
            return self._read(row, 1)[0]
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                return self._read(start, max(0, stop - start))
            return self._take(np.arange(start, stop, step))
        rows = np.asarray(index)
        if rows.size == 0:
            rows = rows.astype(np.intp)
        if rows.dtype == bool:
            if rows.shape != (len(self),):
                raise IndexError(f"boolean index of shape {rows.shape} for {len(self)} rows")
            rows = np.flatnonzero(rows)
        if rows.dtype.kind not in "iu":
            raise IndexError(f"rows must be integers, not {rows.dtype}")
        rows = np.where(rows < 0, rows + len(self), rows).astype(np.intp)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} rows")
        return self._take(rows)

    def _take(self, rows: np.ndarray) -> np.ndarray:
        """Rows in the order asked, read as runs of consecutive rows (one read per run)."""
        flat = rows.ravel()
        unique, inverse = np.unique(flat, return_inverse=True)
        out = np.empty((len(unique), *self.shape[1:]), self.dtype)
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        starts = np.r_[0, breaks] if len(unique) else np.empty(0, np.intp)
        for first, last in zip(starts, np.r_[breaks, len(unique)][:len(starts)], strict=True):
            self._read_into(out[first:last], int(unique[first]))
        if len(unique) != len(flat) or not np.array_equal(unique, flat):
            out = out[inverse.ravel()]
        return out.reshape((*rows.shape, *self.shape[1:]))

    def _read(self, start: int, count: int) -> np.ndarray:
        out = np.empty((count, *self.shape[1:]), self.dtype)
        self._read_into(out, start)
        return out

    def _read_into(self, out: np.ndarray, start: int) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        view = memoryview(out.reshape(-1).view(np.uint8))
        position, done = self._offset + start * self._row_bytes, 0
        while done < len(view):
            got = os.preadv(self._fd, [view[done:]], position + done)
            if got == 0:
                raise OSError(f"{self.path}: shorter than its header says (truncated meanwhile?)")
            done += got

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None


class NpyAppender:
    """A ``.npy`` file of ``shape`` written row block by row block, resumable, hashed as written.

    The header states the final shape from the start; ``rows_done`` > 0 reopens a file an
    earlier, interrupted writer left, cuts it back to that many rows (anything after them
    may be torn) and goes on from there. ``sha256`` is the digest of the whole file once
    every row is in.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: Any, rows_done: int = 0):
        self.path, self.shape, self.dtype = Path(path), tuple(shape), np.dtype(dtype)
        header = {"descr": npy_format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": self.shape}
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._hash = hashlib.sha256()
        if rows_done:
            self._handle = open(self.path, "r+b")  # noqa: SIM115 - closed in close()
            npy_format.read_magic(self._handle)
            npy_format.read_array_header_1_0(self._handle)
            offset = self._handle.tell()
            self._handle.truncate(offset + rows_done * self._row_bytes)
            self._handle.seek(0)
            for block in iter(lambda: self._handle.read(_HASH_BLOCK), b""):
                self._hash.update(block)
        else:
            self._handle = open(self.path, "wb")  # noqa: SIM115 - closed in close()
            npy_format.write_array_header_1_0(self._handle, header)
            self._handle.flush()
            with open(self.path, "rb") as written:
                self._hash.update(written.read())
        self.rows = rows_done

    def append(self, rows: np.ndarray) -> None:
        """Write ``rows`` (shape ``(n, *shape[1:])``) after the ones already there."""
        block = np.ascontiguousarray(rows, dtype=self.dtype)
        if block.shape[1:] != self.shape[1:]:
            raise ValueError(f"rows of shape {block.shape[1:]}, expected {self.shape[1:]}")
        data = memoryview(block.reshape(-1).view(np.uint8))
        self._handle.write(data)
        self._hash.update(data)
        self.rows += len(block)

    def sync(self) -> None:
        """Everything written so far is on disk (before a checkpoint says so)."""
        self._handle.flush()
        os.fsync(self._handle.fileno())

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        self._handle.close()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_integer(index: Any) -> bool:
    return isinstance(index, (int, np.integer)) and not isinstance(index, bool)
