"""Read a PyTorch legacy-format (pre-1.6, non-zip) ``.pth`` state dict with NumPy alone.

The legacy format is five things written one after another (``torch/serialization.py``,
``_legacy_save``)::

    pickle: magic number 0x1950a86a20f9469cfc6c
    pickle: protocol version 1001
    pickle: sys info {"little_endian": ..., "type_sizes": ...}
    pickle: the object (a state dict); each tensor is
            torch._utils._rebuild_tensor_v2(<persistent id naming a storage>, offset, size,
                                            stride, requires_grad, OrderedDict())
    pickle: the list of storage keys, in the order their data follows
    per storage: int64 element count, then the raw elements

The pickles are read with an unpickler that admits ``collections.OrderedDict``, the tensor
rebuild functions and the storage types, and refuses every other global: a tampered file
cannot run code. Torch is never imported.
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np

from pipeline.errors import PipelineError
from pipeline.system.safe_pickle import AllowListUnpickler

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
ZIP_MAGIC = b"PK\x03\x04"
# torch's storage classes and the NumPy element type each holds.
STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2",
    "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}  # fmt: skip


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: str


@dataclass(frozen=True)
class _StorageRef:
    """A storage named in the pickle; its data is read after the pickle."""

    key: str
    dtype: str
    size: int  # elements of the root storage
    view_offset: int  # elements: where a storage view starts in its root storage (0: no view)


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> _TensorRef:
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("a tensor's storage is not a persistent storage reference")
    return _TensorRef(storage, int(storage_offset), tuple(int(s) for s in size),
                      tuple(int(s) for s in stride))


class _LegacyUnpickler(AllowListUnpickler):
    """Resolves only OrderedDict, the tensor rebuild functions and storage types
    (``pipeline.system.safe_pickle``)."""

    ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        **{("torch", name): _StorageType(name, dtype) for name, dtype in STORAGE_DTYPES.items()},
    }
    ALLOWED_WHAT = "tensors, storages and OrderedDict"

    def __init__(self, handle: BinaryIO) -> None:
        super().__init__(handle)
        self.roots: dict[str, _StorageRef] = {}  # root storages named so far, by key

    def persistent_load(self, pid: Any) -> _StorageRef:
        # ("storage", storage type, root key, location, root size, view metadata or None)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, size, view = pid
        view_offset = 0
        if view is not None:  # (view key, offset in the root, view size)
            view_offset = int(view[1])
        ref = _StorageRef(str(key), storage_type.dtype, int(size), view_offset)
        self.roots.setdefault(ref.key, ref)
        return ref


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The tensors of a legacy ``.pth`` state dict as NumPy arrays, by name, in file order.

    Arrays are views into one buffer per storage, with the tensors' offsets and strides.
    Raises PipelineError (naming the file) for a zip-format file, a truncated file, a
    pickle that names anything but tensors, or something other than a dict of tensors.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if handle.read(4) == ZIP_MAGIC:
                raise PipelineError(
                    f"{path} is a zip-format (PyTorch >= 1.6) checkpoint; only the legacy format "
                    "is read here: re-save it with "
                    "torch.save(state_dict, path, _use_new_zipfile_serialization=False)"
                )
            handle.seek(0)
            state, storages = _read(handle, path)
    except pickle.UnpicklingError as error:
        raise PipelineError(f"{path}: refused ({error})") from None
    except (EOFError, struct.error) as error:
        raise PipelineError(f"{path}: truncated ({error or 'ended early'})") from None
    except (OSError, ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        raise PipelineError(f"{path}: not a PyTorch legacy checkpoint ({error})") from None
    if not isinstance(state, dict):
        raise PipelineError(f"{path}: holds a {type(state).__name__}, not a state dict")
    arrays = {}
    for name, tensor in state.items():
        if not isinstance(tensor, _TensorRef):
            raise PipelineError(f"{path}: entry {name!r} is not a tensor")
        arrays[str(name)] = _view(tensor, storages, path, name)
    return arrays


def _read(handle: BinaryIO, path: Path) -> tuple[Any, dict[str, np.ndarray]]:
    def load() -> Any:
        return _LegacyUnpickler(handle).load()

    if load() != MAGIC_NUMBER:
        raise PipelineError(f"{path}: not a PyTorch checkpoint (wrong magic number)")
    if (version := load()) != PROTOCOL_VERSION:
        raise PipelineError(f"{path}: unsupported PyTorch protocol version {version}")
    sys_info = load()
    order = "<" if sys_info.get("little_endian", True) else ">"
    unpickler = _LegacyUnpickler(handle)
    state = unpickler.load()
    keys = load()
    storages = {}
    for key in keys:
        ref = unpickler.roots[key]
        (count,) = struct.unpack(order + "q", _read_exactly(handle, 8))
        if count != ref.size:
            raise PipelineError(f"{path}: storage {key} holds {count} elements, "
                                f"the pickle says {ref.size}")
        dtype = np.dtype(ref.dtype).newbyteorder(order)
        data = _read_exactly(handle, count * dtype.itemsize)
        storages[key] = np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="))
    return state, storages


def _read_exactly(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise EOFError(f"wanted {size} bytes, found {len(data)}")
    return data


def _view(tensor: _TensorRef, storages: dict[str, np.ndarray], path: Path, name: str):
    storage = storages.get(tensor.storage.key)
    if storage is None:
        raise PipelineError(f"{path}: tensor {name!r} names storage {tensor.storage.key}, "
                            "whose data is not in the file")
    if len(tensor.shape) != len(tensor.stride):
        raise PipelineError(f"{path}: tensor {name!r} has {len(tensor.shape)} dimensions but "
                            f"{len(tensor.stride)} strides")
    start = tensor.storage.view_offset + tensor.offset
    extent = sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride, strict=True))
    if any(n == 0 for n in tensor.shape):
        return np.zeros(tensor.shape, storage.dtype)
    if start < 0 or min(tensor.stride, default=0) < 0 or start + extent >= storage.size:
        raise PipelineError(f"{path}: tensor {name!r} reaches outside its storage")
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[start:], shape=tensor.shape, strides=[s * itemsize for s in tensor.stride],
        writeable=False,
    )
