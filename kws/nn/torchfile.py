"""Read the tensors of a PyTorch checkpoint into numpy arrays, without torch.

Two layouts exist: the legacy one (torch < 1.6, what the Resemblyzer wheel ships): a run of
pickles (magic, protocol, system info, the object, the storage keys) followed by each storage's
raw bytes behind an 8-byte element count; and the zip one (torch >= 1.6): ``<name>/data.pkl``
plus one ``<name>/data/<key>`` entry per storage. Either way the object pickle names its
storages by persistent id and builds tensors with ``torch._utils._rebuild_tensor_v2``.

The unpickler here knows only those few names (and OrderedDict); any other global is refused,
so a checkpoint cannot run code, as with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
          "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
          "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class CheckpointError(ValueError):
    """The file is not a checkpoint this reader understands (or it asks for code to run)."""


@dataclass(frozen=True)
class _StorageType:
    dtype: type


@dataclass
class _Storage:
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def numpy(self) -> np.ndarray:
        if self.storage.data is None:
            raise CheckpointError("a tensor's storage was never read: truncated checkpoint")
        item = self.storage.data.itemsize
        base = self.storage.data[self.offset:]
        if self.size and self.offset + 1 + sum((n - 1) * s for n, s in zip(self.size, self.stride)) > \
                len(self.storage.data):
            raise CheckpointError("a tensor runs past its storage: damaged checkpoint")
        return np.lib.stride_tricks.as_strided(base, self.size, [s * item for s in self.stride]).copy()


def _rebuild_tensor(storage, offset, size, stride, *_):
    return _Tensor(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *_):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages: dict[str, _Storage]):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in DTYPES:
            return _StorageType(DTYPES[name])
        raise CheckpointError(f"checkpoint refers to {module}.{name}, which a weights file has no use for")

    def persistent_load(self, pid):
        # legacy: ('storage', type, key, location, numel, view); zip: ('storage', type, key, location, numel)
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise CheckpointError(f"unexpected persistent id {pid!r:.80}")
        key, numel = str(pid[2]), int(pid[4])
        if len(pid) > 5 and pid[5] is not None:
            raise CheckpointError("storage views are not supported")
        return self.storages.setdefault(key, _Storage(pid[1].dtype, numel))


def _arrays(obj):
    """The object with every tensor turned into a numpy array."""
    if isinstance(obj, _Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: _arrays(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_arrays(v) for v in obj)
    return obj


def load(path: str | Path):
    """The checkpoint's object (dicts, lists, numbers) with numpy arrays in place of tensors."""
    data = Path(path).read_bytes()
    try:
        if data[:4] == b"PK\x03\x04":
            return _arrays(_load_zip(data))
        return _arrays(_load_legacy(data))
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError, ValueError, TypeError, IndexError,
            AttributeError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from e


def _load_legacy(data: bytes):
    f = io.BytesIO(data)
    safe = _Unpickler(f, {})   # magic, protocol and system info hold no globals
    if safe.load() != LEGACY_MAGIC:
        raise CheckpointError("not a PyTorch checkpoint (bad magic number)")
    safe.load()
    safe.load()
    storages: dict[str, _Storage] = {}
    obj = _Unpickler(f, storages).load()
    keys = _Unpickler(f, {}).load()
    for key in keys:
        s = storages[str(key)]
        (count,) = struct.unpack("<q", f.read(8))
        if count != s.numel:
            raise CheckpointError(f"storage {key}: {count} elements on disk, {s.numel} expected")
        n = count * np.dtype(s.dtype).itemsize
        raw = f.read(n)
        if len(raw) != n:
            raise CheckpointError(f"storage {key}: truncated")
        s.data = np.frombuffer(raw, dtype=np.dtype(s.dtype).newbyteorder("<"))
    return obj


def _load_zip(data: bytes):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        pkl = next((n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise CheckpointError("zip checkpoint without data.pkl")
        prefix = pkl[: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        obj = _Unpickler(io.BytesIO(z.read(pkl)), storages).load()
        for key, s in storages.items():
            raw = z.read(f"{prefix}data/{key}")
            if len(raw) != s.numel * np.dtype(s.dtype).itemsize:
                raise CheckpointError(f"storage {key}: {len(raw)} bytes, {s.numel} elements expected")
            s.data = np.frombuffer(raw, dtype=np.dtype(s.dtype).newbyteorder("<"))
    return obj
