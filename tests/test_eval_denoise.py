"""scripts/eval_denoise.py: the denoisers it measures keep a clip's length and take noise out, and its keyword
EER tells a phrase from other words."""
import numpy as np
import pytest

import eval_denoise as ed
from kws.config import SAMPLE_RATE


def tone_in_noise(seconds: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    voiced = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    noise = 0.05 * np.random.default_rng(seed).standard_normal(len(t)).astype(np.float32)
    return voiced, noise


def test_none_is_the_identity_and_unknown_names_are_refused():
    y = np.arange(5, dtype=np.float32)
    assert ed.denoiser("none")(y) is y
    with pytest.raises(SystemExit, match="unknown denoiser"):
        ed.denoiser("wiener")


def test_rnnoise_keeps_the_length_and_lowers_the_noise():
    pytest.importorskip("pyrnnoise")   # the wheel's librnnoise.so only; an extra ([denoise])
    voiced, noise = tone_in_noise()
    out = ed.RNNoise()(noise + voiced)
    assert out.shape == voiced.shape and out.dtype == np.float32
    # the noise-only input comes out much quieter; the tone is not silenced
    assert np.mean(ed.RNNoise()(noise) ** 2) < 0.25 * np.mean(noise ** 2)
    assert np.mean(out ** 2) > 0.05 * np.mean(voiced ** 2)


def test_keyword_eer_separates_a_phrase_from_other_sounds():
    rng = np.random.default_rng(1)
    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE

    def chirp(f0: float, f1: float) -> np.ndarray:
        y = 0.3 * np.sin(2 * np.pi * (f0 + (f1 - f0) * t / t[-1] / 2) * t)
        return (y + 0.01 * rng.standard_normal(len(t))).astype(np.float32)

    takes = [[chirp(300, 900) for _ in range(3)]]
    tests = [chirp(300, 900), chirp(300, 900), chirp(900, 300), chirp(1500, 1500)]
    target = np.array([[True, True, False, False]])
    assert ed.keyword_eer(takes, tests, target, "mfcc") == 0.0

