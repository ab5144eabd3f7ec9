"""kws.nn.torchfile reads torch checkpoints without torch: both layouts, and refuses code."""
import collections
import io
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from kws.nn import torchfile


class _FakeTorch:
    """Just enough of torch's names for pickle to write what torch.save writes."""

    def __enter__(self):
        self.saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
        t, u = types.ModuleType("torch"), types.ModuleType("torch._utils")
        for name in ("FloatStorage", "HalfStorage", "LongStorage"):
            setattr(t, name, type(name, (), {"__module__": "torch"}))

        def _rebuild_tensor_v2(*a):
            raise AssertionError("never called when writing")
        _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
        u._rebuild_tensor_v2 = _rebuild_tensor_v2
        t._utils = u
        sys.modules.update({"torch": t, "torch._utils": u})
        self.torch = t
        return t

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


class _Tensor:
    def __init__(self, a: np.ndarray, offset: int = 0):
        self.a, self.offset = a, offset


def _write(obj, legacy: bool) -> bytes:
    """A checkpoint of obj (tensors as _Tensor over their own storage), as torch.save lays it out."""
    with _FakeTorch() as torch:
        storages: list[np.ndarray] = []
        kind = {np.float32: torch.FloatStorage, np.float16: torch.HalfStorage, np.int64: torch.LongStorage}

        class P(pickle.Pickler):
            def persistent_id(self, o):
                if isinstance(o, np.ndarray):
                    storages.append(o)
                    pid = ("storage", kind[o.dtype.type], str(len(storages) - 1), "cpu", o.size)
                    return pid + (None,) if legacy else pid
                return None

            def reducer_override(self, o):
                if isinstance(o, _Tensor):
                    base = np.concatenate([np.zeros(o.offset, o.a.dtype), o.a.ravel()])
                    strides = tuple(s // o.a.itemsize for s in o.a.strides) if o.a.size else ()
                    return (sys.modules["torch._utils"]._rebuild_tensor_v2,
                            (base, o.offset, o.a.shape, strides, False, collections.OrderedDict()))
                return NotImplemented

        body = io.BytesIO()
        P(body, protocol=2).dump(obj)
    if legacy:
        out = io.BytesIO()
        for head in (torchfile.LEGACY_MAGIC, 1001, {"little_endian": True}):
            pickle.dump(head, out, protocol=2)
        out.write(body.getvalue())
        pickle.dump([str(i) for i in range(len(storages))], out, protocol=2)
        for a in storages:
            out.write(struct.pack("<q", a.size) + a.astype(a.dtype.newbyteorder("<")).tobytes())
        return out.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", body.getvalue())
        for i, a in enumerate(storages):
            z.writestr(f"archive/data/{i}", a.tobytes())
    return out.getvalue()


@pytest.mark.parametrize("legacy", [True, False])
def test_reads_both_layouts(tmp_path, legacy):
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    state = {"model_state": collections.OrderedDict(w=_Tensor(w), half=_Tensor(np.ones(5, np.float16)),
                                                    ids=_Tensor(np.array([3, 1], np.int64), offset=2)),
             "step": 7, "note": ["x", _Tensor(np.float32([1.5]))]}
    path = tmp_path / "c.pt"
    path.write_bytes(_write(state, legacy))
    got = torchfile.load(path)
    assert got["step"] == 7 and got["note"][0] == "x" and np.array_equal(got["note"][1], [1.5])
    m = got["model_state"]
    assert np.array_equal(m["w"], w) and m["w"].dtype == np.float32
    assert m["half"].dtype == np.float16 and np.array_equal(m["ids"], [3, 1])


def test_refuses_code_and_garbage(tmp_path):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"".join(pickle.dumps(x, protocol=2) for x in (torchfile.LEGACY_MAGIC, 1001, {}))
                     + pickle.dumps(os.system, protocol=2))
    with pytest.raises(torchfile.CheckpointError, match="system"):
        torchfile.load(evil)
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(torchfile.CheckpointError):
        torchfile.load(tmp_path / "junk.pt")
    good = _write({"w": _Tensor(np.ones(100, np.float32))}, legacy=True)
    (tmp_path / "cut.pt").write_bytes(good[:-50])
    with pytest.raises(torchfile.CheckpointError, match="truncated"):
        torchfile.load(tmp_path / "cut.pt")


def test_matches_torch_load_on_the_ge2e_checkpoint():
    torch = pytest.importorskip("torch")
    from kws.nn.encoder import ge2e_weights_path
    path = ge2e_weights_path()
    ref = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    got = torchfile.load(path)["model_state"]
    assert list(got) == list(ref)
    assert all(np.array_equal(got[k], v.numpy()) for k, v in ref.items())
