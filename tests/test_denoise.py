"""kws/signal/denoise.py: RNNoise over a stream equals RNNoise over the whole clip, keeps the length, takes
noise out; without the wheel, a clear error."""
import numpy as np
import pytest

from kws.config import SAMPLE_RATE
from kws.errors import WeightsError
from kws.signal import denoise as dn


def voiced_in_noise(seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    voiced = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    noise = 0.05 * np.random.default_rng(0).standard_normal(len(t)).astype(np.float32)
    return voiced, noise


def needs_rnnoise() -> None:
    """Skip without the wheel's library: what the module loads (the package's own imports are not needed)."""
    try:
        dn._library()
    except WeightsError as e:
        pytest.skip(str(e))


def test_without_the_wheel_the_error_says_how_to_install(monkeypatch):
    dn._library.cache_clear()
    monkeypatch.setattr(dn.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match="pip install pyrnnoise"):
        dn.StreamDenoiser()
    dn._library.cache_clear()


def test_block_by_block_equals_the_whole_clip_and_keeps_its_length():
    needs_rnnoise()
    voiced, noise = voiced_in_noise(1.3)
    y = voiced + noise
    whole = dn.denoise(y)
    assert whole.shape == y.shape and whole.dtype == np.float32
    d = dn.StreamDenoiser()
    parts = [d.push(y[a:a + 1234]) for a in range(0, len(y), 1234)] + [d.flush()]
    blocks = np.concatenate(parts)
    assert len(blocks) == len(y)
    np.testing.assert_allclose(blocks, whole, atol=1e-5)


def test_noise_comes_out_and_the_voice_stays():
    needs_rnnoise()
    voiced, noise = voiced_in_noise()
    assert np.mean(dn.denoise(noise) ** 2) < 0.25 * np.mean(noise ** 2)
    assert np.mean(dn.denoise(noise + voiced) ** 2) > 0.05 * np.mean(voiced ** 2)


def test_the_listener_option_takes_known_denoisers_only():
    from kws.config import with_settings
    assert with_settings(["stream.denoise=rnnoise"]).stream.denoise == "rnnoise"
    assert with_settings([]).stream.denoise == ""          # off by default: it costs ~0.04 of a core
    with pytest.raises(ValueError, match="denoise"):
        with_settings(["stream.denoise=wiener"])
