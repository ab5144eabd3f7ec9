"""kws.nn.onnxfile reads an ONNX model's nodes and weights from the protobuf wire format."""
import struct

import numpy as np
import pytest

from kws.nn import onnxfile


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _field(num: int, value) -> bytes:
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    return _varint(num << 3 | 2) + _varint(len(value)) + value


def _tensor(name: str, a: np.ndarray, raw: bool = True) -> bytes:
    dtype = {np.dtype(np.float32): 1, np.dtype(np.int64): 7}[a.dtype]
    out = b"".join(_field(1, d) for d in a.shape) + _field(2, dtype) + _field(8, name.encode())
    if raw:
        return out + _field(9, a.astype(a.dtype.newbyteorder("<")).tobytes())
    if dtype == 1:
        return out + _field(4, struct.pack(f"<{a.size}f", *a.ravel()))
    return out + _field(7, b"".join(_varint(int(v)) for v in a.ravel()))


def _model(nodes: bytes, inits: bytes) -> bytes:
    return _field(1, 7) + _field(7, nodes + inits)


def _node(op: str, inputs, outputs, attrs: bytes = b"") -> bytes:
    return (b"".join(_field(1, i.encode()) for i in inputs) + b"".join(_field(2, o.encode()) for o in outputs)
            + _field(4, op.encode()) + attrs)


def test_nodes_attributes_and_tensors_in_every_encoding(tmp_path):
    w = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 5.5
    k = np.array([-3, 0, 7], np.int64)
    body = _field(5, _tensor("inner", np.array([0.25], np.float32)))
    attrs = (_field(5, _field(1, b"kernel_shape") + _field(8, _varint(3) + _varint(1)))   # packed ints
             + _field(5, _field(1, b"alpha") + _varint(2 << 3 | 5) + struct.pack("<f", 0.2))
             + _field(5, _field(1, b"auto_pad") + _field(4, b"SAME_UPPER"))
             + _field(5, _field(1, b"body") + _field(6, body)))
    nodes = _field(1, _node("Conv", ["x", "w"], ["y"], attrs)) + _field(1, _node("Relu", ["y"], ["z"]))
    inits = _field(5, _tensor("w", w)) + _field(5, _tensor("k", k, raw=False)) + _field(5, _tensor("f", w, raw=False))
    path = tmp_path / "m.onnx"
    path.write_bytes(_model(nodes, inits))
    g = onnxfile.load(path)
    assert [n.op for n in g.nodes] == ["Conv", "Relu"]
    conv = g.nodes[0]
    assert conv.inputs == ("x", "w") and conv.outputs == ("y",)
    assert conv.attrs["kernel_shape"] == (3, 1) and conv.attrs["auto_pad"] == "SAME_UPPER"
    assert conv.attrs["alpha"] == pytest.approx(0.2)
    np.testing.assert_array_equal(g.tensors["w"], w)
    np.testing.assert_array_equal(g.tensors["f"], w)
    np.testing.assert_array_equal(g.tensors["k"], k)
    np.testing.assert_array_equal(g.tensors["inner"], [0.25])      # a subgraph's weights join the model's


@pytest.mark.parametrize("data, why", [
    (b"", "no ONNX graph"),
    (_field(7, _field(5, _field(1, 4) + _field(2, 1) + _field(9, b"\0" * 8))), "2 values for shape"),
    (_field(7, _field(5, _field(2, 8) + _field(8, b"s"))), "unsupported data type"),
    (b"\x3a\x05ab", "truncated"),
    (b"\x3b", "wire type"),
])
def test_damaged_files_are_refused_with_a_reason(tmp_path, data, why):
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(onnxfile.OnnxError, match=why):
        onnxfile.load(path)
