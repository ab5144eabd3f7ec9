"""EfficientWord-Net's word embedding: one 2048-d vector per 1.5 s window, which says what word was said.

The model is EfficientWord-Net's resnet_50_arc (Apache-2.0), trained with an ArcFace loss to tell
spoken words apart; its weights are read from the EfficientWord-Net wheel (the `ewn` extra, installed
with --no-deps) and run by onnxruntime. An utterance longer than a window is seen as windows every
HOP_S; two utterances are as alike as their closest pair of windows (cosine).
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from kws.errors import KwsError
from kws.signal.audio import SAMPLE_RATE

WINDOW = int(1.5 * SAMPLE_RATE)   # the model's input: 1.5 s, 149 frames of 64 log-mel bands
HOP_S = 0.25                      # windows of a longer utterance
# The int8 model: as good as the float one on train streams (a proxy), a quarter of its size.
MODEL = "models/resnet_50_arc/slim_93%_accuracy_72.7390%_qint8.onnx"
INSTALL = "pip install 'kws[ewn]' && pip install --no-deps EfficientWord-Net==1.0.5"


def model_path() -> Path:
    """The ONNX file inside the installed EfficientWord-Net package, found without importing it (it is
    installed for this file only, without its dependencies)."""
    spec = importlib.util.find_spec("eff_word_net")
    path = Path(next(iter(spec.submodule_search_locations or []), "")) / MODEL if spec else None
    if path is None or not path.is_file():
        raise KwsError(f"EfficientWord-Net's weights are not installed ({INSTALL})")
    return path


@lru_cache(maxsize=1)
def session():
    try:
        import onnxruntime as rt
    except ImportError as e:
        raise KwsError(f"the word embedding needs onnxruntime ({INSTALL})") from e
    opts = rt.SessionOptions()
    opts.intra_op_num_threads = 1    # one core per process, as the rest of the runtime
    opts.inter_op_num_threads = 1
    # No memory arena or planned buffers: 20-28 MB less at the peak, for 10-30 % more CPU (docs/stream_bench.md, v33).
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    return rt.InferenceSession(str(model_path()), opts, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=1)
def _filterbank() -> np.ndarray:
    """python_speech_features' 64 triangular mel filters over a 512-point FFT, 0-8 kHz (what the model saw)."""
    mel = np.linspace(0.0, 2595 * np.log10(1 + SAMPLE_RATE / 2 / 700.0), 64 + 2)
    bins = np.floor((512 + 1) * 700 * (10 ** (mel / 2595.0) - 1) / SAMPLE_RATE).astype(int)
    fb = np.zeros((64, 257))
    for j in range(64):
        a, b, c = bins[j], bins[j + 1], bins[j + 2]
        fb[j, a:b] = (np.arange(a, b) - a) / max(b - a, 1)
        fb[j, b:c] = (c - np.arange(b, c)) / max(c - b, 1)
    return fb.T


def log_fbank(window: np.ndarray) -> np.ndarray:
    """(149, 64) log filterbank energies of one window: 25 ms rectangular frames every 10 ms, no pre-emphasis."""
    n = 1 + -(-(len(window) - 400) // 160)            # python_speech_features: the last frame zero-padded
    padded = np.concatenate([window.astype(np.float64), np.zeros((n - 1) * 160 + 400 - len(window))])
    frames = np.lib.stride_tricks.sliding_window_view(padded, 400)[::160][:n]
    power = np.abs(np.fft.rfft(frames, 512)) ** 2 / 512
    feat = power @ _filterbank()
    return np.log(np.where(feat == 0, np.finfo(float).eps, feat)).astype(np.float32)


def windows(y: np.ndarray) -> list[np.ndarray]:
    """The model's windows of an utterance: a short one centred in zeros, a long one every HOP_S."""
    y = np.asarray(y, np.float32)
    if len(y) <= WINDOW:
        a = (WINDOW - len(y)) // 2
        return [np.concatenate([np.zeros(a, np.float32), y, np.zeros(WINDOW - len(y) - a, np.float32)])]
    hop = int(HOP_S * SAMPLE_RATE)
    starts = list(range(0, len(y) - WINDOW + 1, hop))
    if starts[-1] != len(y) - WINDOW:
        starts.append(len(y) - WINDOW)
    return [y[s:s + WINDOW] for s in starts]


def embed(y: np.ndarray) -> np.ndarray:
    """(n_windows, 2048) unit embeddings of an utterance."""
    s = session()
    name = s.get_inputs()[0].name
    out = np.concatenate([s.run(None, {name: log_fbank(w)[None, None]})[0] for w in windows(y)])
    return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-9)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the closest pair of windows of two embedded utterances."""
    return float((a @ b.T).max())
