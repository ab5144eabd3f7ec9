"""The enrollment takes heard in noise: copies of a take mixed with pretrained/take_noise.flac.

The noise file holds babble of train-split voices and synthetic noise (scripts/build_take_noise.py, from the
training noise bank), never the dev noise. The copies are deterministic: the same take always gets the same
stretch of noise, so a profile's templates do not change from one run to the next.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import soundfile as sf

from kws.config import PRETRAINED_DIR, SAMPLE_RATE, TAKE_NOISE
from kws.errors import WeightsError


@lru_cache(maxsize=1)
def take_noise() -> np.ndarray:
    path = PRETRAINED_DIR / TAKE_NOISE
    try:
        y, sr = sf.read(path, dtype="float32")
    except (OSError, RuntimeError) as e:
        raise WeightsError(f"{path}: the takes' noise cannot be read ({e}); rebuild it with "
                           "scripts/build_take_noise.py") from e
    if sr != SAMPLE_RATE or y.ndim != 1 or len(y) < SAMPLE_RATE:
        raise WeightsError(f"{path}: expected at least 1 s of 16 kHz mono noise")
    return y


def mix_at_snr(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """y plus noise (same length) scaled so that mean power(y) / mean power(noise) is snr_db.

    The SNR is over the whole clip, silence included, as the platform's test clips were made.
    """
    scale = np.sqrt((np.mean(y ** 2) + 1e-10) / (np.mean(noise ** 2) + 1e-10) / 10 ** (snr_db / 10))
    return y + noise * scale


def noisy_copies(y: np.ndarray, snrs_db: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """y mixed with a stretch of the take noise at each SNR; the stretches are chosen by seed."""
    noise, rng = take_noise(), np.random.default_rng(seed)
    y = np.asarray(y, np.float32)
    reps = int(np.ceil(len(y) / len(noise)))
    source = np.tile(noise, reps + 1) if reps else noise
    out = []
    for snr in snrs_db:
        s = int(rng.integers(0, len(source) - len(y) + 1))
        out.append(mix_at_snr(y, source[s:s + len(y)], snr).astype(np.float32))
    return out
