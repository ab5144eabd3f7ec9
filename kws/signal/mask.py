"""A small learned noise mask: 40 mel-band gains a frame, applied to the STFT and heard back as audio.

The network (trained by scripts/train_mask.py --out FILE; load_mask(FILE)) reads the clip's log-mel three ways: under a
sliding mean/variance window, relative to the clip's loudest band energy, and relative to each band's
10th percentile (its noise floor). Dilated 1-D convolutions see about +-0.3 s, and give each band's power
gain, never under the file's floor gain. The gains are spread over the STFT bins by the
mel filters, and the masked STFT is added back frame over frame. Pure numpy, at about a thirtieth of RNNoise's
cost (kws/signal/denoise.py). Measured with scripts/eval_denoise.py and through the platform; no default uses it,
and its weights are not shipped (docs/results.md, v23).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from kws.config import PRETRAINED_DIR, SAMPLE_RATE, FeatureConfig
from kws.errors import WeightsError
from kws.signal.features import _hann, cmvn, framed_spectrum, mel_filterbank

MASK_FILE = "mask.npz"
CFG = FeatureConfig()                                  # the mel bands the mask was trained on
WIN, HOP = int(SAMPLE_RATE * CFG.win_ms / 1000), int(SAMPLE_RATE * CFG.hop_ms / 1000)
REL_FLOOR = 1e-5                                       # log-mel floor, relative to the clip's peak band energy


def mask_inputs(mel: np.ndarray) -> np.ndarray:
    """(T, 3 * n_mels) network inputs from (T, n_mels) mel power; scripts/train_mask.py uses the same."""
    peak = float(mel.max(initial=0.0)) + 1e-10
    lf = np.log(mel / peak + REL_FLOOR).astype(np.float32)            # <= 0
    floor = np.percentile(lf, 10, axis=0) if len(lf) else np.zeros(mel.shape[1], np.float32)
    return np.concatenate([cmvn(lf, CFG.cmvn_frames), lf / 5.0, (lf - floor) / 5.0], axis=1).astype(np.float32)


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, dilation: int) -> np.ndarray:
    """'same' 1-D convolution over time: x (T, C_in), w (k * C_in, C_out) as scripts/train_mask.py's export lays it out."""
    k = w.shape[0] // x.shape[1]
    half = (k - 1) // 2 * dilation
    xp = np.pad(x, ((half, half), (0, 0)))
    cols = np.concatenate([xp[i * dilation:i * dilation + len(x)] for i in range(k)], axis=1)
    return cols @ w + b


class MaskNet:
    """The exported network: a first convolution, residual dilated ones, a last 1x1, then gains in [floor, 1]."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.layers = [(arrays[f"w{i}"].astype(np.float32), arrays[f"b{i}"].astype(np.float32), int(arrays[f"d{i}"]))
                       for i in range(int(arrays["n_layers"]))]
        self.floor_gain = float(arrays["floor_gain"])

    def gains(self, mel: np.ndarray) -> np.ndarray:
        """(T, n_mels) power gains in [floor_gain, 1]."""
        h = mask_inputs(mel)
        last = len(self.layers) - 1
        for i, (w, b, d) in enumerate(self.layers):
            z = _conv(h, w, b, d)
            if i == 0:
                h = np.maximum(z, 0.0)
            elif i < last:
                h = h + np.maximum(z, 0.0)                  # residual blocks
            else:
                h = z
        return self.floor_gain + (1.0 - self.floor_gain) / (1.0 + np.exp(-h))


@lru_cache(maxsize=2)
def load_mask(path: str = "") -> MaskNet:
    p = Path(path) if path else PRETRAINED_DIR / MASK_FILE
    if not p.exists():
        raise WeightsError(f"{p} is missing: train it with scripts/train_mask.py")
    with np.load(p) as z:
        return MaskNet({k: z[k] for k in z.files})


@lru_cache(maxsize=1)
def _bin_weights() -> np.ndarray:
    """(n_mels, n_bins): each STFT bin's gain as the filter-weighted mean of its bands' gains; bins no filter
    covers (under f_min, over f_max) take the nearest band's."""
    fb = mel_filterbank(WIN, CFG.n_mels, CFG.f_min, CFG.f_max, False)        # (bins, mels)
    w = fb.copy()
    empty = w.sum(axis=1) == 0
    first = int(np.argmax(~empty))
    w[empty & (np.arange(len(w)) < first), 0] = 1.0
    w[empty & (np.arange(len(w)) >= first), -1] = 1.0
    return (w / w.sum(axis=1, keepdims=True)).T.astype(np.float32)


def denoise(y: np.ndarray, net: MaskNet | None = None) -> np.ndarray:
    """The clip with its noise masked out: the same length, the same framing as the features' STFT."""
    y = np.asarray(y, np.float32)
    if len(y) <= WIN // 2:
        return y
    net = net or load_mask()
    pad = WIN // 2
    yp = np.pad(y, (pad, pad), mode="reflect")
    spec = framed_spectrum(yp, WIN, HOP)
    n, win = len(spec), _hann(WIN)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    mel = power @ mel_filterbank(WIN, CFG.n_mels, CFG.f_min, CFG.f_max, False)
    g = net.gains(mel) @ _bin_weights()
    out = np.fft.irfft(spec * np.sqrt(g), n=WIN, axis=1).astype(np.float32) * win
    acc, norm = np.zeros(len(yp), np.float32), np.zeros(len(yp), np.float32)
    w2 = win ** 2
    for j in range(n):   # weighted overlap-add
        acc[j * HOP:j * HOP + WIN] += out[j]
        norm[j * HOP:j * HOP + WIN] += w2
    return (acc / np.maximum(norm, 1e-3))[pad:pad + len(y)]
