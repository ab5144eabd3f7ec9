import numpy as np
from synth import SR, utterance

from kws.config import VadConfig
from kws.signal.vad import speech_segments


def test_silence_has_no_speech():
    assert speech_segments(np.zeros(SR * 2, np.float32)) == []


def test_faint_noise_has_no_speech():
    rng = np.random.default_rng(0)
    assert speech_segments((1e-4 * rng.standard_normal(SR * 2)).astype(np.float32)) == []


def test_word_is_found_with_padding():
    y = utterance(["alpha", "delta"])  # 0.3 s silence, ~1.3 s of speech, 0.3 s silence
    segs = speech_segments(y, VadConfig(pad_ms=0))
    assert len(segs) == 1
    start, end = segs[0]
    assert 0.2 * SR <= start <= 0.45 * SR
    assert len(y) - 0.45 * SR <= end <= len(y) - 0.2 * SR


def test_pauses_are_bridged_and_separated():
    gap = np.zeros(int(SR * 1.0), np.float32)
    y = np.concatenate([utterance(["alpha"]), gap, utterance(["bravo"])])
    assert len(speech_segments(y, VadConfig(merge_gap_ms=300))) == 2
    assert len(speech_segments(y, VadConfig(merge_gap_ms=3000))) == 1
