import numpy as np
from synth import SR, utterance

from kws.config import FeatureConfig
from kws.features import cmvn, frames_per_second, keyword_frames, logmel, stack


def test_shapes_and_rate():
    y = utterance(["alpha"])
    cfg = FeatureConfig()
    assert logmel(y, cfg).shape == (len(y) // 160 + 1, cfg.n_mels)
    f = keyword_frames(y, cfg)
    assert f.shape[1] == cfg.n_ceps - 1
    assert abs(len(f) - len(y) / SR * frames_per_second(cfg)) <= 1


def test_cmvn_and_stack():
    x = np.random.default_rng(0).normal(3, 2, (100, 5))
    n = cmvn(x)
    assert np.allclose(n.mean(0), 0, atol=1e-6) and np.allclose(n.std(0), 1, atol=1e-2)
    assert stack(x, 2).shape == (50, 5) and np.allclose(stack(x, 2)[0], x[:2].mean(0))
    assert stack(x[:1], 2).shape == (1, 5)


def test_gain_invariance():
    # the relative floor and CMVN make the frames independent of the recording level
    y = utterance(["delta"])
    assert np.allclose(keyword_frames(y), keyword_frames(0.05 * y), atol=1e-2)
