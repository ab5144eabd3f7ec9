"""Noise suppression before judging: Xiph's RNNoise (BSD-3-Clause), an optional extra (`pip install pyrnnoise`).

Only the wheel's librnnoise.so is used, by ctypes: the pyrnnoise package itself imports audio libraries
(PyAV) that are not needed. RNNoise runs at 48 kHz in 10 ms frames; 16 kHz audio goes up 3x and back.
It costs about 0.035 s per second of audio on this project's CPU (docs/results.md, v10), so it is an
option (StreamConfig.denoise), not a default.
"""
from __future__ import annotations

import ctypes
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from kws.config import SAMPLE_RATE
from kws.signal.audio import Resampler
from kws.errors import WeightsError

RATE = 48000                      # RNNoise's own rate
SCALE = 32767.0                   # RNNoise works on 16-bit sample values
INSTALL = "pip install pyrnnoise --no-deps (or .[denoise])"


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL:
    spec = importlib.util.find_spec("pyrnnoise")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"denoising needs RNNoise: {INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / "librnnoise.so"
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        raise WeightsError(f"{path}: cannot load RNNoise ({e}); reinstall: {INSTALL}") from e
    lib.rnnoise_create.argtypes, lib.rnnoise_create.restype = [ctypes.c_void_p], ctypes.c_void_p
    lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                          ctypes.POINTER(ctypes.c_float)]
    lib.rnnoise_process_frame.restype = ctypes.c_float
    lib.rnnoise_get_frame_size.restype = ctypes.c_int
    return lib


class StreamDenoiser:
    """RNNoise over a stream, block by block, with one state: push() returns the denoised samples that are
    ready (a few ms behind the input: the resamplers' context and part of a frame wait), flush() the rest."""

    def __init__(self) -> None:
        self.lib = _library()
        self.frame = int(self.lib.rnnoise_get_frame_size())
        self.up, self.down = Resampler(SAMPLE_RATE, RATE), Resampler(RATE, SAMPLE_RATE)
        self.state = self.lib.rnnoise_create(None)
        self.todo = np.zeros(0, np.float32)    # 48 kHz samples short of a frame

    def __del__(self) -> None:
        state, self.state = getattr(self, "state", None), None
        if state:
            self.lib.rnnoise_destroy(state)

    def _frames(self, x: np.ndarray) -> np.ndarray:
        x = np.concatenate([self.todo, x])
        n = len(x) // self.frame * self.frame
        out, self.todo = (np.clip(x[:n], -1, 1) * SCALE).astype(np.float32), x[n:]
        ptr = ctypes.POINTER(ctypes.c_float)
        for a in range(0, n, self.frame):
            f = out[a:a + self.frame]          # a contiguous view: denoised in place
            self.lib.rnnoise_process_frame(self.state, f.ctypes.data_as(ptr), f.ctypes.data_as(ptr))
        return out / SCALE

    def push(self, y: np.ndarray) -> np.ndarray:
        return self.down(self._frames(self.up(np.asarray(y, np.float32))))

    def flush(self) -> np.ndarray:
        tail = self.up(np.zeros(0, np.float32), last=True)
        n = len(self.todo) + len(tail)
        done = self._frames(np.concatenate([tail, np.zeros(-n % self.frame, np.float32)]))[:n]   # last part frame: silence-padded
        return self.down(done, last=True)


def denoise(y: np.ndarray) -> np.ndarray:
    """A whole clip through a fresh RNNoise state: the same length out."""
    d = StreamDenoiser()
    out = np.concatenate([d.push(y), d.flush()])[:len(y)]
    return np.pad(out, (0, len(y) - len(out))).astype(np.float32)
