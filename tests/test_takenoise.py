"""The takes heard in noise (kws/signal/takenoise.py) and the word embedding's noisy takes."""
from dataclasses import replace

import numpy as np
import pytest

from kws.config import DEFAULT, PRETRAINED_DIR, SAMPLE_RATE, TAKE_NOISE, WORD_TAKE_SNRS_DB
from kws.errors import WeightsError
from kws.scoring.calibrate import calibration_name
from kws.signal import takenoise
from synth import utterance


def test_the_shipped_noise_is_16k_mono_and_never_silent():
    y = takenoise.take_noise()
    assert (PRETRAINED_DIR / TAKE_NOISE).is_file() and y.ndim == 1 and len(y) >= 10 * SAMPLE_RATE
    rms = [np.sqrt(np.mean(y[i:i + SAMPLE_RATE] ** 2)) for i in range(0, len(y) - SAMPLE_RATE, SAMPLE_RATE)]
    assert min(rms) > 0.005


def test_copies_are_at_their_snr_and_the_same_for_the_same_seed():
    y = utterance(["alpha", "delta"], seed=3)
    a, b = takenoise.noisy_copies(y, (0.0, 10.0), seed=1), takenoise.noisy_copies(y, (0.0, 10.0), seed=1)
    assert all(np.array_equal(x, z) for x, z in zip(a, b))
    assert not np.array_equal(a[0], takenoise.noisy_copies(y, (0.0,), seed=2)[0])
    for copy, snr in zip(a, (0.0, 10.0)):
        added = copy - y
        assert len(copy) == len(y)
        assert 10 * np.log10(np.mean(y ** 2) / np.mean(added ** 2)) == pytest.approx(snr, abs=0.01)
    long = np.tile(y, 40)                                   # longer than the noise file: it is repeated
    assert len(takenoise.noisy_copies(long, (5.0,), seed=0)[0]) == len(long)


def test_a_missing_noise_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(takenoise, "PRETRAINED_DIR", tmp_path)
    takenoise.take_noise.cache_clear()
    try:
        with pytest.raises(WeightsError, match="build_take_noise"):
            takenoise.take_noise()
    finally:
        takenoise.take_noise.cache_clear()


def test_noisy_takes_add_their_copies_to_each_takes_windows(monkeypatch):
    """A clip meets each take's closest version (clean or noisy); the leave-one-out stays the clean takes'."""
    class Takes:                       # what take_words reads of a profile (weakly referenced)
        def __init__(self, audio):
            self.template_audio = audio

    from kws.nn import efficientword
    from kws.scoring import detect
    monkeypatch.setattr(efficientword, "embed", lambda y: np.abs(np.fft.rfft(np.asarray(y, np.float64), 64))[None, :]
                        / (np.linalg.norm(np.abs(np.fft.rfft(np.asarray(y, np.float64), 64))) + 1e-9))
    profile = Takes([utterance(["alpha", "delta"], seed=s) for s in range(5)])
    clean, loo = detect.take_words(profile, 3)
    noisy, loo_n = detect.take_words(profile, 3, noisy=True)
    assert all(c.shape[0] == 1 and n.shape[0] == 1 + len(WORD_TAKE_SNRS_DB) for c, n in zip(clean, noisy))
    assert all(np.array_equal(c[0], n[0]) for c, n in zip(clean, noisy)) and loo == loo_n
    noisy_clip = efficientword.embed(takenoise.noisy_copies(profile.template_audio[0], (0.0,), seed=0)[0])
    assert efficientword.similarity(noisy[0], noisy_clip) >= efficientword.similarity(clean[0], noisy_clip)


def test_noisy_takes_have_their_own_judges():
    ewn = replace(DEFAULT, detect=replace(DEFAULT.detect, word_embedding=True))
    nt = replace(ewn, detect=replace(ewn.detect, word_noisy_takes=True))
    assert "_ewn_" in calibration_name(ewn) and "_ewn-nt_" in calibration_name(nt)
    assert "ewn" not in calibration_name(replace(DEFAULT, detect=replace(DEFAULT.detect, word_noisy_takes=True)))
