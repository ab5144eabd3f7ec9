"""scripts/eval_denoise.py: its denoiser names, and a keyword EER that tells a phrase from other sounds."""
import numpy as np
import pytest

import eval_denoise as ed
from kws.config import SAMPLE_RATE


def test_none_is_the_identity_and_unknown_names_are_refused():
    y = np.arange(5, dtype=np.float32)
    assert ed.denoiser("none")(y) is y
    with pytest.raises(SystemExit, match="unknown denoiser"):
        ed.denoiser("wiener")


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

