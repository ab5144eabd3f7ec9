"""The recording conditions of a clip, from its audio alone: speech level, noise level, SNR, length, clipping.

One owner for these measurements: enrollment's quality report judges takes by them, and the detector
hands them to the fusion, so that a decision can be made with each clip's conditions in view (a
phrase said at 3 dB SNR matches its clean templates less well than the same phrase said in quiet).
"""
from __future__ import annotations

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
    # Median, not mean: onsets the VAD missed should not count as noise. With hardly any pause (a tight
    # cut, or noise loud enough for the VAD to call it speech) the quietest 5% of frames stand in for it.
    paused = int((~speech).sum()) >= max(3, count // 10)
    quiet = power[~speech] if paused else np.sort(power)[:max(1, count // 20)]
    noise = db(float(np.median(quiet))) if count else math.nan
    snr = level - noise if speech.any() and not math.isnan(noise) else math.nan
    clipped = float(np.mean(np.abs(y) >= CLIP_PEAK)) if len(y) else 0.0
    return Conditions(speech_s, level, noise, snr, clipped, paused)
