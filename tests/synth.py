"""Tiny speech-like test audio: formant-synthesised 'words', so tests need no recordings.

A word is a sequence of vowel targets (F1, F2); a speaker is a pitch and a vocal-tract scale.
webrtcvad hears it as speech, and different words give different cepstral trajectories.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

SR = 16000
WORDS = {
    "alpha": [(730, 1090), (270, 2290), (530, 1840)],
    "bravo": [(300, 870), (660, 1720), (440, 1020)],
    "delta": [(390, 1990), (570, 840), (270, 2290), (730, 1090)],
    "omega": [(570, 840), (440, 1020), (660, 1720)],
}


def _resonator(x: np.ndarray, f: float, bw: float) -> np.ndarray:
    r = np.exp(-np.pi * bw / SR)
    a = [1, -2 * r * np.cos(2 * np.pi * f / SR), r * r]
    return lfilter([1 - r], a, x)


def word(name: str, f0: float = 120.0, scale: float = 1.0, seconds_per_vowel: float = 0.18,
         seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for f1, f2 in WORDS[name]:
        n = int(SR * seconds_per_vowel * rng.uniform(0.9, 1.1))
        t = np.arange(n) / SR
        pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t)) * rng.uniform(0.97, 1.03)
        pulses = (np.diff(np.floor(np.cumsum(pitch) / SR), prepend=0) > 0).astype(float)
        x = pulses + 0.02 * rng.standard_normal(n)
        y = sum(_resonator(x, f * scale, bw) for f, bw in ((f1, 80), (f2, 100), (2600, 150)))
        out.append(y * np.hanning(n) ** 0.3)
    y = np.concatenate(out)
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def utterance(names: list[str], f0: float = 120.0, scale: float = 1.0, seed: int = 0,
              noise_db: float = -60.0) -> np.ndarray:
    """Words with pauses and faint noise around them."""
    rng = np.random.default_rng(seed)
    gap = lambda s: np.zeros(int(SR * s), np.float32)  # noqa: E731
    parts = [gap(0.3)]
    for i, n in enumerate(names):
        parts += [gap(0.15)] if i else []
        parts.append(word(n, f0, scale, seed=seed * 31 + i))
    y = np.concatenate(parts + [gap(0.3)])
    return (y + 10 ** (noise_db / 20) * rng.standard_normal(len(y))).astype(np.float32)


def stream(utterances: list[tuple[list[str], float, float]], seed: int = 0, pause: tuple[float, float] = (0.6, 2.0),
           noise_db: float = -60.0) -> tuple[np.ndarray, list[tuple[float, float, list[str]]]]:
    """Utterances (words, f0, vocal-tract scale) in a row with random pauses, over faint noise.

    Returns the samples and, per utterance, (start s, end s, words): the truth a stream test checks against.
    """
    rng = np.random.default_rng(seed)
    parts, truth, pos = [], [], 0
    for k, (names, f0, scale) in enumerate(utterances):
        parts.append(np.zeros(int(SR * rng.uniform(*pause)), np.float32))
        pos += len(parts[-1])
        parts.append(utterance(names, f0, scale, seed=seed * 97 + k, noise_db=-90.0))
        truth.append((pos / SR, (pos + len(parts[-1])) / SR, names))
        pos += len(parts[-1])
    y = np.concatenate(parts + [np.zeros(SR, np.float32)])
    return (y + 10 ** (noise_db / 20) * rng.standard_normal(len(y))).astype(np.float32), truth
