"""Read an ONNX model's nodes and weights into numpy, without onnx or onnxruntime.

An ONNX file is one protobuf message (ModelProto). This reader decodes the wire format directly and
keeps only what a numpy runtime needs: each node's op type, inputs, outputs and attributes, and every
initializer tensor, those of subgraphs (a Loop's body) included. Nothing in the file is executed.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# TensorProto.DataType -> numpy (the types a model's weights and constants use)
DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
          10: np.float16, 11: np.float64}


class OnnxError(ValueError):
    """The file is not an ONNX model this reader understands."""


@dataclass(frozen=True)
class Node:
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, object]


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)   # initializers of this graph and its subgraphs


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        if i >= len(buf):
            raise OnnxError("truncated varint")
        b = buf[i]
        i += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, i
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of a message: ints for varints and fixed, bytes for the rest."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise OnnxError(f"unsupported protobuf wire type {wire}")
        if i > len(buf):
            raise OnnxError("truncated message")
        yield num, wire, v


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _ints(wire: int, v) -> list[int]:
    """A repeated int64 field: packed (one bytes value) or not (one varint)."""
    if wire == 0:
        return [_signed(v)]
    out, i = [], 0
    while i < len(v):
        x, i = _varint(v, i)
        out.append(_signed(x))
    return out


def _tensor(buf: bytes) -> tuple[str, np.ndarray]:
    dims: list[int] = []
    dtype, name, raw = 1, "", None
    floats: list[float] = []
    ints: list[int] = []
    for num, wire, v in _fields(buf):
        if num == 1:
            dims += _ints(wire, v)
        elif num == 2:
            dtype = v
        elif num == 4:
            floats += list(struct.unpack(f"<{len(v) // 4}f", v)) if wire == 2 else list(struct.unpack("<f", v))
        elif num in (5, 7):
            ints += _ints(wire, v)
        elif num == 8:
            name = v.decode()
        elif num == 9:
            raw = v
        elif num == 14 and v != 0:
            raise OnnxError(f"tensor {name or '?'} keeps its data outside the file")
    if dtype not in DTYPES:
        raise OnnxError(f"tensor {name}: unsupported data type {dtype}")
    np_type = DTYPES[dtype]
    if raw is not None:
        a = np.frombuffer(raw, np.dtype(np_type).newbyteorder("<")).astype(np_type)
    else:
        a = np.array(floats if floats else ints, np_type)
    size = int(np.prod(dims)) if dims else 1
    if a.size != size:
        raise OnnxError(f"tensor {name}: {a.size} values for shape {dims}")
    return name, a.reshape(dims)


def _attribute(buf: bytes, graph: Graph) -> tuple[str, object]:
    name, value, ints, floats = "", None, [], []
    for num, wire, v in _fields(buf):
        if num == 1:
            name = v.decode()
        elif num == 2:
            value = struct.unpack("<f", v)[0]
        elif num == 3:
            value = _signed(v)
        elif num == 4:
            value = v.decode(errors="replace")
        elif num == 5:
            value = _tensor(v)[1]
        elif num == 6:
            _graph(v, graph)           # a subgraph: its weights join the model's; its nodes are not kept
            value = "<graph>"
        elif num == 7:
            floats += list(struct.unpack(f"<{len(v) // 4}f", v)) if wire == 2 else list(struct.unpack("<f", v))
        elif num == 8:
            ints += _ints(wire, v)
    if value is None:
        value = tuple(ints) if ints else tuple(floats)
    return name, value


def _node(buf: bytes, graph: Graph) -> Node:
    inputs, outputs, op, attrs = [], [], "", {}
    for num, _, v in _fields(buf):
        if num == 1:
            inputs.append(v.decode())
        elif num == 2:
            outputs.append(v.decode())
        elif num == 4:
            op = v.decode()
        elif num == 5:
            k, a = _attribute(v, graph)
            attrs[k] = a
    return Node(op, tuple(inputs), tuple(outputs), attrs)


def _graph(buf: bytes, graph: Graph, top: bool = False) -> None:
    for num, _, v in _fields(buf):
        if num == 1:
            node = _node(v, graph)
            if top:
                graph.nodes.append(node)
            elif node.op == "Constant" and "value" in node.attrs:
                graph.tensors[node.outputs[0]] = node.attrs["value"]   # type: ignore[assignment]
        elif num == 5:
            name, a = _tensor(v)
            graph.tensors[name] = a


def load(path: str | Path) -> Graph:
    """The top graph's nodes, in order, and every initializer (subgraphs' too) by name."""
    buf = Path(path).read_bytes()
    graph = Graph()
    found = False
    for num, wire, v in _fields(buf):
        if num == 7 and wire == 2:
            _graph(v, graph, top=True)
            found = True
    if not found or not graph.nodes:
        raise OnnxError(f"{path}: no ONNX graph in the file")
    return graph
