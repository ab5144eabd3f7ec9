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


def test_sliding_cmvn_matches_global_on_stationary_input_and_tracks_changes():
    from kws.features import _moving_mean
    x = np.random.default_rng(0).normal(size=(37, 3))
    # against a direct centred average with edge extension
    w = 7
    pad = np.concatenate([np.repeat(x[:1], 3, 0), x, np.repeat(x[-1:], 3, 0)])
    assert np.allclose(_moving_mean(x, w), np.array([pad[i:i + w].mean(0) for i in range(len(x))]))
    # a level jump halfway is removed locally: both halves end up near zero mean
    y = np.concatenate([np.full((200, 2), 5.0), np.full((200, 2), -5.0)]) + np.random.default_rng(1).normal(size=(400, 2))
    n = cmvn(y, 50)
    assert abs(n[:150].mean()) < 0.2 and abs(n[250:].mean()) < 0.2
