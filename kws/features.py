"""Cepstral frames for template matching, and the mel power spectrogram the GE2E encoder expects."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torchaudio

from .config import SAMPLE_RATE, FeatureConfig


@lru_cache(maxsize=8)
def _mel(n_mels: int, win: int, hop: int, f_min: float, f_max: float, slaney: bool) -> torch.nn.Module:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE, n_fft=win, win_length=win, hop_length=hop, f_min=f_min, f_max=f_max,
        n_mels=n_mels, power=2.0, center=True, pad_mode="reflect",
        norm="slaney" if slaney else None, mel_scale="slaney" if slaney else "htk")


def mel_power(y: np.ndarray, n_mels: int, win: int, hop: int, f_min: float = 0.0,
              f_max: float | None = None, slaney: bool = False) -> np.ndarray:
    """(T, n_mels) mel power spectrogram."""
    f_max = f_max if f_max is not None else SAMPLE_RATE / 2
    with torch.inference_mode():
        m = _mel(n_mels, win, hop, f_min, f_max, slaney)(torch.from_numpy(np.ascontiguousarray(y, np.float32)))
    return m.T.numpy()


def logmel(y: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """(T, n_mels) log-mel frames at cfg.hop_ms, floored relative to the clip's loudest band energy."""
    win, hop = int(SAMPLE_RATE * cfg.win_ms / 1000), int(SAMPLE_RATE * cfg.hop_ms / 1000)
    m = mel_power(y, cfg.n_mels, win, hop, cfg.f_min, cfg.f_max)
    return np.log(m + float(m.max()) * cfg.relative_floor + 1e-10).astype(np.float32)


@lru_cache(maxsize=4)
def _dct(n_mels: int, n_ceps: int) -> np.ndarray:
    return torchaudio.functional.create_dct(n_ceps, n_mels, "ortho").numpy()


def _moving_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Centred moving average over w frames, edges extended (scipy.ndimage.uniform_filter1d, mode 'nearest')."""
    padded = np.concatenate([np.repeat(x[:1], w // 2, axis=0), x, np.repeat(x[-1:], (w - 1) // 2, axis=0)])
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(padded, axis=0, dtype=np.float64)])
    return (c[w:] - c[:-w]) / w


def cmvn(frames: np.ndarray, window: int = 0) -> np.ndarray:
    """Mean and variance normalisation per dimension: over the whole clip, or a sliding window."""
    if window <= 0:
        return (frames - frames.mean(axis=0)) / (frames.std(axis=0) + 1e-3)
    mu = _moving_mean(frames, window)
    var = _moving_mean(frames.astype(np.float64) ** 2, window) - mu ** 2
    return ((frames - mu) / (np.sqrt(np.maximum(var, 0.0)) + 1e-3)).astype(np.float32)


def stack(frames: np.ndarray, k: int) -> np.ndarray:
    """Average k consecutive frames (k=1: unchanged)."""
    if k <= 1:
        return frames
    t = len(frames) // k * k
    if t == 0:
        return frames.mean(axis=0, keepdims=True)
    return frames[:t].reshape(t // k, k, -1).mean(axis=1)


def frames_per_second(cfg: FeatureConfig = FeatureConfig()) -> float:
    return 1000.0 / (cfg.hop_ms * cfg.stack)


def keyword_frames(y: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Template-matching frames of a speech crop: MFCC 1..n_ceps-1, sliding CMVN, stacked."""
    ceps = logmel(y, cfg) @ _dct(cfg.n_mels, cfg.n_ceps)[:, 1:]
    return stack(cmvn(ceps, cfg.cmvn_frames), cfg.stack).astype(np.float32)
