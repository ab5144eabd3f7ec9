"""The recording conditions of a clip, from its audio alone: speech level, noise level, SNR, length, clipping.

One owner for these measurements: enrollment's quality report judges takes by them, and the detector
hands them to the fusion, so that a decision can be made with each clip's conditions in view (a
phrase said at 3 dB SNR matches its clean templates less well than the same phrase said in quiet).
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np

from kws.config import SAMPLE_RATE, VadConfig
from kws.signal.vad import frame_decisions, frame_samples, segments_of

SILENCE_DB = -120.0     # the level of digital silence (log of zero)
CLIP_PEAK = 0.999       # a sample at full scale: the recording was clipped


@dataclass(frozen=True)
class Conditions:
    speech_s: float             # VAD speech, pauses inside the phrase included
    level_dbfs: float           # RMS over speech frames (SILENCE_DB: no speech)
    noise_dbfs: float           # median RMS of non-speech frames (NaN: too short to tell)
    snr_db: float               # level minus noise (NaN without speech)
    clipped_fraction: float     # samples at full scale
    paused: bool                # enough non-speech frames to measure the noise on


def db(power: float) -> float:
    return 10 * math.log10(power) if power > 0 else SILENCE_DB


def noise_of(power: np.ndarray, speech: np.ndarray) -> tuple[float, bool]:
    """(noise dBFS, paused) from per-frame powers and the VAD's decisions (NaN: no frame)."""
    # Median, not mean: onsets the VAD missed should not count as noise. With hardly any pause (a tight
    # cut, or noise loud enough for the VAD to call it speech) the quietest 5% of frames stand in for it.
    count = len(power)
    paused = int((~speech).sum()) >= max(3, count // 10)
    if not count:
        return math.nan, paused
    quiet = power[~speech] if paused else np.sort(power)[:max(1, count // 20)]
    return db(float(np.median(quiet))), paused


def measure(y: np.ndarray, cfg: VadConfig = VadConfig(), speech: np.ndarray | None = None) -> Conditions:
    """Conditions of 16 kHz mono samples; speech: frame_decisions(y, cfg), when the caller has them."""
    n = frame_samples(cfg)
    count = len(y) // n
    speech = frame_decisions(y, cfg) if speech is None else speech
    # Variance per frame, not mean square: a sound card's DC offset is no noise anyone hears.
    # In chunks of frames, so that a long recording costs no float64 copy of itself.
    frames = y[:count * n].reshape(count, n)
    power = np.concatenate([frames[a:a + 4096].astype(np.float64).var(axis=1)
                            for a in range(0, count, 4096)]) if count else np.zeros(0)
    speech_s = sum(b - a for a, b in segments_of(speech, cfg, len(y), pad_ms=0)) / SAMPLE_RATE
    level = db(float(power[speech].mean())) if speech.any() else SILENCE_DB
    noise, paused = noise_of(power, speech)
    snr = level - noise if speech.any() and not math.isnan(noise) else math.nan
    clipped = float(np.mean(np.abs(y) >= CLIP_PEAK)) if len(y) else 0.0
    return Conditions(speech_s, level, noise, snr, clipped, paused)


class NoiseFloor:
    """A stream's running estimate of its noise, from its own non-speech: measure()'s rule (noise_of) over
    the last window_s, so that a phrase said among other voices is judged against the room, not the voices.
    keep_samples: it also keeps those non-speech frames' samples (samples()), for noise-matched templates."""

    def __init__(self, cfg: VadConfig = VadConfig(), window_s: float = 20.0, keep_samples: bool = False):
        n = max(1, int(window_s * 1000 / cfg.frame_ms))
        self.power: collections.deque[float] = collections.deque(maxlen=n)
        self.speech: collections.deque[bool] = collections.deque(maxlen=n)
        self.frames: collections.deque[np.ndarray | None] | None = collections.deque(maxlen=n) if keep_samples else None

    def push(self, power: np.ndarray, speech: np.ndarray, frames: np.ndarray | None = None) -> None:
        self.power.extend(power.tolist())
        self.speech.extend(speech.tolist())
        if self.frames is not None:
            if frames is None or len(frames) != len(power):
                raise ValueError("NoiseFloor(keep_samples=True) needs each frame's samples")
            self.frames.extend(None if s else f.copy() for f, s in zip(frames, speech))

    def dbfs(self) -> float:
        """The noise level now (NaN before any frame)."""
        return noise_of(np.array(self.power), np.array(self.speech, bool))[0]

    def samples(self, max_samples: int) -> np.ndarray:
        """Up to max_samples of the window's non-speech, newest first, from its quieter half of frames (an
        onset the VAD missed is no noise); empty without keep_samples or before any pause."""
        if self.frames is None:
            return np.zeros(0, np.float32)
        kept = [(p, f) for p, f in zip(self.power, self.frames) if f is not None]
        if not kept:
            return np.zeros(0, np.float32)
        median = float(np.median([p for p, _ in kept]))
        quiet = [f for p, f in reversed(kept) if p <= median]
        return np.concatenate(quiet)[:max_samples]


def in_stream(c: Conditions, noise_dbfs: float) -> Conditions:
    """A clip cut from a stream, in the stream's noise: its own speech level, the stream's noise floor."""
    if math.isnan(noise_dbfs):
        return c
    snr = c.level_dbfs - noise_dbfs if c.level_dbfs > SILENCE_DB else math.nan
    return Conditions(c.speech_s, c.level_dbfs, noise_dbfs, snr, c.clipped_fraction, True)
