"""A writer of PyTorch legacy-format ``.pth`` files that needs no torch, for the model tests."""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

STORAGE_NAMES = {"float32": "FloatStorage", "float64": "DoubleStorage", "int64": "LongStorage",
                 "int32": "IntStorage", "uint8": "ByteStorage", "float16": "HalfStorage"}


@dataclass(frozen=True)
class TensorEntry:
    """A tensor as torch pickles it: a storage key, an element offset, a shape, strides."""

    storage: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _ints(values) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def _state_dict_pickle(entries: dict[str, TensorEntry], storages: dict[str, np.ndarray],
                       rebuild: tuple[str, str]) -> bytes:
    """Protocol-2 opcodes of an OrderedDict of ``_rebuild_tensor_v2(...)`` calls."""
    out = [b"\x80\x02", _global("collections", "OrderedDict"), b")R", b"("]
    for name, entry in entries.items():
        data = storages[entry.storage]
        storage_id = (b"(" + _text("storage") + _global("torch", STORAGE_NAMES[data.dtype.name])
                      + _text(entry.storage) + _text("cpu") + _int(data.size) + b"Nt" + b"Q")
        # _rebuild_tensor_v2 also takes requires_grad (False) and backward hooks (empty)
        extra = [] if rebuild[1] == "_rebuild_tensor" else [
            b"\x89", _global("collections", "OrderedDict"), b")R"]
        out += [_text(name), _global(*rebuild), b"(", storage_id, _int(entry.offset),
                _ints(entry.shape), _ints(entry.stride), *extra, b"t", b"R"]
    out += [b"u", b"."]
    return b"".join(out)


def write_legacy_pth(path: Path, entries: dict[str, TensorEntry],
                     storages: dict[str, np.ndarray],
                     rebuild: tuple[str, str] = ("torch._utils", "_rebuild_tensor_v2"),
                     state_pickle: bytes | None = None) -> Path:
    """Write what ``torch.save(state_dict, path, _use_new_zipfile_serialization=False)`` does.

    ``state_pickle`` replaces the state dict's pickle (to write a tampered file).
    """
    with open(path, "wb") as handle:
        for header in (0x1950A86A20F9469CFC6C, 1001,
                       {"protocol_version": 1001, "little_endian": True,
                        "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            pickle.dump(header, handle, protocol=2)
        handle.write(state_pickle or _state_dict_pickle(entries, storages, rebuild))
        pickle.dump(list(storages), handle, protocol=2)
        for data in storages.values():
            handle.write(struct.pack("<q", data.size))
            handle.write(np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes())
    return path


def write_arrays_pth(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """One contiguous storage per array, as a freshly saved state dict has."""
    entries, storages = {}, {}
    for index, (name, array) in enumerate(arrays.items()):
        key = str(1000 + index)
        array = np.array(array, order="C")  # (ascontiguousarray would make a scalar 1-d)
        strides = tuple(s // array.itemsize for s in array.strides)
        entries[name] = TensorEntry(key, 0, array.shape, strides)
        storages[key] = array.reshape(-1)
    return write_legacy_pth(path, entries, storages)


@pytest.fixture
def legacy_pth():
    """The writers: ``legacy_pth.arrays(path, {name: array})``, ``legacy_pth.raw(...)``."""

    class Writers:
        arrays = staticmethod(write_arrays_pth)
        raw = staticmethod(write_legacy_pth)

    return Writers
